// BatchNorm folding, padding folding, strided 1x1 subsampling and epilogue fusion: golden IR for
// what they decide, and outputs preserved on random graphs (reference before vs reference and
// Halide after).
#include <doctest/doctest.h>

#include <random>

#include "codegen/compile.h"
#include "ir/error.h"
#include "ir/shape_inference.h"
#include "ir/text.h"
#include "passes/fold_batchnorm.h"
#include "passes/fuse_epilogues.h"
#include "passes/fuse_padding.h"
#include "passes/pipeline.h"
#include "passes/subsample_strided_convs.h"
#include "runtime/executor.h"
#include "runtime/reference/reference.h"
#include "tests/util.h"

using namespace cnnc;

namespace {

// Parses at batch 2 with random weights (variances positive) so folding has values to fold.
ir::Graph with_weights(const std::string& text, unsigned seed = 1) {
  ir::Graph g = ir::parse(text, "t.cnn", 2);
  std::mt19937 rng(seed);
  for (auto& n : g.nodes())
    for (auto& p : n.params) p.value = test::random_tensor(p.value.shape, rng, 0.5f, 1.5f);
  return g;
}

// The IR lines after the header, without the shape comments.
std::string body(const ir::Graph& g) {
  std::string out, text = ir::print(g);
  size_t pos = text.find('\n') + 1;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string line = text.substr(pos, end - pos);
    line = line.substr(0, line.find("  #"));
    line = line.substr(0, line.find_last_not_of(' ') + 1);
    out += line + "\n";
    pos = end + 1;
  }
  return out;
}

std::vector<ir::Tensor> random_inputs(const ir::Graph& g, std::mt19937& rng) {
  std::vector<ir::Tensor> in;
  for (ir::NodeId id : g.inputs()) in.push_back(test::random_tensor(g.node(id).type.shape, rng));
  return in;
}

// `rewritten` (from g by a pass) computes g's outputs exactly in the reference, and within
// rounding through the whole pipeline and Halide.
void check_same_outputs(const ir::Graph& g, const ir::Graph& rewritten, unsigned seed) {
  std::mt19937 rng(seed);
  const auto x = random_inputs(g, rng);
  const auto want = runtime::reference::run(g, x);
  const auto got = runtime::reference::run(rewritten, x);
  runtime::CompiledModel m(codegen::compile(passes::optimize(g)));
  const auto compiled = m.run(x);
  for (size_t i = 0; i < want.size(); ++i) {
    test::check_close(got[i], want[i], 0);
    test::check_close(compiled[i], want[i], 1e-5);
  }
}

}  // namespace

TEST_CASE("fold_batchnorm: into the conv before it, adding a bias it did not have") {
  ir::Graph g = with_weights("input x shape=6x6x3\nconv2d c filters=4 kernel=3x3 use_bias=false\nbatchnorm bn\n");
  const int64_t params = ir::total_params(g);
  ir::Graph f = passes::fold_batchnorm(g);
  CHECK(body(f) == "input x shape=6x6x3\nconv2d c filters=4 kernel=3x3\n");
  CHECK(f.node(1).param("bias")->derived);
  CHECK(ir::total_params(f) == params);  // the folded statistics still count as the model's
  std::mt19937 rng(3);
  const auto x = random_inputs(g, rng);
  test::check_close(runtime::reference::run(f, x)[0], runtime::reference::run(g, x)[0], 1e-5);
}

TEST_CASE("fold_batchnorm: into a conv2d_transpose before it (a decoder's upsampling, then BatchNorm)") {
  ir::Graph g = with_weights(
      "input x shape=4x5x3\nconv2d_transpose t filters=6 kernel=3x2 strides=2x2 use_bias=false\nbatchnorm bn\n");
  ir::Graph f = passes::fold_batchnorm(g);
  CHECK(body(f) == "input x shape=4x5x3\nconv2d_transpose t filters=6 kernel=3x2 strides=2x2\n");
  std::mt19937 rng(4);
  const auto x = random_inputs(g, rng);
  test::check_close(runtime::reference::run(f, x)[0], runtime::reference::run(g, x)[0], 1e-5);
}

TEST_CASE("fold_batchnorm: a chain of normalisations folds whole (ONNX's BatchNorm as Mul, then Add)") {
  ir::Graph g = with_weights(
      "input x shape=6x6x3\nconv2d c filters=4 kernel=3x3\naffine mul\naffine add\nbatchnorm bn\nrelu r\n");
  ir::Graph f = passes::fold_batchnorm(g);
  CHECK(body(f) == "input x shape=6x6x3\nconv2d c filters=4 kernel=3x3\nrelu r\n");
  CHECK(f.node(1).absorbed == std::vector<std::string>{"mul", "add", "bn"});
  std::mt19937 rng(4);
  const auto x = random_inputs(g, rng);
  test::check_close(runtime::reference::run(f, x)[0], runtime::reference::run(g, x)[0], 1e-5);
}

