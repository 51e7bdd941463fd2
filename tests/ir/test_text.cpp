// The textual form: the example networks in models/ and hand-written graphs print, parse and
// print again identically; the canonical form; the verifier; the models' exact parameter totals.
#include <doctest/doctest.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "ir/error.h"
#include "ir/shape_inference.h"
#include "ir/text.h"
#include "tests/util.h"

namespace ir = cnnc::ir;

namespace {

const char* const kModels[] = {"seed_layer", "lenet5", "cifar10_cnn", "alexnet", "vgg16", "resnet_mini"};

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f, "cannot open " << path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ir::Graph model(const std::string& name) {
  const std::string path = cnnc::test::source_path("models/" + name + ".cnn");
  return ir::parse(read_text(path), path);
}

using ir::total_params;

int64_t total_macs(const ir::Graph& g) {
  int64_t t = 0;
  for (const auto& n : g.nodes()) t += ir::macs(n, ir::input_types(g, n));
  return t;
}

// print -> parse -> print is identical, the re-parsed graph equals the original, and both verify.
void check_round_trip(const ir::Graph& g) {
  const std::string once = ir::print(g);
  ir::Graph again = ir::parse(once, "printed.cnn");
  const std::string twice = ir::print(again);
  CHECK(once == twice);
  ir::verify(g);
  ir::verify(again);
  CHECK(again.name == g.name);
  REQUIRE(again.size() == g.size());
  for (int i = 0; i < g.size(); ++i) {
    const ir::Node &a = g.node(i), &b = again.node(i);
    CAPTURE(a.name);
    CHECK(a.name == b.name);
    CHECK(a.op == b.op);
    CHECK(a.attrs == b.attrs);
    CHECK(a.inputs == b.inputs);
    CHECK(a.type == b.type);
    CHECK(ir::param_count(a) == ir::param_count(b));
  }
  CHECK(again.outputs() == g.outputs());
}

// Exercises every op and every attribute with a non-default value (and some defaults written
// out, which the canonical form drops).
const char* const kAllAttrs = R"(# every op and every attribute
network all_attrs
input a shape=16x16x4
input v shape=10
input lab shape=1
input wm shape=6
zeropadding2d zp pad=1,2,0,3 <- a
conv2d c1 filters=8 kernel=3x5 strides=1x2 padding=1,0,2,1 dilation=1x1 groups=4 use_bias=false round=floor
conv2d c2 filters=8 kernel=3 padding=same dilation=2 activation=leakyrelu <- a
conv2d c3 filters=8 kernel=2 strides=2 padding=valid round=exact activation=linear
maxpool2d mp pool=3 strides=1 padding=same <- c2.leakyrelu
avgpool2d ap pool=2x2 strides=2x2 padding=0,1,0,1 round=floor
batchnorm bn epsilon=1e-05 <- mp
relu r
relu6 r6
leakyrelu lr alpha=0.1
sigmoid sg
tanh th
affine af <- bn
layernorm ln epsilon=1e-06 <- bn
swish sw
hardsigmoid hs
hard_silu hsl
gelu ge
gelu_tanh gt
mish mi
elu el
selu se
softplus sp
softsign ss
exponential ex
relu rl max_value=6 negative_slope=0.1 threshold=0.5
relu ri max_value=inf negative_slope=0 threshold=0
globalmaxpool2d gmp keepdims=true <- bn
multiply mu <- ri, gmp, hs
cropping2d cr crop=1,0,2,1
reshape rs shape=13x15x8
globalmaxpool2d gm2 keepdims=false
reshape rv shape=2x2x2
add s <- th, c2.leakyrelu, mp
concat cat <- s, bn
globalavgpool2d gap keepdims=true
flatten fl
dropout dr rate=0.25
dense d1 units=3 activation=relu6
dense d2 units=4 use_bias=false activation=sigmoid <- v
softmax sm <- d2
log_softmax ls <- d2
dense d3 units=2 activation=tanh <- d1
conv2d c4 filters=8 kernel=1 epilogue=add+gelu schedule=tile:v8,c8,x4,k8,r1 <- c3, c3
maxpool2d mp2 pool=2 strides=1 padding=same epilogue=add+relu schedule=pool:v8,r2 <- c3, c3
batchnorm bn2 epilogue=mish schedule=pointwise:v4,r3 <- c3
parameter c3.kernel shape=2x2x8x8
conv2d_grad_input gi filters=8 kernel=2 strides=2 input=16x16x8 <- c3, c3.kernel
conv2d_grad_kernel gk filters=8 kernel=2 strides=2 input=16x16x8 <- c2.leakyrelu, c3
parameter d1.kernel shape=16x3
dense_grad_input dgi <- d1, d1.kernel
dense_grad_kernel dgk <- fl, d1
bias_grad bg <- c3
maxpool2d_grad mpg pool=3 strides=1 padding=same <- c2.leakyrelu, mp
avgpool2d_grad apg pool=2x2 strides=2x2 padding=0,1,0,1 round=floor <- mp, ap
globalavgpool2d_grad gapg keepdims=true <- cat, gap
activation_grad ag of=leakyrelu alpha=0.1 <- lr, lr
softmax_ce_grad ce <- sm, lab
mse_grad mse <- sm, sm
augment au flip_h=true flip_v=true rotate=0.1 zoom=0.2 translate=0.05 contrast=0.3 brightness=0.1 value_min=-1 value_max=1 <- a
recolor rc contrast=true value_min=-1 value_max=1 <- a, d3
extremum_grad eg index=1 minimum=true <- c3, c3, gmp
softmax_grad smg of=log_softmax <- ls, ls
warp wp <- a, wm
batch_sums bs <- a
batchnorm_train bt epsilon=0.01 <- a, bs
batchnorm_gamma_grad bgg <- a, bs, bt
batchnorm_grad bgr <- a, bs, bt, bgg, bgg, bgg
channel_slice csl begin=3 size=5 <- cat
conv2d_transpose ct filters=5 kernel=3x2 strides=2x1 padding=0,1,1,0 dilation=1 output_padding=1x0 use_bias=false activation=relu <- c3
conv2d_transpose ct2 filters=2 kernel=3 dilation=2 padding=same <- c3
resize rz size=5x7 interpolation=nearest <- c3
resize rz2 size=16x16 interpolation=bilinear <- c3
groupnorm gn groups=4 epsilon=1e-05 <- c3
maximum mx <- c3, bn2
minimum mn <- c3, gmp, c4
sum_to_shape st shape=1x1x8 <- c3
activation_grad ag2 of=swish <- c3, c3
unitnorm un <- c3
unitnorm un2 epsilon=0.001 <- c3
transpose tp perm=3x1x2 <- rz
layernorm_grad lng epsilon=0.01 <- c3, c3, bg
layernorm_gamma_grad lngg <- c3, c3
channel_scale chs <- c3, bg
globalmaxpool2d_grad gmg keepdims=true <- c3, gmp
unitnorm_grad ung epsilon=0.001 <- c3, c3
groupnorm_grad gng groups=4 epsilon=1e-05 <- c3, c3, bg
groupnorm_gamma_grad gngg groups=2 <- c3, c3
resize_grad rzg size=16x16 interpolation=nearest <- rz
output sm, d3, c1, ap, ls, c4, mp2, bn2, gi, gk, dgi, dgk, bg, mpg, apg, gapg, ag, ce, mse, csl, ct.relu, ct2, rz, rz2, gn, mx, mn, st, ag2, un, un2, tp, lng, lngg, chs, gmg, ung, gng, gngg, rzg, rc, eg, smg
)";

