// The backward ops of training graphs (passes/gradient). Each is the transpose of its forward
// algorithm, written as a gather so every output element is computed once, without atomics:
// the input gradient of a conv sums the taps that read each input pixel, the kernel gradient
// correlates the input with dy over the batch, pooling gradients sum the windows that contain
// each pixel. Reductions accumulate in `acc`, whose dims are ordered (vectorised, register-tiled,
// ...) so one CPU or GPU schedule fits them all (codegen/schedules).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "codegen/ops/ops.h"
#include "ir/error.h"
#include "ir/shape_inference.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

// The forward conv2d of a gradient op, for its geometry.
ir::WindowGeometry conv_geometry(const ir::Node& n, int64_t batch) {
  const auto& a = n.attr<ir::ConvGradAttrs>();
  ir::Node forward;
  forward.op = ir::OpKind::Conv2D;
  forward.attrs = a.conv;
  return ir::window_geometry(forward, ir::TensorType{{batch, a.input[0], a.input[1], a.input[2]}});
}

ir::WindowGeometry pool_geometry(const ir::Node& n, const ir::TensorType& x) {
  ir::Node forward;
  forward.op = n.op == ir::OpKind::MaxPool2DGrad ? ir::OpKind::MaxPool2D : ir::OpKind::AvgPool2D;
  forward.attrs = n.attrs;
  return ir::window_geometry(forward, x);
}

// The graph's input types as the kernel sees them: a dense layer's rank-4 input is rows x C.
std::vector<int> dims_of(const ir::TensorType& t, bool as_rows) {
  if (as_rows)
    return {static_cast<int>(t.channels()), static_cast<int>(t.elements() / t.channels())};
  return halide_dims(t.shape);
}

}  // namespace

