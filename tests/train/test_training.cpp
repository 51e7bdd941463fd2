// Training: the compiled training graph (forward and backward kernels, fused, tiled, planned)
// against the reference on random networks; the optimisers against their formulas; a small
// classifier trained to fit a separable problem; what cannot train is refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "codegen/compile.h"
#include "frontend/load.h"
#include "ir/error.h"
#include "ir/text.h"
#include "passes/gradient.h"
#include "runtime/reference/reference.h"
#include "runtime/weights.h"
#include "tests/util.h"
#include "train/training_model.h"

using namespace cnnc;

namespace {

// Every output of the training graph (prediction, every weight gradient) from the compiled
// training program against the reference on the same inputs.
void check_compiled(const std::string& text, int64_t batch, uint64_t seed) {
  CAPTURE(text);
  CAPTURE(seed);
  ir::Graph forward = ir::parse(text, "generated.cnn", batch);
  runtime::init_weights(forward, seed);
  train::ModelOptions o;
  o.batch = batch;
  o.target = test::test_target();  // opencl: the GPU schedules, on PoCL
  train::TrainingModel model(forward, o);
  const ir::Graph& g = model.program().graph();
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::vector<ir::Tensor> inputs;
  for (ir::NodeId id : g.inputs()) {
    const ir::Node& n = g.node(id);
    ir::Tensor t = test::random_tensor(n.type.shape, rng);
    if (n.name == "labels")
      for (auto& v : t.data)
        v = static_cast<float>(rng() %
                               g.node(g.find(model.training_graph().prediction)).type.shape[1]);
    inputs.push_back(t);
  }
  // The reference runs the unoptimised training graph: the same values by name.
  const passes::TrainingGraph& t = model.training_graph();
  std::vector<ir::Tensor> ref_inputs;
  for (ir::NodeId id : t.graph.inputs()) {
    const auto ids = g.inputs();
    for (size_t k = 0; k < ids.size(); ++k)
      if (g.node(ids[k]).name == t.graph.node(id).name) ref_inputs.push_back(inputs[k]);
  }
  const auto want = runtime::reference::run(t.graph, ref_inputs);
  const auto got = const_cast<runtime::CompiledModel&>(model.program()).run(inputs);
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    CAPTURE(g.node(g.outputs()[k]).name);
    REQUIRE(got[k].shape == want[k].shape);
    double scale = 1e-6;
    for (float v : want[k].data) scale = std::max(scale, double(std::abs(v)));
    double worst = 0;
    for (size_t i = 0; i < got[k].data.size(); ++i)
      worst = std::max(worst, std::abs(double(got[k].data[i]) - want[k].data[i]) / scale);
    CHECK(worst < 1e-4);
  }
}

// 30 steps on one batch of four random 12x12x3 images (values 0..255) of four classes: the loss
// falls and stays finite.
void learns_one_batch(train::TrainingModel& model) {
  std::mt19937 rng(8);
  const ir::Tensor x = test::random_tensor({4, 12, 12, 3}, rng, 0.f, 255.f);
  ir::Tensor y({4, 1});
  y.data = {0, 1, 2, 3};
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    const double loss = model.step(x, y, 0.01).loss;
    if (step == 0) first = loss;
    last = loss;
  }
  CHECK(std::isfinite(last));
  CHECK(last < first);
}

}  // namespace

TEST_CASE("compiled training graphs match the reference: every weight gradient") {
  check_compiled(
      "input x shape=12x12x1\n"
      "augment a flip_h=true rotate=0.1 zoom=0.1\n"
      "conv2d c1 filters=8 kernel=3x3 padding=same activation=relu\n"
      "maxpool2d p1 pool=2x2\n"
      "conv2d c2 filters=16 kernel=3x3 padding=same activation=relu\n"
      "maxpool2d p2 pool=2x2\n"
      "flatten f\n"
      "dropout d rate=0.5\n"
      "dense fc1 units=20 activation=relu\n"
      "dense out units=10 activation=softmax\n",
      4, 1);
  check_compiled(
      "input x shape=9x9x3\n"
      "zeropadding2d z pad=1\n"
      "conv2d a filters=6 kernel=3x3 strides=2 activation=tanh\n"
      "avgpool2d p pool=3x3 strides=1x1 padding=same\n"
      "conv2d b filters=6 kernel=1x1 activation=sigmoid\n"
      "add s <- p, b\n"
      "conv2d dw filters=6 kernel=3x3 groups=6 dilation=2 padding=same activation=relu6\n"
      "conv2d g filters=4 kernel=2x2 groups=2 activation=leakyrelu\n"
      "cropping2d cr crop=1,0,0,1\n"
      "globalavgpool2d gp\n"
      "dense out units=5 activation=softmax\n",
      3, 2);
  // A DenseNet-like block: concats (one input read twice), their gradients channel slices.
  check_compiled(
      "input x shape=8x8x3\n"
      "conv2d a filters=4 kernel=3x3 padding=same activation=relu\n"
      "batchnorm bn\n"
      "conv2d b filters=5 kernel=1x1 activation=relu <- bn\n"
      "concat c <- a, b, a\n"
      "conv2d d filters=3 kernel=3x3 padding=same activation=relu\n"
      "concat e <- c, d\n"
      "avgpool2d p pool=2x2\n"
      "globalavgpool2d g\n"
      "dense out units=4 activation=softmax\n",
      4, 3);
}

