// The gradient pass and the backward ops' reference, against central finite differences of the
// forward reference: random networks (random strides, dilations, groups, paddings; the seed is
// printed), every trainable weight checked at random entries, and the loss of the training graph
// recomputed from its own prediction output.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <sstream>

#include "ir/error.h"
#include "ir/text.h"
#include "passes/gradient.h"
#include "runtime/reference/reference.h"
#include "runtime/weights.h"
#include "tests/util.h"

using namespace cnnc;

namespace {

// The training graph's inputs in graph order: the data, the labels, the dropout masks (fixed).
std::vector<ir::Tensor> training_inputs(const passes::TrainingGraph& t, std::mt19937& rng) {
  std::vector<ir::Tensor> ins;
  for (ir::NodeId id : t.graph.inputs()) {
    const ir::Node& n = t.graph.node(id);
    if (n.name == t.labels) {
      ir::Tensor labels(n.type.shape);
      const int64_t classes = t.graph.node(t.graph.find(t.prediction)).type.shape[1];
      if (t.loss == passes::Loss::SparseCategoricalCrossEntropy)
        for (auto& v : labels.data) v = static_cast<float>(rng() % classes);
      else  // rows of probabilities (or MSE targets) that sum to 1
        labels = test::random_tensor(n.type.shape, rng, 0.1f, 1.f);
      if (t.loss == passes::Loss::CategoricalCrossEntropy)
        for (int64_t r = 0; r < labels.shape[0]; ++r) {
          double sum = 0;
          for (int64_t c = 0; c < classes; ++c) sum += labels.data[r * classes + c];
          for (int64_t c = 0; c < classes; ++c) labels.data[r * classes + c] /= float(sum);
        }
      ins.push_back(labels);
      continue;
    }
    bool mask = false;
    for (const auto& m : t.masks)
      if (m.input == n.name) {
        ir::Tensor t(n.type.shape);
        for (auto& v : t.data) v = rng() % 2 ? 0.f : 1.f / (1 - m.rate);
        ins.push_back(t), mask = true;
      }
    if (!mask) ins.push_back(test::random_tensor(n.type.shape, rng));
  }
  return ins;
}

// The loss of the training graph's prediction, in double.
double loss_of(const passes::TrainingGraph& t, const std::vector<ir::Tensor>& ins) {
  const ir::Tensor p = runtime::reference::run(t.graph, ins)[0];
  const auto ids = t.graph.inputs();
  const ir::Tensor& labels = ins[static_cast<size_t>(
      std::find(ids.begin(), ids.end(), t.graph.find(t.labels)) - ids.begin())];
  double loss = 0;
  const int64_t n = p.shape[0], c = p.elements() / n;
  for (int64_t r = 0; r < n; ++r) {
    if (t.loss == passes::Loss::MeanSquaredError) {
      for (int64_t k = 0; k < c; ++k) {
        const double d = double(p.data[r * c + k]) - labels.data[r * c + k];
        loss += d * d / static_cast<double>(n * c);
      }
    } else if (t.loss == passes::Loss::SparseCategoricalCrossEntropy) {
      loss -= std::log(double(p.data[r * c + static_cast<int64_t>(labels.data[r])])) / n;
    } else {
      for (int64_t k = 0; k < c; ++k)
        loss -= labels.data[r * c + k] * std::log(double(p.data[r * c + k])) / n;
    }
  }
  return loss;
}

// Every trainable weight's gradient (the training graph's outputs after the prediction) at
// `samples` random entries against (L(w + h) - L(w - h)) / 2h.
// `shared`: layers that share another's weights (copy -> owner), perturbed with it.
void check_gradients(const std::string& text, passes::Loss loss, uint64_t seed, int batch = 2,
                     int samples = 6, const std::map<std::string, std::string>& shared = {}) {
  CAPTURE(seed);
  CAPTURE(text);
  ir::Graph forward = ir::parse(text, "test", batch);
  forward.shared_weights = shared;
  runtime::init_weights(forward, seed);
  passes::TrainingGraph t = passes::build_training_graph(forward, loss);
  ir::verify(t.graph);
  std::mt19937 rng(static_cast<unsigned>(seed));
  const auto ins = training_inputs(t, rng);
  const auto outs = runtime::reference::run(t.graph, ins);
  REQUIRE(outs.size() == t.trainables.size() + 1 + t.batch_statistics.size());
  for (size_t k = 0; k < t.trainables.size(); ++k) {
    const auto& tr = t.trainables[k];
    CAPTURE(tr.parameter);
    ir::Param* p = t.graph.node(t.graph.find(tr.layer)).param(tr.role);
    REQUIRE(p != nullptr);
    std::vector<ir::Param*> uses{p};  // the weights and every copy of them
    for (const auto& [copy, owner] : shared)
      if (owner == tr.layer) uses.push_back(t.graph.node(t.graph.find(copy)).param(tr.role));
    const ir::Tensor& grad = outs[k + 1];
    REQUIRE(grad.shape == p->value.shape);
    for (int s = 0; s < samples; ++s) {
      const size_t i = rng() % p->value.data.size();
      const float w = p->value.data[i], h = 1e-3f * std::max(1.f, std::abs(w));
      auto set = [&](float v) {
        for (ir::Param* u : uses) u->value.data[i] = v;
      };
      set(w + h);
      const double up = loss_of(t, ins);
      set(w - h);
      const double down = loss_of(t, ins);
      set(w);
      const double fd = (up - down) / (2.0 * double(h));
      CAPTURE(i);
      CHECK(std::abs(fd - grad.data[i]) <= 2e-4 + 2e-2 * std::abs(fd));
    }
  }
}

}  // namespace

