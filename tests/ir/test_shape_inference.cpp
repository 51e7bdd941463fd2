// Shape inference, weight shapes and work counts, as specifications: the lecture's examples
// first, then Keras' 'same' rule, dilation, groups, dense, pooling, multi-input ops and limits.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ir/error.h"
#include "ir/shape_inference.h"
#include "ir/text.h"

namespace ir = cnnc::ir;

namespace {

ir::Graph net(const std::string& text, int64_t batch = 1) { return ir::parse(text, "t.cnn", batch); }

// The inferred shape of a layer, batch included.
ir::Shape shape_of(const ir::Graph& g, const std::string& name) {
  const ir::NodeId id = g.find(name);
  REQUIRE_MESSAGE(id >= 0, "no layer " << name);
  return g.node(id).type.shape;
}
const ir::Node& layer(const ir::Graph& g, const std::string& name) {
  const ir::NodeId id = g.find(name);
  REQUIRE_MESSAGE(id >= 0, "no layer " << name);
  return g.node(id);
}
int64_t params(const ir::Graph& g, const std::string& name) { return ir::param_count(layer(g, name)); }
int64_t macs(const ir::Graph& g, const std::string& name) {
  const ir::Node& n = layer(g, name);
  return ir::macs(n, ir::input_types(g, n));
}
using ir::total_params;

// The message parse() fails with; fails the test when it does not.
std::string error_of(const std::string& text, int64_t batch = 1) {
  try {
    net(text, batch);
  } catch (const cnnc::Error& e) {
    return e.what();
  }
  FAIL("expected an error for:\n" << text);
  return {};
}

void check_contains(const std::string& msg, const std::vector<std::string>& parts) {
  for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "'" << p << "' not in: " << msg);
}

// "input x shape=S" followed by one layer named `l`.
std::string one_layer(const std::string& input_shape, const std::string& layer_line) {
  return "input x shape=" + input_shape + "\n" + layer_line + "\n";
}

ir::WindowGeometry geometry(const ir::Graph& g, const std::string& name) {
  const ir::Node& n = layer(g, name);
  return ir::window_geometry(n, g.node(n.inputs.at(0)).type);
}

}  // namespace

TEST_CASE("the lecture's layer: 32x32x3, ten 5x5 filters, stride 1, pad 2 -> 32x32x10, 760 params") {
  auto g = net(one_layer("32x32x3", "conv2d l filters=10 kernel=5x5 strides=1 padding=2"));
  CHECK(shape_of(g, "x") == ir::Shape{1, 32, 32, 3});
  CHECK(shape_of(g, "l") == ir::Shape{1, 32, 32, 10});
  CHECK(params(g, "l") == 760);  // 10 * (5*5*3 + 1)
  const ir::Node& l = layer(g, "l");
  REQUIRE(l.params.size() == 2);
  CHECK(l.param("kernel")->value.shape == ir::Shape{5, 5, 3, 10});  // HWIO
  CHECK(l.param("bias")->value.shape == ir::Shape{10});
  CHECK(l.param("kernel")->value.data.empty());  // shapes only until weights are loaded
  CHECK(macs(g, "l") == 32 * 32 * 10 * 5 * 5 * 3);
  CHECK(total_params(g) == 760);
}

TEST_CASE("the lecture's 7x7 input with a 3x3 filter: stride 1 -> 5x5, stride 2 -> 3x3") {
  CHECK(shape_of(net(one_layer("7x7x1", "conv2d l filters=1 kernel=3x3")), "l") == ir::Shape{1, 5, 5, 1});
  CHECK(shape_of(net(one_layer("7x7x1", "conv2d l filters=1 kernel=3x3 strides=2")), "l") ==
        ir::Shape{1, 3, 3, 1});
  CHECK(params(net(one_layer("7x7x1", "conv2d l filters=1 kernel=3x3")), "l") == 10);
}

