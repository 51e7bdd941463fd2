// Max and average pooling: one window reduction per output, then the epilogue.
#include "codegen/ops/ops.h"
#include "ir/shape_inference.h"

namespace cnnc::codegen {

using namespace Halide;

Algorithm pool_algorithm(const ir::Graph& g, const ir::Node& node) {
  const ir::TensorType& it = g.node(node.inputs[0]).type;
  const auto geo = ir::window_geometry(node, it);
  const int H = static_cast<int>(geo.in_h), W = static_cast<int>(geo.in_w);
  const int kh = static_cast<int>(geo.kernel.h), kw = static_cast<int>(geo.kernel.w);
  const int sh = static_cast<int>(geo.strides.h), sw = static_cast<int>(geo.strides.w);
  const int pt = static_cast<int>(geo.pad_top), pl = static_cast<int>(geo.pad_left);
  const bool is_max = node.op == ir::OpKind::MaxPool2D;

  Algorithm l;
  for (size_t i = 0; i < node.inputs.size(); ++i) {  // the input, then an epilogue's residual
    l.arg_dims.push_back(halide_dims(g.node(node.inputs[i]).type.shape));
    l.args.push_back(make_input(i ? "pool_residual" : "pool_in", l.arg_dims.back()));
  }
  const ImageParam& in = l.args[0];
  Var c("c"), x("x"), y("y"), n("n");
  l.vars = {c, x, y, n};
  // Padding never wins a max and never counts in an average.
  Func bounded =
      BoundaryConditions::constant_exterior(in, is_max ? Float(32).min() : Expr(0.f),
                                            {{Expr(), Expr()}, {0, W}, {0, H}, {Expr(), Expr()}});
  RDom r(0, kw, 0, kh);
  Expr ix = x * sw - pl + r.x, iy = y * sh - pt + r.y;
  Expr result;
  if (is_max) {
    result = maximum(bounded(c, ix, iy, n));
  } else {
    Expr x0 = x * sw - pl, y0 = y * sh - pt;
    Expr count = (min(x0 + kw, W) - max(x0, 0)) * (min(y0 + kh, H) - max(y0, 0));
    result = sum(bounded(c, ix, iy, n)) / cast<float>(count);
  }
  l.epilogue_output(is_max ? "maxpool" : "avgpool", node.epilogue, result,
                    node.epilogue.add ? l.args[1] : ImageParam(), halide_dims(node.type.shape));
  return l;
}

}  // namespace cnnc::codegen