TEST_CASE("fold_batchnorm: dense and affine fold; a shared or output producer keeps its batchnorm") {
  CHECK(body(passes::fold_batchnorm(with_weights("input x shape=5\ndense d units=3\naffine a\n"))) ==
        "input x shape=5\ndense d units=3\n");
  // The conv's raw output is also read by the add: folding would change what the add sees.
  CHECK(body(passes::fold_batchnorm(with_weights(
            "input x shape=4x4x2\nconv2d c filters=2 kernel=1x1\nbatchnorm bn\nadd s <- bn, c\n"))) ==
        "input x shape=4x4x2\nconv2d c filters=2 kernel=1x1\nbatchnorm bn\nadd s <- bn, c\n");
  CHECK(body(passes::fold_batchnorm(with_weights(
            "input x shape=4x4x2\nconv2d c filters=2 kernel=1x1\nbatchnorm bn\noutput c, bn\n"))) ==
        "input x shape=4x4x2\nconv2d c filters=2 kernel=1x1\nbatchnorm bn\noutput c, bn\n");
  // A batchnorm after a pooling layer has nothing to fold into.
  CHECK(body(passes::fold_batchnorm(with_weights("input x shape=4x4x2\nmaxpool2d p pool=2x2\nbatchnorm bn\n"))) ==
        "input x shape=4x4x2\nmaxpool2d p pool=2x2\nbatchnorm bn\n");
}

TEST_CASE("fold_batchnorm: into the conv or dense after it where that pads nothing, grouped convs too") {
  const char* folds[] = {
      "input x shape=6x6x4\nmaxpool2d p pool=2x2\nbatchnorm bn\nconv2d c filters=3 kernel=3x3 use_bias=false\n",
      "input x shape=6x6x4\nmaxpool2d p pool=2x2\nbatchnorm bn\nconv2d c filters=8 kernel=2x2 strides=1x2 round=floor groups=2\n",
      "input x shape=6x6x4\nmaxpool2d p pool=2x2\nbatchnorm bn\nconv2d c filters=8 kernel=1x1 padding=same groups=4\n",
      "input x shape=5\nrelu r\naffine a\ndense d units=3\n",
  };
  for (const char* text : folds) {
    CAPTURE(text);
    ir::Graph g = with_weights(text);
    ir::Graph f = passes::fold_batchnorm(g);
    CHECK(f.size() == g.size() - 1);
    CHECK(f.node(f.size() - 1).absorbed.size() == 1);
    std::mt19937 rng(4);
    const auto x = random_inputs(g, rng);
    test::check_close(runtime::reference::run(f, x)[0], runtime::reference::run(g, x)[0], 1e-5);
  }
  // A conv that pads its input would see zeros where the normalised border is not zero.
  const char* padded = "input x shape=6x6x4\nmaxpool2d p pool=2x2\nbatchnorm bn\nconv2d c filters=3 kernel=3x3 padding=same\n";
  CHECK(body(passes::fold_batchnorm(with_weights(padded))) == body(with_weights(padded)));
  // Read by two layers, or as a residual: stays.
  const char* shared = "input x shape=4x4x2\nrelu r\nbatchnorm bn\nconv2d c filters=2 kernel=1x1\nadd s <- bn, c\n";
  CHECK(body(passes::fold_batchnorm(with_weights(shared))) == body(with_weights(shared)));
}

TEST_CASE("fuse_padding: a zeropadding2d becomes the conv's explicit padding") {
  // 8x8 padded to 11x11; 'same' at stride 2 pads that by one on each side: 2,3,4,1 in all.
  const ir::Graph g = with_weights(
      "input x shape=8x8x3\nzeropadding2d p pad=1,2,3,0\nconv2d c filters=4 kernel=3x3 strides=2x2 padding=same\n");
  const ir::Graph f = passes::fuse_padding(g);
  CHECK(body(f) == "input x shape=8x8x3\nconv2d c filters=4 kernel=3x3 strides=2x2 padding=2,3,4,1\n");
  std::mt19937 rng(5);
  const auto x = random_inputs(g, rng);
  test::check_close(runtime::reference::run(f, x)[0], runtime::reference::run(g, x)[0], 0);
  // Padding read by something else stays.
  CHECK(body(passes::fuse_padding(with_weights(
            "input x shape=8x8x3\nzeropadding2d p pad=1\nconv2d c filters=4 kernel=3x3\nmaxpool2d m pool=2x2 <- p\n"
            "output c, m\n"))) ==
        "input x shape=8x8x3\nzeropadding2d p\nconv2d c filters=4 kernel=3x3\nmaxpool2d m pool=2x2 <- p\n"
        "output c, m\n");
}

