// Every kernel that is not a conv or a pooling window: activations, batch norm, affine, add,
// multiply, concat, zero padding, cropping, and the reductions softmax, log-softmax and global
// pooling. Broadcast ops apply their epilogue's activation to the result.
#include <cmath>

#include "codegen/ops/ops.h"
#include "ir/error.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

std::vector<Var> vars(int rank) {
  static const char* names[] = {"c", "x", "y", "n"};
  std::vector<Var> v;
  for (int i = 0; i < rank; ++i) v.emplace_back(rank == 2 && i == 1 ? "n" : names[i]);
  return v;
}

// Keras' ReLU; the max_value test only when finite (no infinite constants in the code).
Expr relu(const ir::ReLUAttrs& a, Expr x) {
  if (a == ir::ReLUAttrs{}) return activation(ir::OpKind::ReLU, x);
  Expr below = a.negative_slope == 0.f ? Expr(0.f) : a.negative_slope * (x - a.threshold);
  Expr y = select(x >= a.threshold, x, below);
  if (std::isfinite(a.max_value)) y = select(x >= a.max_value, a.max_value, y);
  return y;
}

}  // namespace

PointwiseAlgorithm pointwise_algorithm(const ir::Graph& g, const ir::Node& node) {
  PointwiseAlgorithm l;
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
  const std::vector<Var> v = l.vars = vars(rank);
  const std::vector<Expr> at(v.begin(), v.end());
  ImageParam& in = l.args[0];
  // The input at the output's coordinates, for the ops whose input and output share a shape.
  Expr x = l.arg_dims[0].size() == at.size() ? in(at) : Expr();
  Func& out = l.out;
  out = Func("out_" + std::string(node.info().text));
  Expr y;  // a Map's result, before the epilogue
  // For the row reductions (softmax, layernorm, unitnorm): `red` walks a row's channels (the
  // first dim) at the output's other coordinates `rest`.
  const RDom channel(0, l.out_dims[0]);
  std::vector<Expr> red = at;
  red[0] = channel.x;
  const std::vector<Var> rest(v.begin() + 1, v.end());

  switch (node.op) {
    case ir::OpKind::ReLU:
      y = relu(node.attr<ir::ReLUAttrs>(), x);
      break;
#define CNNC_ACTIVATION(Name, text, keras_names, reference, halide, grad_from, grad_reference, \
                        grad_halide, doc)                                                      \
  case ir::OpKind::Name:
#include "ir/activations.def"
#undef CNNC_ACTIVATION
      y = activation(node.op, x);
      break;
    case ir::OpKind::LeakyReLU:
      y = select(x > 0.f, x, node.attr<ir::LeakyReLUAttrs>().alpha * x);
      break;
    case ir::OpKind::Affine:
      y = x * l.args[1](v[0]) + l.args[2](v[0]);
      break;  // scale, shift
    case ir::OpKind::BatchNorm: {
      // params: gamma, beta, moving_mean, moving_variance
      const float eps = node.attr<ir::BatchNormAttrs>().epsilon;
      Func scale("bn_scale"), shift("bn_shift");
      Var k("k");
      scale(k) = l.args[1](k) / sqrt(l.args[4](k) + eps);
      shift(k) = l.args[2](k) - l.args[3](k) * scale(k);
      l.stages = {scale, shift};
      y = x * scale(v[0]) + shift(v[0]);
      break;
    }
    case ir::OpKind::Add:
      y = x;
      for (size_t i = 1; i < node.inputs.size(); ++i) y += l.args[i](at);
      break;
    case ir::OpKind::Multiply:
    case ir::OpKind::Maximum:
    case ir::OpKind::Minimum:
      // An input with size 1 where the output is larger is read at index 0 (broadcast).
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        std::vector<Expr> idx = at;
        for (int d = 0; d < rank; ++d)
          if (l.arg_dims[i][d] == 1) idx[d] = 0;
        Expr e = l.args[i](idx);
        y = i == 0                            ? e
            : node.op == ir::OpKind::Multiply ? y * e
            : node.op == ir::OpKind::Maximum  ? max(y, e)
                                              : min(y, e);
      }
      break;
    case ir::OpKind::Resize: {
      // Half-pixel centres, as TensorFlow: output o samples input (o + 0.5) * in / out
      // (nearest: that pixel, rounding down) or that minus 0.5 between its two neighbours.
      const int in_w = l.arg_dims[0][1], in_h = l.arg_dims[0][2];
      const bool nearest = node.attr<ir::ResizeAttrs>().interpolation == ir::Interpolation::Nearest;
      struct Taps {
        Expr lo, hi, w;
      };
      auto taps = [nearest](Expr o, int in_len, int out_len) {
        const float scale = static_cast<float>(in_len) / static_cast<float>(out_len);
        if (nearest) {
          Expr i = min(cast<int>(floor((cast<float>(o) + 0.5f) * scale)), in_len - 1);
          return Taps{i, i, Expr(0.f)};
        }
        Expr at = (cast<float>(o) + 0.5f) * scale - 0.5f, f = floor(at);
        // The clamps keep the taps inside the image (TensorFlow's too); bounds inference sees it.
        return Taps{clamp(cast<int>(f), 0, in_len - 1), clamp(cast<int>(ceil(at)), 0, in_len - 1),
                    at - f};
      };
      const Taps tx = taps(v[1], in_w, l.out_dims[1]), ty = taps(v[2], in_h, l.out_dims[2]);
      if (nearest) {
        y = in(v[0], tx.lo, ty.lo, v[3]);
        break;
      }
      Expr top = in(v[0], tx.lo, ty.lo, v[3]), top_r = in(v[0], tx.hi, ty.lo, v[3]);
      Expr bot = in(v[0], tx.lo, ty.hi, v[3]), bot_r = in(v[0], tx.hi, ty.hi, v[3]);
      Expr upper = top + (top_r - top) * tx.w, lower = bot + (bot_r - bot) * tx.w;
      y = upper + (lower - upper) * ty.w;
      break;
    }
    case ir::OpKind::Cropping2D: {
      const auto& p = node.attr<ir::CropAttrs>().crop;
      y = in(v[0], v[1] + static_cast<int>(p.left), v[2] + static_cast<int>(p.top), v[3]);
      break;
    }
    case ir::OpKind::ChannelSlice: {
      std::vector<Expr> src = at;
      src[0] += static_cast<int>(node.attr<ir::ChannelSliceAttrs>().begin);
      y = l.args[0](src);
      break;
    }
    case ir::OpKind::Warp: {
      // Bilinear sampling through the image's affine map (maps: 6 x N), taps reflected at the
      // edges; the clamp changes no index, it tells bounds inference the taps stay inside.
      ImageParam& maps = l.args[1];
      const int w = l.arg_dims[0][1], h = l.arg_dims[0][2];
      auto m = [&](int k) { return maps(k, v[3]); };
      Expr fx = cast<float>(v[1]), fy = cast<float>(v[2]);
      Expr u = m(0) * fx + m(1) * fy + m(2), t = m(3) * fx + m(4) * fy + m(5);
      Expr u0 = floor(u), t0 = floor(t), wu = u - u0, wt = t - t0;
      auto reflect = [](Expr i, int len) {
        Expr r = i % (2 * len);  // Halide's % is Euclidean: r >= 0
        return clamp(select(r < len, r, 2 * len - 1 - r), 0, len - 1);
      };
      Expr xi = cast<int>(u0), yi = cast<int>(t0);
      auto at = [&](Expr dy, Expr dx) {
        return in(v[0], reflect(xi + dx, w), reflect(yi + dy, h), v[3]);
      };
      y = (1.f - wt) * ((1.f - wu) * at(0, 0) + wu * at(0, 1)) +
          wt * ((1.f - wu) * at(1, 0) + wu * at(1, 1));
      break;
    }
    case ir::OpKind::Recolor: {
      // factors (2 x N): the contrast factor and the shift of each image; with contrast, each
      // image's channel means first (a stage over (c, n), the GroupReduction form's).
      const auto& a = node.attr<ir::RecolorAttrs>();
      ImageParam& factors = l.args[1];
      Expr scale = factors(0, v[3]), shift = factors(1, v[3]);
      y = x + shift;
      if (a.contrast) {
        l.form = PointwiseAlgorithm::GroupReduction;
        RDom r(0, l.arg_dims[0][1], 0, l.arg_dims[0][2]);
        Var c("c"), n("n");
        Func mean("mean");
        mean(c, n) =
            sum(in(c, r.x, r.y, n)) / static_cast<float>(l.arg_dims[0][1] * l.arg_dims[0][2]);
        l.stages = {mean};
        l.reduction = r;
        y = (x - mean(v[0], v[3])) * scale + mean(v[0], v[3]) + shift;
      }
      y = clamp(y, a.value_min, a.value_max);
      if (a.contrast) out(v) = y;  // a GroupReduction defines its output itself
      break;
    }
    case ir::OpKind::Transpose: {
      // Halide's dimensions run the other way: IR axis i is dimension rank - 1 - i.
      const auto& perm = node.attr<ir::TransposeAttrs>().perm;
      std::vector<Expr> src(rank);
      src[rank - 1] = v[rank - 1];  // the batch
      for (int i = 1; i < rank; ++i) src[rank - 1 - perm[i - 1]] = v[rank - 1 - i];
      y = in(src);
      break;
    }
    case ir::OpKind::ZeroPadding2D: {
      const auto& p = node.attr<ir::PadAttrs>().pad;
      Func bounded = BoundaryConditions::constant_exterior(
          in, 0.f,
          {{Expr(), Expr()}, {0, l.arg_dims[0][1]}, {0, l.arg_dims[0][2]}, {Expr(), Expr()}});
      y = bounded(v[0], v[1] - static_cast<int>(p.left), v[2] - static_cast<int>(p.top), v[3]);
      break;
    }
    case ir::OpKind::Concat: {
      // Zero-fill, then one update per input writes its channel slice.
      l.form = PointwiseAlgorithm::Concat;
      out(v) = 0.f;
      int offset = 0;
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        const int ci = l.arg_dims[i][0];
        l.slices.emplace_back(0, ci);
        std::vector<Expr> src = at, dst = at;
        src[0] = l.slices.back().x;
        dst[0] = l.slices.back().x + offset;
        out(dst) = l.args[i](src);
        offset += ci;
      }
      break;
    }
    case ir::OpKind::Softmax:
    case ir::OpKind::LogSoftmax: {
      // Over the channels of each row, from its maximum so exp never overflows.
      l.form = PointwiseAlgorithm::RowReduction;
      Func m("max"), e("exp"), s("sum");
      m(rest) = maximum(in(red));
      e(v) = safe_exp(x - m(rest));
      s(rest) = sum(e(red));
      out(v) = node.op == ir::OpKind::Softmax ? e(v) / s(rest) : x - m(rest) - log(s(rest));
      l.stages = {m, e, s};
      break;
    }
    case ir::OpKind::LayerNorm: {
      // The row's mean, its centred values, their variance: the same three stages (reduction,
      // map, reduction) as softmax's, so its CPU and GPU row schedules apply unchanged.
      l.form = PointwiseAlgorithm::RowReduction;
      const float inv_c = 1.f / static_cast<float>(l.out_dims[0]);
      const float eps = node.attr<ir::LayerNormAttrs>().epsilon;
      Func mean("mean"), centred("centred"), var("var");
      mean(rest) = sum(in(red)) * inv_c;
      centred(v) = x - mean(rest);
      var(rest) = sum(centred(red) * centred(red)) * inv_c;
      out(v) =
          centred(v) / sqrt(var(rest) + eps) * l.args[1](v[0]) + l.args[2](v[0]);  // gamma, beta
      l.stages = {mean, centred, var};
      break;
    }
    case ir::OpKind::UnitNorm: {
      // The row's sum of squares (a reduction), then the map.
      l.form = PointwiseAlgorithm::RowReduction;
      Func squares("squares");
      squares(rest) = sum(in(red) * in(red));
      out(v) = x / max(sqrt(squares(rest)), node.attr<ir::UnitNormAttrs>().epsilon);
      l.stages = {squares};
      break;
    }
    case ir::OpKind::GroupNorm: {
      // Each image's group statistics over its pixels and the group's channels (mean, then
      // the variance of the centred values), then a map: stages mean(g, n) and rstd(g, n).
      l.form = PointwiseAlgorithm::GroupReduction;
      const auto& a = node.attr<ir::GroupNormAttrs>();
      const int per = l.out_dims[0] / static_cast<int>(a.groups);
      const float inv = 1.f / (static_cast<float>(per) * l.out_dims[1] * l.out_dims[2]);
      RDom r(0, per, 0, l.out_dims[1], 0, l.out_dims[2]);
      Var gv("g"), n("n");
      Func mean("mean"), rstd("rstd");
      mean(gv, n) = sum(in(gv * per + r.x, r.y, r.z, n)) * inv;
      Expr d = in(gv * per + r.x, r.y, r.z, n) - mean(gv, n);
      rstd(gv, n) = 1.f / sqrt(sum(d * d) * inv + a.epsilon);
      Expr g = v[0] / per;
      out(v) = (x - mean(g, v[3])) * rstd(g, v[3]) * l.args[1](v[0]) + l.args[2](v[0]);
      l.stages = {mean, rstd};
      l.reduction = r;
      break;
    }
    case ir::OpKind::GlobalAvgPool2D:
    case ir::OpKind::GlobalMaxPool2D: {
      l.form = PointwiseAlgorithm::PixelReduction;
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
        // Kahan's compensated sum (the sum, the rounding it lost): a plain float sum over
        // hundreds of pixels lost digits that a squeeze-and-excitation gate then amplified
        // (EfficientNetV2B3: 3.8e-3 from Keras, 3.8e-5 compensated). strict_float keeps Halide's
        // simplifier from folding the compensation (t - s) - y to 0.
        total(c, n) = Tuple(0.f, 0.f);
        Expr y = in(c, r.x, r.y, n) - total(c, n)[1];
        Expr t = total(c, n)[0] + y;
        total(c, n) = Tuple(t, strict_float((t - total(c, n)[0]) - y));
      }
      FuncRef pooled = rank == 4 ? total(v[0], v[3]) : total(v[0], v[1]);
      Expr result = is_max ? Expr(pooled) : pooled[0];
      out(v) = is_max ? result : result * (1.f / static_cast<float>(src[1] * src[2]));
      l.stages = {total};
      l.reduction = r;
      break;
    }
    case ir::OpKind::Input:
    case ir::OpKind::Conv2D:
    case ir::OpKind::Conv2DTranspose:
    case ir::OpKind::Dense:
    case ir::OpKind::MaxPool2D:
    case ir::OpKind::AvgPool2D:
    case ir::OpKind::Flatten:
    case ir::OpKind::Reshape:
    case ir::OpKind::Dropout:
    case ir::OpKind::Augment:
    case ir::OpKind::Parameter:
    case ir::OpKind::Conv2DGradInput:
    case ir::OpKind::Conv2DGradKernel:
    case ir::OpKind::DenseGradInput:
    case ir::OpKind::DenseGradKernel:
    case ir::OpKind::BiasGrad:
    case ir::OpKind::MaxPool2DGrad:
    case ir::OpKind::AvgPool2DGrad:
    case ir::OpKind::GlobalAvgPool2DGrad:
    case ir::OpKind::ActivationGrad:
    case ir::OpKind::SoftmaxCrossEntropyGrad:
    case ir::OpKind::MeanSquaredErrorGrad:
    case ir::OpKind::SumToShape:
    case ir::OpKind::BatchSums:
    case ir::OpKind::BatchNormTrain:
    case ir::OpKind::BatchNormGammaGrad:
    case ir::OpKind::BatchNormGrad:
    case ir::OpKind::LayerNormGrad:
    case ir::OpKind::LayerNormGammaGrad:
    case ir::OpKind::ChannelScale:
    case ir::OpKind::GlobalMaxPool2DGrad:
    case ir::OpKind::UnitNormGrad:
    case ir::OpKind::SoftmaxGrad:
    case ir::OpKind::GroupNormGrad:
    case ir::OpKind::GroupNormGammaGrad:
    case ir::OpKind::ResizeGrad:
    case ir::OpKind::ExtremumGrad:
      throw InternalError("op '" + std::string(node.info().text) + "' is not a pointwise kernel");
  }
  if (l.form == PointwiseAlgorithm::Map) out(v) = with_activation(node.epilogue, y);
  bound_output(out, l.out_dims);
  return l;
}

}  // namespace cnnc::codegen