TEST_CASE(
    "gradients of a LeNet-style net (conv, maxpool, dense, dropout) match finite differences") {
  for (uint64_t seed : {1, 2, 3})
    check_gradients(
        "input x shape=10x10x2\n"
        "conv2d c1 filters=4 kernel=3x3 activation=tanh\n"
        "maxpool2d p1 pool=2x2\n"
        "conv2d c2 filters=5 kernel=2x2 padding=same activation=relu\n"
        "flatten f\n"
        "dropout d rate=0.25\n"
        "dense fc1 units=6 activation=sigmoid\n"
        "dense out units=3 activation=softmax\n",
        passes::Loss::SparseCategoricalCrossEntropy, seed);
}

TEST_CASE("conv2d gradients: random strides, dilations, groups, depthwise, paddings") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 12; ++trial) {
    const int stride = 1 + static_cast<int>(rng() % 2), dil = 1 + static_cast<int>(rng() % 2);
    const int k = 1 + static_cast<int>(rng() % 3);
    const bool depthwise = rng() % 3 == 0, same = rng() % 2;
    const int cin = depthwise ? 4 : 2 + static_cast<int>(rng() % 3);
    const int groups = depthwise ? 4 : (cin % 2 == 0 && rng() % 2 ? 2 : 1);
    const int filters = depthwise ? 4 : groups * (1 + static_cast<int>(rng() % 3));
    // Strides and dilations together are not a Keras conv: one or the other.
    const std::string sd =
        stride > 1 ? " strides=" + std::to_string(stride) : " dilation=" + std::to_string(dil);
    const std::string text =
        "input x shape=9x8x" + std::to_string(cin) + "\n" +
        "conv2d pre filters=" + std::to_string(cin) + " kernel=1x1 activation=tanh\n" +
        "conv2d c filters=" + std::to_string(filters) + " kernel=" + std::to_string(k) + "x" +
        std::to_string(k) + sd + " groups=" + std::to_string(groups) +
        (same ? " padding=same" : "") + " round=floor activation=tanh\n" +
        "globalavgpool2d g\n"
        "dense out units=3 activation=softmax\n";
    check_gradients(text, passes::Loss::SparseCategoricalCrossEntropy, 100 + trial);
  }
}

TEST_CASE("transpose gradients: dy in the input's order (the inverse permutation)") {
  // A 3-cycle (its inverse is the other 3-cycle), then a swap of height and width.
  check_gradients(
      "input x shape=5x4x3\n"
      "conv2d a filters=4 kernel=3x3 activation=tanh\n"
      "transpose t perm=3x1x2\n"
      "conv2d b filters=2 kernel=2x1 activation=swish\n"
      "transpose s perm=2x1x3\n"
      "flatten f\n"
      "dense out units=3 activation=softmax\n",
      passes::Loss::SparseCategoricalCrossEntropy, 13, 2);
}

