// Every op compiled with Halide against the reference implementation, on many random shapes,
// strides, paddings, dilations, groups and batch sizes. A failure prints the network text.
#include <doctest/doctest.h>

#include <fstream>
#include <functional>
#include <limits>
#include <cmath>
#include <random>
#include <sstream>

#include "ir/error.h"
#include "ir/text.h"
#include "passes/choose_tiles.h"
#include "codegen/compile.h"
#include "runtime/executor.h"
#include "runtime/reference/reference.h"
#include "runtime/weights.h"
#include "tests/util.h"

using namespace cnnc;

namespace {

// Random weights (not Keras' init: BatchNorm statistics must not be the identity here).
void random_weights(ir::Graph& g, std::mt19937& rng) {
  for (auto& n : g.nodes())
    for (auto& p : n.params) {
      const bool positive = p.role == "moving_variance" || p.role == "gamma";
      p.value = test::random_tensor(p.value.shape, rng, positive ? 0.5f : -1.f, positive ? 2.f : 1.f);
    }
}

// Which schedules the conv2d and dense layers get: the tiling pass's (with or without weight
// packing), or none recorded (codegen's plain schedule).
enum class Schedules { Tiled, Unpacked, Plain };

// Compiles `g` for the test target (with the schedules asked for) and runs it on `inputs`.
std::vector<ir::Tensor> run_compiled(ir::Graph g, const std::vector<ir::Tensor>& inputs, int64_t micro_batch = 0,
                                     Schedules schedules = Schedules::Tiled) {
  const ir::Target target = codegen::describe_target(test::test_target());
  if (schedules != Schedules::Plain) {
    const passes::TilingOptions tiling{target, codegen::choose_micro_batch(g, micro_batch, target.family),
                                       schedules == Schedules::Tiled};
    g = passes::choose_tiles(std::move(g), tiling);
  }
  codegen::CompileOptions opts;
  opts.micro_batch = micro_batch;
  opts.target = target.name;
  return runtime::CompiledModel(codegen::compile(g, opts)).run(inputs);
}

// Compiles and runs `text` and compares it with the reference. Returns false when the network
// is not a valid one (shape inference refused it), so random generators can skip it.
bool check_network(const std::string& text, std::mt19937& rng, int64_t batch = 1, int64_t micro_batch = 0,
                   Schedules schedules = Schedules::Tiled) {
  ir::Graph g;
  try {
    g = ir::parse(text, "generated.cnn", batch);
  } catch (const Error&) {
    return false;
  }
  random_weights(g, rng);
  std::vector<ir::Tensor> inputs;
  for (ir::NodeId id : g.inputs()) inputs.push_back(test::random_tensor(g.node(id).type.shape, rng));
  const auto want = runtime::reference::run(g, inputs);
  const auto got = run_compiled(std::move(g), inputs, micro_batch, schedules);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("network:\n" << text << "batch " << batch << ", output " << i);
    test::check_close(got[i], want[i], 1e-4);
  }
  return true;
}

template <class T>
T pick(std::mt19937& rng, std::initializer_list<T> options) {
  std::uniform_int_distribution<size_t> d(0, options.size() - 1);
  return *(options.begin() + d(rng));
}

// Runs `make` until `count` valid random networks were checked.
void check_random(int count, uint32_t seed, const std::function<std::string(std::mt19937&)>& make,
                  const std::function<int64_t(std::mt19937&)>& batch = nullptr,
                  Schedules schedules = Schedules::Tiled) {
  std::mt19937 rng(seed);
  int checked = 0;
  for (int attempt = 0; checked < count && attempt < count * 20; ++attempt) {
    const std::string text = make(rng);
    CAPTURE(seed);
    if (check_network(text, rng, batch ? batch(rng) : 1, 0, schedules)) ++checked;
  }
  CHECK(checked == count);
}

std::string input_line(std::mt19937& rng, std::initializer_list<int> sizes,
                       std::initializer_list<int> channels) {
  std::ostringstream os;
  os << "input x shape=" << pick(rng, sizes) << "x" << pick(rng, sizes) << "x" << pick(rng, channels) << "\n";
  return os.str();
}

// A random conv2d: kernels, strides, dilations, paddings, groups (depthwise too), bias.
std::string random_conv(std::mt19937& rng) {
  const int cin = pick(rng, {1, 3, 4, 8, 16});
  const int k = pick(rng, {1, 2, 3, 5});
  std::ostringstream os;
  os << "input x shape=" << pick(rng, {5, 7, 9, 12}) << "x" << pick(rng, {4, 6, 11}) << "x" << cin << "\n";
  const int groups = pick(rng, {1, 1, cin, cin > 1 && cin % 2 == 0 ? 2 : 1});
  const int filters = groups * pick(rng, {1, 2, 3, 8, 16});
  os << "conv2d c filters=" << filters << " kernel=" << k << "x" << pick(rng, {1, 3})
     << " strides=" << pick(rng, {1, 2, 3}) << "x" << pick(rng, {1, 2})
     << " dilation=" << pick(rng, {1, 1, 2}) << "x" << pick(rng, {1, 2})
     << " padding=" << pick<std::string>(rng, {"valid", "same", "1", "0,1,2,1"})
     << " groups=" << groups << " use_bias=" << pick<std::string>(rng, {"true", "false"})
     << " round=floor\n";
  return os.str();
}