const char* const kAllAttrsPrinted = R"(network all_attrs
input a shape=16x16x4                                             # 16x16x4
input v shape=10                                                  # 10
input lab shape=1                                                 # 1
input wm shape=6                                                  # 6
zeropadding2d zp pad=1,2,0,3 <- a                                 # 19x19x4
conv2d c1 filters=8 kernel=3x5 strides=1x2 padding=1,0,2,1 groups=4 use_bias=false round=floor  # 18x9x8
conv2d c2 filters=8 kernel=3x3 padding=same dilation=2x2 <- a     # 16x16x8
leakyrelu c2.leakyrelu                                            # 16x16x8
conv2d c3 filters=8 kernel=2x2 strides=2x2                        # 8x8x8
maxpool2d mp pool=3x3 strides=1x1 padding=same <- c2.leakyrelu    # 16x16x8
avgpool2d ap pool=2x2 strides=2x2 padding=0,1,0,1 round=floor     # 8x8x8
batchnorm bn epsilon=1e-05 <- mp                                  # 16x16x8
relu r                                                            # 16x16x8
relu6 r6                                                          # 16x16x8
leakyrelu lr alpha=0.1                                            # 16x16x8
sigmoid sg                                                        # 16x16x8
tanh th                                                           # 16x16x8
affine af <- bn                                                   # 16x16x8
layernorm ln epsilon=1e-06 <- bn                                  # 16x16x8
swish sw                                                          # 16x16x8
hardsigmoid hs                                                    # 16x16x8
hard_silu hsl                                                     # 16x16x8
gelu ge                                                           # 16x16x8
gelu_tanh gt                                                      # 16x16x8
mish mi                                                           # 16x16x8
elu el                                                            # 16x16x8
selu se                                                           # 16x16x8
softplus sp                                                       # 16x16x8
softsign ss                                                       # 16x16x8
exponential ex                                                    # 16x16x8
relu rl max_value=6 negative_slope=0.1 threshold=0.5              # 16x16x8
relu ri                                                           # 16x16x8
globalmaxpool2d gmp keepdims=true <- bn                           # 1x1x8
multiply mu <- ri, gmp, hs                                        # 16x16x8
cropping2d cr crop=1,0,2,1                                        # 15x13x8
reshape rs shape=13x15x8                                          # 13x15x8
globalmaxpool2d gm2                                               # 8
reshape rv shape=2x2x2                                            # 2x2x2
add s <- th, c2.leakyrelu, mp                                     # 16x16x8
concat cat <- s, bn                                               # 16x16x16
globalavgpool2d gap keepdims=true                                 # 1x1x16
flatten fl                                                        # 16
dropout dr rate=0.25                                              # 16
dense d1 units=3                                                  # 3
relu6 d1.relu6                                                    # 3
dense d2 units=4 use_bias=false <- v                              # 4
sigmoid d2.sigmoid                                                # 4
softmax sm                                                        # 4
log_softmax ls <- d2.sigmoid                                      # 4
dense d3 units=2 <- d1.relu6                                      # 2
tanh d3.tanh                                                      # 2
conv2d c4 filters=8 kernel=1x1 epilogue=add+gelu schedule=tile:v8,c8,x4,k8,r1 <- c3, c3  # 8x8x8
maxpool2d mp2 pool=2x2 strides=1x1 padding=same epilogue=add+relu schedule=pool:v8,r2 <- c3, c3  # 8x8x8
batchnorm bn2 epilogue=mish schedule=pointwise:v4,r3 <- c3        # 8x8x8
parameter c3.kernel shape=2x2x8x8                                 # 2x2x8x8
conv2d_grad_input gi filters=8 kernel=2x2 strides=2x2 input=16x16x8 <- c3, c3.kernel  # 16x16x8
conv2d_grad_kernel gk filters=8 kernel=2x2 strides=2x2 input=16x16x8 <- c2.leakyrelu, c3  # 2x2x8x8
parameter d1.kernel shape=16x3                                    # 16x3
dense_grad_input dgi <- d1.relu6, d1.kernel                       # 16
dense_grad_kernel dgk <- fl, d1.relu6                             # 16x3
bias_grad bg <- c3                                                # 8
maxpool2d_grad mpg pool=3x3 strides=1x1 padding=same <- c2.leakyrelu, mp  # 16x16x8
avgpool2d_grad apg pool=2x2 strides=2x2 padding=0,1,0,1 round=floor <- mp, ap  # 16x16x8
globalavgpool2d_grad gapg keepdims=true <- cat, gap               # 16x16x16
activation_grad ag of=leakyrelu alpha=0.1 <- lr, lr               # 16x16x8
softmax_ce_grad ce <- sm, lab                                     # 4
mse_grad mse <- sm, sm                                            # 4
augment au flip_h=true flip_v=true rotate=0.1 zoom=0.2 translate=0.05 contrast=0.3 brightness=0.1 value_min=-1 value_max=1 <- a  # 16x16x4
recolor rc contrast=true value_min=-1 value_max=1 <- a, d3.tanh   # 16x16x4
extremum_grad eg index=1 minimum=true <- c3, c3, gmp              # 8x8x8
softmax_grad smg of=log_softmax <- ls, ls                         # 4
warp wp <- a, wm                                                  # 16x16x4
batch_sums bs <- a                                                # 2x4
batchnorm_train bt epsilon=0.01 <- a, bs                          # 16x16x4
batchnorm_gamma_grad bgg <- a, bs, bt                             # 4
batchnorm_grad bgr <- a, bs, bt, bgg, bgg, bgg                    # 16x16x4
channel_slice csl begin=3 size=5 <- cat                           # 16x16x5
conv2d_transpose ct filters=5 kernel=3x2 strides=2x1 padding=0,1,1,0 output_padding=1x0 use_bias=false <- c3  # 17x8x5
relu ct.relu                                                      # 17x8x5
conv2d_transpose ct2 filters=2 kernel=3x3 padding=same dilation=2x2 <- c3  # 8x8x2
resize rz size=5x7 interpolation=nearest <- c3                    # 5x7x8
resize rz2 size=16x16 <- c3                                       # 16x16x8
groupnorm gn groups=4 epsilon=1e-05 <- c3                         # 8x8x8
maximum mx <- c3, bn2                                             # 8x8x8
minimum mn <- c3, gmp, c4                                         # 8x8x8
sum_to_shape st shape=1x1x8 <- c3                                 # 1x1x8
activation_grad ag2 of=swish <- c3, c3                            # 8x8x8
unitnorm un <- c3                                                 # 8x8x8
unitnorm un2 epsilon=0.001 <- c3                                  # 8x8x8
transpose tp perm=3x1x2 <- rz                                     # 8x5x7
layernorm_grad lng epsilon=0.01 <- c3, c3, bg                     # 8x8x8
layernorm_gamma_grad lngg <- c3, c3                               # 8
channel_scale chs <- c3, bg                                       # 8x8x8
globalmaxpool2d_grad gmg keepdims=true <- c3, gmp                 # 8x8x8
unitnorm_grad ung epsilon=0.001 <- c3, c3                         # 8x8x8
groupnorm_grad gng groups=4 epsilon=1e-05 <- c3, c3, bg           # 8x8x8
groupnorm_gamma_grad gngg groups=2 <- c3, c3                      # 8
resize_grad rzg size=16x16 interpolation=nearest <- rz            # 16x16x8
output sm, d3.tanh, c1, ap, ls, c4, mp2, bn2, gi, gk, dgi, dgk, bg, mpg, apg, gapg, ag, ce, mse, csl, ct.relu, ct2, rz, rz2, gn, mx, mn, st, ag2, un, un2, tp, lng, lngg, chs, gmg, ung, gng, gngg, rzg, rc, eg, smg
)";

}  // namespace