TEST_CASE("layernorm and trainable affine (LayerScale) gradients: a ConvNeXt block") {
  // Depthwise conv, layernorm over the channels, pointwise dense layers with gelu, a trainable
  // per-channel scale, the residual add; a layernorm before the classifier too.
  const std::string block =
      "input x shape=5x5x4\n"
      "conv2d stem filters=8 kernel=2x2\n"
      "conv2d dw filters=8 kernel=3x3 groups=8 padding=same <- stem\n"
      "layernorm ln epsilon=1e-06\n"
      "dense pw1 units=16 activation=gelu\n"
      "dense pw2 units=8\n"
      "affine ls\n"
      "add res <- stem, ls\n"
      "globalavgpool2d gap\n"
      "layernorm head_ln\n"
      "dense out units=3 activation=softmax\n";
  for (uint64_t seed : {17, 18}) check_gradients(block, passes::Loss::SparseCategoricalCrossEntropy, seed, 2, 8);
  // The layernorm's input gradient alone: its gamma and the weights before it.
  check_gradients("input x shape=6\ndense a units=5 activation=tanh\nlayernorm ln\ndense out units=2\n",
                  passes::Loss::MeanSquaredError, 19, 3, 8);
}

TEST_CASE("global max pooling and unitnorm gradients") {
  check_gradients(
      "input x shape=6x5x3\n"
      "conv2d a filters=6 kernel=3x3 activation=swish\n"
      "unitnorm u\n"
      "conv2d b filters=5 kernel=1x1 <- u\n"
      "globalmaxpool2d gmp\n"
      "unitnorm v\n"
      "dense out units=3 activation=softmax\n",
      passes::Loss::SparseCategoricalCrossEntropy, 23, 3, 8);
  // keepdims: a 1x1xC map, then a conv over it.
  check_gradients(
      "input x shape=4x4x2\nconv2d a filters=4 kernel=3x3\nglobalmaxpool2d g keepdims=true\n"
      "conv2d b filters=3 kernel=1x1\nflatten f\ndense out units=2 activation=softmax\n",
      passes::Loss::SparseCategoricalCrossEntropy, 25, 2, 8);
}

TEST_CASE("softmax inside a network and log_softmax gradients") {
  // A softmax over a map's channels as weights multiplied into the map (an attention's shape),
  // a log_softmax before the classifier.
  check_gradients(
      "input x shape=5x4x3\n"
      "conv2d a filters=6 kernel=3x3 activation=tanh\n"
      "softmax s\n"
      "multiply m <- a, s\n"
      "log_softmax ls\n"
      "flatten f\n"
      "dense out units=3 activation=softmax\n",
      passes::Loss::SparseCategoricalCrossEntropy, 31, 3, 8);
  // A softmax output trained with mean squared error: its own gradient, not the fused one; and
  // a network ending in log_softmax.
  check_gradients(
      "input x shape=6\ndense a units=5 activation=tanh\ndense out units=4 activation=softmax\n",
      passes::Loss::MeanSquaredError, 33, 4, 8);
  check_gradients(
      "input x shape=6\ndense a units=5 activation=relu\ndense d units=4\nlog_softmax out\n",
      passes::Loss::MeanSquaredError, 35, 4, 8);
}

TEST_CASE("conv2d_transpose gradients: strides, dilations, paddings, output padding, bias") {
  // Stride above the kernel with valid padding and output_padding leave output rows that only
  // the bias reaches (their dy is cropped); a stride of 1 is computed as a conv.
  std::mt19937 rng(29);
  for (int trial = 0; trial < 14; ++trial) {
    const int sh = 1 + static_cast<int>(rng() % 3), sw = 1 + static_cast<int>(rng() % 2);
    const int dil = sh == 1 && sw == 1 ? 1 + static_cast<int>(rng() % 2) : 1;
    const int kh = 1 + static_cast<int>(rng() % 4), kw = 1 + static_cast<int>(rng() % 3);
    const char* paddings[] = {"valid", "same", "1,0,0,1"};
    const std::string padding = paddings[rng() % 3];
    const int oph = static_cast<int>(rng() % std::max(sh, dil)),
              opw = static_cast<int>(rng() % std::max(sw, dil));
    std::ostringstream text;
    text << "input x shape=4x3x2\n"
         << "conv2d pre filters=3 kernel=2x1 activation=tanh\n"  // so x needs its gradient
         << "conv2d_transpose t filters=" << 1 + rng() % 4 << " kernel=" << kh << "x" << kw
         << " strides=" << sh << "x" << sw << " dilation=" << dil << "x" << dil
         << " padding=" << padding << " output_padding=" << oph << "x" << opw
         << " use_bias=" << (rng() % 2 ? "true" : "false") << " activation=tanh\n"
         << "flatten f\n"
         << "dense out units=3 activation=softmax\n";
    check_gradients(text.str(), passes::Loss::SparseCategoricalCrossEntropy, 300 + trial, 2, 8);
  }
}