TEST_CASE("stride 3 on 7x7 with a 3x3 filter does not fit: the error names the layer and proposes sizes") {
  const std::string msg = error_of(one_layer("7x7x1", "conv2d bad filters=1 kernel=3x3 strides=3"));
  check_contains(msg, {"t.cnn:2", "layer 'bad' (conv2d)", "(7 - 3 + 0)/3 + 1", "2.33", "not an integer",
                       "input height 6 or 9", "stride 1 2 4", "padding=same", "round=floor"});
  // What it proposes does work.
  CHECK(shape_of(net(one_layer("6x6x1", "conv2d l filters=1 kernel=3x3 strides=3")), "l") == ir::Shape{1, 2, 2, 1});
  CHECK(shape_of(net(one_layer("9x9x1", "conv2d l filters=1 kernel=3x3 strides=3")), "l") == ir::Shape{1, 3, 3, 1});
  CHECK(shape_of(net(one_layer("7x7x1", "conv2d l filters=1 kernel=3x3 strides=3 padding=1,1,1,1")), "l") ==
        ir::Shape{1, 3, 3, 1});
  CHECK(shape_of(net(one_layer("7x7x1", "conv2d l filters=1 kernel=3x3 strides=3 padding=same")), "l") ==
        ir::Shape{1, 3, 3, 1});
  CHECK(shape_of(net(one_layer("7x7x1", "conv2d l filters=1 kernel=3x3 strides=3 round=floor")), "l") ==
        ir::Shape{1, 2, 2, 1});
  // Only the axis that does not fit is reported.
  const std::string w = error_of(one_layer("9x7x1", "conv2d bad filters=1 kernel=3x3 strides=3"));
  check_contains(w, {"width:", "input width 6 or 9"});
}

TEST_CASE("zero padding (F-1)/2 with stride 1 preserves the size (the lecture's table)") {
  for (int f : {3, 5, 7}) {
    CAPTURE(f);
    const std::string fs = std::to_string(f);
    auto g = net(one_layer("7x7x3", "conv2d l filters=4 kernel=" + fs + "x" + fs + " padding=" + std::to_string((f - 1) / 2)));
    CHECK(shape_of(g, "l") == ir::Shape{1, 7, 7, 4});
    CHECK(params(g, "l") == int64_t{f} * f * 3 * 4 + 4);
  }
  // (N - F + 2P)/S + 1 with padding: (7 - 3 + 2)/2 + 1 = 4; (5 - 3 + 2)/2 + 1 = 3.
  CHECK(shape_of(net(one_layer("7x7x1", "conv2d l filters=1 kernel=3 strides=2 padding=1")), "l") == ir::Shape{1, 4, 4, 1});
  CHECK(shape_of(net(one_layer("5x5x1", "conv2d l filters=1 kernel=3 strides=2 padding=1")), "l") == ir::Shape{1, 3, 3, 1});
  // Explicit top,bottom,left,right.
  auto g = net(one_layer("7x7x1", "conv2d l filters=1 kernel=3x3 padding=1,0,2,0"));
  CHECK(shape_of(g, "l") == ir::Shape{1, 6, 7, 1});
  const auto geo = geometry(g, "l");
  CHECK(geo.pad_top == 1);
  CHECK(geo.pad_bottom == 0);
  CHECK(geo.pad_left == 2);
  CHECK(geo.pad_right == 0);
  // Non-square kernels and strides.
  CHECK(shape_of(net(one_layer("7x9x1", "conv2d l filters=2 kernel=1x3 strides=2x3")), "l") == ir::Shape{1, 4, 3, 2});
}

TEST_CASE("padding=same follows Keras: out = ceil(in / stride), the odd pixel at the bottom/right") {
  struct Case {
    int64_t in, k, s, out, before, after;
  };
  for (const Case& c : {Case{224, 3, 2, 112, 0, 1}, Case{225, 3, 2, 113, 1, 1}, Case{224, 7, 2, 112, 2, 3},
                        Case{224, 3, 1, 224, 1, 1}, Case{224, 5, 1, 224, 2, 2}, Case{32, 1, 2, 16, 0, 0},
                        Case{7, 3, 3, 3, 1, 1}, Case{5, 4, 1, 5, 1, 2}, Case{1, 3, 2, 1, 1, 1}}) {
    CAPTURE(c.in);
    CAPTURE(c.k);
    CAPTURE(c.s);
    auto g = net(one_layer(std::to_string(c.in) + "x" + std::to_string(c.in) + "x1",
                           "conv2d l filters=1 kernel=" + std::to_string(c.k) + " strides=" + std::to_string(c.s) +
                               " padding=same"));
    CHECK(shape_of(g, "l") == ir::Shape{1, c.out, c.out, 1});
    const auto geo = geometry(g, "l");
    CHECK(geo.pad_top == c.before);
    CHECK(geo.pad_bottom == c.after);
    CHECK(geo.pad_left == c.before);
    CHECK(geo.pad_right == c.after);
  }
  // Valid is the default: no padding.
  auto v = net(one_layer("224x224x3", "conv2d l filters=8 kernel=3 strides=1"));
  CHECK(shape_of(v, "l") == ir::Shape{1, 222, 222, 8});
  CHECK(geometry(v, "l").pad_top == 0);
}