int64_t small_batch(std::mt19937& rng) { return pick<int64_t>(rng, {1, 1, 2, 3}); }

// A random conv2d_transpose: strides (a gather) or stride 1 (a conv of the flipped kernel),
// dilations, paddings, output padding, bias, an activation and a residual add as epilogues.
std::string random_conv_transpose(std::mt19937& rng) {
  std::ostringstream os;
  const int h = pick(rng, {1, 3, 5}), w = pick(rng, {2, 4, 7}), cin = pick(rng, {1, 3, 8, 16});
  const int sh = pick(rng, {1, 2, 3}), sw = pick(rng, {1, 2});
  const int dil = sh == 1 && sw == 1 ? pick(rng, {1, 2}) : 1, filters = pick(rng, {1, 4, 8, 19});
  os << "input x shape=" << h << "x" << w << "x" << cin << "\n"
     << "conv2d_transpose t filters=" << filters << " kernel=" << pick(rng, {1, 2, 3, 4})
     << "x" << pick(rng, {1, 3, 5}) << " strides=" << sh << "x" << sw << " dilation=" << dil << "x" << dil
     << " padding=" << pick<std::string>(rng, {"valid", "same", "same", "1,0,0,1"})
     << " output_padding=" << pick(rng, {0, 0, sh - 1}) << "x" << pick(rng, {0, sw - 1})
     << " use_bias=" << pick<std::string>(rng, {"true", "false"})
     << pick<std::string>(rng, {"", " activation=relu", " activation=sigmoid"}) << "\n";
  if (pick(rng, {0, 1}))  // a residual add fuses as the epilogue's add
    os << "conv2d_transpose u filters=" << filters << " kernel=1x1 <- t\nadd a <- t, u\n";
  return os.str();
}

}  // namespace

TEST_CASE("conv2d matches the reference: strides, paddings, dilations, groups, batches") {
  check_random(24, 1, random_conv, small_batch);
}

TEST_CASE("conv2d and dense without the tiling pass (plain schedule) or without packed weights") {
  check_random(6, 21, random_conv, small_batch, Schedules::Plain);
  check_random(6, 22, random_conv, small_batch, Schedules::Unpacked);
  std::mt19937 rng(23);
  for (auto schedules : {Schedules::Plain, Schedules::Unpacked})
    for (int64_t batch : {1, 5}) CHECK(check_network("input x shape=300\ndense d units=512\n", rng, batch, 0, schedules));
}

TEST_CASE("a recorded schedule is applied as written, and one that cannot apply is a clear error") {
  std::mt19937 rng(24);
  const std::string conv = "input x shape=9x9x16\nconv2d c filters=48 kernel=3x3 padding=same ";
  // Any valid tile computes the same result: a narrow one with a partial last tile, uneven rows.
  CHECK(check_network(conv + "schedule=tile:v8,c16,x4,k4,r2,p16\n", rng, 2));
  CHECK(check_network(conv + "schedule=tile:v16,c48,x1,k16,r9\n", rng));
  CHECK(check_network(conv + "schedule=tile:v16,c16,x3,k16,r4,t1,p16\n", rng, 2));
  // A task of three tiles' channels (C48), each tile of pixels computing them in turn.
  CHECK(check_network(conv + "schedule=tile:v8,c16,x3,k16,r4,t1,p16,C48\n", rng, 2));
  // A 1x1 stride-1 conv's tiles span the image's rows (ir::tile_spans_rows): 7-pixel rows in
  // tiles of 4, 6 and 12 pixels, rows per task that do not divide the image's 5, chunked and in
  // registers, packed and not, tasks of one and of two tiles' channels, with a residual add
  // (prefetched a tile ahead where the reduction is in registers) and an activation as the
  // epilogue.
  for (const char* s :
       {"tile:v8,c16,x4,k8,r2,p16", "tile:v8,c16,x6,k16,r3,t1", "tile:v8,c8,x12,k16,r5,t1,p8",
        "tile:v4,c8,x3,k4,r1", "tile:v8,c8,x5,k16,r2,t1,p8,C16"})
    CHECK(check_network(
        std::string("input x shape=5x7x16\nconv2d c filters=16 kernel=1x1 schedule=") + s +
            "\nadd a <- x, c\nrelu r <- a\n",
        rng, 2));
  CHECK(check_network("input x shape=64\ndense d units=64 schedule=gemv:v8,c32,p32\n", rng, 2));
  CHECK(check_network("input x shape=64\ndense d units=40 schedule=stream:v4,c24\n", rng, 3));
  for (auto [schedule, why] : std::initializer_list<std::pair<const char*, const char*>>{
           {"tile:v16,c32,x4,k5,r1",
            "k (input channels per chunk) must divide the input channels per group (16)"},
           {"tile:v16,c64,x4,k4,r1", "c (output channels per tile) must not exceed the layer's 48"},
           {"tile:v12,c24,x4,k4,r1", "v (vector lanes) must be a power of two"},
           {"tile:v4,c32,x40,k4,r1", "the register tile (c/v x x) may hold at most 64 vectors"},
           {"tile:v16,c16,x4,k4,r1,p32", "p (packed block) must equal c"},
           {"gemv:v16,c16", "gemv takes p = c"},
           {"depthwise:v16,c16,x4,r1", "depthwise is not a schedule of a conv kernel"},
           {"gpu_tile:c4,x4", "gpu_tile is a GPU schedule, and the target is a CPU"},
           {"tile:v16,c16,x4,k8,r1,t1",
            "t1 (taps inside the tile) needs k equal to the input channels"},
           {"tile:v16,c16,x4,k16,r1,C32",
            "C (output channels per task) needs t1, a multiple of c that divides the output "
            "channels (48)"},
           {"tile:v16,c16,x4,k16,r1,t1,C32",
            "C (output channels per task) needs t1, a multiple of c"},
           {"tile:v8,c16,x4,k16,r1,t1,C24",
            "C (output channels per task) needs t1, a multiple of c"}}) {
    CAPTURE(schedule);
    ir::Graph g = ir::parse(conv + "schedule=" + schedule + "\n", "t.cnn");
    random_weights(g, rng);
    const std::string message = std::string("t.cnn:2: layer 'c' (conv2d): cannot apply its schedule: ") + why;
    CHECK_THROWS_WITH_AS(codegen::compile(g), doctest::Contains(message.c_str()), Error);
  }
}