TEST_CASE("groupnorm gradients: groups of several channels, one group, a group per channel") {
  for (const char* groups : {"3", "1", "6"})
    check_gradients(std::string("input x shape=5x4x2\n"
                                "conv2d a filters=6 kernel=3x3 padding=same activation=tanh\n"
                                "groupnorm gn groups=") +
                        groups +
                        "\n"
                        "conv2d b filters=4 kernel=1x1 activation=swish\n"
                        "groupnorm gn2 groups=2 epsilon=0.01\n"
                        "globalavgpool2d g\n"
                        "dense out units=3 activation=softmax\n",
                    passes::Loss::SparseCategoricalCrossEntropy, 41, 3, 8);
}

TEST_CASE("resize gradients: up and down, nearest and bilinear, one axis or both") {
  for (const char* interpolation : {"bilinear", "nearest"})
    check_gradients(std::string("input x shape=4x5x2\n"
                                "conv2d a filters=3 kernel=1x1 activation=tanh\n"
                                "resize up size=9x5 interpolation=") +
                        interpolation +
                        "\n"
                        "conv2d b filters=3 kernel=2x2 activation=tanh\n"
                        "resize down size=3x11 interpolation=" +
                        interpolation +
                        "\n"
                        "resize both size=5x4 interpolation=" +
                        interpolation +
                        "\n"
                        "flatten f\n"
                        "dense out units=3 activation=softmax\n",
                    passes::Loss::SparseCategoricalCrossEntropy, 43, 2, 10);
}

TEST_CASE("maximum and minimum gradients: three inputs, broadcasting") {
  check_gradients(
      "input x shape=4x4x2\n"
      "conv2d a filters=3 kernel=1x1 activation=tanh\n"
      "conv2d b filters=3 kernel=2x2 padding=same activation=tanh <- x\n"
      "globalavgpool2d g keepdims=true <- a\n"
      "maximum m <- a, b, g\n"
      "conv2d c filters=3 kernel=1x1 <- x\n"
      "minimum n <- m, c\n"
      "flatten f\n"
      "dense out units=3 activation=softmax\n",
      passes::Loss::SparseCategoricalCrossEntropy, 47, 3, 10);
}

TEST_CASE(
    "a tie for the maximum gives dy to the first input that holds it (as Keras on TensorFlow)") {
  ir::Node grad;
  grad.op = ir::OpKind::ExtremumGrad;
  grad.type = ir::TensorType{{1, 4}};
  ir::Tensor dy({1, 4}), a({1, 4}), b({1, 4}), c({1, 1});
  dy.data = {1, 2, 3, 4};
  a.data = {0, 5, 1, 2};
  b.data = {0, 5, 3, 2};
  c.data = {2};  // broadcast
  for (int64_t k = 0; k < 3; ++k) {
    grad.attrs = ir::ExtremumGradAttrs{k, false};
    const ir::Tensor dx = runtime::reference::run_node(grad, {&dy, &a, &b, &c});
    const std::vector<std::vector<float>> want{{0, 2, 0, 4}, {0, 0, 3, 0}, {1, 0, 0, 0}};
    CHECK(dx.data == want[static_cast<size_t>(k)]);
  }
}