TEST_CASE("dilation widens the window to (F - 1) * D + 1 without adding weights") {
  auto g = net(one_layer("7x7x2", "conv2d l filters=3 kernel=3x3 dilation=2"));
  CHECK(shape_of(g, "l") == ir::Shape{1, 3, 3, 3});  // effective 5x5
  CHECK(params(g, "l") == 3 * 3 * 2 * 3 + 3);
  CHECK(macs(g, "l") == 3 * 3 * 3 * (3 * 3 * 2));
  auto same = net(one_layer("7x7x1", "conv2d l filters=1 kernel=3x3 dilation=2 padding=same"));
  CHECK(shape_of(same, "l") == ir::Shape{1, 7, 7, 1});
  CHECK(geometry(same, "l").pad_top == 2);
  CHECK(geometry(same, "l").pad_bottom == 2);
  CHECK(shape_of(net(one_layer("9x9x1", "conv2d l filters=1 kernel=3x3 dilation=2x3")), "l") == ir::Shape{1, 5, 3, 1});
  check_contains(error_of(one_layer("4x4x1", "conv2d l filters=1 kernel=3x3 dilation=2")),
                 {"layer 'l' (conv2d)", "window (5) is larger than the padded input (4)", "padding=same"});
}

TEST_CASE("groups divide the input channels; depthwise when groups = input channels") {
  auto g = net(one_layer("8x8x32", "conv2d l filters=64 kernel=3x3 padding=same groups=4"));
  CHECK(shape_of(g, "l") == ir::Shape{1, 8, 8, 64});
  CHECK(layer(g, "l").param("kernel")->value.shape == ir::Shape{3, 3, 8, 64});
  CHECK(params(g, "l") == 3 * 3 * 8 * 64 + 64);
  CHECK(macs(g, "l") == 8 * 8 * 64 * 3 * 3 * 8);

  auto dw = net(one_layer("8x8x32", "conv2d l filters=32 kernel=3x3 padding=same groups=32 use_bias=false"));
  CHECK(layer(dw, "l").param("kernel")->value.shape == ir::Shape{3, 3, 1, 32});
  CHECK(layer(dw, "l").param("bias") == nullptr);
  CHECK(params(dw, "l") == 3 * 3 * 32);
  CHECK(macs(dw, "l") == 8 * 8 * 32 * 3 * 3);

  // Depth multiplier 2: each input channel gets two filters.
  CHECK(params(net(one_layer("8x8x16", "conv2d l filters=32 kernel=3x3 groups=16")), "l") == 3 * 3 * 1 * 32 + 32);

  check_contains(error_of(one_layer("8x8x32", "conv2d l filters=64 kernel=3x3 groups=3")),
                 {"layer 'l' (conv2d)", "groups=3", "input channels (32)", "filters (64)"});
  check_contains(error_of(one_layer("8x8x32", "conv2d l filters=30 kernel=3x3 groups=4")), {"groups=4", "filters (30)"});
  check_contains(error_of(one_layer("8x8x32", "conv2d l filters=32 kernel=3x3 groups=0")), {"groups=0"});
}

TEST_CASE("dense works on the last axis: rank 2 (after flatten) or rank 4") {
  auto g = net("input x shape=100\ndense d units=10\n");
  CHECK(shape_of(g, "x") == ir::Shape{1, 100});
  CHECK(shape_of(g, "d") == ir::Shape{1, 10});
  CHECK(layer(g, "d").param("kernel")->value.shape == ir::Shape{100, 10});
  CHECK(params(g, "d") == 1010);
  CHECK(macs(g, "d") == 1000);
  CHECK(params(net("input x shape=100\ndense d units=10 use_bias=false\n"), "d") == 1000);

  auto r4 = net(one_layer("4x4x8", "dense d units=3"));
  CHECK(shape_of(r4, "d") == ir::Shape{1, 4, 4, 3});
  CHECK(params(r4, "d") == 8 * 3 + 3);
  CHECK(macs(r4, "d") == 4 * 4 * 3 * 8);

  auto f = net("input x shape=5x5x16\nflatten f\ndense d units=120\n");
  CHECK(shape_of(f, "f") == ir::Shape{1, 400});
  CHECK(params(f, "d") == 48120);
  check_contains(error_of("input x shape=10\ndense d units=0\n"), {"layer 'd' (dense)", "units must be >= 1"});
  check_contains(error_of("input x shape=10\nconv2d c filters=1 kernel=1\n"),
                 {"layer 'c' (conv2d)", "rank-4 input (HxWxC)", "got 10"});
}