TEST_CASE("every model in models/ round-trips and verifies") {
  for (const char* name : kModels) {
    CAPTURE(name);
    ir::Graph g = model(name);
    CHECK(g.name == name);
    CHECK(g.node(0).op == ir::OpKind::Input);
    check_round_trip(g);
    // Printing the printed form of a model is a fixed point, also at another batch size.
    ir::Graph b4 = ir::parse(ir::print(g), "b4.cnn", 4);
    CHECK(ir::print(b4) == ir::print(g));
    CHECK(b4.node(b4.size() - 1).type.shape[0] == 4);
    CHECK(total_params(b4) == total_params(g));
  }
}

TEST_CASE("the models' exact parameter totals and output shapes") {
  struct Expect {
    const char* name;
    int64_t params;
    ir::Shape out;
  };
  for (const Expect& e : {Expect{"seed_layer", 760, {1, 32, 32, 10}}, Expect{"lenet5", 61706, {1, 10}},
                          Expect{"cifar10_cnn", 1250858, {1, 10}}, Expect{"alexnet", 62378344, {1, 1000}},
                          Expect{"vgg16", 138357544, {1, 1000}}, Expect{"resnet_mini", 22930, {1, 10}}}) {
    CAPTURE(e.name);
    ir::Graph g = model(e.name);
    CHECK(total_params(g) == e.params);
    REQUIRE(g.outputs().size() == 1);
    CHECK(g.node(g.outputs()[0]).type.shape == e.out);
  }
}