TEST_CASE("global max pooling's gradient is shared by the pixels that tie for the maximum") {
  ir::Node grad;
  grad.op = ir::OpKind::GlobalMaxPool2DGrad;
  grad.attrs = ir::GlobalPoolAttrs{};
  grad.type = ir::TensorType{{1, 2, 2, 1}};
  ir::Tensor x({1, 2, 2, 1}), dy({1, 1});
  x.data = {3, 1, 3, 2};  // pixels 0 and 2 tie
  dy.data = {6};
  const ir::Tensor dx = runtime::reference::run_node(grad, {&x, &dy});
  CHECK(dx.data == std::vector<float>{3, 0, 3, 0});
}

TEST_CASE("pooling, padding, cropping, add and reshape gradients") {
  check_gradients(
      "input x shape=8x8x3\n"
      "zeropadding2d z pad=1,0,2,1\n"
      "conv2d a filters=4 kernel=3x3 activation=leakyrelu\n"
      "avgpool2d p pool=3x3 strides=2x2 padding=same\n"
      "conv2d b filters=4 kernel=1x1 activation=sigmoid\n"
      "add s <- p, b\n"
      "cropping2d cr crop=1,0,0,1\n"
      "maxpool2d m pool=2x2 strides=1x1\n"
      "reshape r shape=24\n"
      "dense out units=4 activation=softmax\n",
      passes::Loss::SparseCategoricalCrossEntropy, 11, 3);
}

TEST_CASE("every activation of the table trains: its gradient from its output or its input") {
  int checked = 0;
  for (int k = 0; k < ir::kNumOps; ++k) {
    const auto op = static_cast<ir::OpKind>(k);
    if (!ir::is_epilogue_activation(op) || op == ir::OpKind::ReLU) continue;
    const std::string name(ir::op_info(op).text);
    CAPTURE(name);
    check_gradients("input x shape=4x4x2\nconv2d c filters=3 kernel=2x2 activation=" + name +
                        "\nglobalavgpool2d g\ndense out units=3 activation=" + name +
                        "\ndense sm units=3 activation=softmax\n",
                    passes::Loss::SparseCategoricalCrossEntropy, 200 + k, 2, 4);
    ++checked;
  }
  CHECK(checked == 15);  // the table of ir/activations.def
}

TEST_CASE("multiply gradients: squeeze-and-excitation's broadcast gate, a product of two maps") {
  check_gradients(
      "input x shape=5x5x3\n"
      "conv2d a filters=4 kernel=3x3 padding=same activation=swish\n"
      "globalavgpool2d g keepdims=true\n"
      "conv2d r filters=2 kernel=1x1 activation=gelu\n"
      "conv2d e filters=4 kernel=1x1 activation=hardsigmoid\n"
      "multiply m <- a.swish, e.hardsigmoid\n"
      "conv2d b filters=4 kernel=1x1 activation=tanh\n"
      "multiply p <- m, b, m\n"
      "globalavgpool2d g2\n"
      "dense out units=3 activation=softmax\n",
      passes::Loss::SparseCategoricalCrossEntropy, 51, 3);
}

TEST_CASE("concat gradients: each input's channels of dy, an input read twice summed") {
  check_gradients(
      "input x shape=6x6x2\n"
      "conv2d a filters=3 kernel=3x3 padding=same activation=tanh\n"
      "conv2d b filters=2 kernel=1x1 activation=sigmoid\n"
      "concat c <- a, b, a\n"
      "conv2d d filters=4 kernel=3x3 strides=2 round=floor\n"
      "concat e <- d, d\n"
      "globalavgpool2d g\n"
      "dense h units=5 activation=tanh\n"
      "concat k <- h, g\n"
      "dense out units=3 activation=softmax\n",
      passes::Loss::SparseCategoricalCrossEntropy, 31, 3);
}