TEST_CASE("pooling: strides default to the pool size; exact by default, floor on request") {
  auto g = net(one_layer("32x32x3", "maxpool2d p pool=2x2"));
  CHECK(shape_of(g, "p") == ir::Shape{1, 16, 16, 3});
  CHECK(params(g, "p") == 0);
  CHECK(macs(g, "p") == 0);
  CHECK(shape_of(net(one_layer("55x55x96", "maxpool2d p pool=3 strides=2")), "p") == ir::Shape{1, 27, 27, 96});
  CHECK(shape_of(net(one_layer("28x28x6", "avgpool2d p pool=2")), "p") == ir::Shape{1, 14, 14, 6});
  CHECK(shape_of(net(one_layer("5x5x1", "avgpool2d p pool=2 padding=same")), "p") == ir::Shape{1, 3, 3, 1});
  CHECK(shape_of(net(one_layer("16x16x4", "maxpool2d p pool=3 strides=1 padding=same")), "p") ==
        ir::Shape{1, 16, 16, 4});

  // 15x15 with 2x2 windows: Keras floors to 7x7; we ask for it.
  check_contains(error_of(one_layer("15x15x32", "maxpool2d p pool=2")),
                 {"t.cnn:2", "layer 'p' (maxpool2d)", "not an integer", "input height 14 or 16", "round=floor"});
  CHECK(shape_of(net(one_layer("15x15x32", "maxpool2d p pool=2 round=floor")), "p") == ir::Shape{1, 7, 7, 32});

  check_contains(error_of(one_layer("8x8x1", "maxpool2d p pool=2 padding=2")),
                 {"layer 'p' (maxpool2d)", "padding must be smaller than the pool window"});
  check_contains(error_of(one_layer("8x8x1", "maxpool2d p pool=2 strides=0x1")),
                 {"layer 'p' (maxpool2d)", "strides 0x1", "give both"});
  check_contains(error_of("input x shape=8\nmaxpool2d p pool=2\n"), {"maxpool2d needs a rank-4 input"});

  auto gp = net(one_layer("7x7x48", "globalavgpool2d gap"));
  CHECK(shape_of(gp, "gap") == ir::Shape{1, 48});
  CHECK(shape_of(net(one_layer("7x7x48", "globalavgpool2d gap keepdims=true")), "gap") == ir::Shape{1, 1, 1, 48});
}

TEST_CASE("batchnorm, activations, dropout, padding and flatten") {
  auto g = net(one_layer("8x8x16", "batchnorm bn epsilon=1e-5"));
  CHECK(shape_of(g, "bn") == ir::Shape{1, 8, 8, 16});
  CHECK(params(g, "bn") == 4 * 16);  // gamma, beta, moving mean and variance, as Keras counts them
  CHECK(layer(g, "bn").param("moving_variance")->value.shape == ir::Shape{16});
  check_contains(error_of(one_layer("8x8x16", "batchnorm bn epsilon=0")), {"epsilon must be > 0"});

  for (const char* op : {"relu", "relu6", "leakyrelu", "sigmoid", "tanh", "softmax", "dropout"}) {
    CAPTURE(op);
    auto a = net(one_layer("3x5x7", std::string(op) + " a"));
    CHECK(shape_of(a, "a") == ir::Shape{1, 3, 5, 7});
    CHECK(params(a, "a") == 0);
  }
  check_contains(error_of(one_layer("3x5x7", "dropout d rate=1")), {"rate must be in [0, 1)"});

  CHECK(shape_of(net(one_layer("7x7x2", "zeropadding2d z pad=1,2,3,4")), "z") == ir::Shape{1, 10, 14, 2});
  CHECK(shape_of(net(one_layer("7x7x2", "zeropadding2d z")), "z") == ir::Shape{1, 9, 9, 2});
  check_contains(error_of(one_layer("7x7x2", "zeropadding2d z pad=same")), {"pad must be explicit"});

  CHECK(shape_of(net(one_layer("6x6x64", "flatten f")), "f") == ir::Shape{1, 2304});
}