TEST_CASE("per-layer facts of the models") {
  ir::Graph seed = model("seed_layer");
  CHECK(total_macs(seed) == 32 * 32 * 10 * 5 * 5 * 3);

  // LeNet-5, layer by layer (docs/lenet5.md).
  ir::Graph lenet = model("lenet5");
  auto p = [&](const ir::Graph& g, const char* n) {
    REQUIRE(g.find(n) >= 0);
    return ir::param_count(g.node(g.find(n)));
  };
  CHECK(p(lenet, "c1") == 156);
  CHECK(p(lenet, "c3") == 2416);
  CHECK(p(lenet, "c5") == 48120);
  CHECK(p(lenet, "f6") == 10164);
  CHECK(p(lenet, "output") == 850);
  CHECK(lenet.node(lenet.find("s4")).type.shape == ir::Shape{1, 5, 5, 16});
  CHECK(lenet.find("c1.tanh") >= 0);  // activation=tanh made its own layer
  CHECK(lenet.node(lenet.size() - 1).op == ir::OpKind::Softmax);

  // Keras' CIFAR-10 example floors 13x13 to 6x6 in its second pooling.
  ir::Graph cifar = model("cifar10_cnn");
  CHECK(cifar.node(cifar.find("pool1")).type.shape == ir::Shape{1, 15, 15, 32});
  CHECK(cifar.node(cifar.find("pool2")).type.shape == ir::Shape{1, 6, 6, 64});
  CHECK(cifar.node(cifar.find("flatten")).type.shape == ir::Shape{1, 2304});

  ir::Graph alex = model("alexnet");
  CHECK(alex.node(alex.find("conv1")).type.shape == ir::Shape{1, 55, 55, 96});
  CHECK(alex.node(alex.find("pool5")).type.shape == ir::Shape{1, 6, 6, 256});
  CHECK(p(alex, "fc6") == 9216 * 4096 + 4096);

  ir::Graph vgg = model("vgg16");
  CHECK(vgg.node(vgg.find("block5_pool")).type.shape == ir::Shape{1, 7, 7, 512});
  CHECK(p(vgg, "fc1") == 102764544);
  CHECK(p(vgg, "predictions") == 4097000);
  CHECK(total_macs(vgg) == 15470264320);  // the usual "15.5 GMACs"

  ir::Graph res = model("resnet_mini");
  CHECK(res.node(res.find("res1_add")).type.shape == ir::Shape{1, 32, 32, 16});
  CHECK(res.node(res.find("res2_add")).type.shape == ir::Shape{1, 16, 16, 32});
  CHECK(res.node(res.find("inc_concat")).type.shape == ir::Shape{1, 16, 16, 48});
  CHECK(res.node(res.find("gap")).type.shape == ir::Shape{1, 48});
}

TEST_CASE("every table activation: a layer, an activation= and an epilogue that round-trip") {
  for (int k = 0; k < ir::kNumOps; ++k) {
    const ir::OpInfo& info = ir::op_info(static_cast<ir::OpKind>(k));
    if (!(info.traits & ir::kEpilogueActivation)) continue;
    const std::string act(info.text);
    CAPTURE(act);
    const std::string text = "input x shape=4x4x3\n" + act + " a\nconv2d c filters=2 kernel=1x1 activation=" + act +
                             "\nconv2d d filters=2 kernel=1x1 epilogue=add+" + act + " <- x, c." + act + "\n";
    const ir::Graph g = ir::parse(text, "t.cnn");
    CHECK(g.node(1).op == info.kind);
    CHECK(g.node(g.find("c." + act)).op == info.kind);
    CHECK(g.node(g.find("d")).epilogue == ir::Epilogue{true, true, info.kind});
    check_round_trip(g);
    // Its Keras names find it.
    for (std::string_view rest = ir::keras_names(info.kind); !rest.empty();) {
      const auto space = rest.find(' ');
      CHECK(ir::find_activation(rest.substr(0, space)) == &info);
      if (space == std::string_view::npos) break;
      rest.remove_prefix(space + 1);
    }
  }
}

