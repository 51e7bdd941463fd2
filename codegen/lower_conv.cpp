// Convolution (and dense, as a 1x1 convolution) lowered to Halide with a register-blocked
// CPU schedule: a tile of output channels x output pixels held in vector registers while the
// reduction (input channels, then kernel taps) runs inside it.
#include <algorithm>
#include <sstream>

#include "codegen/lower.h"
#include "ir/shape_inference.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

// How many vector accumulators the register tile uses: 12 of AVX2's 16 ymm registers, leaving
// room for the weight vectors and the broadcast input.
constexpr int kAccumulators = 12;

}  // namespace

Lowered lower_conv_core(const ConvSpec& s, const std::string& name, const Target& t) {
  Lowered l;
  const int ig = s.in_c / s.groups, og = s.out_c / s.groups;
  const std::vector<int> in_dims{s.in_c, s.in_w, s.in_h, s.n};
  const std::vector<int> w_dims{s.out_c, ig, s.kw, s.kh};
  ImageParam in = make_input(name + "_in", in_dims);
  ImageParam w = make_input(name + "_kernel", w_dims);
  l.args = {in, w};
  l.arg_dims = {in_dims, w_dims};
  ImageParam b;
  if (s.bias) {
    b = make_input(name + "_bias", {s.out_c});
    l.args.push_back(b);
    l.arg_dims.push_back({s.out_c});
  }

  Var c("c"), x("x"), y("y"), n("n");
  // Zero padding, computed once into its own buffer when there is any (not per tap).
  const int pad_bottom = std::max(0, (s.out_h - 1) * s.sh + (s.kh - 1) * s.dh + 1 - s.in_h - s.pad_top);
  const int pad_right = std::max(0, (s.out_w - 1) * s.sw + (s.kw - 1) * s.dw + 1 - s.in_w - s.pad_left);
  const bool padded_input = s.pad_top || s.pad_left || pad_bottom || pad_right;
  Func padded(name + "_padded");
  if (padded_input) {
    Func bounded = BoundaryConditions::constant_exterior(
        in, 0.f, {{Expr(), Expr()}, {0, s.in_w}, {0, s.in_h}, {Expr(), Expr()}});
    padded(c, x, y, n) = bounded(c, x - s.pad_left, y - s.pad_top, n);
  } else {
    padded(c, x, y, n) = in(c, x, y, n);
  }

  const bool depthwise = ig == 1 && s.groups > 1;
  Func conv(name + "_conv");
  conv(c, x, y, n) = s.bias ? b(c) : Expr(0.f);
  RDom r = depthwise ? RDom(0, s.kw, 0, s.kh) : RDom(0, s.kw, 0, s.kh, 0, ig);
  Expr ix = x * s.sw + r.x * s.dw, iy = y * s.sh + r.y * s.dh;
  if (depthwise) {
    conv(c, x, y, n) += w(c, 0, r.x, r.y) * padded(c / og, ix, iy, n);
  } else {
    Expr ic = s.groups == 1 ? Expr(r.z) : (c / og) * ig + r.z;
    conv(c, x, y, n) += w(c, r.z, r.x, r.y) * padded(ic, ix, iy, n);
  }
  l.out = Func(name);
  l.out(c, x, y, n) = conv(c, x, y, n);
  l.out_dims = {s.out_c, s.out_w, s.out_h, s.n};
  bound_output(l.out, l.out_dims);

  // Register tile: tile_c channels (whole vectors) x tile_x pixels of one row.
  const int vec = vector_width(s.out_c, t);
  const int vectors = std::clamp(s.out_c / vec, 1, 2);
  const int tile_c = vec * vectors;
  const int tile_x = std::clamp(kAccumulators / vectors, 1, s.out_w);
  Var co("co"), ci("ci"), xo("xo"), xi("xi"), task("task");
  l.out.split(c, co, ci, tile_c)
      .split(x, xo, xi, tile_x)
      .reorder(ci, xi, xo, co, y, n)
      .fuse(co, y, task)
      .fuse(task, n, task)
      .parallel(task)
      .vectorize(ci, vec)
      .unroll(ci)
      .unroll(xi);
  conv.compute_at(l.out, xo).vectorize(c, vec).unroll(c).unroll(x);
  if (depthwise) {
    conv.update().reorder(c, x, r.x, r.y, y, n).vectorize(c, vec).unroll(c).unroll(x);
  } else {
    conv.update().reorder(c, x, r.z, r.x, r.y, y, n).vectorize(c, vec).unroll(c).unroll(x);
    if (ig % 2 == 0) conv.update().unroll(r.z, 2);
  }
  if (padded_input) padded.compute_root().parallel(y).vectorize(c, vector_width(s.in_c, t));

  std::ostringstream os;
  os << (depthwise ? "depthwise " : "") << "register tile " << tile_c << "c x " << tile_x
     << "px, reduction " << (depthwise ? "taps" : "in-channels, taps") << " inside, parallel over "
     << "channel blocks x rows x batch" << (padded_input ? ", padding computed once" : "");
  l.schedule = os.str();
  return l;
}

Lowered lower_conv(const ir::Graph& g, const ir::Node& node, const Target& t) {
  const auto& a = node.attr<ir::Conv2DAttrs>();
  const ir::TensorType& in = g.node(node.inputs[0]).type;
  const auto geo = ir::window_geometry(node, in);
  ConvSpec s{};
  s.n = static_cast<int>(in.shape[0]);
  s.in_h = static_cast<int>(in.shape[1]), s.in_w = static_cast<int>(in.shape[2]);
  s.in_c = static_cast<int>(in.shape[3]);
  s.out_h = static_cast<int>(geo.out_h), s.out_w = static_cast<int>(geo.out_w);
  s.out_c = static_cast<int>(a.filters);
  s.kh = static_cast<int>(a.kernel.h), s.kw = static_cast<int>(a.kernel.w);
  s.sh = static_cast<int>(a.strides.h), s.sw = static_cast<int>(a.strides.w);
  s.dh = static_cast<int>(a.dilation.h), s.dw = static_cast<int>(a.dilation.w);
  s.pad_top = static_cast<int>(geo.pad_top), s.pad_left = static_cast<int>(geo.pad_left);
  s.groups = static_cast<int>(a.groups);
  s.bias = a.use_bias;
  return lower_conv_core(s, "conv", t);
}

Lowered lower_dense(const ir::Graph& g, const ir::Node& node, const Target& t) {
  // The (in, units) kernel is the HWIO kernel of a 1x1 conv; the rows of the input are the
  // pixels of a one-row image, so the batch (or H*W*N) is blocked like pixels are.
  const auto& a = node.attr<ir::DenseAttrs>();
  const ir::TensorType& in = g.node(node.inputs[0]).type;
  ConvSpec s{};
  s.n = 1, s.in_h = 1, s.out_h = 1;
  s.in_w = s.out_w = static_cast<int>(in.elements() / in.channels());
  s.in_c = static_cast<int>(in.channels());
  s.out_c = static_cast<int>(a.units);
  s.kh = s.kw = s.sh = s.sw = s.dh = s.dw = 1;
  s.groups = 1;
  s.bias = a.use_bias;
  Lowered l = lower_conv_core(s, "dense", t);
  // The executor passes the ir shapes; this kernel sees the same memory as one image row.
  return l;
}

}  // namespace cnnc::codegen