TEST_CASE(
    "subsample_strided_convs: a strided unpadded 1x1 conv reads a subsampled copy, shared by "
    "stride") {
  // ResNet's pattern: a projection and the block's first conv read the same input at stride 2
  // (valid, floor: 9x9 -> 5x5); a third at stride 3, one 'same' (no padding at a 1x1), one with
  // explicit padding (stays), a 3x3 (stays).
  const ir::Graph g = with_weights(
      "input x shape=9x9x4\nrelu r\n"
      "conv2d p filters=6 kernel=1x1 strides=2x2 round=floor <- r\n"
      "conv2d a filters=3 kernel=1x1 strides=2x2 padding=same <- r\n"
      "conv2d b filters=3 kernel=1x1 strides=3x3 round=floor <- r\n"
      "conv2d q filters=3 kernel=1x1 strides=2x2 padding=1,1,1,1 <- r\n"
      "conv2d k filters=3 kernel=3x3 strides=2x2 round=floor <- r\n"
      "output p, a, b, q, k\n");
  const ir::Graph f = passes::subsample_strided_convs(g);
  CHECK(body(f) ==
        "input x shape=9x9x4\nrelu r\n"
        "maxpool2d r_subsample_2x2 pool=1x1 strides=2x2 round=floor\n"
        "conv2d p filters=6 kernel=1x1\n"
        "conv2d a filters=3 kernel=1x1 <- r_subsample_2x2\n"
        "maxpool2d r_subsample_3x3 pool=1x1 strides=3x3 round=floor <- r\n"
        "conv2d b filters=3 kernel=1x1\n"
        "conv2d q filters=3 kernel=1x1 strides=2x2 padding=1 <- r\n"
        "conv2d k filters=3 kernel=3x3 strides=2x2 round=floor <- r\n"
        "output p, a, b, q, k\n");
  check_same_outputs(g, f, 6);
  // Nothing strided: the graph as it was.
  const char* plain = "input x shape=8x8x3\nconv2d c filters=4 kernel=1x1\n";
  CHECK(body(passes::subsample_strided_convs(with_weights(plain))) == body(with_weights(plain)));
}

TEST_CASE("subsample_strided_convs: a 1x1 conv read only at a stride computes only those pixels") {
  // ResNet's stage boundary: a block's last 1x1 conv (residual add and relu fused into it) is
  // read only by the next stage's stride-2 1x1 convs; it computes their pixels, from copies of
  // its input and residual. A 3x3 conv (m) takes no subsampling.
  const ir::Graph g = with_weights(
      "input x shape=9x9x6\nconv2d m filters=4 kernel=3x3 padding=same\n"
      "conv2d e filters=6 kernel=1x1\nadd s <- e, x\nrelu r\n"
      "conv2d p filters=8 kernel=1x1 strides=2x2\nconv2d q filters=2 kernel=1x1 strides=2x2 <- r\n"
      "output p, q\n");
  passes::PipelineOptions opts;
  opts.disabled = {"choose_tiles"};
  const ir::Graph f = passes::optimize(g, opts);
  CHECK(body(f) ==
        "input x shape=9x9x6\nconv2d m filters=4 kernel=3x3 padding=same\n"
        "maxpool2d m_subsample_2x2 pool=1x1 strides=2x2 round=floor\n"
        "maxpool2d x_subsample_2x2 pool=1x1 strides=2x2 round=floor <- x\n"
        "conv2d e filters=6 kernel=1x1 epilogue=add+relu <- m_subsample_2x2, x_subsample_2x2\n"
        "conv2d p filters=8 kernel=1x1\nconv2d q filters=2 kernel=1x1 <- e\noutput p, q\n");
  check_same_outputs(g, f, 7);
  // The full output read by anything else (here a graph output): computed in full.
  const ir::Graph both = with_weights(
      "input x shape=9x9x6\nconv2d e filters=6 kernel=1x1\n"
      "conv2d p filters=8 kernel=1x1 strides=2x2\noutput p, e\n");
  CHECK(body(passes::subsample_strided_convs(both)) ==
        "input x shape=9x9x6\nconv2d e filters=6 kernel=1x1\n"
        "maxpool2d e_subsample_2x2 pool=1x1 strides=2x2 round=floor\n"
        "conv2d p filters=8 kernel=1x1\noutput p, e\n");
  // A 1x1 maxpool with an activation fused into it is more than a copy: the conv stays.
  const char* activated =
      "input x shape=9x9x6\nconv2d e filters=6 kernel=1x1\n"
      "maxpool2d p pool=1x1 strides=2x2 round=floor epilogue=relu\n";
  CHECK(body(passes::subsample_strided_convs(with_weights(activated))) ==
        body(with_weights(activated)));
}