TEST_CASE("a workload key is what a kernel computes: not its schedule, name or weights") {
  const ir::Graph g = ir::parse(
      "input x shape=8x8x16\n"
      "conv2d a filters=32 kernel=3x3 schedule=tile:v16,c32,x4,k16,r2 <- x\n"
      "conv2d b filters=32 kernel=3x3 schedule=tile:v8,c16,x8,k8,r1 <- x\n"
      "conv2d c filters=32 kernel=3x3 epilogue=relu <- x\n"
      "conv2d d filters=32 kernel=3x3 dilation=2 <- x\n",
      "t.cnn");
  const auto key = [&](const char* name) { return ir::workload_key(g, g.node(g.find(name))); };
  CHECK(key("a") == key("b"));
  CHECK(key("a") != key("c"));  // an epilogue changes what is computed
  CHECK(key("a") != key("d"));
  CHECK(key("a") == "conv2d filters=32 kernel=3x3 in 1x8x8x16 out 1x6x6x32 params kernel:3x3x16x32 bias:32");
}

TEST_CASE("every op and attribute: the canonical form, golden") {
  ir::Graph g = ir::parse(kAllAttrs, "all.cnn");
  CHECK(ir::print(g) == kAllAttrsPrinted);
  check_round_trip(g);
  // Every op of ops.def appears (the activation table's, which have no attributes, are checked
  // by the next test case, from the table).
  const std::string names = ir::op_names();
  size_t start = 0;
  int ops = 0;
  while (start <= names.size()) {
    size_t end = names.find(", ", start);
    if (end == std::string::npos) end = names.size();
    const std::string op = names.substr(start, end - start);
    const ir::OpInfo* info = ir::find_op(op);
    REQUIRE_MESSAGE(info != nullptr, op);
    start = end + 2;
    if (info->traits & ir::kEpilogueActivation) continue;
    bool seen = false;
    for (const auto& n : g.nodes()) seen = seen || n.op == info->kind;
    CHECK_MESSAGE(seen, "no " << op << " layer");
    ++ops;
  }
  CHECK(ops >= 21);  // a new op must be added to kAllAttrs above
  // The attributes read what was written.
  const auto& c1 = g.node(g.find("c1")).attr<ir::Conv2DAttrs>();
  CHECK(c1.kernel == ir::Pair{3, 5});
  CHECK(c1.strides == ir::Pair{1, 2});
  CHECK(c1.padding == ir::Padding{ir::Padding::Explicit, 1, 0, 2, 1});
  CHECK(c1.groups == 4);
  CHECK_FALSE(c1.use_bias);
  CHECK(c1.round == ir::Rounding::Floor);
  CHECK(g.node(g.find("bn")).attr<ir::BatchNormAttrs>().epsilon == 1e-5f);
  CHECK(g.node(g.find("lr")).attr<ir::LeakyReLUAttrs>().alpha == 0.1f);
  CHECK(g.node(g.find("c2.leakyrelu")).attr<ir::LeakyReLUAttrs>().alpha == 0.3f);  // Keras' default
  CHECK(g.node(g.find("dr")).attr<ir::DropoutAttrs>().rate == 0.25f);
  const auto& rl = g.node(g.find("rl")).attr<ir::ReLUAttrs>();
  CHECK(rl.max_value == 6.f);
  CHECK(rl.negative_slope == 0.1f);
  CHECK(rl.threshold == 0.5f);
  CHECK(g.node(g.find("ri")).attr<ir::ReLUAttrs>() == ir::ReLUAttrs{});
  CHECK(g.node(g.find("cr")).attr<ir::CropAttrs>().crop == ir::Padding{ir::Padding::Explicit, 1, 0, 2, 1});
  CHECK(g.node(g.find("rs")).attr<ir::ReshapeAttrs>().shape == ir::Shape{13, 15, 8});
  CHECK(g.node(g.find("rv")).type.shape == ir::Shape{1, 2, 2, 2});
  CHECK(g.node(g.find("ap")).attr<ir::Pool2DAttrs>().effective_strides() == ir::Pair{2, 2});
  CHECK(g.node(g.find("mp")).attr<ir::Pool2DAttrs>().effective_strides() == ir::Pair{1, 1});
  const auto& ct = g.node(g.find("ct")).attr<ir::Conv2DTransposeAttrs>();
  CHECK(ct.output_padding == ir::Pair{1, 0});
  CHECK(ct.padding == ir::Padding{ir::Padding::Explicit, 0, 1, 1, 0});
  CHECK(g.node(g.find("rz")).attr<ir::ResizeAttrs>().interpolation == ir::Interpolation::Nearest);
  CHECK(g.node(g.find("gn")).attr<ir::GroupNormAttrs>().groups == 4);
  CHECK(g.node(g.find("tp")).attr<ir::TransposeAttrs>().perm == ir::Shape{3, 1, 2});
  CHECK(g.node(g.find("un2")).attr<ir::UnitNormAttrs>().epsilon == 1e-3f);
  // activation=linear adds no layer.
  CHECK(g.find("c3.linear") < 0);
  CHECK(g.node(g.find("mp")).inputs == std::vector<ir::NodeId>{g.find("c2.leakyrelu")});
  // Outputs in the order given; a name with an activation denotes the activation's layer.
  const std::vector<std::string> outs{
      "sm",   "d3.tanh", "c1",  "ap",  "ls",   "c4",   "mp2", "bn2", "gi",  "gk",      "dgi",
      "dgk",  "bg",      "mpg", "apg", "gapg", "ag",   "ce",  "mse", "csl", "ct.relu", "ct2",
      "rz",   "rz2",     "gn",  "mx",  "mn",   "st",   "ag2", "un",  "un2", "tp",      "lng",
      "lngg", "chs",     "gmg", "ung", "gng",  "gngg", "rzg", "rc",  "eg",  "smg"};
  std::vector<ir::NodeId> want;
  for (const auto& o : outs) want.push_back(g.find(o));
  CHECK(g.outputs() == want);
  // Epilogues and schedules are the node's, after its attributes.
  CHECK(g.node(g.find("c4")).epilogue == ir::Epilogue{true, true, ir::OpKind::Gelu});
  CHECK(ir::to_text(g.node(g.find("mp2")).schedule) == "pool:v8,r2");
  CHECK(g.node(g.find("bn2")).schedule.rows == 3);
  CHECK(g.inputs() ==
        std::vector<ir::NodeId>{g.find("a"), g.find("v"), g.find("lab"), g.find("wm")});
}