TEST_CASE("the Keras Applications' ops: affine, swish, hardsigmoid, relu's attributes, global max pool") {
  auto g = net(one_layer("8x8x16", "affine a"));
  CHECK(shape_of(g, "a") == ir::Shape{1, 8, 8, 16});
  CHECK(params(g, "a") == 2 * 16);
  const ir::Inferred inf = ir::infer(layer(g, "a"), {ir::TensorType{{1, 8, 8, 16}}}, 1);
  REQUIRE(inf.params.size() == 2);
  CHECK(inf.params[0].role == "scale");
  CHECK(inf.params[0].init == ir::Init::Ones);  // the identity until weights are loaded
  CHECK(inf.params[1].role == "shift");
  CHECK(inf.params[1].init == ir::Init::Zeros);
  CHECK(shape_of(net(one_layer("10", "affine a")), "a") == ir::Shape{1, 10});

  for (const char* op : {"swish a", "hardsigmoid a", "relu a max_value=6 negative_slope=0.1 threshold=0.5"}) {
    CAPTURE(op);
    auto a = net(one_layer("3x5x7", op));
    CHECK(shape_of(a, "a") == ir::Shape{1, 3, 5, 7});
    CHECK(params(a, "a") == 0);
  }
  check_contains(error_of(one_layer("4", "relu r max_value=-1")), {"layer 'r' (relu)", "must be >= 0"});
  check_contains(error_of(one_layer("4", "relu r negative_slope=-0.1")), {"must be >= 0"});
  check_contains(error_of(one_layer("4", "relu r threshold=nan")), {"must be >= 0"});
  check_contains(error_of(one_layer("4", "relu r threshold=inf")), {"the others finite"});
  check_contains(error_of(one_layer("4", "relu r max_value=1 threshold=2")), {"threshold must not exceed max_value"});

  CHECK(shape_of(net(one_layer("7x5x3", "globalmaxpool2d p")), "p") == ir::Shape{1, 3});
  CHECK(shape_of(net(one_layer("7x5x3", "globalmaxpool2d p keepdims=true")), "p") == ir::Shape{1, 1, 1, 3});
  check_contains(error_of(one_layer("3", "globalmaxpool2d p")), {"globalmaxpool2d needs a rank-4 input"});
}

TEST_CASE("cropping2d and reshape") {
  CHECK(shape_of(net(one_layer("7x9x2", "cropping2d c crop=1,2,3,4")), "c") == ir::Shape{1, 4, 2, 2});
  CHECK(shape_of(net(one_layer("7x9x2", "cropping2d c crop=3")), "c") == ir::Shape{1, 1, 3, 2});
  CHECK(shape_of(net(one_layer("7x9x2", "cropping2d c")), "c") == ir::Shape{1, 7, 9, 2});  // crop=0
  check_contains(error_of(one_layer("4x6x2", "cropping2d c crop=2,2,0,0")),
                 {"layer 'c' (cropping2d)", "leaves nothing of the 4x6x2 input", "crop at most 3 rows",
                  "5 columns"});
  check_contains(error_of(one_layer("4x6x2", "cropping2d c crop=0,0,9223372036854775807,9223372036854775807")),
                 {"leaves nothing"});
  check_contains(error_of(one_layer("4x6x2", "cropping2d c crop=same")), {"crop must be explicit"});
  check_contains(error_of(one_layer("12", "cropping2d c crop=1")), {"cropping2d needs a rank-4 input"});

  CHECK(shape_of(net(one_layer("64", "reshape r shape=1x1x64"), 3), "r") == ir::Shape{3, 1, 1, 64});
  CHECK(shape_of(net(one_layer("2x3x4", "reshape r shape=24")), "r") == ir::Shape{1, 24});
  CHECK(shape_of(net(one_layer("2x3x4", "reshape r shape=4x3x2")), "r") == ir::Shape{1, 4, 3, 2});
  check_contains(error_of(one_layer("2x3x4", "reshape r shape=5x5x1")),
                 {"layer 'r' (reshape)", "shape=5x5x1 has 25 elements, the input 2x3x4 has 24",
                  "e.g. shape=24"});
  check_contains(error_of(one_layer("2x3x4", "reshape r shape=4x6")), {"shape must be HxWxC or C", "got 4x6"});
  check_contains(error_of(one_layer("2x3x4", "reshape r")), {"missing required attribute 'shape'"});
  check_contains(error_of(one_layer("2x3x4", "reshape r shape=4294967296x4294967296x4")),
                 {"more than 2^31 - 1 elements"});
}