// The layer text with every Winograd schedule's m set (F(m x m, 3x3); 2 is the default).
std::string with_winograd_outputs(std::string text, int m) {
  if (m == 2) return text;
  for (size_t at = text.find("schedule=winograd:"); at != std::string::npos;
       at = text.find("schedule=winograd:", at + 1))
    text.insert(text.find('\n', at), ",m" + std::to_string(m));
  return text;
}

TEST_CASE(
    "CPU: a 3x3 stride-1 conv computed as Winograd F(2x2, 3x3) or F(4x4, 3x3) matches the "
    "reference") {
  std::mt19937 rng(25);
  // Outputs that are and are not whole tiles (a last tile of 1-3 columns or rows), same, valid
  // and uneven padding, input channels that are not whole vectors, bias or none, an activation
  // and a residual add.
  for (const char* layer :
       {"input x shape=9x9x16\nconv2d c filters=48 kernel=3x3 padding=same "
        "schedule=winograd:v16,c16,x4,r2\n",
        "input x shape=8x11x3\nconv2d c filters=8 kernel=3x3 padding=valid use_bias=false "
        "activation=relu schedule=winograd:v8,c8,x3,r1\n",
        "input x shape=7x6x5\nconv2d c filters=32 kernel=3x3 padding=0,1,2,1 "
        "schedule=winograd:v16,c32,x2,r3\n",
        "input x shape=14x14x32\nconv2d a filters=64 kernel=3x3 padding=same "
        "schedule=winograd:v16,c32,x8,r7\n"
        "conv2d c filters=64 kernel=3x3 padding=same activation=relu "
        "schedule=winograd:v16,c64,x4,r1\n"
        "add s <- a, c\n",
        // A stride-1 transposed conv: the forward layer's kernel flipped, its channels exchanged.
        "input x shape=5x7x8\nconv2d_transpose t filters=20 kernel=3x3 padding=same "
        "schedule=winograd:v4,c20,x2,r1\n"}) {
    for (int m : {2, 4}) {
      const std::string text = with_winograd_outputs(layer, m);
      CAPTURE(text);
      CHECK(check_network(text, rng, 1));
      CHECK(check_network(text, rng, 3));
    }
  }
  const std::string conv = "input x shape=9x9x16\nconv2d c filters=48 ";
  for (auto [layer, why] : std::initializer_list<std::pair<const char*, const char*>>{
           {"kernel=5x5 schedule=winograd:v16,c16,x4,r1", "winograd computes 3x3 kernels only"},
           {"kernel=3x3 strides=2 schedule=winograd:v16,c16,x4,r1",
            "winograd computes stride-1, undilated convs only"},
           {"kernel=3x3 groups=2 schedule=winograd:v8,c8,x4,r1",
            "winograd computes ungrouped convs only"},
           {"kernel=3x3 schedule=winograd:v16,c32,x4,r1",
            "c (output channels per tile) must divide the output channels (48)"},
           {"kernel=3x3 schedule=winograd:v16,c16,x4",
            "it needs x (tiles per register tile) and r (tile rows per task)"},
           {"kernel=3x3 schedule=winograd:v16,c16,x4,r1,m3",
            "m (outputs per tile side) must be 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3))"}}) {
    CAPTURE(layer);
    ir::Graph g = ir::parse(conv + layer + "\n", "t.cnn");
    random_weights(g, rng);
    const std::string message =
        std::string("t.cnn:2: layer 'c' (conv2d): cannot apply its schedule: ") + why;
    CHECK_THROWS_WITH_AS(codegen::compile(g), doctest::Contains(message.c_str()), Error);
  }
}