TEST_CASE("3x3 convs and their input gradients computed as Winograd match the reference") {
  // 8x8 maps at batch 4: 64 tiles of 2x2 per call, enough for the tiling pass to choose
  // Winograd on a CPU (where it knows the L2's size); a residual add and a relu as epilogues.
  const std::string net =
      "input x shape=8x8x16\n"
      "conv2d a filters=32 kernel=3x3 padding=same activation=relu\n"
      "conv2d b filters=32 kernel=3x3 padding=same\n"
      "add s <- a, b\n"
      "conv2d c filters=24 kernel=3x3 padding=valid activation=relu\n"
      "globalavgpool2d g\n"
      "dense out units=5 activation=softmax\n";
  check_compiled(net, 4, 7);
  if (test::test_target() != "host" || codegen::describe_target("host").cpu.l2_bytes == 0) return;
  ir::Graph forward = ir::parse(net, "t.cnn", 4);
  runtime::init_weights(forward, 7);
  train::ModelOptions o;
  o.batch = 4;
  train::TrainingModel model(forward, o);
  int winograd = 0;
  for (const ir::Node& n : model.program().graph().nodes())
    if (n.schedule.kind == ir::ScheduleKind::Winograd) {
      CAPTURE(n.name);
      CHECK((n.op == ir::OpKind::Conv2D || n.op == ir::OpKind::Conv2DGradInput));
      ++winograd;
    }
  // a, b and the input gradients of b and c (each 64 tiles); c's valid 6x6 output has 36 tiles,
  // and a's input needs no gradient.
  CHECK(winograd == 4);
}

TEST_CASE("compiled layernorm, LayerScale, transpose, unitnorm and global max pooling gradients match the reference") {
  // A ConvNeXt block (the channels of 7x7 maps, as ConvNeXt's last stage: whole vectors and a
  // tail), then a transpose.
  check_compiled(
      "input x shape=7x7x5\n"
      "conv2d stem filters=24 kernel=1x1\n"
      "conv2d dw filters=24 kernel=3x3 groups=24 padding=same <- stem\n"
      "layernorm ln epsilon=1e-06\n"
      "dense pw1 units=40 activation=gelu\n"
      "dense pw2 units=24\n"
      "affine ls\n"
      "add res <- stem, ls\n"
      "transpose t perm=2x3x1\n"
      "conv2d c filters=4 kernel=2x2\n"
      "globalavgpool2d gap\n"
      "layernorm head_ln\n"
      "dense out units=3 activation=softmax\n",
      3, 41);
  // Global max pooling and unit normalisation (images and vectors).
  check_compiled(
      "input x shape=6x6x3\n"
      "conv2d a filters=20 kernel=3x3 activation=relu\n"
      "unitnorm u\n"
      "conv2d b filters=6 kernel=1x1\n"
      "globalmaxpool2d g\n"
      "unitnorm v\n"
      "dense out units=4 activation=softmax\n",
      4, 42);
}

TEST_CASE("compiled softmax and log_softmax gradients inside a network match the reference") {
  // Channels in whole vectors and a tail (20), and a row of 3.
  check_compiled(
      "input x shape=6x6x3\n"
      "conv2d a filters=20 kernel=3x3 activation=tanh\n"
      "softmax s\n"
      "multiply m <- a, s\n"
      "log_softmax ls\n"
      "conv2d b filters=3 kernel=1x1\n"
      "log_softmax ls2\n"
      "globalavgpool2d g\n"
      "dense out units=4 activation=softmax\n",
      4, 45);
}