TEST_CASE("canonical form: defaults dropped, shorthand expanded, inputs written only when needed") {
  const std::string text =
      "input x shape=8x8x3\n"
      "conv2d c filters=4 kernel=3 padding=same activation=relu\n"
      "conv2d p filters=4 kernel=1 <- x\n"
      "add s <- c, p\n"
      "output s, c\n";
  const std::string printed =
      "network network\n"
      "input x shape=8x8x3                         # 8x8x3\n"
      "conv2d c filters=4 kernel=3x3 padding=same  # 8x8x4\n"
      "relu c.relu                                 # 8x8x4\n"
      "conv2d p filters=4 kernel=1x1 <- x          # 8x8x4\n"
      "add s <- c.relu, p                          # 8x8x4\n"
      "output s, c.relu\n";
  CHECK(ir::print(ir::parse(text, "t.cnn")) == printed);
  CHECK(ir::print(ir::parse(printed, "t.cnn")) == printed);

  CHECK(ir::print(ir::parse(read_text(cnnc::test::source_path("models/seed_layer.cnn")), "s.cnn")) ==
        "network seed_layer\n"
        "input image shape=32x32x3                    # 32x32x3\n"
        "conv2d conv filters=10 kernel=5x5 padding=2  # 32x32x10\n");

  // Written defaults disappear; an explicit input that is the previous layer is not repeated.
  CHECK(ir::print(ir::parse("input x shape=4x4x1\nconv2d c filters=1 kernel=1x1 strides=1 padding=valid dilation=1 "
                            "groups=1 use_bias=true round=exact <- x\nbatchnorm b epsilon=0.001\n"
                            "dropout d rate=0.5\nleakyrelu l alpha=0.3\nglobalavgpool2d g keepdims=false\n",
                            "t.cnn")) ==
        "network network\n"
        "input x shape=4x4x1            # 4x4x1\n"
        "conv2d c filters=1 kernel=1x1  # 4x4x1\n"
        "batchnorm b                    # 4x4x1\n"
        "dropout d                      # 4x4x1\n"
        "leakyrelu l                    # 4x4x1\n"
        "globalavgpool2d g              # 1\n");

  // Equal explicit paddings print as one number; padding=0 stays explicit (and means valid).
  ir::Graph pads = ir::parse("input x shape=4x4x1\nconv2d a filters=1 kernel=3 padding=1,1,1,1\n"
                             "conv2d b filters=1 kernel=3 padding=0\n",
                             "t.cnn");
  const std::string pp = ir::print(pads);
  CHECK(pp.find("conv2d a filters=1 kernel=3x3 padding=1 ") != std::string::npos);
  CHECK(pp.find("conv2d b filters=1 kernel=3x3 padding=0 ") != std::string::npos);
  check_round_trip(pads);
  // The last layer as the only output needs no output statement.
  CHECK(ir::print(ir::parse("input x shape=4\nrelu r\noutput r\n", "t.cnn")).find("output") == std::string::npos);
}

TEST_CASE("relu's attributes: defaults not printed, infinity reads and prints back") {
  // max_value's default is +infinity: written or not, a plain relu prints as `relu r`.
  for (const char* written : {"relu r", "relu r max_value=inf", "relu r max_value=infinity threshold=0"}) {
    CAPTURE(written);
    ir::Graph g = ir::parse(std::string("input x shape=4\n") + written + "\n", "t.cnn");
    CHECK(ir::print(g).find("relu r  ") != std::string::npos);
    CHECK(g.node(1).attr<ir::ReLUAttrs>().max_value == std::numeric_limits<float>::infinity());
    check_round_trip(g);
  }
  // Finite values print in their shortest form and read back to the same float.
  ir::Graph g = ir::parse("input x shape=4\nrelu r max_value=6.0 negative_slope=0.3 threshold=1e-3\n", "t.cnn");
  CHECK(ir::print(g).find("relu r max_value=6 negative_slope=0.3 threshold=0.001  ") != std::string::npos);
  check_round_trip(g);
  // The new activations have the shorthand too.
  ir::Graph sw = ir::parse("input x shape=4\ndense d units=2 activation=swish\ndense e units=2 activation=hardsigmoid\n",
                           "t.cnn");
  CHECK(sw.node(sw.find("d.swish")).op == ir::OpKind::Swish);
  CHECK(sw.node(sw.find("e.hardsigmoid")).op == ir::OpKind::HardSigmoid);
  // A plain relu by the activation shorthand is the default relu.
  ir::Graph c = ir::parse("input x shape=4x4x1\nconv2d c filters=1 kernel=1 activation=relu\n", "t.cnn");
  CHECK(c.node(2).attr<ir::ReLUAttrs>() == ir::ReLUAttrs{});
}