TEST_CASE("CPU: a Winograd conv's kernel is transformed when loaded, and again when it changes") {
  std::mt19937 rng(26);
  for (int m : {2, 4}) {
    CAPTURE(m);
    ir::Graph g = ir::parse(with_winograd_outputs("input x shape=6x6x8\nconv2d c filters=32 "
                                                  "kernel=3x3 padding=same "
                                                  "schedule=winograd:v16,c16,x2,r1\n",
                                                  m),
                            "t.cnn");
    random_weights(g, rng);
    const std::vector<ir::Tensor> inputs{test::random_tensor(g.node(0).type.shape, rng)};
    codegen::CompileOptions opts;
    opts.target = codegen::describe_target(test::test_target()).name;
    runtime::CompiledModel model(codegen::compile(g, opts));
    REQUIRE(model.kernels().at(0).kernel->winograd_outputs() == m);
    CHECK(model.kernels()[0].kernel->schedule().find("kernel transformed when loaded") !=
          std::string::npos);
    test::check_close(model.run(inputs).at(0), runtime::reference::run(g, inputs).at(0), 1e-4);
    // New weights (a training step's update): the transform follows them.
    float* w = model.weights("c", "kernel");
    ir::Param& kernel = *g.node(g.find("c")).param("kernel");
    for (size_t i = 0; i < kernel.value.data.size(); ++i)
      w[i] = kernel.value.data[i] = -0.5f * w[i] + 0.01f;
    model.weights_changed();
    test::check_close(model.run(inputs).at(0), runtime::reference::run(g, inputs).at(0), 1e-4);
  }
}

// Run by the GPU pass of this suite (ctest's test_codegen_opencl; the host pass excludes it).
TEST_CASE("GPU: a recorded gpu_tile or gpu_pointwise schedule is applied as written; one that cannot apply is a clear error") {
  REQUIRE(codegen::describe_target(test::test_target()).family == ir::Target::Gpu);
  std::mt19937 rng(25);
  const std::string conv = "input x shape=9x9x16\nconv2d c filters=48 kernel=3x3 padding=same ";
  // Blocks with partial last tiles, uneven rows, chunks, unrolling, shared-memory staging.
  for (const char* schedule : {"gpu_tile:c4,x2,k16,C32,X8,R2", "gpu_tile:c1,x1,k4,C48,X3,R1,u2",
                               "gpu_tile:c3,x3,k8,C12,X9,R4,s1,u4", "gpu_tile:c8,x1,k16,C16,X5,R3,s1"}) {
    CAPTURE(schedule);
    CHECK(check_network(conv + "schedule=" + schedule + "\n", rng, 2));
  }
  CHECK(check_network("input x shape=9x9x8\nconv2d c filters=8 kernel=3x3 strides=2 padding=same groups=8 "
                      "schedule=gpu_tile:c1,x2,C8,X4,R2,s1\n", rng, 2));
  CHECK(check_network("input x shape=64\ndense d units=40 schedule=gpu_tile:c4,x1,k8,C16,X1,R1,u8\n", rng, 3));
  CHECK(check_network("input x shape=7x5x24\nrelu r schedule=gpu_pointwise:v4,C8,X3\n"
                      "maxpool2d p pool=2 strides=2 padding=same schedule=gpu_pointwise:v2,C24,X1\n", rng, 2));
  for (auto [schedule, why] : std::initializer_list<std::pair<const char*, const char*>>{
           {"gpu_tile:c4,x2,k5,C32,X8,R2", "k (input channels per chunk) must divide the input channels per group (16)"},
           {"gpu_tile:c3,x2,k16,C32,X8,R2", "c must divide C and x must divide X"},
           {"gpu_tile:c1,x1,k16,C48,X9,R9", "a block of 3888 threads (C/c x X/x x R) exceeds 1024"},
           {"gpu_tile:c16,x8,k16,C48,X8,R1", "a thread's tile (c x x) may hold at most 64 accumulators"},
           {"gpu_tile:c4,x2,k16,C32,X8,R2,u3", "u (unroll) must divide k"},
           {"gpu_tile:c4,x2,k16,C32,X8,R2,s2", "s takes 1"},
           {"gpu_tile:c4,x2", "gpu_tile needs C, X, R (block) and c, x (thread) set"},
           {"tile:v16,c16,x4,k4,r1", "tile is a CPU schedule, and the target is a GPU"}}) {
    CAPTURE(schedule);
    ir::Graph g = ir::parse(conv + "schedule=" + schedule + "\n", "t.cnn");
    random_weights(g, rng);
    codegen::CompileOptions opts;
    opts.target = test::test_target();
    const std::string message = std::string("t.cnn:2: layer 'c' (conv2d): cannot apply its schedule: ") + why;
    CHECK_THROWS_WITH_AS(codegen::compile(g, opts), doctest::Contains(message.c_str()), Error);
  }
}