TEST_CASE("conv2d_transpose: Keras' output sizes, TensorFlow's crops, output padding, its errors") {
  // valid: in * stride + max(kernel - stride, 0); same: in * stride.
  CHECK(shape_of(net(one_layer("7x5x3", "conv2d_transpose t filters=4 kernel=3 strides=2")), "t") ==
        ir::Shape{1, 15, 11, 4});
  CHECK(shape_of(net(one_layer("7x5x3", "conv2d_transpose t filters=4 kernel=1 strides=2")), "t") ==
        ir::Shape{1, 14, 10, 4});
  CHECK(shape_of(net(one_layer("7x5x3", "conv2d_transpose t filters=4 kernel=3 strides=2 padding=same")), "t") ==
        ir::Shape{1, 14, 10, 4});
  CHECK(shape_of(net(one_layer("7x5x3", "conv2d_transpose t filters=4 kernel=3x2 dilation=2 padding=same")), "t") ==
        ir::Shape{1, 7, 5, 4});
  CHECK(shape_of(net(one_layer("7x5x3", "conv2d_transpose t filters=4 kernel=3 strides=2 padding=1,0,0,2 "
                                        "output_padding=1x0")),
                 "t") == ir::Shape{1, 15, 9, 4});
  // same with kernel 4, stride 2: the full output is 2 longer; TensorFlow crops 1 at each side.
  const auto g = net(one_layer("6x6x3", "conv2d_transpose t filters=8 kernel=4 strides=2 padding=same"));
  const auto geo = ir::transposed_geometry(layer(g, "t").attr<ir::Conv2DTransposeAttrs>(), 6, 6);
  CHECK(geo.crop_top == 1);
  CHECK(geo.out_h == 12);
  CHECK(params(g, "t") == 4 * 4 * 8 * 3 + 8);  // kernel (kh, kw, filters, in) and a bias
  CHECK(macs(g, "t") == 6 * 6 * 3 * 4 * 4 * 8);
  check_contains(error_of(one_layer("7x5x3", "conv2d_transpose t filters=4 kernel=3 strides=2 dilation=2")),
                 {"layer 't' (conv2d_transpose)", "one of them above 1"});
  check_contains(error_of(one_layer("7x5x3", "conv2d_transpose t filters=4 kernel=3 strides=2 output_padding=2")),
                 {"output_padding 2", "smaller than the stride (2)"});
  check_contains(error_of(one_layer("2x2x3", "conv2d_transpose t filters=4 kernel=2 padding=2,2,0,0")),
                 {"leaves nothing of the full output (3)"});
  check_contains(error_of(one_layer("12", "conv2d_transpose t filters=4 kernel=2")),
                 {"conv2d_transpose needs a rank-4 input"});
}

TEST_CASE("resize, groupnorm, maximum and minimum") {
  CHECK(shape_of(net(one_layer("7x5x3", "resize r size=14x3")), "r") == ir::Shape{1, 14, 3, 3});
  check_contains(error_of(one_layer("7x5x3", "resize r size=0x3")), {"size=0x3 must be positive"});
  check_contains(error_of(one_layer("7x5x3", "resize r size=2x2 interpolation=bicubic")),
                 {"nearest or bilinear"});
  check_contains(error_of(one_layer("7x5x3", "resize r")), {"missing required attribute 'size'"});
  const auto g = net(one_layer("4x4x12", "groupnorm n groups=3"));
  CHECK(params(g, "n") == 24);
  check_contains(error_of(one_layer("4x4x12", "groupnorm n groups=5")), {"groups=5 must divide the 12 channels"});
  check_contains(error_of(one_layer("12", "groupnorm n groups=3")), {"groupnorm needs a rank-4 input"});
  CHECK(shape_of(net("input x shape=4x1x3\ninput y shape=1x5x1\nmaximum m <- x, y\n"), "m") ==
        ir::Shape{1, 4, 5, 3});
  check_contains(error_of("input x shape=4x2x3\ninput y shape=4x5x3\nminimum m <- x, y\n"),
                 {"layer 'm' (minimum)", "equal sizes or 1"});
}