TEST_CASE("comments, blank lines, tabs, CRLF and spacing do not matter") {
  const std::string messy =
      "# a comment\r\n"
      "\r\n"
      "network   messy   # trailing comment\r\n"
      "\tinput\tx   shape=8x8x3\r\n"
      "   conv2d c filters=2 kernel=3 padding=same    # 8x8x2\r\n"
      "conv2d d filters=2 kernel=1<-x\r\n"
      "add s <-c,d\r\n"
      "output s , c\r\n"
      "# the end, without a final newline";
  ir::Graph g = ir::parse(messy, "m.cnn");
  CHECK(g.name == "messy");
  CHECK(g.size() == 4);
  CHECK(g.node(g.find("s")).inputs == std::vector<ir::NodeId>{g.find("c"), g.find("d")});
  CHECK(g.outputs() == std::vector<ir::NodeId>{g.find("s"), g.find("c")});
  check_round_trip(g);
}

TEST_CASE("graphs built in code print and parse") {
  ir::Graph g;
  g.name = "built";
  ir::Node in;
  in.name = "x";
  in.op = ir::OpKind::Input;
  in.attrs = ir::InputAttrs{{9, 9, 2}};
  g.add(in);
  ir::Node c;
  c.name = "c";
  c.op = ir::OpKind::Conv2D;
  ir::Conv2DAttrs ca;
  ca.filters = 6;
  ca.kernel = {3, 3};
  ca.strides = {3, 3};
  ca.padding = {ir::Padding::Same};
  ca.groups = 2;
  c.attrs = ca;
  c.inputs = {0};
  g.add(c);
  ir::Node a;
  a.name = "a";
  a.op = ir::OpKind::Add;
  a.inputs = {1, 1};
  g.add(a);
  g.set_outputs({2, 1});
  CHECK(g.node(1).type.shape == ir::Shape{1, 3, 3, 6});
  CHECK(ir::param_count(g.node(1)) == 3 * 3 * 1 * 6 + 6);
  check_round_trip(g);
  CHECK(ir::print(g) ==
        "network built\n"
        "input x shape=9x9x2                                              # 9x9x2\n"
        "conv2d c filters=6 kernel=3x3 strides=3x3 padding=same groups=2  # 3x3x6\n"
        "add a <- c, c                                                    # 3x3x6\n"
        "output a, c\n");
}

TEST_CASE("verify() catches what construction would have refused") {
  ir::Graph g = model("lenet5");
  ir::verify(g);
  SUBCASE("a wrong type") {
    g.node(g.find("c3")).type.shape = {1, 9, 9, 16};
    CHECK_THROWS_WITH_AS(ir::verify(g), doctest::Contains("layer 'c3' (conv2d)"), cnnc::Error);
    CHECK_THROWS_WITH_AS(ir::verify(g), doctest::Contains("disagrees with inference 1x10x10x16"), cnnc::Error);
  }
  SUBCASE("a duplicate name") {
    g.node(3).name = g.node(1).name;
    CHECK_THROWS_WITH_AS(ir::verify(g), doctest::Contains("duplicate name"), cnnc::Error);
  }
  SUBCASE("a forward reference") {
    g.node(1).inputs = {5};
    CHECK_THROWS_WITH_AS(ir::verify(g), doctest::Contains("is not an earlier node"), cnnc::Error);
  }
  SUBCASE("weights of the wrong shape") {
    g.node(g.find("c1")).params[0].value.shape = {5, 5, 1, 7};
    CHECK_THROWS_WITH_AS(ir::verify(g), doctest::Contains("weights 'kernel'"), cnnc::Error);
  }
  SUBCASE("weights with the wrong amount of data") {
    auto& k = g.node(g.find("c1")).params[0].value;
    k.data.assign(3, 0.f);
    CHECK_THROWS_WITH_AS(ir::verify(g), doctest::Contains("wrong number of values"), cnnc::Error);
  }
  SUBCASE("the wrong arity") {
    g.node(g.find("flatten")).inputs.clear();
    CHECK_THROWS_WITH_AS(ir::verify(g), doctest::Contains("wrong number of inputs"), cnnc::Error);
  }
}