TEST_CASE("conv2d at a realistic size: 3x3, 56x56, 64 -> 64 with same padding") {
  std::mt19937 rng(7);
  CHECK(check_network("input x shape=56x56x64\nconv2d c filters=64 kernel=3x3 padding=same\n", rng));
}

TEST_CASE("depthwise conv2d with a depth multiplier, and a 7x7 stride-2 stem") {
  std::mt19937 rng(8);
  CHECK(check_network("input x shape=14x14x32\nconv2d c filters=64 kernel=3x3 padding=same groups=32 strides=2x2\n", rng));
  CHECK(check_network("input x shape=32x32x3\nconv2d c filters=16 kernel=7x7 strides=2x2 padding=same\n", rng, 2));
}

TEST_CASE("dense matches the reference on rank-2 and rank-4 inputs and batches") {
  check_random(
      10, 2,
      [](std::mt19937& rng) {
        std::ostringstream os;
        if (pick(rng, {0, 1}))
          os << "input x shape=" << pick(rng, {1, 7, 64, 300}) << "\n";
        else
          os << "input x shape=" << pick(rng, {1, 3}) << "x" << pick(rng, {2, 5}) << "x" << pick(rng, {3, 16}) << "\n";
        // 512 units: at batches below 4 the matrix-vector schedule with packed weight blocks.
        os << "dense d units=" << pick(rng, {1, 5, 10, 32, 100, 512}) << " use_bias="
           << pick<std::string>(rng, {"true", "false"}) << "\n";
        return os.str();
      },
      [](std::mt19937& rng) { return pick<int64_t>(rng, {1, 2, 7, 32}); });
}

TEST_CASE("max and average pooling match the reference, including Keras 'same' padding") {
  check_random(
      16, 3,
      [](std::mt19937& rng) {
        std::ostringstream os;
        os << input_line(rng, {3, 6, 7, 13}, {1, 3, 8, 19});
        os << pick<std::string>(rng, {"maxpool2d", "avgpool2d"}) << " p pool=" << pick(rng, {1, 2, 3})
           << "x" << pick(rng, {2, 3}) << " strides=" << pick(rng, {1, 2, 3}) << "x" << pick(rng, {1, 2})
           << " padding=" << pick<std::string>(rng, {"valid", "same", "1"}) << " round=floor\n";
        return os.str();
      },
      [](std::mt19937& rng) { return pick<int64_t>(rng, {1, 2}); });
}

TEST_CASE("elementwise ops, batch norm, softmax and global pooling match the reference") {
  check_random(
      36, 4,
      [](std::mt19937& rng) {
        std::ostringstream os;
        const bool vector_input = pick(rng, {0, 0, 1});
        if (vector_input)
          os << "input x shape=" << pick(rng, {1, 5, 10, 33}) << "\n";
        else
          os << input_line(rng, {1, 4, 9}, {1, 3, 8, 20});
        std::string op = pick<std::string>(rng, {"relu", "relu6", "leakyrelu alpha=0.1", "leakyrelu",
                                                 "sigmoid", "tanh", "softmax", "log_softmax", "batchnorm epsilon=0.01",
                                                 "batchnorm", "dropout rate=0.3", "globalavgpool2d",
                                                 "globalavgpool2d keepdims=true", "flatten", "swish",
                                                 "hardsigmoid", "affine", "globalmaxpool2d",
                                                 "layernorm", "layernorm epsilon=1e-6",
                                                 "globalmaxpool2d keepdims=true", "relu max_value=6",
                                                 "relu threshold=0.5",
                                                 "relu max_value=2.5 negative_slope=0.2 threshold=0.25"});
        // Scale up so that relu6 and the saturating functions see large values too.
        os << "batchnorm scale\n";
        const auto space = op.find(' ');
        os << (space == std::string::npos ? op + " y" : op.substr(0, space) + " y" + op.substr(space)) << "\n";
        return os.str();
      },
      [](std::mt19937& rng) { return pick<int64_t>(rng, {1, 3}); });
}