TEST_CASE("unitnorm keeps the shape; transpose reorders the axes after the batch") {
  CHECK(shape_of(net(one_layer("7x5x3", "unitnorm u")), "u") == ir::Shape{1, 7, 5, 3});
  check_contains(error_of(one_layer("7x5x3", "unitnorm u epsilon=0")), {"epsilon must be > 0"});
  CHECK(shape_of(net(one_layer("7x5x3", "transpose t perm=2x1x3")), "t") == ir::Shape{1, 5, 7, 3});
  CHECK(shape_of(net(one_layer("7x5x3", "transpose t perm=3x1x2")), "t") == ir::Shape{1, 3, 7, 5});
  check_contains(error_of(one_layer("24", "transpose t perm=1")), {"transpose needs a rank-4 input"});
  check_contains(error_of(one_layer("7x5x3", "transpose t perm=2x1")),
                 {"perm=2x1 is not an order of the input 7x5x3's 3 axes", "each of 1..3 once", "perm=1x2x3"});
  check_contains(error_of(one_layer("7x5x3", "transpose t perm=2x2x3")), {"each of 1..3 once"});
  check_contains(error_of(one_layer("7x5x3", "transpose t perm=1x2x4")), {"each of 1..3 once"});
  check_contains(error_of(one_layer("7x5x3", "transpose t")), {"missing required attribute 'perm'"});
}

TEST_CASE("multiply broadcasts dimensions of size 1") {
  auto g = net(
      "input x shape=8x8x3\n"
      "globalavgpool2d s keepdims=true\n"
      "input r shape=8x1x1\n"
      "multiply se <- x, s\n"
      "multiply rs <- s, x, r\n"
      "multiply m <- x, x\n");
  CHECK(shape_of(g, "se") == ir::Shape{1, 8, 8, 3});
  CHECK(shape_of(g, "rs") == ir::Shape{1, 8, 8, 3});
  CHECK(shape_of(g, "m") == ir::Shape{1, 8, 8, 3});
  CHECK(params(g, "se") == 0);
  // 1x1xC and Hx1x1 broadcast to HxWxC, and vectors too.
  CHECK(shape_of(net("input a shape=1x1x3\ninput b shape=5x1x1\nmultiply m <- a, b\n"), "m") == ir::Shape{1, 5, 1, 3});
  CHECK(shape_of(net("input a shape=1\ninput b shape=6\nmultiply m <- a, b\n"), "m") == ir::Shape{1, 6});

  check_contains(error_of("input x shape=8x8x3\ninput y shape=4x4x3\nmultiply m <- x, y\n"),
                 {"t.cnn:3", "layer 'm' (multiply)", "input 1 is 8x8x3, input 2 is 4x4x3", "equal sizes or 1"});
  check_contains(error_of("input x shape=8x8x3\ninput y shape=1x1x3\ninput z shape=1x1x2\nmultiply m <- x, y, z\n"),
                 {"input 1 is 8x8x3, input 3 is 1x1x2"});
  check_contains(error_of("input x shape=8x8x3\ninput y shape=3\nmultiply m <- x, y\n"),
                 {"input 1 is 8x8x3, input 2 is 3", "one rank"});
  check_contains(error_of("input x shape=3\nmultiply m\n"), {"takes at least 2 input(s), got 1"});
  // The batch must match or be 1 (only graphs built in code can have other batches).
  ir::Node m;
  m.name = "m";
  m.op = ir::OpKind::Multiply;
  CHECK(ir::infer(m, {ir::TensorType{{1, 1, 1, 3}}, ir::TensorType{{4, 2, 2, 3}}}, 4).type.shape ==
        ir::Shape{4, 2, 2, 3});
  CHECK_THROWS_WITH_AS(ir::infer(m, {ir::TensorType{{2, 1, 1, 3}}, ir::TensorType{{4, 2, 2, 3}}}, 4),
                       doctest::Contains("input 1 is 2x1x1x3, input 2 is 4x2x2x3"), cnnc::Error);
}

TEST_CASE("add and concat check their input shapes") {
  auto g = net(
      "input x shape=8x8x3\n"
      "conv2d a filters=5 kernel=1 <- x\n"
      "conv2d b filters=3 kernel=1 <- x\n"
      "concat c <- x, a, b\n"
      "add s <- x, b, x\n");
  CHECK(shape_of(g, "c") == ir::Shape{1, 8, 8, 11});
  CHECK(shape_of(g, "s") == ir::Shape{1, 8, 8, 3});
  CHECK(params(g, "c") == 0);

  check_contains(error_of("input x shape=8x8x3\nconv2d a filters=5 kernel=1\nadd s <- x, a\n"),
                 {"t.cnn:3", "layer 's' (add)", "all inputs must have one shape", "input 1 is 8x8x3",
                  "input 2 is 8x8x5"});
  check_contains(error_of("input x shape=8x8x3\nmaxpool2d p pool=2\nconcat c <- x, p\n"),
                 {"t.cnn:3", "layer 'c' (concat)", "all but the channel axis", "input 2 is 4x4x3"});
  check_contains(error_of("input x shape=8x8x3\nflatten f\nconcat c <- x, f\n"), {"layer 'c' (concat)", "input 2 is 192"});
  // Vectors concatenate too.
  CHECK(shape_of(net("input x shape=4\ninput y shape=6\nconcat c <- x, y\n"), "c") == ir::Shape{1, 10});
}

