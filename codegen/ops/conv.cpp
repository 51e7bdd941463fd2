// Convolution and dense (a 1x1 convolution over a row of pixels): the accumulation over taps
// and input channels, the bias first and the epilogue (residual add, activation) on the result.
#include <algorithm>

#include "codegen/ops/ops.h"
#include "ir/schedule.h"
#include "ir/shape_inference.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

// The image sizes of a conv read from its input's and output's NHWC shapes.
void set_sizes(ConvSpec& s, const ir::Shape& in, const ir::Shape& out) {
  s.n = static_cast<int>(in[0]);
  s.in_h = static_cast<int>(in[1]), s.in_w = static_cast<int>(in[2]);
  s.in_c = static_cast<int>(in[3]);
  s.out_h = static_cast<int>(out[1]), s.out_w = static_cast<int>(out[2]);
  s.out_c = static_cast<int>(out[3]);
}

// dx = dy convolved with the forward kernel flipped and transposed, at stride 1: the padding
// is what makes each tap of the transposed kernel read the outputs the forward tap wrote. A
// stride-1 conv2d_transpose is the same computation on its input, with a bias and an epilogue.
ConvSpec input_gradient_spec(const ir::Graph& g, const ir::Node& node) {
  const ir::TensorType& dy = g.node(node.inputs[0]).type;
  ConvSpec s{};
  s.transposed = true;
  s.groups = 1;
  s.sh = s.sw = 1;
  if (node.op == ir::OpKind::Conv2DTranspose) {
    const auto& a = node.attr<ir::Conv2DTransposeAttrs>();
    const auto geo = ir::transposed_geometry(a, dy.shape[1], dy.shape[2]);
    set_sizes(s, dy.shape, node.type.shape);
    s.kh = static_cast<int>(a.kernel.h), s.kw = static_cast<int>(a.kernel.w);
    s.dh = static_cast<int>(a.dilation.h), s.dw = static_cast<int>(a.dilation.w);
    s.pad_top = static_cast<int>((a.kernel.h - 1) * a.dilation.h - geo.crop_top);
    s.pad_left = static_cast<int>((a.kernel.w - 1) * a.dilation.w - geo.crop_left);
    s.bias = a.use_bias;
    s.epilogue = node.epilogue;
    return s;
  }
  if (node.op == ir::OpKind::DenseGradInput) {
    s.n = 1, s.in_h = s.out_h = 1;
    s.in_w = s.out_w = static_cast<int>(dy.elements() / dy.channels());
    s.in_c = static_cast<int>(dy.channels());
    s.out_c = static_cast<int>(node.type.channels());
    s.kh = s.kw = s.dh = s.dw = 1;
    return s;
  }
  const auto& a = node.attr<ir::ConvGradAttrs>().conv;
  ir::Node forward;
  forward.op = ir::OpKind::Conv2D;
  forward.attrs = a;
  const auto geo = ir::window_geometry(forward, node.type);
  set_sizes(s, dy.shape, node.type.shape);
  s.kh = static_cast<int>(a.kernel.h), s.kw = static_cast<int>(a.kernel.w);
  s.dh = static_cast<int>(a.dilation.h), s.dw = static_cast<int>(a.dilation.w);
  s.pad_top = static_cast<int>((a.kernel.h - 1) * a.dilation.h - geo.pad_top);
  s.pad_left = static_cast<int>((a.kernel.w - 1) * a.dilation.w - geo.pad_left);
  return s;
}

}  // namespace

ConvSpec conv_spec(const ir::Graph& g, const ir::Node& node) {
  if (ir::input_gradient_is_conv(g, node)) return input_gradient_spec(g, node);
  const ir::TensorType& in = g.node(node.inputs[0]).type;
  ConvSpec s{};
  s.epilogue = node.epilogue;
  if (node.op == ir::OpKind::Dense) {
    // The (in, units) kernel is the HWIO kernel of a 1x1 conv; the rows of the input are the
    // pixels of a one-row image, so the batch (or H*W*N) is blocked like pixels are.
    const auto& a = node.attr<ir::DenseAttrs>();
    s.n = 1, s.in_h = 1, s.out_h = 1;
    s.in_w = s.out_w = static_cast<int>(in.elements() / in.channels());
    s.in_c = static_cast<int>(in.channels());
    s.out_c = static_cast<int>(a.units);
    s.kh = s.kw = s.sh = s.sw = s.dh = s.dw = 1;
    s.groups = 1;
    s.bias = a.use_bias;
    return s;
  }
  const auto& a = node.attr<ir::Conv2DAttrs>();
  const auto geo = ir::window_geometry(node, in);
  set_sizes(s, in.shape, node.type.shape);
  s.kh = static_cast<int>(a.kernel.h), s.kw = static_cast<int>(a.kernel.w);
  s.sh = static_cast<int>(a.strides.h), s.sw = static_cast<int>(a.strides.w);
  s.dh = static_cast<int>(a.dilation.h), s.dw = static_cast<int>(a.dilation.w);
  s.pad_top = static_cast<int>(geo.pad_top), s.pad_left = static_cast<int>(geo.pad_left);
  s.groups = static_cast<int>(a.groups);
  s.bias = a.use_bias;
  return s;
}