TEST_CASE("fuse_epilogues: residual add and activation join the conv; the anchor's name stays") {
  CHECK(body(passes::fuse_epilogues(with_weights(
            "input x shape=6x6x4\nconv2d a filters=4 kernel=3x3 padding=same\nrelu r\n"
            "conv2d b filters=4 kernel=3x3 padding=same\nadd s <- b, r\nrelu out\n"))) ==
        "input x shape=6x6x4\nconv2d a filters=4 kernel=3x3 padding=same epilogue=relu\n"
        "conv2d b filters=4 kernel=3x3 padding=same epilogue=add+relu <- a, a\n");
  // Only an add, or only an activation; dense too.
  CHECK(body(passes::fuse_epilogues(with_weights(
            "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nadd s <- a, x\n"))) ==
        "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1 epilogue=add <- x, x\n");
  CHECK(body(passes::fuse_epilogues(with_weights("input x shape=5\ndense d units=3\nsigmoid s\n"))) ==
        "input x shape=5\ndense d units=3 epilogue=sigmoid\n");
  // Keras' ReLU(6.0), as MobileNetV2 writes it, is relu6.
  CHECK(body(passes::fuse_epilogues(with_weights("input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nrelu r max_value=6\n"))) ==
        "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1 epilogue=relu6\n");
}

TEST_CASE("fuse_epilogues: an activation joins a batchnorm or affine that did not fold; an add does not") {
  // DenseNet's pattern: concat -> batchnorm -> relu -> conv; the batchnorm has no conv before it.
  CHECK(body(passes::optimize(with_weights(
            "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nconcat k <- x, a\nbatchnorm n\nrelu r\n"
            "conv2d b filters=4 kernel=1x1\n"), {.disabled = {"choose_tiles"}})) ==
        "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nconcat k <- x, a\nbatchnorm n epilogue=relu\n"
        "conv2d b filters=4 kernel=1x1\n");
  CHECK(body(passes::fuse_epilogues(with_weights("input x shape=6x6x4\naffine f\nswish s\n"))) ==
        "input x shape=6x6x4\naffine f epilogue=swish\n");
  // A normalisation (broadcast) takes no residual add: the add stays, and as a broadcast op
  // itself it takes the relu after it.
  const char* add_after = "input x shape=6x6x4\nbatchnorm n\nadd s <- n, x\nrelu r\n";
  CHECK(body(passes::fuse_epilogues(with_weights(add_after))) ==
        "input x shape=6x6x4\nbatchnorm n\nadd s epilogue=relu <- n, x\n");
  CHECK_THROWS_WITH_AS(ir::parse("input x shape=4x4x2\nbatchnorm n epilogue=add+relu\n", "t.cnn"),
                       doctest::Contains("batchnorm (broadcast) applies an activation only"), Error);
  // Pooling (out-elementwise-fusable) takes an add and an activation, as conv2d does.
  CHECK(body(passes::fuse_epilogues(with_weights(
            "input x shape=6x6x4\nmaxpool2d p pool=3x3 strides=1x1 padding=same\nadd s <- p, x\nrelu r\n"))) ==
        "input x shape=6x6x4\nmaxpool2d p pool=3x3 strides=1x1 padding=same epilogue=add+relu <- x, x\n");
  // A batchnorm with an activation does not fold into the conv before it (the activation would be lost).
  const char* fused_bn = "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nbatchnorm n epilogue=relu\n";
  CHECK(body(passes::fold_batchnorm(with_weights(fused_bn))) == body(with_weights(fused_bn)));
}