TEST_CASE("the batch is the first dimension and can be changed") {
  auto g = net(one_layer("32x32x3", "conv2d l filters=10 kernel=5 padding=2"), 8);
  CHECK(g.batch() == 8);
  CHECK(shape_of(g, "l") == ir::Shape{8, 32, 32, 10});
  CHECK(params(g, "l") == 760);  // weights do not depend on the batch
  CHECK(macs(g, "l") == int64_t{8} * 32 * 32 * 10 * 75);
  g.set_batch(2);
  CHECK(shape_of(g, "l") == ir::Shape{2, 32, 32, 10});
  CHECK_THROWS_AS(g.set_batch(0), cnnc::Error);
  check_contains(error_of(one_layer("4x4x1", "relu r"), 0), {"t.cnn", "batch size must be >= 1"});
}

TEST_CASE("huge shapes are rejected, never overflowed") {
  check_contains(error_of("input x shape=65536x65536x3\n"),
                 {"t.cnn:1", "layer 'x' (input)", "more than 2^31 - 1 elements"});
  // Activations, weights and the batch all count.
  check_contains(error_of(one_layer("4x4x65536", "conv2d c filters=65536 kernel=1")),
                 {"layer 'c' (conv2d)", "65536x65536", "more than 2^31 - 1 elements"});
  check_contains(error_of("input x shape=100000\ndense d units=100000\n"), {"layer 'd' (dense)", "more than 2^31 - 1"});
  check_contains(error_of("input x shape=1024x1024x3\n", 1024), {"layer 'x' (input)", "more than 2^31 - 1"});
  // Sizes that do not fit int64 are refused while parsing; absurd attributes before any arithmetic.
  check_contains(error_of("input x shape=99999999999999999999x2x3\n"), {"layer 'x' (input)", "positive sizes"});
  check_contains(error_of(one_layer("7x7x1", "conv2d c filters=1 kernel=3 padding=9223372036854775807")),
                 {"layer 'c' (conv2d)", "at most 2^31 - 1"});
  check_contains(error_of(one_layer("7x7x1", "conv2d c filters=1 kernel=3037000500 dilation=3037000500")),
                 {"layer 'c' (conv2d)", "at most 2^31 - 1"});
  check_contains(error_of(one_layer("7x7x1", "conv2d c filters=1 kernel=3 strides=9223372036854775807 padding=same")),
                 {"layer 'c' (conv2d)", "at most 2^31 - 1"});
  check_contains(error_of(one_layer("7x7x1", "zeropadding2d z pad=9223372036854775807")),
                 {"layer 'z' (zeropadding2d)", "at most 2^31 - 1"});
  check_contains(error_of(one_layer("7x7x1", "conv2d c filters=1 kernel=0")), {"must be >= 1"});
  check_contains(error_of(one_layer("7x7x1", "conv2d c filters=1 kernel=8")),
                 {"window (8) is larger than the padded input (7)"});
  check_contains(error_of("input x shape=2x3\n"), {"shape must be HxWxC (an image) or C (a vector), got 2x3"});
}

TEST_CASE("infer() alone reports without a location; Graph::add adds it") {
  ir::Node n;
  n.name = "c";
  n.op = ir::OpKind::Conv2D;
  ir::Conv2DAttrs a;
  a.filters = 1;
  a.kernel = {3, 3};
  a.strides = {3, 3};
  n.attrs = a;
  ir::TensorType in{{1, 7, 7, 1}};
  try {
    ir::infer(n, {in}, 1);
    FAIL("no error");
  } catch (const cnnc::Error& e) {
    const std::string msg = e.what();
    CHECK(msg.rfind("height:", 0) == 0);
  }
  a.strides = {2, 2};
  n.attrs = a;
  const ir::Inferred inf = ir::infer(n, {in}, 1);
  CHECK(inf.type.shape == ir::Shape{1, 3, 3, 1});
  REQUIRE(inf.params.size() == 2);
  CHECK(inf.params[0].role == "kernel");
  CHECK(inf.params[0].init == ir::Init::GlorotUniform);
  CHECK(inf.params[0].fan_in == 9);
  CHECK(inf.params[0].fan_out == 9);
  CHECK(inf.params[1].init == ir::Init::Zeros);
}