// Every activation of the table (ir/activations.def) and relu, alone and as the epilogue of each
// kind of op that takes one (conv2d, dense, pooling with a residual add; batchnorm, add), and
// log_softmax: new activations are tested by adding their line to the table.
TEST_CASE("every table activation, alone and as an epilogue, matches the reference") {
  std::mt19937 rng(41);
  for (int k = 0; k < ir::kNumOps; ++k) {
    const auto op = static_cast<ir::OpKind>(k);
    if (!ir::is_epilogue_activation(op)) continue;
    const std::string act(ir::op_info(op).text);
    CAPTURE(act);
    // The input scaled by a batchnorm so the saturating parts are reached; inputs near -5..5.
    const std::string head = "input x shape=5x7x19\nbatchnorm scale\n";
    CHECK(check_network(head + act + " a\n", rng, 2));
    CHECK(check_network(head + "conv2d c filters=24 kernel=3x3 padding=same epilogue=" + act + "\n", rng, 3));
    CHECK(check_network(head + "conv2d c filters=19 kernel=1x1 epilogue=add+" + act + " <- scale, x\n", rng, 1));
    CHECK(check_network(head + "maxpool2d p pool=3x3 strides=1x1 padding=same epilogue=add+" + act + " <- scale, x\n",
                        rng, 2));
    CHECK(check_network(head + "avgpool2d p pool=2x2 round=floor epilogue=" + act + "\n", rng, 1));
    CHECK(check_network(head + "batchnorm b epilogue=" + act + "\n", rng, 2));
    CHECK(check_network(head + "add s epilogue=" + act + " <- scale, x\n", rng, 1));
    CHECK(check_network("input x shape=37\ndense d units=20 epilogue=" + act + "\n", rng, 3));
  }
  for (int64_t batch : {1, 3}) {
    CHECK(check_network("input x shape=1000\nlog_softmax s\n", rng, batch));
    CHECK(check_network("input x shape=3x5x17\nbatchnorm scale\nlog_softmax s\n", rng, batch));
  }
}

// At the ends of the float range, value by value (not relative to the largest): Halide's CPU exp
// returned 0 instead of inf above 1.49e9, and swish(-1.5e9) came out as -1.5e9 instead of -0
// (EfficientNetV2M). Each output within 1e-5 of the reference, relative to max(1, |expected|),
// inf where the reference is inf, never a NaN the reference does not have. Within a factor of
// two of FLT_MAX on the CPU only: OpenCL C compilers (PoCL) may reorder x * 2 / 2 into an overflow.
TEST_CASE("every table activation is right at the ends of the float range") {
  const ir::Target target = codegen::describe_target(test::test_target());
  std::vector<float> values = {0.f, 1e-3f};
  for (float v : {1e-30f, 0.5f, 3.f, 7.f, 20.f, 88.f, 89.f, 100.f, 1e3f, 1e9f, 1.5e9f, 2.2e9f, 1e20f, 1e30f}) {
    values.push_back(v);
    values.push_back(-v);
  }
  if (target.family == ir::Target::Cpu)
    for (float v : {3e38f, std::numeric_limits<float>::max()}) {
      values.push_back(v);
      values.push_back(-v);
    }
  for (int k = 0; k < ir::kNumOps; ++k) {
    const auto op = static_cast<ir::OpKind>(k);
    if (!ir::is_epilogue_activation(op)) continue;
    const std::string act(ir::op_info(op).text);
    CAPTURE(act);
    ir::Graph g = ir::parse("input x shape=" + std::to_string(values.size()) + "\n" + act + " a\n", "ends.cnn", 1);
    ir::Tensor x(g.node(g.inputs()[0]).type.shape);
    x.data = values;
    const auto want = runtime::reference::run(g, {x})[0];
    const auto got = run_compiled(std::move(g), {x})[0];
    for (size_t i = 0; i < values.size(); ++i) {
      const float w = want.data[i], o = got.data[i];
      INFO(act << "(" << values[i] << "): got " << o << ", expected " << w);
      if (std::isnan(w)) {
        CHECK(std::isnan(o));
      } else if (std::isinf(w)) {
        CHECK(o == w);
      } else {
        CHECK(std::abs(double(o) - double(w)) <= 1e-5 * std::max(1.0, std::abs(double(w))));
      }
    }
  }
}

// Global average pooling to float precision over many pixels: a plain float sum of 4096 values
// near 1000 loses ~1e-6 of the mean, which a squeeze-and-excitation gate downstream amplifies
// (EfficientNetV2B3); the compensated sum keeps it within 2 ulps of the exact mean.
TEST_CASE("global average pooling keeps float precision over many pixels") {
  for (int64_t batch : {1, 2}) {
    ir::Graph g = ir::parse("input x shape=64x64x16\nglobalavgpool2d g\n", "gap.cnn", batch);
    std::mt19937 rng(7);
    ir::Tensor x = test::random_tensor(g.node(g.inputs()[0]).type.shape, rng, 1000.f, 1001.f);
    const auto want = runtime::reference::run(g, {x})[0];
    const auto got = run_compiled(std::move(g), {x})[0];
    for (size_t i = 0; i < want.data.size(); ++i) {
      INFO("channel " << i << ": got " << got.data[i] << ", exact " << want.data[i]);
      CHECK(std::abs(double(got.data[i]) - double(want.data[i])) <=
            1.2e-7 * std::abs(double(want.data[i])));
    }
  }
}