TEST_CASE("parse errors name source:line and what is accepted") {
  auto error_of = [](const std::string& text) -> std::string {
    try {
      ir::parse(text, "e.cnn");
    } catch (const cnnc::Error& e) {
      return e.what();
    }
    FAIL("no error for: " << text);
    return {};
  };
  CHECK(error_of("input x shape=4\nfoo y\n").rfind("e.cnn:2: unknown layer type 'foo'; accepted are: input, conv2d", 0) == 0);
  CHECK(error_of("input x shape=4x4x1\nconv2d c filters=1\n") ==
        "e.cnn:2: layer 'c' (conv2d): missing required attribute 'kernel' (required: filters, kernel)");
  CHECK(error_of("input x shape=4x4x1\nconv2d c filters=1 kernel=1 kernel=1\n") ==
        "e.cnn:2: layer 'c' (conv2d): attribute 'kernel' is given twice");
  CHECK(error_of("input x shape=4x4x1\nconv2d c filters=1 kernel=1 activation=crelu\n")
            .find("activation 'crelu' is not known; accepted: linear, relu") != std::string::npos);
  // Keras' names are accepted too, from the activation table.
  CHECK(error_of("input x shape=4x4x1\nconv2d c filters=1 kernel=1 activation=crelu\n").find("silu") !=
        std::string::npos);
  CHECK(error_of("input x shape=4x4x1\nrelu6 r activation=relu\n") ==
        "e.cnn:2: layer 'r' (relu6): unknown attribute 'activation'; accepted: schedule");
  CHECK(error_of("input x shape=4x4x1\nrelu r activation=relu\n") ==
        "e.cnn:2: layer 'r' (relu): unknown attribute 'activation'; accepted: max_value, negative_slope, "
        "threshold, schedule");
  CHECK(error_of("input x shape=4x4x1\nrelu r max_value=six\n") ==
        "e.cnn:2: layer 'r' (relu): attribute 'max_value': 'six' is not a number");
  CHECK(error_of("input x shape=4x4x1\nreshape r shape=4x-4\n").find("is not positive sizes") !=
        std::string::npos);
  CHECK(error_of("input x shape=4x4x1\ncropping2d c crop=1,2\n").find("is not valid, same, P, or") !=
        std::string::npos);
  CHECK(error_of("input x shape=4x4x1\nconv2d c filters=1 kernel=1 padding=full\n") ==
        "e.cnn:2: layer 'c' (conv2d): attribute 'padding': 'full' is not valid, same, P, or top,bottom,left,right");
  CHECK(error_of("input x shape=4x4x1\nconv2d c filters=1 kernel=1 use_bias=1\n").find("is not true or false") !=
        std::string::npos);
  CHECK(error_of("input x shape=4x4x1\nconv2d c filters=1 kernel=1 round=ceil\n").find("is not exact or floor") !=
        std::string::npos);
  CHECK(error_of("input x shape=4x4x1\nconv2d c filters=1.5 kernel=1\n").find("'1.5' is not an integer") !=
        std::string::npos);
  CHECK(error_of("input x shape=4x4x1\nconv2d c filters=1 kernel=3x3x3\n").find("is not HxW like 3x3") !=
        std::string::npos);
  CHECK(error_of("input x shape=4x4x1\nconv2d c filters=1 kernel=1 junk\n").find("'junk' is not key=value") !=
        std::string::npos);
  CHECK(error_of("input x shape=4\nrelu 9lives\n").find("'9lives' is not a layer name") != std::string::npos);
  CHECK(error_of("input x shape=4\nrelu\n") == "e.cnn:2: expected: relu NAME [key=value ...] [<- INPUT, ...]");
  CHECK(error_of("input x shape=4\nnetwork late\n") == "e.cnn:2: 'network NAME' must come before the first layer");
  CHECK(error_of("network\n") == "e.cnn:1: expected: network NAME");
  CHECK(error_of("input x shape=4\noutput\n") == "e.cnn:2: expected: output LAYER[, LAYER...]");
  CHECK(error_of("input x shape=4\noutput y\n") == "e.cnn:2: unknown input 'y': inputs must name a layer defined above");
  CHECK(error_of("input x shape=4\n<- x\n").rfind("e.cnn:2: nothing before '<-'", 0) == 0);
  CHECK(error_of("input x shape=4\ninput y shape=4 <- x\n") == "e.cnn:2: layer 'y' (input): takes no inputs");
  CHECK(error_of("input x shape=4\nadd a <- x,\n").find("empty input name") != std::string::npos);
  CHECK(error_of("input x shape=4\nrelu r <- r\n") ==
        "e.cnn:2: layer 'r' (relu): unknown input 'r': inputs must name a layer defined above");
  CHECK(error_of("") == "e.cnn: no layers; a network starts with an input layer");
  CHECK(error_of("# only a comment\n\n") == "e.cnn: no layers; a network starts with an input layer");
  CHECK(error_of("network n\n") == "e.cnn: no layers; a network starts with an input layer");
  CHECK(error_of("input x shape=4\nrelu r\x01\n") == "e.cnn:2: control character in the line; the format is plain text");
}

TEST_CASE("a bounded number of layers") {
  std::string text = "input x shape=4\n";
  for (int i = 0; i < 10001; ++i) text += "relu r" + std::to_string(i) + "\n";
  CHECK_THROWS_WITH_AS(ir::parse(text, "big.cnn"), doctest::Contains("big.cnn:10001: more than 10000 layers"),
                       cnnc::Error);
}