TEST_CASE(
    "compiled encoder-decoder gradients (groupnorm, conv2d_transpose, resize, maximum, minimum) "
    "match the reference") {
  // A U-Net's shape: down with a strided conv and groupnorm, up with transposed convs (strided;
  // stride 1, computed as a conv) and resizes, a skip connection.
  check_compiled(
      "input x shape=12x12x3\n"
      "conv2d e filters=8 kernel=3x3 padding=same activation=relu\n"
      "conv2d down filters=16 kernel=3x3 strides=2 padding=same\n"
      "groupnorm gn groups=4\n"
      "swish s\n"
      "conv2d_transpose up filters=8 kernel=3x3 strides=2 padding=same\n"
      "concat skip <- up, e\n"
      "conv2d c filters=6 kernel=3x3 strides=2 round=floor\n"
      // A bias before a group per channel has no gradient (0 up to rounding): none here.
      "conv2d_transpose up3 filters=5 kernel=2x2 strides=3 output_padding=1x2 use_bias=false\n"
      "groupnorm gn2 groups=5 epsilon=0.01\n"
      "resize rs size=7x9 interpolation=bilinear\n"
      "resize us size=14x9 interpolation=nearest\n"
      "conv2d_transpose up1 filters=4 kernel=3x2 dilation=2 activation=tanh\n"
      "globalavgpool2d g\n"
      "dense out units=3 activation=softmax\n",
      3, 51);
  // Wider channels (whole vectors and a tail) and a downscaling resize.
  check_compiled(
      "input x shape=9x9x4\n"
      "conv2d a filters=20 kernel=3x3 activation=relu\n"
      "groupnorm gn groups=5\n"
      "conv2d_transpose t filters=36 kernel=4x4 strides=2 padding=same\n"
      "conv2d u filters=36 kernel=1x1 activation=relu\n"
      "maximum mx <- t, u\n"
      "globalavgpool2d p keepdims=true <- t\n"
      "minimum mn <- mx, p\n"
      "resize r size=5x6\n"
      "flatten f\n"
      "dense out units=4 activation=softmax\n",
      2, 52);
}

TEST_CASE(
    "compiled batchnorm training (batch statistics) matches the reference; moving statistics") {
  const std::string net =
      "input x shape=8x8x3\n"
      "conv2d c filters=6 kernel=3x3 padding=same use_bias=false\n"
      "batchnorm bn\n"
      "relu r\n"
      "maxpool2d p pool=2x2\n"
      "flatten f\n"
      "dense d units=8 use_bias=false\n"  // a bias before a batchnorm has no gradient (all 0)
      "batchnorm bn2 epsilon=0.01\n"
      "relu r2\n"
      "dense out units=4 activation=softmax\n";
  check_compiled(net, 5, 31);
  if (test::test_target() != "host") return;
  // One step: each moving statistic moves 1% of the way to the batch's (Keras' momentum 0.99).
  ir::Graph g = ir::parse(net, "bn.cnn", 5);
  runtime::init_weights(g, 4);
  train::ModelOptions o;
  o.batch = 5;
  train::TrainingModel model(g, o);
  std::mt19937 rng(9);
  const ir::Tensor x = test::random_tensor({5, 8, 8, 3}, rng, 0.f, 2.f);
  ir::Tensor y({5, 1});
  model.step(x, y, 1e-3);
  // The batch mean of d's output, from the reference (the step's forward used these weights).
  const auto t = passes::build_training_graph(g, passes::Loss::SparseCategoricalCrossEntropy);
  ir::Tensor maps;
  const auto ref = runtime::reference::run(t.graph, {x, y});
  ir::Graph after = g;
  model.copy_weights_to(after);
  const ir::Tensor& sums = ref[t.trainables.size() + 2];  // bn2's batch_sums (bn's first)
  const auto& mm = after.node(after.find("bn2")).param("moving_mean")->value.data;
  const auto& mv = after.node(after.find("bn2")).param("moving_variance")->value.data;
  for (int c = 0; c < 8; ++c) {
    const double mean = sums.data[c] / 5.0, var = sums.data[8 + c] / 5.0 - mean * mean;
    CHECK(mm[c] == doctest::Approx(0.01 * mean).epsilon(1e-4));
    CHECK(mv[c] == doctest::Approx(0.99 + 0.01 * var).epsilon(1e-4));
  }
}

TEST_CASE("random conv layers: compiled gradients match the reference") {
  std::mt19937 rng(17);
  for (int trial = 0; trial < 6; ++trial) {
    const int stride = 1 + static_cast<int>(rng() % 2), k = 1 + static_cast<int>(rng() % 3);
    const int cin = 1 + static_cast<int>(rng() % 20), filters = 1 + static_cast<int>(rng() % 40);
    const std::string text =
        "input x shape=11x10x" + std::to_string(cin) +
        "\nconv2d pre filters=" + std::to_string(cin) +
        " kernel=1x1 activation=relu\nconv2d c filters=" + std::to_string(filters) +
        " kernel=" + std::to_string(k) + "x" + std::to_string(k) +
        " strides=" + std::to_string(stride) +
        " padding=same\nflatten f\ndense out units=3 activation=softmax\n";
    check_compiled(text, 1 + static_cast<int64_t>(rng() % 5), 200 + trial);
  }
}