TEST_CASE("add, concat and zero padding match the reference on branching graphs") {
  check_random(
      12, 5,
      [](std::mt19937& rng) {
        std::ostringstream os;
        const int c = pick(rng, {1, 3, 8, 13});
        os << "input x shape=" << pick(rng, {2, 5, 8}) << "x" << pick(rng, {3, 6}) << "x" << c << "\n";
        os << "relu a <- x\nsigmoid b <- x\ntanh d <- x\n";
        os << pick<std::string>(rng, {"add s <- a, b", "add s <- a, b, d", "concat s <- a, b",
                                      "concat s <- b, x, d, a"})
           << "\n";
        os << "zeropadding2d z pad=" << pick<std::string>(rng, {"1", "0,1,2,0", "2,0,0,3"}) << "\n";
        return os.str();
      },
      [](std::mt19937& rng) { return pick<int64_t>(rng, {1, 2}); });
}

TEST_CASE("multiply with broadcasting, cropping2d and reshape match the reference") {
  check_random(
      14, 6,
      [](std::mt19937& rng) {
        std::ostringstream os;
        const int h = pick(rng, {1, 3, 6}), w = pick(rng, {2, 5, 7}), c = pick(rng, {1, 3, 8, 13});
        os << "input x shape=" << h << "x" << w << "x" << c << "\n";
        switch (pick(rng, {0, 1, 2, 3})) {
          case 0:  // squeeze-and-excitation: a 1x1xC gate scales the channels
            os << "globalavgpool2d g keepdims=true\nsigmoid s\nmultiply m <- x, s\n";
            break;
          case 1:  // a row and a column broadcast against each other and a full tensor
            os << "input r shape=" << h << "x1x1\ninput k shape=1x" << w << "x" << c << "\n"
               << pick<std::string>(rng, {"multiply m <- r, k", "multiply m <- x, r, k", "multiply m <- k, x"})
               << "\n";
            break;
          case 2:
            os << "cropping2d cr crop=" << pick<std::string>(rng, {"0", "1", "0,1,1,0", "2,0,0,3"}) << "\n"
               << "tanh t\n";
            break;
          default:  // reshape is a view: the consumer reads the producer's buffer in its new shape
            os << "relu r\nreshape rs shape="
               << pick<std::string>(rng, {std::to_string(h * w * c), std::to_string(w) + "x" + std::to_string(h) +
                                                                         "x" + std::to_string(c)})
               << "\naffine a\n";
            break;
        }
        return os.str();
      },
      [](std::mt19937& rng) { return pick<int64_t>(rng, {1, 2, 3}); });
}

TEST_CASE("reshape as the output, a Keras SE block, three-way broadcasting, global max pooling") {
  std::mt19937 rng(10);
  CHECK(check_network("input x shape=5x6x3\ninput r shape=5x1x1\ninput k shape=1x6x3\nmultiply m <- x, r, k\n",
                      rng, 3));
  CHECK(check_network("input x shape=4x5x13\nglobalmaxpool2d g keepdims=true\n", rng, 2));
  CHECK(check_network("input x shape=3x4x5\nreshape r shape=60\n", rng, 2));
  CHECK(check_network(
      "input x shape=7x7x24\nglobalavgpool2d g\ndense d units=6\nswish d.s\ndense e units=24\n"
      "hardsigmoid e.h\nreshape r shape=1x1x24\nmultiply m <- x, r\n",
      rng, 2));
}

TEST_CASE("conv2d_transpose matches the reference: strides, dilations, paddings, output padding") {
  check_random(24, 31, random_conv_transpose, small_batch);
  std::mt19937 rng(32);
  // A decoder's 2x upsampling (k2 s2: each input pixel a 2x2 block), a 3x3 stride-2 same one
  // (9 taps, 1 to 4 of them reach each output) and a stride-1 one on realistic channels.
  CHECK(check_network("input x shape=14x14x64\nconv2d_transpose t filters=32 kernel=2x2 strides=2x2\n", rng, 2));
  CHECK(check_network(
      "input x shape=9x7x24\nconv2d_transpose t filters=40 kernel=3x3 strides=2x2 padding=same activation=relu\n",
      rng, 1));
  CHECK(check_network("input x shape=8x8x32\nconv2d_transpose t filters=48 kernel=3x3 padding=same\n", rng, 3));
}

