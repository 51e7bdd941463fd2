// Ops that map each output element to a few input elements: activations, batch norm, affine,
// add, multiply, concat, zero padding, cropping, and the reductions softmax and global pooling.
#include <cmath>

#include "codegen/lower.h"
#include "ir/error.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

// Vectorised over channels, parallel over the outermost dimensions.
void schedule_pointwise(Func& f, const std::vector<Var>& v, int channels, const Target& t) {
  f.vectorize(v[0], vector_width(channels, t));
  if (v.size() == 4) {
    Var yn("yn");
    f.fuse(v[2], v[3], yn).parallel(yn);
  } else if (v.size() == 2) {
    f.parallel(v[1]);
  }
}

std::vector<Var> vars(int rank) {
  static const char* names[] = {"c", "x", "y", "n"};
  std::vector<Var> v;
  for (int i = 0; i < rank; ++i) v.emplace_back(rank == 2 && i == 1 ? "n" : names[i]);
  return v;
}

std::vector<Expr> exprs(const std::vector<Var>& v) { return {v.begin(), v.end()}; }

}  // namespace

Expr activation(ir::OpKind k, Expr x) {
  switch (k) {
    case ir::OpKind::ReLU: return max(x, 0.f);
    case ir::OpKind::ReLU6: return clamp(x, 0.f, 6.f);
    case ir::OpKind::Sigmoid: return 1.f / (1.f + exp(-x));
    case ir::OpKind::Tanh: return tanh(x);
    case ir::OpKind::Swish: return x / (1.f + exp(-x));
    case ir::OpKind::HardSigmoid: return clamp(x + 3.f, 0.f, 6.f) / 6.f;
    default: throw Error("internal: " + std::string(ir::op_info(k).text) + " is not an epilogue activation");
  }
}

namespace {
// y through the node's epilogue activation, if it has one (a fused batchnorm or affine).
Expr with_activation(const ir::Node& node, Expr y) {
  const ir::Epilogue* e = ir::epilogue_of(node.attrs);
  return e && e->has_activation ? activation(e->activation, y) : y;
}
}  // namespace