TEST_CASE(
    "a conv2d_transpose's input gradient reads the kernel as trained: its copy follows each step") {
  ir::Graph g = ir::parse(
      "input x shape=4x4x2\nconv2d a filters=3 kernel=1x1\n"
      "conv2d_transpose t filters=2 kernel=3x3 strides=2 padding=same\nflatten f\n"
      "dense out units=2 activation=softmax\n",
      "t.cnn", 2);
  runtime::init_weights(g, 6);
  train::ModelOptions o;
  o.batch = 2;
  train::TrainingModel model(g, o);
  REQUIRE(model.training_graph().weight_copies.size() == 1);
  const auto& copy = model.training_graph().weight_copies[0];
  CHECK(copy.from == "t");
  auto& program = const_cast<runtime::CompiledModel&>(model.program());
  std::mt19937 rng(2);
  ir::Tensor y({2, 1});
  y.data = {0, 1};
  model.step(test::random_tensor({2, 4, 4, 2}, rng), y, 0.1);
  const float* trained = program.weights("t", "kernel");
  const float* held = program.weights(copy.layer, "kernel");
  const auto& before = g.node(g.find("t")).param("kernel")->value.data;
  CHECK(std::vector<float>(trained, trained + before.size()) != before);
  CHECK(std::vector<float>(held, held + before.size()) ==
        std::vector<float>(trained, trained + before.size()));
}

TEST_CASE("optimisers follow Keras' formulas") {
  auto run = [](train::OptimizerOptions o, int steps) {
    std::vector<float> w{1.f, -2.f};
    const std::vector<float> g{0.5f, -0.25f};
    train::Optimizer opt(o, {2});
    for (int s = 0; s < steps; ++s) opt.update({w.data()}, {g.data()}, o.lr);
    return w;
  };
  train::OptimizerOptions sgd;
  sgd.kind = train::OptimizerOptions::Sgd;
  sgd.lr = 0.1;
  CHECK(run(sgd, 1)[0] == doctest::Approx(1 - 0.05));
  sgd.momentum = 0.9;  // m1 = -0.05, m2 = -0.095: w = 1 - 0.145
  CHECK(run(sgd, 2)[0] == doctest::Approx(1 - 0.145));
  sgd.nesterov = true;  // w += mu m - lr g: 1 + (-0.045 - 0.05) + (-0.0855 - 0.05)
  CHECK(run(sgd, 2)[0] == doctest::Approx(1 - 0.095 - 0.1355));
  train::OptimizerOptions adam;  // first Adam step: lr * sign(g) (up to epsilon)
  adam.lr = 0.01;
  CHECK(run(adam, 1)[0] == doctest::Approx(1 - 0.01).epsilon(1e-5));
  CHECK(run(adam, 1)[1] == doctest::Approx(-2 + 0.01).epsilon(1e-5));
  train::OptimizerOptions adamw = adam;  // decay first: w (1 - lr wd), wd = 0.004
  adamw.kind = train::OptimizerOptions::AdamW;
  CHECK(run(adamw, 1)[0] == doctest::Approx(1 * (1 - 0.01 * 0.004) - 0.01).epsilon(1e-6));
  train::OptimizerOptions clipped = sgd;  // global norm of (0.5, -0.25) = 0.559 -> 0.1
  clipped.momentum = 0, clipped.nesterov = false, clipped.clip_norm = 0.1;
  CHECK(run(clipped, 1)[0] == doctest::Approx(1 - 0.1 * 0.5 * 0.1 / std::sqrt(0.3125)));
  train::OptimizerOptions cosine = adam;
  cosine.schedule = train::OptimizerOptions::Cosine;
  train::Optimizer opt(cosine, {1});
  CHECK(opt.learning_rate(0, 10, 100) == doctest::Approx(0.01));
  CHECK(opt.learning_rate(50, 10, 100) == doctest::Approx(0.005));
  CHECK_THROWS_WITH_AS(train::parse_optimizer("rmsprop"), doctest::Contains("accepted: sgd"),
                       Error);
}