GradientAlgorithm gradient_algorithm(const ir::Graph& g, const ir::Node& node) {
  GradientAlgorithm l;
  const bool dense = node.op == ir::OpKind::DenseGradInput ||
                     node.op == ir::OpKind::DenseGradKernel || node.op == ir::OpKind::BiasGrad;
  // A training batchnorm's values are per channel over all rows (batch x pixels), any rank; a
  // layernorm's per row over the channels.
  const bool batchnorm =
      node.op == ir::OpKind::BatchSums || node.op == ir::OpKind::BatchNormTrain ||
      node.op == ir::OpKind::BatchNormGammaGrad || node.op == ir::OpKind::BatchNormGrad ||
      node.op == ir::OpKind::LayerNormGrad || node.op == ir::OpKind::LayerNormGammaGrad ||
      node.op == ir::OpKind::UnitNormGrad || node.op == ir::OpKind::SoftmaxGrad ||
      node.op == ir::OpKind::GroupNormGrad || node.op == ir::OpKind::GroupNormGammaGrad;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const ir::TensorType& t = g.node(node.inputs[i]).type;
    // A dense layer's activations (not its kernel) are rows x C whatever their rank.
    const bool rows = (dense && !(node.op == ir::OpKind::DenseGradInput && i == 1)) ||
                      (batchnorm && t.rank() >= 2);
    l.arg_dims.push_back(dims_of(t, rows));
    l.args.push_back(make_input("in" + std::to_string(i), l.arg_dims.back()));
  }
  for (const auto& p : node.params) {  // batchnorm_train's gamma, beta, moving statistics
    l.arg_dims.push_back(halide_dims(p.value.shape));
    l.args.push_back(make_input(p.role, l.arg_dims.back()));
  }
  l.out_dims = dims_of(
      node.type, node.op == ir::OpKind::DenseGradInput || (batchnorm && node.type.rank() >= 2));
  const int rank = static_cast<int>(l.out_dims.size());
  static const char* names[] = {"v0", "v1", "v2", "v3"};
  for (int i = 0; i < rank; ++i) l.vars.emplace_back(names[i]);
  const std::vector<Var>& v = l.vars;
  std::vector<Expr> at(v.begin(), v.end());
  ImageParam& a = l.args[0];
  ImageParam& b = l.args[1 % l.args.size()];
  l.out = Func("out_" + std::string(node.info().text));
  const int64_t batch = g.batch();

  // A reduction: acc(vars) = 0, acc += term over r; out = finish(acc).
  auto reduce = [&](const RDom& r, Expr term, const std::function<Expr(Expr)>& finish) {
    l.form = GradientAlgorithm::Reduction;
    l.r = r;
    l.acc = Func("acc");
    l.acc(at) = 0.f;
    l.acc(at) += term;
    l.out(at) = finish(l.acc(at));
  };
  // A transposed convolution as a gather (a conv's input gradient, conv2d_transpose): output
  // (x, y) is position (x + crop_left, y + crop_top) of the full output, where input pixel X's
  // tap kx lands at X * stride + kx * dilation. With stride s > 1 only the taps kx = t % s +
  // s * j reach position t (from X = t / s - j), so just those are summed; input positions
  // outside the image read zero. `in` is (input channels, X, Y, n), `w` the kernel (input
  // channels, output channels per group, kx, ky); `finish` turns the sum into the output.
  auto transposed_gather = [&](ir::Pair stride, ir::Pair dilation, ir::Pair kernel,
                               int64_t crop_top, int64_t crop_left, int groups, int in_channels,
                               ImageParam& in, ImageParam& w,
                               const std::function<Expr(Expr)>& finish) {
    const int ig = l.out_dims[0] / groups, og = in_channels / groups;
    Var o("o"), c("c"), kx("kx"), ky("ky");
    Func bounded = BoundaryConditions::constant_exterior(in, 0.f);
    // The kernel transposed so the output channels are contiguous: w(o, c) -> wt(c, o).
    Func wt("w_transposed");
    wt(c, o, kx, ky) = w(o, c, kx, ky);
    l.stages = {wt};
    l.stage_channels = {ig};
    // Per axis: how many taps are summed (j), the tap and the input position of output t at
    // tap j, and whether that tap exists (a guard only where some do not).
    struct Axis {
      Expr tap, pos, valid;
      bool guarded = false;
    };
    auto taps = [](int64_t k, int64_t s, int64_t d) {
      return static_cast<int>(s > 1 && d == 1 ? (k + s - 1) / s : k);
    };
    auto axis = [](Expr t, int64_t k, int64_t s, int64_t d, RVar j) {
      const int si = static_cast<int>(s), di = static_cast<int>(d), ki = static_cast<int>(k);
      if (s == 1) return Axis{j, t - j * di, Expr()};
      if (d == 1) {
        // Clamped for bounds inference, which does not read the guard: the guarded-off taps
        // past the kernel would otherwise widen the transposed kernel's region.
        Expr tap = t % si + si * j;
        return Axis{min(tap, ki - 1), t / si - j, tap < ki, k % s != 0};
      }
      // Stride and dilation (a forward conv may have both): every tap, those on the grid.
      Expr at = t - j * di;
      return Axis{j, at / si, at % si == 0, true};
    };
    Expr tx = v[1] + static_cast<int>(crop_left), ty = v[2] + static_cast<int>(crop_top);
    RDom r(0, og, 0, taps(kernel.w, stride.w, dilation.w), 0, taps(kernel.h, stride.h, dilation.h));
    const Axis ax = axis(tx, kernel.w, stride.w, dilation.w, r.y);
    const Axis ay = axis(ty, kernel.h, stride.h, dilation.h, r.z);
    if (ax.guarded) r.where(ax.valid);
    if (ay.guarded) r.where(ay.valid);
    Expr oo = groups == 1 ? Expr(r.x) : (v[0] / ig) * og + r.x;
    reduce(r, bounded(oo, ax.pos, ay.pos, v[3]) * wt(v[0] % ig, oo, ax.tap, ay.tap), finish);
  };
  // A sum over the batch's `rows` (images, or a dense layer's rows) in `slices` parallel
  // partial sums: partial(vars, u) = the sum of `inner` over the slice's strips, where
  // inner(vars, u, s) sums strip s of slice u: rows of an image, or whole images, whose dy and
  // input stay in cache while every register tile of the output sweeps them (at least half an
  // L1, and at least 64 positions, so that adding a tile into the partial sums once per strip
  // costs little); for a dense layer the whole slice. out sums the partials. `image_rows` x
  // `image_cols` are an image's dy positions (0 for dense), `row_bytes` the bytes of dy and
  // input one row of them reads, `term` the product at (x, y, row).
  auto reduce_in_slices = [&](int rows, int image_rows, int image_cols, int64_t row_bytes,
                              const std::function<Expr(Expr, Expr, Expr)>& term) {
    int64_t out_elements = 1;
    for (int d : l.out_dims) out_elements *= d;
    // As many slices as keep the partial sums within 4 MiB, at most 16, dividing the rows.
    int chunks = 1;
    for (int d = static_cast<int>(
             std::min<int64_t>({rows, 16, std::max<int64_t>(1, (1 << 20) / out_elements)}));
         d > 1 && chunks == 1; --d)
      if (rows % d == 0) chunks = d;
    const int per = rows / chunks;
    l.form = GradientAlgorithm::Reduction;
    l.slices = chunks;
    l.slice = Var("u");
    l.strip = Var("s");
    l.acc = Func("inner");
    std::vector<Expr> at_us = at;
    at_us.push_back(l.slice);
    at_us.push_back(l.strip);
    l.acc(at_us) = 0.f;
    int strips = 1;
    if (image_rows > 0) {
      const int64_t budget = std::max<int64_t>(16384, 64 * row_bytes / image_cols);
      int strip_rows = static_cast<int>(std::clamp<int64_t>(budget / row_bytes, 1, image_rows));
      while (image_rows % strip_rows) --strip_rows;
      int images = 1;  // per strip, when a whole image fits
      if (strip_rows == image_rows)
        for (int k = per; k > 1 && images == 1; --k)
          if (per % k == 0 && k * image_rows * row_bytes <= budget) images = k;
      const int per_image = image_rows / strip_rows;
      strips = per / images * per_image;
      l.r = RDom(0, image_cols, 0, strip_rows, 0, images);
      Expr image = l.slice * per + (l.strip / per_image) * images + l.r.z;
      Expr y = (l.strip % per_image) * strip_rows + l.r.y;
      l.acc(at_us) += term(l.r.x, y, image);
    } else {
      l.r = RDom(0, per);
      l.acc(at_us) += term(Expr(), Expr(), l.slice * per + l.r.x);
    }
    l.strips = RDom(0, strips);
    l.partial = Func("partial");
    std::vector<Expr> at_u = at, at_ur = at;
    at_u.push_back(l.slice);
    at_ur.push_back(l.slice);
    at_ur.push_back(l.strips.x);
    l.partial(at_u) = 0.f;
    l.partial(at_u) += l.acc(at_ur);
    const RDom ru(0, chunks);
    std::vector<Expr> at_ru = at;
    at_ru.push_back(ru);
    l.out(at) = sum(l.partial(at_ru));
  };

  switch (node.op) {
    case ir::OpKind::Conv2DGradInput: {
      // The forward conv's padding is the crop of the full transposed output.
      const auto geo = conv_geometry(node, batch);
      const auto& ca = node.attr<ir::ConvGradAttrs>().conv;
      transposed_gather(geo.strides, geo.dilation, geo.kernel, geo.pad_top, geo.pad_left,
                        static_cast<int>(ca.groups), static_cast<int>(ca.filters), a, b,
                        [](Expr sum) { return sum; });
      break;
    }
    case ir::OpKind::Conv2DTranspose: {
      // Inputs x[, residual], then the weights kernel[, bias]; the bias and the epilogue on the
      // gathered sum.
      const auto& ta = node.attr<ir::Conv2DTransposeAttrs>();
      const ir::Shape& xs = g.node(node.inputs[0]).type.shape;
      const auto geo = ir::transposed_geometry(ta, xs[1], xs[2]);
      const size_t kernel = node.epilogue.add ? 2 : 1;
      transposed_gather(ta.strides, ta.dilation, ta.kernel, geo.crop_top, geo.crop_left, 1,
                        static_cast<int>(xs[3]), a, l.args[kernel], [&](Expr sum) {
                          if (ta.use_bias) sum += l.args[kernel + 1](v[0]);
                          if (node.epilogue.add) sum += l.args[1](at);
                          return with_activation(node.epilogue, sum);
                        });
      break;
    }
    case ir::OpKind::Conv2DGradKernel: {
      // dW(o, i, kx, ky) = sum over n, y, x of dy(o, x, y, n) times the input pixel tap
      // (kx, ky) of output (x, y) read (zero in the padding), its channel in o's group.
      const auto geo = conv_geometry(node, batch);
      const auto& ca = node.attr<ir::ConvGradAttrs>().conv;
      const int ig = l.out_dims[1], og = static_cast<int>(ca.filters / ca.groups);
      Var c("c"), X("X"), Y("Y"), n("n");
      Func padded("x_padded");
      padded(c, X, Y, n) = BoundaryConditions::constant_exterior(a, 0.f)(c, X, Y, n);
      l.stages = {padded};
      l.stage_channels = {l.arg_dims[0][0]};
      const ir::Shape& dys = g.node(node.inputs[1]).type.shape;
      Expr ic = ca.groups == 1 ? Expr(v[1]) : (v[0] / og) * ig + v[1];
      const int rows = static_cast<int>(dys[1]), cols = static_cast<int>(dys[2]);
      const int64_t row_bytes = cols * (dys[3] + l.arg_dims[0][0] * geo.strides.h) * 4;
      reduce_in_slices(
          static_cast<int>(dys[0]), rows, cols, row_bytes, [&](Expr x, Expr y, Expr image) {
            return b(v[0], x, y, image) *
                   padded(
                       ic,
                       x * static_cast<int>(geo.strides.w) +
                           v[2] * static_cast<int>(geo.dilation.w) - static_cast<int>(geo.pad_left),
                       y * static_cast<int>(geo.strides.h) +
                           v[3] * static_cast<int>(geo.dilation.h) - static_cast<int>(geo.pad_top),
                       image);
          });
      break;
    }
    case ir::OpKind::DenseGradKernel:  // dW(o, i) = sum over rows of x(i, row) dy(o, row)
      reduce_in_slices(l.arg_dims[0][1], 0, 0, 0,
                       [&](Expr, Expr, Expr row) { return a(v[1], row) * b(v[0], row); });
      break;
    case ir::OpKind::BiasGrad:  // db(c) = sum over rows of dy(c, row)
      reduce_in_slices(l.arg_dims[0][1], 0, 0, 0,
                       [&](Expr, Expr, Expr row) { return a(v[0], row); });
      break;
    case ir::OpKind::MaxPool2DGrad:
    case ir::OpKind::AvgPool2DGrad: {
      // dx(c, x, y, n) = sum over the taps (kx, ky) of the windows that read (x, y) of that
      // window's dy, if (x, y) is its first maximum (max) / divided by its valid size (avg).
      const ir::TensorType& xt = g.node(node.inputs[0]).type;
      const auto geo = pool_geometry(node, xt);
      const int kh = static_cast<int>(geo.kernel.h), kw = static_cast<int>(geo.kernel.w);
      const int sh = static_cast<int>(geo.strides.h), sw = static_cast<int>(geo.strides.w);
      const int pt = static_cast<int>(geo.pad_top), pl = static_cast<int>(geo.pad_left);
      const int in_h = static_cast<int>(xt.shape[1]), in_w = static_cast<int>(xt.shape[2]);
      const int out_h = static_cast<int>(geo.out_h), out_w = static_cast<int>(geo.out_w);
      Var c("c"), wx("wx"), wy("wy"), n("n");
      Func per_window("per_window");  // what each window gives back, and to which tap
      if (node.op == ir::OpKind::MaxPool2DGrad) {
        // The first maximum in scan order (rows, then columns), as the reference; padding
        // never wins.
        Func lowest =
            BoundaryConditions::constant_exterior(a, std::numeric_limits<float>::lowest());
        RDom t(0, kw, 0, kh);
        Tuple best = argmax(t, lowest(c, wx * sw + t.x - pl, wy * sh + t.y - pt, n));
        per_window(c, wx, wy, n) = Tuple(best[0] + best[1] * kw, b(c, wx, wy, n));
      } else {
        Expr rows = min(wy * sh - pt + kh, in_h) - max(wy * sh - pt, 0);
        Expr cols = min(wx * sw - pl + kw, in_w) - max(wx * sw - pl, 0);
        per_window(c, wx, wy, n) = Tuple(-1, b(c, wx, wy, n) / cast<float>(rows * cols));
      }
      l.stages = {per_window};
      l.stage_channels = {l.out_dims[0]};
      RDom t(0, kw, 0, kh);
      Expr ox = v[1] + pl - t.x, oy = v[2] + pt - t.y;  // window origin * stride
      Expr wxi = clamp(ox / sw, 0, out_w - 1), wyi = clamp(oy / sh, 0, out_h - 1);
      Expr reads =
          ox % sw == 0 && oy % sh == 0 && ox >= 0 && oy >= 0 && ox / sw < out_w && oy / sh < out_h;
      if (node.op == ir::OpKind::MaxPool2DGrad)
        reads = reads && per_window(v[0], wxi, wyi, v[3])[0] == t.x + t.y * kw;
      l.out(at) = sum(select(reads, per_window(v[0], wxi, wyi, v[3])[1], 0.f));
      break;
    }
    case ir::OpKind::GlobalAvgPool2DGrad: {
      const ir::Shape& s = g.node(node.inputs[0]).type.shape;
      const float pixels = static_cast<float>(s[1] * s[2]);
      const bool keep = node.attr<ir::GlobalPoolAttrs>().keepdims;
      l.out(at) = (keep ? b(v[0], 0, 0, v[3]) : b(v[0], v[3])) / pixels;
      break;
    }
    case ir::OpKind::ActivationGrad: {
      // v: the activation's output or its input (ir::activation_grad_from_output).
      const auto& ga = node.attr<ir::ActivationGradAttrs>();
      Expr v = a(at), dy = b(at);
      if (ga.of == ir::OpKind::ReLU)
        l.out(at) = select(v > 0.f, dy, 0.f);
      else if (ga.of == ir::OpKind::LeakyReLU)
        l.out(at) = select(v > 0.f, dy, ga.alpha * dy);
      else
        l.out(at) = dy * activation_derivative(ga.of, v);
      break;
    }
    case ir::OpKind::SoftmaxCrossEntropyGrad: {
      const int classes = l.out_dims[0], rows = l.out_dims[1];
      const bool sparse = l.arg_dims[1][0] == 1 && classes > 1;
      Expr target = sparse ? select(v[0] == cast<int>(b(0, v[1])), 1.f, 0.f) : b(at);
      l.out(at) = (a(at) - target) / static_cast<float>(rows);
      break;
    }
    case ir::OpKind::BatchSums:  // (c, 0): the sum of x over the rows, (c, 1): of x squared
      reduce_in_slices(l.arg_dims[0][1], 0, 0, 0, [&](Expr, Expr, Expr row) {
        Expr x = a(v[0], row);
        return select(v[1] == 0, x, x * x);
      });
      break;
    case ir::OpKind::BatchNormTrain:
    case ir::OpKind::BatchNormGammaGrad:
    case ir::OpKind::BatchNormGrad: {
      // x (c, row) and its batch_sums (c, 2): the channel's mean and 1 / sqrt(var + eps).
      const float count = static_cast<float>(l.arg_dims[0][1]);
      const float eps = node.attr<ir::BatchNormAttrs>().epsilon;
      ImageParam& sums = l.args[1];
      Expr mean = sums(v[0], 0) / count;
      Expr rstd = 1.f / sqrt(max(sums(v[0], 1) / count - mean * mean, 0.f) + eps);
      if (node.op == ir::OpKind::BatchNormTrain) {
        ImageParam &gamma = l.args[2], &beta = l.args[3];
        l.out(at) = gamma(v[0]) * (a(at) - mean) * rstd + beta(v[0]);
      } else if (node.op == ir::OpKind::BatchNormGammaGrad) {
        ImageParam& dy = l.args[2];
        reduce_in_slices(l.arg_dims[0][1], 0, 0, 0, [&](Expr, Expr, Expr row) {
          return dy(v[0], row) * (a(v[0], row) - mean) * rstd;
        });
      } else {  // dx = gamma rstd (dy - dbeta / M - xhat dgamma / M)
        ImageParam &dy = l.args[2], &dgamma = l.args[3], &dbeta = l.args[4], &gamma = l.args[5];
        Expr xhat = (a(at) - mean) * rstd;
        l.out(at) =
            gamma(v[0]) * rstd * (dy(at) - dbeta(v[0]) / count - xhat * dgamma(v[0]) / count);
      }
      break;
    }
    case ir::OpKind::LayerNormGrad:
    case ir::OpKind::LayerNormGammaGrad: {
      // x and dy as (c, row). Each row's statistics once, as stages over the rows: mean and
      // rstd = 1 / sqrt(var + eps) (two passes, as the forward layernorm), and for dx the
      // row's means of g = dy gamma and of g xhat.
      const int channels = l.arg_dims[0][0], rows = l.arg_dims[0][1];
      const float inv_c = 1.f / static_cast<float>(channels);
      const float eps = node.attr<ir::LayerNormAttrs>().epsilon;
      ImageParam &x = l.args[0], &dy = l.args[1];
      Var row("row");
      RDom rc(0, channels);
      Func mean("mean"), rstd("rstd");
      mean(row) = sum(x(rc, row)) * inv_c;
      Expr centred = x(rc, row) - mean(row);
      rstd(row) = 1.f / sqrt(sum(centred * centred) * inv_c + eps);
      auto xhat = [&](Expr c, Expr r) { return (x(c, r) - mean(r)) * rstd(r); };
      if (node.op == ir::OpKind::LayerNormGammaGrad) {
        l.stages = {mean, rstd};
        l.stage_channels = {rows, rows};
        reduce_in_slices(rows, 0, 0, 0,
                         [&](Expr, Expr, Expr r) { return dy(v[0], r) * xhat(v[0], r); });
        break;
      }
      ImageParam& gamma = l.args[2];
      Func mean_g("mean_g"), mean_gx("mean_gx");
      mean_g(row) = sum(dy(rc, row) * gamma(rc)) * inv_c;
      mean_gx(row) = sum(dy(rc, row) * gamma(rc) * xhat(rc, row)) * inv_c;
      l.stages = {mean, rstd, mean_g, mean_gx};
      l.stage_channels = {rows, rows, rows, rows};
      l.out(at) =
          rstd(v[1]) * (dy(at) * gamma(v[0]) - mean_g(v[1]) - xhat(v[0], v[1]) * mean_gx(v[1]));
      break;
    }
    case ir::OpKind::GroupNormGrad:
    case ir::OpKind::GroupNormGammaGrad: {
      // x and dy as (c, row), an image's pixels consecutive rows. Each image's group
      // statistics once, as stages over (group, image): mean and rstd as the forward groupnorm,
      // and for dx the means of g = dy gamma and of g xhat over the group.
      const auto& ga = node.attr<ir::GroupNormAttrs>();
      const ir::Shape& xs = g.node(node.inputs[0]).type.shape;
      const int groups = static_cast<int>(ga.groups), per = l.arg_dims[0][0] / groups;
      const int pixels = static_cast<int>(xs[1] * xs[2]), images = static_cast<int>(xs[0]);
      const float inv = 1.f / (static_cast<float>(per) * static_cast<float>(pixels));
      ImageParam &x = l.args[0], &dy = l.args[1];
      Var gv("g"), im("im");
      RDom r(0, per, 0, pixels);
      Expr c = gv * per + r.x, row = im * pixels + r.y;
      Func mean("mean"), rstd("rstd");
      mean(gv, im) = sum(x(c, row)) * inv;
      Expr centred = x(c, row) - mean(gv, im);
      rstd(gv, im) = 1.f / sqrt(sum(centred * centred) * inv + ga.epsilon);
      // Element (channel k, row) of x normalised by its group's statistics.
      auto xhat = [&](Expr k, Expr rw) {
        return (x(k, rw) - mean(k / per, rw / pixels)) * rstd(k / per, rw / pixels);
      };
      if (node.op == ir::OpKind::GroupNormGammaGrad) {
        l.stages = {mean, rstd};
        l.stage_channels = {groups, groups};
        reduce_in_slices(images * pixels, 0, 0, 0,
                         [&](Expr, Expr, Expr rw) { return dy(v[0], rw) * xhat(v[0], rw); });
        break;
      }
      ImageParam& gamma = l.args[2];
      Func mean_g("mean_g"), mean_gx("mean_gx");
      mean_g(gv, im) = sum(dy(c, row) * gamma(c)) * inv;
      mean_gx(gv, im) = sum(dy(c, row) * gamma(c) * xhat(c, row)) * inv;
      l.stages = {mean, rstd, mean_g, mean_gx};
      l.stage_channels = {groups, groups, groups, groups};
      Expr gk = v[0] / per, ik = v[1] / pixels;
      l.out(at) = rstd(gk, ik) *
                  (dy(at) * gamma(v[0]) - mean_g(gk, ik) - xhat(v[0], v[1]) * mean_gx(gk, ik));
      break;
    }
    case ir::OpKind::ExtremumGrad: {
      // dy where forward input `index` is the first to equal the extremum of them all; inputs
      // of size 1 in a dimension broadcast (read at 0).
      const auto& ea = node.attr<ir::ExtremumGradAttrs>();
      std::vector<Expr> values;
      for (size_t k = 1; k < l.args.size(); ++k) {
        std::vector<Expr> idx = at;
        for (int d = 0; d < rank; ++d)
          if (l.arg_dims[k][d] == 1) idx[d] = 0;
        values.push_back(l.args[k](idx));
      }
      Expr best = values[0];
      for (size_t k = 1; k < values.size(); ++k)
        best = ea.minimum ? min(best, values[k]) : max(best, values[k]);
      const auto index = static_cast<size_t>(ea.index);
      Expr first = values[index] == best;
      for (size_t k = 0; k < index; ++k) first = first && values[k] != best;
      l.out(at) = select(first, a(at), 0.f);
      break;
    }
    case ir::OpKind::ResizeGrad: {
      // A gather: input pixel i sums dy over the outputs that read it, with the weights the
      // forward resize (codegen/ops/pointwise.cpp) gave it, per axis. Output o reads the input
      // near (o + 0.5) * in / out, so the outputs that read i lie in an open interval of
      // 2 * out / in (bilinear) or out / in (nearest) positions from the start below; the window
      // has two to spare (an interval's ends, rounding), and outputs in it that do not read i
      // weigh 0.
      const bool nearest = node.attr<ir::ResizeAttrs>().interpolation == ir::Interpolation::Nearest;
      struct Axis {
        int taps;
        Expr first;
      };
      auto window = [nearest](Expr i, int in_len, int out_len) {
        if (in_len == out_len) return Axis{1, i};  // the identity
        const float scale = static_cast<float>(in_len) / static_cast<float>(out_len);
        Expr start =
            nearest ? cast<float>(i) / scale - 0.5f : (cast<float>(i) - 0.5f) / scale - 0.5f;
        const int reach = static_cast<int>(std::ceil((nearest ? 1.f : 2.f) / scale));
        return Axis{reach + 2, cast<int>(floor(start))};
      };
      auto weight = [nearest](Expr o, Expr i, int in_len, int out_len) -> Expr {
        if (in_len == out_len) return 1.f;
        const float scale = static_cast<float>(in_len) / static_cast<float>(out_len);
        Expr inside = o >= 0 && o < out_len;
        if (nearest) {
          Expr at = min(cast<int>(floor((cast<float>(o) + 0.5f) * scale)), in_len - 1);
          return select(inside && at == i, 1.f, 0.f);
        }
        Expr at = (cast<float>(o) + 0.5f) * scale - 0.5f, f = floor(at);
        Expr lo = clamp(cast<int>(f), 0, in_len - 1),
             hi = clamp(cast<int>(ceil(at)), 0, in_len - 1);
        return select(inside, select(lo == i, 1.f - (at - f), 0.f) + select(hi == i, at - f, 0.f),
                      0.f);
      };
      const int in_w = l.out_dims[1], in_h = l.out_dims[2];
      const int out_w = l.arg_dims[0][1], out_h = l.arg_dims[0][2];
      const Axis wx = window(v[1], in_w, out_w), wy = window(v[2], in_h, out_h);
      RDom r(0, wx.taps, 0, wy.taps);
      Expr ox = wx.first + r.x, oy = wy.first + r.y;
      l.out(at) = sum(weight(ox, v[1], in_w, out_w) * weight(oy, v[2], in_h, out_h) *
                      a(v[0], clamp(ox, 0, out_w - 1), clamp(oy, 0, out_h - 1), v[3]));
      break;
    }
    case ir::OpKind::UnitNormGrad: {
      // x and dy as (c, row); per row |x| and x . dy once, then dx = (dy - x (x . dy) / |x|^2)
      // / |x|, or dy / eps where |x| <= eps (the output was x / eps there).
      const int channels = l.arg_dims[0][0], rows = l.arg_dims[0][1];
      const float eps = node.attr<ir::UnitNormAttrs>().epsilon;
      Var row("row");
      RDom rc(0, channels);
      Func norm("norm"), dot("dot");
      norm(row) = sqrt(sum(a(rc, row) * a(rc, row)));
      dot(row) = sum(a(rc, row) * b(rc, row));
      l.stages = {norm, dot};
      l.stage_channels = {rows, rows};
      Expr n = norm(v[1]);
      l.out(at) = select(n > eps, (b(at) - a(at) * dot(v[1]) / (n * n)) / n, b(at) / eps);
      break;
    }
    case ir::OpKind::SoftmaxGrad: {
      // y and dy as (c, row); per row sum(dy y) (softmax) or sum(dy) (log_softmax) once.
      const bool log = node.attr<ir::ActivationGradAttrs>().of == ir::OpKind::LogSoftmax;
      Var row("row");
      RDom rc(0, l.arg_dims[0][0]);
      Func total("total");
      total(row) = sum(log ? b(rc, row) : b(rc, row) * a(rc, row));
      l.stages = {total};
      l.stage_channels = {l.arg_dims[0][1]};
      l.out(at) = log ? b(at) - exp(a(at)) * total(v[1]) : a(at) * (b(at) - total(v[1]));
      break;
    }
    case ir::OpKind::GlobalMaxPool2DGrad: {
      // Per image and channel its maximum and how many pixels hold it, then dy shared by them.
      const ir::Shape& s = g.node(node.inputs[0]).type.shape;
      const bool keep = node.attr<ir::GlobalPoolAttrs>().keepdims;
      Var c("c"), n("n");
      RDom px(0, static_cast<int>(s[2]), 0, static_cast<int>(s[1]));
      Func most("most"), ties("ties");
      most(c, n) = maximum(a(c, px.x, px.y, n));
      ties(c, n) = sum(select(a(c, px.x, px.y, n) == most(c, n), 1.f, 0.f));
      l.stages = {most, ties};
      l.stage_channels = {l.out_dims[0], l.out_dims[0]};
      Expr dy = keep ? b(v[0], 0, 0, v[3]) : b(v[0], v[3]);
      l.out(at) = select(a(at) == most(v[0], v[3]), dy / ties(v[0], v[3]), 0.f);
      break;
    }
    case ir::OpKind::ChannelScale:  // x (c, ...) times s(c)
      l.out(at) = a(at) * b(v[0]);
      break;
    case ir::OpKind::SumToShape: {
      // A sum over the dimensions the output has as 1 and the input does not.
      std::vector<int> extents;
      for (int d = 0; d < rank; ++d)
        if (l.out_dims[d] == 1 && l.arg_dims[0][d] > 1) extents.push_back(l.arg_dims[0][d]);
      if (extents.empty()) {
        l.out(at) = a(at);
        break;
      }
      Region ranges;
      for (int e : extents) ranges.emplace_back(0, e);
      RDom r(ranges);
      std::vector<Expr> idx = at;
      for (int d = 0, k = 0; d < rank; ++d)
        if (l.out_dims[d] == 1 && l.arg_dims[0][d] > 1) idx[d] = r[k++];
      l.out(at) = sum(a(idx));
      break;
    }
    case ir::OpKind::MeanSquaredErrorGrad: {
      float count = 1;
      for (int d : l.out_dims) count *= static_cast<float>(d);
      l.out(at) = 2.f * (a(at) - b(at)) / count;
      break;
    }
    default:
      throw InternalError(std::string(node.info().text) + " is not a backward op");
  }
  bound_output(l.out, l.out_dims);
  return l;
}

}  // namespace cnnc::codegen