Lowered lower_elementwise(const ir::Graph& g, const ir::Node& node, const Target& t) {
  Lowered l;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    l.arg_dims.push_back(halide_dims(g.node(node.inputs[i]).type.shape));
    l.args.push_back(make_input("in" + std::to_string(i), l.arg_dims.back()));
  }
  for (const auto& p : node.params) {
    l.arg_dims.push_back(halide_dims(p.value.shape));
    l.args.push_back(make_input(p.role, l.arg_dims.back()));
  }
  l.out_dims = halide_dims(node.type.shape);
  const int rank = static_cast<int>(l.out_dims.size());
  const int channels = l.out_dims[0];
  const std::vector<Var> v = vars(rank);
  const std::vector<Expr> at = exprs(v);
  ImageParam& in = l.args[0];
  // The input at the output's coordinates, for the ops whose input and output share a shape.
  Expr x = l.arg_dims[0].size() == at.size() ? in(at) : Expr();
  Func& out = l.out;
  out = Func("out_" + std::string(node.info().text));
  l.schedule = "vectorised over channels, parallel over rows x batch";

  switch (node.op) {
    case ir::OpKind::ReLU: {
      const auto& a = node.attr<ir::ReLUAttrs>();
      if (a == ir::ReLUAttrs{}) {
        out(v) = activation(ir::OpKind::ReLU, x);
        break;
      }
      // Keras' ReLU; the max_value test only when finite (no infinite constants in the code).
      Expr below = a.negative_slope == 0.f ? Expr(0.f) : a.negative_slope * (x - a.threshold);
      Expr y = select(x >= a.threshold, x, below);
      if (std::isfinite(a.max_value)) y = select(x >= a.max_value, a.max_value, y);
      out(v) = y;
      break;
    }
    case ir::OpKind::ReLU6:
    case ir::OpKind::Sigmoid:
    case ir::OpKind::Tanh:
    case ir::OpKind::Swish:
    case ir::OpKind::HardSigmoid: out(v) = activation(node.op, x); break;
    case ir::OpKind::LeakyReLU:
      out(v) = select(x > 0.f, x, node.attr<ir::LeakyReLUAttrs>().alpha * x);
      break;
    case ir::OpKind::Affine:  // params: scale, shift
      out(v) = with_activation(node, x * l.args[1](v[0]) + l.args[2](v[0]));
      break;
    case ir::OpKind::BatchNorm: {
      // params: gamma, beta, moving_mean, moving_variance
      const float eps = node.attr<ir::BatchNormAttrs>().epsilon;
      Func scale("bn_scale"), shift("bn_shift");
      Var k("k");
      scale(k) = l.args[1](k) / sqrt(l.args[4](k) + eps);
      shift(k) = l.args[2](k) - l.args[3](k) * scale(k);
      scale.compute_root();
      shift.compute_root();
      out(v) = with_activation(node, x * scale(v[0]) + shift(v[0]));
      break;
    }
    case ir::OpKind::Add: {
      Expr s = x;
      for (size_t i = 1; i < node.inputs.size(); ++i) s += l.args[i](at);
      out(v) = s;
      break;
    }
    case ir::OpKind::Multiply: {
      // An input with size 1 where the output is larger is read at index 0 (broadcast).
      Expr p;
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        std::vector<Expr> idx = at;
        for (int d = 0; d < rank; ++d)
          if (l.arg_dims[i][d] == 1) idx[d] = 0;
        Expr e = l.args[i](idx);
        p = i == 0 ? e : p * e;
      }
      out(v) = p;
      break;
    }
    case ir::OpKind::Cropping2D: {
      const auto& p = node.attr<ir::CropAttrs>().crop;
      out(v) = in(v[0], v[1] + static_cast<int>(p.left), v[2] + static_cast<int>(p.top), v[3]);
      break;
    }
    case ir::OpKind::ZeroPadding2D: {
      const auto& p = node.attr<ir::PadAttrs>().pad;
      Func bounded = BoundaryConditions::constant_exterior(
          in, 0.f, {{Expr(), Expr()}, {0, l.arg_dims[0][1]}, {0, l.arg_dims[0][2]}, {Expr(), Expr()}});
      out(v) = bounded(v[0], v[1] - static_cast<int>(p.left), v[2] - static_cast<int>(p.top), v[3]);
      break;
    }
    case ir::OpKind::Concat: {
      // Zero-fill, then one update per input writes its channel slice.
      out(v) = 0.f;
      int offset = 0;
      std::vector<RDom> slices;
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        const int ci = l.arg_dims[i][0];
        slices.emplace_back(0, ci);
        std::vector<Expr> src = at, dst = at;
        src[0] = slices.back().x;
        dst[0] = slices.back().x + offset;
        out(dst) = l.args[i](src);
        offset += ci;
      }
      bound_output(out, l.out_dims);
      Var outer = v.back();
      if (rank == 4) {
        outer = Var("yn");
        out.fuse(v[2], v[3], outer);
      }
      out.parallel(outer);
      for (size_t i = 0; i < slices.size(); ++i) {
        if (rank == 4) out.update(static_cast<int>(i)).fuse(v[2], v[3], outer);
        const int vec = vector_width(l.arg_dims[i][0], t);
        RVar rc = slices[i].x;
        out.update(static_cast<int>(i)).parallel(outer);
        if (l.arg_dims[i][0] >= vec) out.update(static_cast<int>(i)).vectorize(rc, vec);
      }
      l.schedule = "channel slices written in place, parallel over rows x batch";
      return l;
    }
    case ir::OpKind::Softmax: {
      std::vector<Expr> red = at;
      RDom r(0, channels);
      red[0] = r.x;
      std::vector<Var> rest(v.begin() + 1, v.end());
      Func m("max"), e("exp"), s("sum");
      m(rest) = maximum(in(red));
      e(v) = exp(x - m(rest));
      std::vector<Expr> e_at = red;
      s(rest) = sum(e(e_at));
      out(v) = e(v) / s(rest);
      bound_output(out, l.out_dims);
      m.compute_at(out, v[1]);
      e.compute_at(out, v[1]);
      s.compute_at(out, v[1]);
      l.schedule = "one row of channels at a time";
      return l;
    }
    case ir::OpKind::GlobalAvgPool2D:
    case ir::OpKind::GlobalMaxPool2D: {
      const bool is_max = node.op == ir::OpKind::GlobalMaxPool2D;
      const auto& src = l.arg_dims[0];  // c, x, y, n
      RDom r(0, src[1], 0, src[2]);
      Func total(is_max ? "most" : "total");
      Var c("c"), n("n");
      if (is_max) {
        // Starts from the first pixel rather than a sentinel, so -inf inputs come out exact.
        total(c, n) = in(c, 0, 0, n);
        total(c, n) = max(total(c, n), in(c, r.x, r.y, n));
      } else {
        total(c, n) = 0.f;
        total(c, n) += in(c, r.x, r.y, n);
      }
      Expr result = rank == 4 ? total(v[0], v[3]) : total(v[0], v[1]);
      out(v) = is_max ? result : result * (1.f / static_cast<float>(src[1] * src[2]));
      bound_output(out, l.out_dims);
      const int vec = vector_width(channels, t);
      total.compute_at(out, v[rank - 1]).vectorize(c, vec);
      // Guarded: rounding the channels up (the default for an update) would read past the input.
      total.update().reorder(c, r.x, r.y).vectorize(c, vec, TailStrategy::GuardWithIf);
      out.vectorize(v[0], vec);
      l.schedule = std::string(is_max ? "max" : "sum") + " over pixels vectorised over channels";
      return l;
    }
    default:
      throw Error("internal: op '" + std::string(node.info().text) + "' is not an elementwise op");
  }
  bound_output(out, l.out_dims);
  schedule_pointwise(out, v, channels, t);
  return l;
}

}  // namespace cnnc::codegen