TEST_CASE("shared weights (a layer called twice): one gradient, the sum of every use's") {
  check_gradients(
      "input x shape=6x6x2\n"
      "conv2d a filters=3 kernel=3x3 padding=same activation=tanh\n"
      "relu r <- x\n"
      "conv2d a2 filters=3 kernel=3x3 padding=same activation=tanh\n"
      "batchnorm bn <- a.tanh\n"
      "batchnorm bn2 <- a2.tanh\n"
      "add s <- bn, bn2\n"
      "globalavgpool2d g\n"
      "dense h units=3 activation=sigmoid\n"
      "dense h2 units=3 activation=sigmoid\n"
      "dense out units=3 activation=softmax\n",
      passes::Loss::SparseCategoricalCrossEntropy, 41, 3, 6,
      {{"a2", "a"}, {"bn2", "bn"}, {"h2", "h"}});
  const ir::Graph g = [] {
    ir::Graph g = ir::parse(
        "input x shape=4\ndense h units=4\ndense h2 units=4\ndense out units=2 "
        "activation=softmax\n",
        "test", 2);
    g.shared_weights = {{"h2", "h"}};
    return g;
  }();
  const auto t = passes::build_training_graph(g, passes::Loss::SparseCategoricalCrossEntropy);
  for (const auto& tr : t.trainables) CHECK(tr.layer != "h2");  // no trainable of its own
}

TEST_CASE("batchnorm with batch statistics: gamma, beta and the input's gradient") {
  for (uint64_t seed : {21, 22})
    check_gradients(
        "input x shape=6x6x3\n"
        "conv2d c1 filters=4 kernel=3x3 padding=same\n"
        "batchnorm bn1 epsilon=0.001\n"
        "tanh r1\n"
        "conv2d c2 filters=5 kernel=3x3 strides=2 use_bias=false round=floor\n"
        "batchnorm bn2\n"
        "tanh t2\n"
        "flatten f\n"
        "dense d units=6\n"
        "batchnorm bn3\n"
        "sigmoid s\n"
        "dense out units=3 activation=softmax\n",
        passes::Loss::SparseCategoricalCrossEntropy, seed, 4);
}

TEST_CASE("categorical cross-entropy and mean squared error losses") {
  const std::string net =
      "input x shape=5\n"
      "dense h units=7 activation=tanh\n"
      "dense out units=3 activation=softmax\n";
  check_gradients(net, passes::Loss::CategoricalCrossEntropy, 5, 4);
  check_gradients(
      "input x shape=5\n"
      "dense h units=7 activation=relu6\n"
      "dense out units=2\n",
      passes::Loss::MeanSquaredError, 6, 4);
}

TEST_CASE("the training graph: parameters as values, gradients as outputs") {
  ir::Graph forward = ir::parse(
      "input x shape=4x4x1\nconv2d c filters=2 kernel=3x3\nflatten f\n"
      "dense out units=2 activation=softmax\n",
      "test", 3);
  const auto t = passes::build_training_graph(forward, passes::Loss::SparseCategoricalCrossEntropy);
  REQUIRE(t.trainables.size() == 4);
  CHECK(t.trainables[0].parameter == "out.kernel");
  CHECK(t.graph.node(t.graph.find("out.kernel")).op == ir::OpKind::Parameter);
  CHECK(t.graph.node(t.graph.find(t.trainables[0].gradient)).op == ir::OpKind::DenseGradKernel);
  // The first layer's input gradient is never needed: no conv2d_grad_input.
  for (const auto& n : t.graph.nodes()) CHECK(n.op != ir::OpKind::Conv2DGradInput);
  // The text form round-trips the training ops.
  const std::string text = ir::print(t.graph);
  CHECK(text.find("conv2d_grad_kernel") != std::string::npos);
  CHECK(text.find("softmax_ce_grad") != std::string::npos);
}

TEST_CASE("what does not train yet is refused, naming the layer") {
  auto refuse = [](const std::string& text, const std::string& message, passes::Loss loss) {
    const ir::Graph g = ir::parse(text, "net.cnn", 2);
    CHECK_THROWS_WITH_AS(passes::build_training_graph(g, loss), doctest::Contains(message.c_str()),
                         Error);
  };
  refuse("input x shape=4\ndense out units=3\n", "needs the model to end in a softmax",
         passes::Loss::SparseCategoricalCrossEntropy);
  refuse("input x shape=4\ndense d units=3\nchannel_slice s begin=1 size=2\n",
         "channel_slice has no gradient yet", passes::Loss::MeanSquaredError);
  refuse("input x shape=4\ndense d units=3\nchannel_slice s begin=1 size=2\n",
         "the ops that train are", passes::Loss::MeanSquaredError);
  CHECK_THROWS_WITH_AS(passes::parse_loss("hinge"), doctest::Contains("accepted: sparse_"), Error);
}