TEST_CASE("resize (nearest, bilinear; up and down), maximum, minimum and groupnorm match the reference") {
  check_random(
      20, 33,
      [](std::mt19937& rng) {
        std::ostringstream os;
        const int h = pick(rng, {1, 3, 6}), w = pick(rng, {2, 5, 8}), c = pick(rng, {1, 4, 6, 16});
        os << "input x shape=" << h << "x" << w << "x" << c << "\n";
        switch (pick(rng, {0, 1, 2, 3})) {
          case 0:
            os << "resize r size=" << pick(rng, {1, 2 * h, 3 * h + 1, 7}) << "x" << pick(rng, {1, 2 * w, w + 3, 3})
               << " interpolation=" << pick<std::string>(rng, {"nearest", "bilinear"}) << "\n";
            break;
          case 1:
            os << "input y shape=" << pick(rng, {h, 1}) << "x" << pick(rng, {w, 1}) << "x" << pick(rng, {c, 1}) << "\n"
               << pick<std::string>(rng, {"maximum", "minimum"}) << " m <- x, y\n";
            break;
          case 2:
            os << "relu r\nmaximum m <- x, r\nminimum n <- m, x, r\n";
            break;
          default:
            os << "groupnorm g groups=" << pick(rng, {1, 2, c}) << " epsilon=" << pick<std::string>(rng, {"0.001", "1e-5"})
               << "\n";
            break;
        }
        return os.str();
      },
      small_batch);
  std::mt19937 rng(34);
  // U-Net's pattern: upsample, then concatenate with the skip connection.
  CHECK(check_network(
      "input x shape=8x8x16\nconv2d c filters=32 kernel=3x3 strides=2x2 padding=same\n"
      "resize u size=8x8 interpolation=bilinear\nconcat k <- x, u\ngroupnorm g groups=8\n",
      rng, 2));
}

TEST_CASE("unitnorm (images, vectors) and transpose (every order of the axes) match the reference") {
  check_random(
      16, 35,
      [](std::mt19937& rng) {
        std::ostringstream os;
        const int h = pick(rng, {1, 3, 6}), w = pick(rng, {2, 5, 8}), c = pick(rng, {1, 4, 7, 16});
        if (pick(rng, {0, 1}) == 0) {
          os << "input x shape=" << c << "\nunitnorm u\n";
        } else {
          os << "input x shape=" << h << "x" << w << "x" << c << "\n";
          if (pick(rng, {0, 1}) == 0)
            os << "unitnorm u epsilon=" << pick<std::string>(rng, {"1e-12", "0.5"}) << "\n";
          else
            os << "transpose t perm="
               << pick<std::string>(rng, {"1x2x3", "1x3x2", "2x1x3", "2x3x1", "3x1x2", "3x2x1"}) << "\n";
        }
        return os.str();
      },
      small_batch);
  std::mt19937 rng(36);
  // A transpose between convs (height and width swapped), then back, then a unit norm.
  CHECK(check_network(
      "input x shape=6x9x8\nconv2d c filters=16 kernel=3x3 padding=same activation=relu\n"
      "transpose t perm=2x1x3\nconv2d d filters=8 kernel=3x1\ntranspose b perm=2x1x3\nunitnorm u\n",
      rng, 2));
}

TEST_CASE("the example models compile and match the reference end to end") {
  std::mt19937 rng(9);
  for (const char* model : {"models/seed_layer.cnn", "models/lenet5.cnn", "models/cifar10_cnn.cnn",
                            "models/resnet_mini.cnn"}) {
    CAPTURE(model);
    std::ifstream f(test::source_path(model));
    std::stringstream text;
    text << f.rdbuf();
    CHECK(check_network(text.str(), rng, 2));
  }
}

TEST_CASE("a batch run in micro-batches gives the whole batch's outputs, each image in its place") {
  // Two inputs and a residual add: every input and the output are sliced per micro-batch.
  const std::string net =
      "input x shape=6x6x4\ninput y shape=6x6x8\nconv2d c filters=8 kernel=3x3 padding=same <- x\n"
      "add a <- c, y\nrelu r\nglobalavgpool2d g\ndense d units=5 <- g\n";
  std::mt19937 rng(12);
  for (int64_t micro : {0, 1, 2, 3, 6}) {
    CAPTURE(micro);
    CHECK(check_network(net, rng, 6, micro));
  }
  ir::Graph g = ir::parse(net, "t.cnn", 6);
  random_weights(g, rng);
  codegen::CompileOptions opts;
  opts.micro_batch = 4;
  CHECK_THROWS_WITH_AS(codegen::compile(g, opts), doctest::Contains("micro-batch 4 does not divide the batch 6"), Error);
  CHECK(codegen::choose_micro_batch(g, 0) == 3);
}

TEST_CASE("a wrong input shape is an error, not a crash") {
  ir::Graph g = ir::parse("input x shape=4x4x2\nrelu r\n", "t.cnn");
  runtime::CompiledModel model(codegen::compile(g));
  CHECK_THROWS_WITH_AS(model.run({ir::Tensor({1, 4, 4, 3})}),
                       doctest::Contains("input has shape 1x4x4x3, the network expects 1x4x4x2"), Error);
  CHECK_THROWS_AS(model.run({}), Error);
}

TEST_CASE("weights must be set before compiling") {
  ir::Graph g = ir::parse("input x shape=4x4x2\nconv2d c filters=2 kernel=3x3\n", "t.cnn");
  CHECK_THROWS_WITH_AS(codegen::compile(g), doctest::Contains("layer 'c' (conv2d): weights 'kernel' are not set"),
                       Error);
}