TEST_CASE("the optimisers' parallel update is the per-element formula on every tensor") {
  // Tensors of several of the update's parallel ranges, one of a few floats, one a range and one
  // float: every element follows Keras' formula (in double here) for three steps.
  const std::vector<size_t> sizes{40000, 3, 16385};
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto kind : {train::OptimizerOptions::Adam, train::OptimizerOptions::AdamW,
                    train::OptimizerOptions::Sgd}) {
    CAPTURE(train::optimizer_name(kind));
    train::OptimizerOptions o;
    o.kind = kind, o.lr = 0.01, o.momentum = 0.9, o.nesterov = true;
    std::vector<std::vector<float>> w, g;
    std::vector<std::vector<double>> want, m, v;
    for (size_t n : sizes) {
      w.emplace_back(n), g.emplace_back(n);
      for (float& x : w.back()) x = u(rng);
      want.emplace_back(w.back().begin(), w.back().end());
      m.emplace_back(n, 0.0), v.emplace_back(n, 0.0);
    }
    train::Optimizer opt(o, sizes);
    for (int t = 1; t <= 3; ++t) {
      std::vector<float*> wp;
      std::vector<const float*> gp;
      for (size_t k = 0; k < sizes.size(); ++k) {
        for (float& x : g[k]) x = u(rng);
        wp.push_back(w[k].data()), gp.push_back(g[k].data());
      }
      opt.update(wp, gp, o.lr);
      const double alpha = o.lr * std::sqrt(1 - std::pow(o.beta2, t)) / (1 - std::pow(o.beta1, t));
      for (size_t k = 0; k < sizes.size(); ++k)
        for (size_t i = 0; i < sizes[k]; ++i) {
          double& x = want[k][i];
          const double gi = g[k][i];
          if (kind == train::OptimizerOptions::Sgd) {
            m[k][i] = o.momentum * m[k][i] - o.lr * gi;
            x += o.momentum * m[k][i] - o.lr * gi;
            continue;
          }
          if (kind == train::OptimizerOptions::AdamW) x -= x * 0.004 * o.lr;
          m[k][i] += (gi - m[k][i]) * (1 - o.beta1);
          v[k][i] += (gi * gi - v[k][i]) * (1 - o.beta2);
          x -= alpha * m[k][i] / (std::sqrt(v[k][i]) + o.epsilon);
        }
    }
    double worst = 0;
    for (size_t k = 0; k < sizes.size(); ++k)
      for (size_t i = 0; i < sizes[k]; ++i) worst = std::max(worst, std::abs(w[k][i] - want[k][i]));
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("dropout masks keep 1 - rate of the elements, scaled, evenly, the same from a seed") {
  const size_t n = 1'000'001;  // odd: the last pair has one element; 16 parallel ranges
  std::vector<float> mask(n, -1.f), again(n), other(n);
  train::draw_dropout_mask(0.3f, mask.data(), n, 42);
  train::draw_dropout_mask(0.3f, again.data(), n, 42);
  train::draw_dropout_mask(0.3f, other.data(), n, 43);
  CHECK(mask == again);
  CHECK(mask != other);
  // Each eighth of the mask (so every parallel range was written) keeps 70% +- 0.5%, and every
  // element is 0 or 1 / 0.7.
  for (size_t part = 0; part < 8; ++part) {
    CAPTURE(part);
    size_t kept = 0, bad = 0;
    const size_t begin = part * n / 8, end = (part + 1) * n / 8;
    for (size_t i = begin; i < end; ++i) {
      kept += mask[i] != 0.f;
      bad += mask[i] != 0.f && std::abs(mask[i] - 1.f / 0.7f) > 1e-6f;
    }
    CHECK(bad == 0);
    CHECK(static_cast<double>(kept) / static_cast<double>(end - begin) ==
          doctest::Approx(0.7).epsilon(0.005 / 0.7));
  }
  // Neighbours independent: both halves of a 64-bit draw, and consecutive draws.
  size_t both = 0;
  for (size_t i = 0; i + 1 < n; ++i) both += mask[i] != 0.f && mask[i + 1] != 0.f;
  CHECK(static_cast<double>(both) / static_cast<double>(n - 1) ==
        doctest::Approx(0.49).epsilon(0.005 / 0.49));
}

TEST_CASE("a small classifier learns a separable problem") {
  ir::Graph forward = ir::parse(
      "input x shape=6x6x1\nconv2d c filters=4 kernel=3x3 activation=relu\nflatten f\n"
      "dense out units=2 activation=softmax\n",
      "toy.cnn", 16);
  runtime::init_weights(forward, 3);
  train::ModelOptions o;
  o.batch = 16;
  o.optimizer.lr = 0.01;
  o.target = test::test_target();
  train::TrainingModel model(forward, o);
  // Class 1: a bright left half; class 0: a bright right half; noise on both.
  std::mt19937 rng(5);
  auto batch = [&](ir::Tensor& x, ir::Tensor& y) {
    x = ir::Tensor({16, 6, 6, 1}), y = ir::Tensor({16, 1});
    std::uniform_real_distribution<float> noise(0.f, 0.3f);
    for (int64_t i = 0; i < 16; ++i) {
      y.data[i] = static_cast<float>(rng() % 2);
      for (int64_t p = 0; p < 36; ++p)
        x.data[i * 36 + p] = noise(rng) + ((p % 6 < 3) == (y.data[i] == 1.f) ? 0.7f : 0.f);
    }
  };
  ir::Tensor x, y;
  double first = 0, last = 0;
  for (int s = 0; s < 60; ++s) {
    batch(x, y);
    const auto r = model.step(x, y, 0.01);
    if (s == 0) first = r.loss;
    last = r.loss;
  }
  batch(x, y);
  const auto eval = model.evaluate(x, y);
  CHECK(last < first * 0.5);
  CHECK(eval.correct >= 15);
}

TEST_CASE("warp: identity, flip and a quarter turn are exact; compiled matches the reference") {
  ir::Graph g = ir::parse("input x shape=5x5x2\ninput m shape=6\nwarp w <- x, m\n", "warp.cnn", 2);
  std::mt19937 rng(3);
  const ir::Tensor x = test::random_tensor({2, 5, 5, 2}, rng);
  auto warp = [&](std::vector<float> map) {
    ir::Tensor m({2, 6});
    for (int i = 0; i < 12; ++i) m.data[i] = map[i % 6];
    return runtime::reference::run(g, {x, m})[0];
  };
  auto at = [&](const ir::Tensor& t, int b, int y, int xx, int c) {
    return t.data[static_cast<size_t>(((b * 5 + y) * 5 + xx) * 2 + c)];
  };
  const ir::Tensor same = warp({1, 0, 0, 0, 1, 0});
  const ir::Tensor flipped = warp({-1, 0, 4, 0, 1, 0});  // u = 4 - x
  const ir::Tensor turned = warp({0, 1, 0, -1, 0, 4});   // u = y, v = 4 - x
  for (int b = 0; b < 2; ++b)
    for (int y = 0; y < 5; ++y)
      for (int xx = 0; xx < 5; ++xx)
        for (int c = 0; c < 2; ++c) {
          CHECK(at(same, b, y, xx, c) == at(x, b, y, xx, c));
          CHECK(at(flipped, b, y, xx, c) == at(x, b, y, 4 - xx, c));
          CHECK(at(turned, b, y, xx, c) == at(x, b, 4 - xx, y, c));
        }
  // Half a pixel to the right, past the edge: the taps reflect (d c b a | a b c d).
  const ir::Tensor shifted = warp({1, 0, 4.5f, 0, 1, 0});
  CHECK(at(shifted, 0, 1, 0, 1) == doctest::Approx(at(x, 0, 1, 4, 1)));
  CHECK(at(shifted, 0, 1, 1, 1) == doctest::Approx(0.5 * (at(x, 0, 1, 4, 1) + at(x, 0, 1, 3, 1))));
  // Compiled, on random maps (rotations, zooms, shifts far outside the image).
  ir::Tensor maps = test::random_tensor({2, 6}, rng, -3.f, 3.f);
  const auto want = runtime::reference::run(g, {x, maps})[0];
  codegen::CompileOptions opts;
  opts.target = test::test_target();
  runtime::CompiledModel model(codegen::compile(g, opts));
  const auto got = model.run({x, maps})[0];
  for (size_t i = 0; i < got.data.size(); ++i)
    CHECK(got.data[i] == doctest::Approx(want.data[i]).epsilon(1e-4));
}

TEST_CASE(
    "recolor: contrast about each channel's mean, brightness, clipping; compiled matches the "
    "reference") {
  ir::Graph contrast = ir::parse(
      "input x shape=4x3x2\ninput f shape=2\nrecolor r contrast=true value_min=-1 value_max=1 <- "
      "x, f\n",
      "recolor.cnn", 3);
  ir::Graph brightness = ir::parse(
      "input x shape=4x3x2\ninput f shape=2\nrecolor r value_max=2 <- x, f\n", "recolor.cnn", 3);
  std::mt19937 rng(5);
  const ir::Tensor x = test::random_tensor({3, 4, 3, 2}, rng, -0.5f, 0.5f);
  ir::Tensor f({3, 2});
  f.data = {1.f, 0.f, 3.f, 0.25f, 0.5f, -0.75f};  // image 0: the identity
  const ir::Tensor c = runtime::reference::run(contrast, {x, f})[0];
  const ir::Tensor b = runtime::reference::run(brightness, {x, f})[0];
  for (int64_t image = 0; image < 3; ++image)
    for (int64_t ch = 0; ch < 2; ++ch) {
      double mean = 0;
      for (int64_t p = 0; p < 12; ++p) mean += x.data[(image * 12 + p) * 2 + ch] / 12.0;
      for (int64_t p = 0; p < 12; ++p) {
        const size_t i = static_cast<size_t>((image * 12 + p) * 2 + ch);
        const double a = f.data[image * 2], d = f.data[image * 2 + 1];
        CHECK(c.data[i] ==
              doctest::Approx(std::clamp((x.data[i] - mean) * a + mean + d, -1.0, 1.0)));
        CHECK(b.data[i] == doctest::Approx(std::clamp(x.data[i] + d, 0.0, 2.0)));
        if (image == 0) CHECK(c.data[i] == doctest::Approx(x.data[i]));
      }
    }
  // Compiled, on random factors.
  ir::Tensor factors = test::random_tensor({3, 2}, rng, -2.f, 2.f);
  for (const ir::Graph* g : {&contrast, &brightness}) {
    const auto want = runtime::reference::run(*g, {x, factors})[0];
    codegen::CompileOptions opts;
    opts.target = test::test_target();
    runtime::CompiledModel model(codegen::compile(*g, opts));
    const auto got = model.run({x, factors})[0];
    for (size_t i = 0; i < got.data.size(); ++i)
      CHECK(got.data[i] == doctest::Approx(want.data[i]).epsilon(1e-5));
  }
}

TEST_CASE("Keras' RandomContrast and RandomBrightness train as recolors with the layer's range") {
  // The lecture's augmentation pattern (nested_augment: Random* layers in a nested Sequential).
  const ir::Graph g =
      frontend::load(test::source_path("tests/fixtures/keras/nested_augment.keras"), 4);
  const auto& contrast = g.node(g.find("contrast")).attr<ir::AugmentAttrs>();
  CHECK(contrast.contrast == 0.2f);  // Keras' [0, 0.2]: factors in [0.8, 1.2]
  CHECK(contrast.value_max == 255.f);
  CHECK(g.node(g.find("brightness")).attr<ir::AugmentAttrs>().brightness == 0.2f);
  const auto t = passes::build_training_graph(g, passes::Loss::SparseCategoricalCrossEntropy);
  const ir::Node& r = t.graph.node(t.graph.find("contrast"));
  CHECK(r.op == ir::OpKind::Recolor);
  CHECK(r.attr<ir::RecolorAttrs>().contrast);
  CHECK(!t.graph.node(t.graph.find("brightness")).attr<ir::RecolorAttrs>().contrast);
  // A few steps: the factors are drawn per image and step, and the model learns through them.
  train::ModelOptions o;
  o.batch = 4;
  train::TrainingModel model(g, o);
  learns_one_batch(model);
}

TEST_CASE("a crop (Keras' RandomCrop) trains on windows of its size, the identity at inference") {
  const std::string net =
      "input x shape=12x12x2\n"
      "augment a crop=8x8\n"
      "conv2d c filters=4 kernel=3x3 activation=relu\n"
      "globalavgpool2d g\n"
      "dense out units=3 activation=softmax\n";
  check_compiled(net, 3, 5);  // random maps here: the warp and the crop against the reference
  ir::Graph forward = ir::parse(net, "t.cnn", 3);
  CHECK(forward.node(forward.find("c")).type.shape == ir::Shape{3, 10, 10, 4});  // inference
  const auto t = passes::build_training_graph(forward, passes::Loss::SparseCategoricalCrossEntropy);
  const ir::Node& crop = t.graph.node(t.graph.find("a"));
  CHECK(crop.op == ir::OpKind::Cropping2D);
  CHECK(crop.type.shape == ir::Shape{3, 8, 8, 2});
  CHECK(t.graph.node(t.graph.find("c")).type.shape == ir::Shape{3, 6, 6, 4});
  REQUIRE(t.augmentations.size() == 1);
  CHECK(!t.augmentations[0].maps.empty());

  // The trainer's maps: one whole-pixel shift for the whole batch, every place in reach drawn.
  ir::AugmentAttrs a;
  a.crop = {8, 8};
  std::mt19937_64 rng(3);
  std::vector<float> maps(6 * 4);
  std::set<float> tops, lefts;
  for (int draw = 0; draw < 200; ++draw) {
    train::draw_maps(a, 12, 12, maps.data(), 4, rng);
    for (int i = 1; i < 4; ++i)
      CHECK(std::vector<float>(maps.begin() + 6 * i, maps.begin() + 6 * i + 6) ==
            std::vector<float>(maps.begin(), maps.begin() + 6));
    CHECK((maps[0] == 1.f && maps[1] == 0.f && maps[3] == 0.f && maps[4] == 1.f));
    lefts.insert(maps[2]), tops.insert(maps[5]);
  }
  CHECK(lefts == std::set<float>{0, 1, 2, 3, 4});
  CHECK(tops == std::set<float>{0, 1, 2, 3, 4});

  // Keras' window where the image is not larger both ways: its centred box, fixed.
  auto w = passes::crop_window({8, 8}, 12, 8);
  CHECK((!w.random && w.fits && w.top == 2 && w.left == 0));
  w = passes::crop_window({8, 6}, 8, 10);  // box 8 x 6 of the crop's aspect: columns 2..7
  CHECK((!w.random && w.fits && w.top == 0 && w.left == 2));
  CHECK(!passes::crop_window({8, 8}, 6, 10).fits);  // Keras resizes: refused when training
  CHECK_THROWS_WITH_AS(passes::build_training_graph(
                           ir::parse("input x shape=6x10x1\naugment a crop=8x8\nglobalavgpool2d g\n"
                                     "dense out units=2 activation=softmax\n",
                                     "t.cnn", 2),
                           passes::Loss::SparseCategoricalCrossEntropy),
                       doctest::Contains("Keras resizes"), Error);
  CHECK_THROWS_WITH_AS(ir::parse("input x shape=6x6x1\naugment a crop=4x0\n", "t.cnn", 1),
                       doctest::Contains("both positive"), Error);
  CHECK_THROWS_WITH_AS(
      ir::parse("input x shape=6x6x1\naugment a crop=4x4 flip_h=true\n", "t.cnn", 1),
      doctest::Contains("layer of its own"), Error);

  // From Keras (the random_crop fixture: RandomCrop(8, 8) on 12x12 images): it imports as this
  // layer, and trains.
  const ir::Graph k =
      frontend::load(test::source_path("tests/fixtures/keras/random_crop.keras"), 4);
  CHECK(k.node(k.find("crop")).attr<ir::AugmentAttrs>().crop == ir::Pair{8, 8});
  train::ModelOptions o;
  o.batch = 4;
  train::TrainingModel model(k, o);
  CHECK(model.program().graph().node(model.program().graph().find("crop")).type.shape ==
        ir::Shape{4, 8, 8, 3});
  learns_one_batch(model);
}

TEST_CASE("augmentation: maps drawn per image, the identity when nothing is asked") {
  std::mt19937_64 rng(1);
  std::vector<float> maps(6 * 8);
  train::draw_maps(ir::AugmentAttrs{}, 28, 28, maps.data(), 8, rng);
  for (int i = 0; i < 8; ++i)
    CHECK(std::vector<float>(maps.begin() + 6 * i, maps.begin() + 6 * i + 6) ==
          std::vector<float>{1, 0, 0, 0, 1, 0});
  ir::AugmentAttrs flip;
  flip.flip_h = true;
  train::draw_maps(flip, 28, 28, maps.data(), 8, rng);
  int flipped = 0;
  for (int i = 0; i < 8; ++i) {
    CHECK(std::abs(maps[6 * i]) == 1.f);
    if (maps[6 * i] < 0) {
      ++flipped;
      CHECK(maps[6 * i + 2] == 27.f);  // u = 27 - x
    }
  }
  CHECK(flipped > 0);
  CHECK(flipped < 8);
  ir::AugmentAttrs all = train::parse_augment("flip,rotate=0.1,zoom=0.2,translate=0.1");
  CHECK(all.flip_h);
  CHECK(all.zoom == 0.2f);
  CHECK_THROWS_WITH_AS(train::parse_augment("flip,blur=2"), doctest::Contains("accepted"), Error);
  // --augment puts the layer after the input; the network trains through it (a warp with its
  // maps as an input).
  ir::Graph g = ir::parse(
      "input x shape=6x6x1\nconv2d c filters=2 kernel=3x3\nflatten f\n"
      "dense out units=2 activation=softmax\n",
      "net.cnn", 4);
  const ir::Graph aug = train::with_augmentation(g, all);
  CHECK(aug.node(aug.find("c")).inputs[0] == aug.find("augment"));
  const auto t = passes::build_training_graph(aug, passes::Loss::SparseCategoricalCrossEntropy);
  REQUIRE(t.augmentations.size() == 1);
  CHECK(t.graph.node(t.graph.find("augment")).op == ir::OpKind::Warp);
  // Contrast and brightness: a warp, then a recolor under the layer's name, clipped to 0..1
  // unless --augment says otherwise; its factors drawn per image.
  const ir::AugmentAttrs color = train::parse_augment("flip,contrast=0.2,brightness=0.1,max=2");
  CHECK(color.contrast == 0.2f);
  CHECK(color.value_min == 0.f);
  CHECK(color.value_max == 2.f);
  CHECK(train::parse_augment("contrast=0.5").value_max == 1.f);
  const auto tc = passes::build_training_graph(train::with_augmentation(g, color),
                                               passes::Loss::SparseCategoricalCrossEntropy);
  const ir::Node& recolor = tc.graph.node(tc.graph.find("augment"));
  CHECK(recolor.op == ir::OpKind::Recolor);
  CHECK(tc.graph.node(recolor.inputs[0]).op == ir::OpKind::Warp);
  std::vector<float> factors(16);
  std::mt19937_64 draws(4);
  train::draw_colors(color, factors.data(), 8, draws);
  for (int i = 0; i < 8; ++i) {
    CHECK(std::abs(factors[2 * i] - 1.f) <= 0.2f);
    CHECK(std::abs(factors[2 * i + 1]) <= 0.2f);  // 0.1 of the range 0..2
  }
  CHECK(factors[0] != factors[2]);
}