TEST_CASE("fuse_epilogues leaves what an epilogue cannot compute exactly") {
  const char* unchanged[] = {
      // leakyrelu and a relu with attributes are not epilogue activations
      "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nleakyrelu r\n",
      "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nrelu r max_value=5\n",
      "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nrelu r max_value=6 negative_slope=0.1\n",
      // the conv's output is read twice, or is a graph output
      "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nrelu r\nadd s <- a, r\n",
      "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nrelu r\noutput a, r\n",
      // an add of three, and x + x
      "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nadd s <- a, x, x\n",
      "input x shape=6x6x4\nconv2d a filters=4 kernel=1x1\nadd s <- a, a\n",
  };
  for (const char* text : unchanged) {
    CAPTURE(text);
    const ir::Graph g = with_weights(text);
    CHECK(body(passes::fuse_epilogues(with_weights(text))) == body(g));
  }
}

TEST_CASE("epilogue: the IR round-trips and bad values are explained") {
  const std::string text = "input x shape=4x4x2\ninput y shape=4x4x3\nconv2d c filters=3 kernel=1x1 epilogue=add+swish <- x, y\n";
  CHECK(body(ir::parse(text, "t.cnn")) == text);
  CHECK_THROWS_WITH_AS(ir::parse("input x shape=4x4x2\nconv2d c filters=3 kernel=1x1 epilogue=add+softmax\n", "t.cnn"),
                       doctest::Contains("is not none, add, ACT or add+ACT"), Error);
  CHECK_THROWS_WITH_AS(ir::parse("input x shape=4x4x2\nconv2d c filters=3 kernel=1x1 epilogue=add\n", "t.cnn"),
                       doctest::Contains("epilogue=add needs a second input"), Error);
  CHECK_THROWS_WITH_AS(ir::parse("input x shape=4x4x2\nconv2d c filters=3 kernel=1x1 epilogue=add <- x, x\n", "t.cnn"),
                       doctest::Contains("the residual input has shape 1x4x4x2, the layer's output is 1x4x4x3"), Error);
  CHECK_THROWS_WITH_AS(ir::parse("input x shape=4x4x2\nconv2d c filters=2 kernel=1x1 <- x, x\n", "t.cnn"),
                       doctest::Contains("a second one is the residual of epilogue=add"), Error);
}

// Random residual networks of one shape: conv (after zero padding, or padded 'same'),
// batchnorm, adds of x or the previous block, activations, so that every pass has work and
// some links are not fusable. Failures print the seed and the network.
TEST_CASE("the optimised graph computes what the original does (reference and Halide, random graphs)") {
  const char* acts[] = {"relu", "relu6", "sigmoid", "tanh", "swish", "hardsigmoid", "leakyrelu"};
  for (unsigned seed = 1; seed <= 12; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    const std::string c = std::to_string(4 + 4 * pick(3)), hw = std::to_string(6 + pick(6));
    std::string t = "input x shape=" + hw + "x" + hw + "x" + c + "\n", prev = "x";
    for (int b = 0; b < 4; ++b) {
      const std::string id = std::to_string(b);
      // A batchnorm before the conv: folds forward into a 1x1, stays before a padded 3x3.
      if (pick(5) == 0) t += "batchnorm f" + id + " <- " + prev + "\n", prev = "f" + id;
      if (pick(3) == 0)  // pad 1 + valid 3x3 keeps the size
        t += "zeropadding2d p" + id + " pad=1 <- " + prev + "\nconv2d q" + id + " filters=" + c + " kernel=3x3\n";
      else
        t += "conv2d q" + id + " filters=" + c + " kernel=" + (pick(2) ? "3x3" : "1x1") + " padding=same use_bias=" +
             (pick(2) ? "true" : "false") + " <- " + prev + "\n";
      std::string last = "q" + id;
      if (pick(4)) t += "batchnorm n" + id + "\n", last = "n" + id;
      if (pick(2)) {
        const std::string other = pick(2) ? "x" : prev;
        t += "add s" + id + " <- " + (pick(2) ? last + ", " + other : other + ", " + last) + "\n";
        last = "s" + id;
        if (pick(3) == 0) t += "batchnorm m" + id + "\n", last = "m" + id;  // pre-activation: cannot fold
      }
      if (pick(4)) t += std::string(acts[pick(7)]) + " a" + id + " <- " + last + "\n", last = "a" + id;
      prev = last;
    }
    CAPTURE(t);
    ir::Graph g = with_weights(t, seed);
    const auto x = random_inputs(g, rng);
    const auto want = runtime::reference::run(g, x);
    ir::Graph f = passes::optimize(g);
    CAPTURE(ir::print(f));
    test::check_close(runtime::reference::run(f, x)[0], want[0], 1e-5);
    runtime::CompiledModel m(codegen::compile(std::move(f)));
    test::check_close(m.run(x)[0], want[0], 1e-4);
  }
}
