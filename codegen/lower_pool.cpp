// Max and average pooling: one window reduction per output, vectorised over channels.
#include "codegen/lower.h"
#include "ir/shape_inference.h"

namespace cnnc::codegen {

using namespace Halide;

Lowered lower_pool(const ir::Graph& g, const ir::Node& node, const Target& t) {
  const ir::TensorType& it = g.node(node.inputs[0]).type;
  const auto geo = ir::window_geometry(node, it);
  const int C = static_cast<int>(it.shape[3]), H = static_cast<int>(geo.in_h),
            W = static_cast<int>(geo.in_w);
  const int kh = static_cast<int>(geo.kernel.h), kw = static_cast<int>(geo.kernel.w);
  const int sh = static_cast<int>(geo.strides.h), sw = static_cast<int>(geo.strides.w);
  const int pt = static_cast<int>(geo.pad_top), pl = static_cast<int>(geo.pad_left);
  const bool is_max = node.op == ir::OpKind::MaxPool2D;

  Lowered l;
  l.arg_dims = {halide_dims(it.shape)};
  ImageParam in = make_input("pool_in", l.arg_dims[0]);
  l.args = {in};
  Var c("c"), x("x"), y("y"), n("n");
  // Padding never wins a max and never counts in an average.
  Func bounded = BoundaryConditions::constant_exterior(
      in, is_max ? Float(32).min() : Expr(0.f), {{Expr(), Expr()}, {0, W}, {0, H}, {Expr(), Expr()}});
  RDom r(0, kw, 0, kh);
  Expr ix = x * sw - pl + r.x, iy = y * sh - pt + r.y;
  l.out = Func(is_max ? "maxpool" : "avgpool");
  if (is_max) {
    l.out(c, x, y, n) = maximum(bounded(c, ix, iy, n));
  } else {
    Expr x0 = x * sw - pl, y0 = y * sh - pt;
    Expr count = (min(x0 + kw, W) - max(x0, 0)) * (min(y0 + kh, H) - max(y0, 0));
    l.out(c, x, y, n) = sum(bounded(c, ix, iy, n)) / cast<float>(count);
  }
  l.out_dims = halide_dims(node.type.shape);
  bound_output(l.out, l.out_dims);
  Var yn("yn");
  l.out.fuse(y, n, yn).parallel(yn).vectorize(c, vector_width(C, t));
  l.schedule = "vectorised over channels, parallel over rows x batch";
  return l;
}

}  // namespace cnnc::codegen