ConvSpec conv_spec(const ir::Graph& g, const ir::Node& node, const ir::Schedule& sc) {
  ConvSpec s = conv_spec(g, node);
  if (sc.kind != ir::ScheduleKind::Tile || !ir::tile_spans_rows(g, node)) return s;
  s.row_pixels = s.out_w;
  s.in_w = s.out_w = s.out_w * s.out_h;
  s.in_h = s.out_h = 1;
  return s;
}

ConvAlgorithm conv_algorithm(const ConvSpec& s, int weight_block, const std::string& name) {
  ConvAlgorithm l;
  l.spec = s;
  const int ig = s.in_c / s.groups, og = s.out_c / s.groups;
  const std::vector<int> in_dims{s.in_c, s.in_w, s.in_h, s.n};
  const std::vector<int> w_dims{s.out_c, ig, s.kw, s.kh};
  const std::vector<int> out_dims{s.out_c, s.out_w, s.out_h, s.n};
  ImageParam in = l.add_arg(name + "_in", in_dims);
  if (s.epilogue.add) l.residual = l.add_arg(name + "_residual", out_dims);
  l.weight_block = weight_block;
  const std::vector<int> w_store =
      weight_block ? std::vector<int>{weight_block, ig, s.kw, s.kh, s.out_c / weight_block}
                   : w_dims;
  // A transposed kernel arrives in the forward layer's layout: (in, out) channels exchanged.
  const std::vector<int> w_arg = s.transposed ? std::vector<int>{s.in_c, s.out_c, s.kw, s.kh}
                                              : w_store;
  ImageParam w_in = l.add_arg(name + "_kernel", w_arg);
  Func w(name + "_weights");
  Var wc("wc"), wi("wi"), wx("wx"), wy("wy");
  if (s.transposed) {
    // Flipped and transposed once, so the taps read whole vectors of output channels.
    w(wc, wi, wx, wy) = w_in(wi, wc, s.kw - 1 - wx, s.kh - 1 - wy);
    l.stages.push_back(w);
  } else if (weight_block)
    w(wc, wi, wx, wy) = w_in(wc % weight_block, wi, wx, wy, wc / weight_block);
  else
    w(wc, wi, wx, wy) = w_in(wc, wi, wx, wy);
  ImageParam b;
  if (s.bias) b = l.add_arg(name + "_bias", {s.out_c});

  Var c("c"), x("x"), y("y"), n("n");
  l.vars = {c, x, y, n};
  // Zero padding as its own Func (the schedule decides where it is computed), not per tap.
  const int pad_bottom =
      std::max(0, (s.out_h - 1) * s.sh + (s.kh - 1) * s.dh + 1 - s.in_h - s.pad_top);
  const int pad_right =
      std::max(0, (s.out_w - 1) * s.sw + (s.kw - 1) * s.dw + 1 - s.in_w - s.pad_left);
  l.padded_input = s.pad_top || s.pad_left || pad_bottom || pad_right;
  l.padded = Func(name + "_padded");
  if (l.padded_input) {
    Func bounded = BoundaryConditions::constant_exterior(
        in, 0.f, {{Expr(), Expr()}, {0, s.in_w}, {0, s.in_h}, {Expr(), Expr()}});
    l.padded(c, x, y, n) = bounded(c, x - s.pad_left, y - s.pad_top, n);
  } else {
    // A schedule may round the last tile of a row up: clamp its extra columns onto the last.
    l.padded(c, x, y, n) = in(c, min(x, s.in_w - 1), y, n);
  }

  l.depthwise = ig == 1 && s.groups > 1;
  l.conv = Func(name + "_conv");
  l.conv(c, x, y, n) = s.bias ? b(c) : Expr(0.f);
  l.r = l.depthwise ? RDom(0, s.kw, 0, s.kh) : RDom(0, s.kw, 0, s.kh, 0, ig);
  const RDom& r = l.r;
  Expr ix = x * s.sw + r.x * s.dw, iy = y * s.sh + r.y * s.dh;
  if (l.depthwise) {
    l.conv(c, x, y, n) += w(c, 0, r.x, r.y) * l.padded(c / og, ix, iy, n);
  } else {
    Expr ic = s.groups == 1 ? Expr(r.z) : (c / og) * ig + r.z;
    l.conv(c, x, y, n) += w(c, r.z, r.x, r.y) * l.padded(ic, ix, iy, n);
  }
  l.epilogue_output(name, s.epilogue, l.conv(c, x, y, n), l.residual, out_dims);
  return l;
}

}  // namespace cnnc::codegen
