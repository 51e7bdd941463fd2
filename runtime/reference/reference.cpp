#include "runtime/reference/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "ir/error.h"
#include "ir/shape_inference.h"
#include "runtime/reference/gradients.h"

namespace cnnc::runtime::reference {

std::string layer(const ir::Node& n) {
  return "layer '" + n.name + "' (" + std::string(n.info().text) + ")";
}

void fail(const ir::Node& n, const std::string& msg) {
  throw Error("reference: " + layer(n) + ": " + msg);
}

namespace {

using ir::Node;
using ir::OpKind;
using ir::Shape;
using ir::Tensor;

// The weights of a role, checked to be set and of the declared size.
const Tensor& weights(const Node& n, const char* role) {
  const ir::Param* p = n.param(role);
  if (!p) fail(n, std::string("has no '") + role + "' weights");
  if (p->value.data.empty())
    fail(n, std::string("weights '") + role + "' are not set (initialise or load them first)");
  if (static_cast<int64_t>(p->value.data.size()) != p->value.elements())
    fail(n, std::string("weights '") + role + "' hold " + std::to_string(p->value.data.size()) +
                " values, their shape " + ir::shape_to_string(p->value.shape, true) + " needs " +
                std::to_string(p->value.elements()));
  return p->value;
}

Tensor conv2d(const Node& n, const Tensor& in) {
  const auto& a = n.attr<ir::Conv2DAttrs>();
  const Tensor& k = weights(n, "kernel");
  const Tensor* bias = a.use_bias ? &weights(n, "bias") : nullptr;
  const Shape& os = n.type.shape;
  std::vector<double> acc(static_cast<size_t>(ir::Tensor::count(os)), 0.0);
  if (bias)
    for (size_t o = 0; o < acc.size(); ++o) acc[o] = bias->data[o % static_cast<size_t>(os[3])];
  conv_taps(a, in.shape, os, [&](size_t i, size_t w, size_t o) {
    acc[o] += double(in.data[i]) * double(k.data[w]);
  });
  Tensor out(os);
  for (size_t o = 0; o < acc.size(); ++o) out.data[o] = static_cast<float>(acc[o]);
  return out;
}

// Every input pixel scatters its tap-weighted channels onto the outputs its kernel covers.
Tensor conv2d_transpose(const Node& n, const Tensor& in) {
  const auto& a = n.attr<ir::Conv2DTransposeAttrs>();
  const Tensor& k = weights(n, "kernel");  // (kh, kw, filters, input channels)
  const Shape &is = in.shape, &os = n.type.shape;
  const auto geo = ir::transposed_geometry(a, is[1], is[2]);
  const int64_t ci = is[3], co = os[3];
  std::vector<double> acc(static_cast<size_t>(ir::Tensor::count(os)), 0.0);
  if (a.use_bias) {
    const Tensor& bias = weights(n, "bias");
    for (size_t o = 0; o < acc.size(); ++o) acc[o] = bias.data[o % static_cast<size_t>(co)];
  }
  for (int64_t b = 0; b < is[0]; ++b)
    for (int64_t y = 0; y < is[1]; ++y)
      for (int64_t x = 0; x < is[2]; ++x)
        for (int64_t ky = 0; ky < a.kernel.h; ++ky) {
          const int64_t oy = y * a.strides.h + ky * a.dilation.h - geo.crop_top;
          if (oy < 0 || oy >= os[1]) continue;
          for (int64_t kx = 0; kx < a.kernel.w; ++kx) {
            const int64_t ox = x * a.strides.w + kx * a.dilation.w - geo.crop_left;
            if (ox < 0 || ox >= os[2]) continue;
            const float* src = &in.data[at4(is, b, y, x, 0)];
            const float* w = &k.data[static_cast<size_t>(((ky * a.kernel.w + kx) * co) * ci)];
            double* dst = &acc[at4(os, b, oy, ox, 0)];
            for (int64_t c = 0; c < co; ++c)
              for (int64_t i = 0; i < ci; ++i) dst[c] += double(src[i]) * w[c * ci + i];
          }
        }
  Tensor out(os);
  for (size_t o = 0; o < acc.size(); ++o) out.data[o] = static_cast<float>(acc[o]);
  return out;
}

Tensor dense(const Node& n, const Tensor& in) {
  const auto& a = n.attr<ir::DenseAttrs>();
  const Tensor& k = weights(n, "kernel");
  const Tensor* bias = a.use_bias ? &weights(n, "bias") : nullptr;
  Tensor out(n.type.shape);
  const int64_t cin = in.shape.back(), units = a.units;
  const int64_t rows = in.elements() / cin;  // one row per sample (rank 2) or pixel (rank 4)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t u = 0; u < units; ++u) {
      double acc = bias ? bias->data[u] : 0.0;
      for (int64_t c = 0; c < cin; ++c)
        acc += double(in.data[r * cin + c]) * double(k.data[c * units + u]);
      out.data[r * units + u] = static_cast<float>(acc);
    }
  return out;
}

// Max or average pooling; padded positions are skipped (they never win the max and do not count
// in the average).
Tensor pool2d(const Node& n, const Tensor& in, bool is_max) {
  Tensor out(n.type.shape);
  pool_windows(n, in.shape, [&](size_t o, const std::vector<size_t>& window) {
    if (window.empty()) fail(n, "a pooling window sees only padding");
    double best = -std::numeric_limits<double>::infinity(), sum = 0;
    for (size_t i : window) best = std::max(best, double(in.data[i])), sum += in.data[i];
    out.data[o] = static_cast<float>(is_max ? best : sum / static_cast<double>(window.size()));
  });
  return out;
}

Tensor global_pool(const Node& n, const Tensor& in, bool is_max) {
  Tensor out(n.type.shape);  // [N, C] or [N, 1, 1, C]: the same row-major data
  const Shape& is = in.shape;
  for (int64_t b = 0; b < is[0]; ++b)
    for (int64_t c = 0; c < is[3]; ++c) {
      double sum = 0, best = -std::numeric_limits<double>::infinity();
      for (int64_t y = 0; y < is[1]; ++y)
        for (int64_t x = 0; x < is[2]; ++x) {
          const double v = in.data[at4(is, b, y, x, c)];
          sum += v;
          best = std::max(best, v);
        }
      out.data[static_cast<size_t>(b * is[3] + c)] =
          static_cast<float>(is_max ? best : sum / (is[1] * is[2]));
    }
  return out;
}

Tensor batch_norm(const Node& n, const Tensor& in) {
  const double eps = n.attr<ir::BatchNormAttrs>().epsilon;
  const Tensor& gamma = weights(n, "gamma");
  const Tensor& beta = weights(n, "beta");
  const Tensor& mean = weights(n, "moving_mean");
  const Tensor& var = weights(n, "moving_variance");
  Tensor out(n.type.shape);
  const int64_t channels = in.shape.back();
  for (size_t i = 0; i < in.data.size(); ++i) {
    const size_t c = i % static_cast<size_t>(channels);
    const double x = in.data[i];
    out.data[i] = static_cast<float>(double(gamma.data[c]) * (x - double(mean.data[c])) /
                                         std::sqrt(double(var.data[c]) + eps) +
                                     double(beta.data[c]));
  }
  return out;
}

Tensor affine(const Node& n, const Tensor& in) {
  const Tensor& scale = weights(n, "scale");
  const Tensor& shift = weights(n, "shift");
  Tensor out(n.type.shape);
  const int64_t channels = in.shape.back();
  for (size_t i = 0; i < in.data.size(); ++i) {
    const size_t c = i % static_cast<size_t>(channels);
    out.data[i] =
        static_cast<float>(double(in.data[i]) * double(scale.data[c]) + double(shift.data[c]));
  }
  return out;
}

// log(1 + exp(x)) without overflow (the activation table's softplus, mish).
double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }
double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
// GELU's tanh approximation, differentiated: t = tanh(u), u = c (x + k x^3).
double gelu_tanh_derivative(double x) {
  const double c = 0.7978845608028654, k = 0.044715, t = std::tanh(c * (x + k * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * k * x * x);
}

// The parameter-free activations (the ones an epilogue can apply; relu at its defaults): the
// reference column of ir/activations.def.
double activate(OpKind k, double x) {
  switch (k) {
    case OpKind::ReLU:
      return std::max(x, 0.0);
#define CNNC_ACTIVATION(Name, text, keras_names, reference, halide, grad_from, grad_reference, \
                        grad_halide, doc)                                                      \
  case OpKind::Name:                                                                           \
    return reference;
#include "ir/activations.def"
#undef CNNC_ACTIVATION
    default:
      break;
  }
  throw InternalError(std::string(ir::op_info(k).text) + " is not an epilogue activation");
}

}  // namespace

double activation_derivative(OpKind k, double v) {
  switch (k) {
#define CNNC_ACTIVATION(Name, text, keras_names, reference, halide, grad_from, grad_reference, \
                        grad_halide, doc)                                                      \
  case OpKind::Name:                                                                           \
    return grad_reference;
#include "ir/activations.def"
#undef CNNC_ACTIVATION
    default:
      break;
  }
  throw InternalError(std::string(ir::op_info(k).text) + " is not a table activation");
}

namespace {

// A fused layer: its result, plus the residual (its last input), through the activation,
// exactly as the separate add and activation layers would compute it.
Tensor with_epilogue(const Node& n, Tensor out, const std::vector<const Tensor*>& inputs) {
  const ir::Epilogue& e = n.epilogue;
  for (size_t i = 0; i < out.data.size(); ++i) {
    if (e.add)
      out.data[i] = static_cast<float>(double(out.data[i]) + double(inputs.back()->data[i]));
    if (e.has_activation) out.data[i] = static_cast<float>(activate(e.activation, out.data[i]));
  }
  return out;
}

template <class F>
Tensor elementwise(const Node& n, const Tensor& in, F f) {
  Tensor out(n.type.shape);
  for (size_t i = 0; i < in.data.size(); ++i)
    out.data[i] = static_cast<float>(f(static_cast<double>(in.data[i])));
  return out;
}

// Softmax, or its logarithm, over the last axis.
Tensor softmax(const Node& n, const Tensor& in, bool log) {
  Tensor out(n.type.shape);
  const int64_t c = in.shape.back(), rows = in.elements() / c;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in.data.data() + r * c;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < c; ++k) mx = std::max(mx, double(x[k]));
    double sum = 0;
    for (int64_t k = 0; k < c; ++k) sum += std::exp(double(x[k]) - mx);
    for (int64_t k = 0; k < c; ++k)
      out.data[r * c + k] = static_cast<float>(log ? double(x[k]) - mx - std::log(sum)
                                                   : std::exp(double(x[k]) - mx) / sum);
  }
  return out;
}

// Each pixel's channels normalised by their own mean and (population) variance, in double.
Tensor layer_norm(const Node& n, const Tensor& in) {
  Tensor out(n.type.shape);
  const RowStats st = row_stats(in, n.attr<ir::LayerNormAttrs>().epsilon);
  const auto& gamma = n.param("gamma")->value.data;
  const auto& beta = n.param("beta")->value.data;
  const size_t c = static_cast<size_t>(in.shape.back());
  for (size_t i = 0; i < in.data.size(); ++i)
    out.data[i] = static_cast<float>((in.data[i] - st.mean[i / c]) * st.rstd[i / c] * gamma[i % c] +
                                     beta[i % c]);
  return out;
}

}  // namespace

GroupStats group_stats(const Tensor& x, int64_t groups, double eps) {
  GroupStats s;
  const int64_t c = x.shape[3], pixels = x.shape[1] * x.shape[2], per = c / groups;
  for (int64_t b = 0; b < x.shape[0]; ++b)
    for (int64_t g = 0; g < groups; ++g) {
      const float* v = x.data.data() + b * pixels * c + g * per;
      double mean = 0, var = 0;
      for (int64_t p = 0; p < pixels; ++p)
        for (int64_t k = 0; k < per; ++k) mean += v[p * c + k];
      mean /= static_cast<double>(pixels * per);
      for (int64_t p = 0; p < pixels; ++p)
        for (int64_t k = 0; k < per; ++k) var += (v[p * c + k] - mean) * (v[p * c + k] - mean);
      s.mean.push_back(mean);
      s.rstd.push_back(1 / std::sqrt(var / static_cast<double>(pixels * per) + eps));
    }
  return s;
}

// Output o samples the input at (o + 0.5) * in / out: nearest takes the pixel there (rounding
// down), bilinear the two neighbours of that minus 0.5, clamped to the image.
ResizeTap resize_tap(bool nearest, int64_t o, int64_t in_len, int64_t out_len) {
  const double scale = double(in_len) / double(out_len);
  if (nearest) {
    const int64_t i = std::min(static_cast<int64_t>(std::floor((o + 0.5) * scale)), in_len - 1);
    return {i, i, 0.0};
  }
  const double at = (o + 0.5) * scale - 0.5, f = std::floor(at);
  return {std::max<int64_t>(static_cast<int64_t>(f), 0),
          std::min<int64_t>(static_cast<int64_t>(std::ceil(at)), in_len - 1), at - f};
}

RowStats row_stats(const Tensor& x, double eps) {
  RowStats s;
  const int64_t c = x.shape.back(), rows = x.elements() / c;
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = x.data.data() + r * c;
    double mean = 0, var = 0;
    for (int64_t k = 0; k < c; ++k) mean += v[k];
    mean /= static_cast<double>(c);
    for (int64_t k = 0; k < c; ++k) var += (v[k] - mean) * (v[k] - mean);
    s.mean.push_back(mean);
    s.rstd.push_back(1 / std::sqrt(var / static_cast<double>(c) + eps));
  }
  return s;
}

namespace {

// Each pixel's channels divided by their L2 norm (at least epsilon), in double.
Tensor unit_norm(const Node& n, const Tensor& in) {
  Tensor out(n.type.shape);
  const double eps = n.attr<ir::UnitNormAttrs>().epsilon;
  const int64_t c = in.shape.back(), rows = in.elements() / c;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in.data.data() + r * c;
    double squares = 0;
    for (int64_t k = 0; k < c; ++k) squares += double(x[k]) * x[k];
    const double norm = std::max(std::sqrt(squares), eps);
    for (int64_t k = 0; k < c; ++k) out.data[r * c + k] = static_cast<float>(x[k] / norm);
  }
  return out;
}

// Each image's channels in groups, each group normalised over its channels and all pixels by
// its own mean and (population) variance, in double.
Tensor group_norm(const Node& n, const Tensor& in) {
  Tensor out(n.type.shape);
  const auto& a = n.attr<ir::GroupNormAttrs>();
  const auto& gamma = n.param("gamma")->value.data;
  const auto& beta = n.param("beta")->value.data;
  const GroupStats st = group_stats(in, a.groups, a.epsilon);
  const int64_t c = in.shape[3], per = c / a.groups;
  for (size_t i = 0; i < out.data.size(); ++i) {
    const int64_t ch = static_cast<int64_t>(i) % c,
                  image = static_cast<int64_t>(i) / (in.elements() / in.shape[0]);
    const size_t s = static_cast<size_t>(image * a.groups + ch / per);
    out.data[i] = static_cast<float>((in.data[i] - st.mean[s]) * st.rstd[s] * gamma[ch] + beta[ch]);
  }
  return out;
}

// TensorFlow's resize with half-pixel centres (resize_tap), bilinear or nearest.
Tensor resize(const Node& n, const Tensor& in) {
  Tensor out(n.type.shape);
  const Shape &is = in.shape, &os = out.shape;
  const bool nearest = n.attr<ir::ResizeAttrs>().interpolation == ir::Interpolation::Nearest;
  for (int64_t y = 0; y < os[1]; ++y) {
    const ResizeTap ty = resize_tap(nearest, y, is[1], os[1]);
    for (int64_t x = 0; x < os[2]; ++x) {
      const ResizeTap tx = resize_tap(nearest, x, is[2], os[2]);
      for (int64_t b = 0; b < os[0]; ++b)
        for (int64_t c = 0; c < os[3]; ++c) {
          auto v = [&](int64_t yy, int64_t xx) { return double(in.data[at4(is, b, yy, xx, c)]); };
          const double top = v(ty.lo, tx.lo) + (v(ty.lo, tx.hi) - v(ty.lo, tx.lo)) * tx.w;
          const double bottom = v(ty.hi, tx.lo) + (v(ty.hi, tx.hi) - v(ty.hi, tx.lo)) * tx.w;
          out.data[at4(os, b, y, x, c)] = static_cast<float>(top + (bottom - top) * ty.w);
        }
    }
  }
  return out;
}

Tensor add(const Node& n, const std::vector<const Tensor*>& ins) {
  Tensor out(n.type.shape);
  for (size_t i = 0; i < out.data.size(); ++i) {
    double sum = 0;
    for (const Tensor* t : ins) sum += t->data[i];
    out.data[i] = static_cast<float>(sum);
  }
  return out;
}

// Broadcasting: an input with size 1 in a dimension is read at index 0 there.
// multiply, maximum and minimum: `combine` folds the inputs left to right.
template <class Combine>
Tensor broadcast(const Node& n, const std::vector<const Tensor*>& ins, Combine combine) {
  Tensor out(n.type.shape);
  broadcast_each(out.shape, ins, [&](size_t i, const std::vector<double>& v) {
    double result = v[0];
    for (size_t k = 1; k < v.size(); ++k) result = combine(result, v[k]);
    out.data[i] = static_cast<float>(result);
  });
  return out;
}

Tensor concat(const Node& n, const std::vector<const Tensor*>& ins) {
  Tensor out(n.type.shape);
  const int64_t c_out = out.shape.back(), rows = out.elements() / c_out;
  int64_t offset = 0;  // where this input's channels start in the output
  for (const Tensor* t : ins) {
    const int64_t c = t->shape.back();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < c; ++k) out.data[r * c_out + offset + k] = t->data[r * c + k];
    offset += c;
  }
  return out;
}

Tensor channel_slice(const Node& n, const Tensor& in) {
  const auto& a = n.attr<ir::ChannelSliceAttrs>();
  Tensor out(n.type.shape);
  const int64_t c_in = in.shape.back(), rows = in.elements() / c_in;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < a.size; ++k) out.data[r * a.size + k] = in.data[r * c_in + a.begin + k];
  return out;
}

// The axes after the batch in the order perm names (1-based): a row-major walk of the output,
// each element read from the input position its coordinates map to.
Tensor transpose(const Node& n, const Tensor& in) {
  const Shape& perm = n.attr<ir::TransposeAttrs>().perm;
  Tensor out(n.type.shape);
  const size_t rank = in.shape.size();
  std::vector<int64_t> in_stride(rank, 1);
  for (size_t d = rank - 1; d > 0; --d) in_stride[d - 1] = in_stride[d] * in.shape[d];
  std::vector<int64_t> idx(rank, 0);  // the output's coordinates
  for (int64_t o = 0; o < out.elements(); ++o) {
    int64_t src = idx[0] * in_stride[0];
    for (size_t i = 1; i < rank; ++i) src += idx[i] * in_stride[perm[i - 1]];
    out.data[o] = in.data[src];
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < out.shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

Tensor zero_padding(const Node& n, const Tensor& in) {
  const auto& p = n.attr<ir::PadAttrs>().pad;
  Tensor out(n.type.shape);  // zeros
  const Shape& is = in.shape;
  for (int64_t b = 0; b < is[0]; ++b)
    for (int64_t y = 0; y < is[1]; ++y)
      for (int64_t x = 0; x < is[2]; ++x)
        for (int64_t c = 0; c < is[3]; ++c)
          out.data[at4(out.shape, b, y + p.top, x + p.left, c)] = in.data[at4(is, b, y, x, c)];
  return out;
}

Tensor cropping(const Node& n, const Tensor& in) {
  const auto& p = n.attr<ir::CropAttrs>().crop;
  Tensor out(n.type.shape);
  const Shape& os = out.shape;
  for (int64_t b = 0; b < os[0]; ++b)
    for (int64_t y = 0; y < os[1]; ++y)
      for (int64_t x = 0; x < os[2]; ++x)
        for (int64_t c = 0; c < os[3]; ++c)
          out.data[at4(os, b, y, x, c)] = in.data[at4(in.shape, b, y + p.top, x + p.left, c)];
  return out;
}

// Bilinear sampling through each image's affine map, the taps reflected at the edges
// (d c b a | a b c d | d c b a).
Tensor warp(const Node& n, const Tensor& in, const Tensor& maps) {
  Tensor out(n.type.shape);
  const Shape& s = in.shape;
  auto reflect = [](int64_t i, int64_t len) {
    i %= 2 * len;
    if (i < 0) i += 2 * len;
    return i < len ? i : 2 * len - 1 - i;
  };
  for (int64_t b = 0; b < s[0]; ++b) {
    const float* m = maps.data.data() + b * 6;
    for (int64_t y = 0; y < s[1]; ++y)
      for (int64_t x = 0; x < s[2]; ++x) {
        const double u = double(m[0]) * x + double(m[1]) * y + m[2];
        const double v = double(m[3]) * x + double(m[4]) * y + m[5];
        const double fu = std::floor(u), fv = std::floor(v), wu = u - fu, wv = v - fv;
        const auto x0 = static_cast<int64_t>(fu), y0 = static_cast<int64_t>(fv);
        for (int64_t c = 0; c < s[3]; ++c) {
          auto at = [&](int64_t yy, int64_t xx) {
            return double(in.data[at4(s, b, reflect(yy, s[1]), reflect(xx, s[2]), c)]);
          };
          out.data[at4(s, b, y, x, c)] =
              static_cast<float>((1 - wv) * ((1 - wu) * at(y0, x0) + wu * at(y0, x0 + 1)) +
                                 wv * ((1 - wu) * at(y0 + 1, x0) + wu * at(y0 + 1, x0 + 1)));
        }
      }
  }
  return out;
}

// Each image's contrast scaled by a about its channels' means, d added, clipped (factors: N x 2).
Tensor recolor(const Node& n, const Tensor& in, const Tensor& factors) {
  const auto& a = n.attr<ir::RecolorAttrs>();
  Tensor out(n.type.shape);
  const int64_t c = in.shape[3], pixels = in.shape[1] * in.shape[2];
  for (int64_t b = 0; b < in.shape[0]; ++b) {
    const double scale = factors.data[b * 2], shift = factors.data[b * 2 + 1];
    const float* x = in.data.data() + b * pixels * c;
    std::vector<double> mean(static_cast<size_t>(c), 0.0);
    if (a.contrast)
      for (int64_t i = 0; i < pixels * c; ++i) mean[i % c] += x[i] / double(pixels);
    for (int64_t i = 0; i < pixels * c; ++i) {
      const double m = mean[i % c];
      const double v = a.contrast ? (x[i] - m) * scale + m + shift : x[i] + shift;
      out.data[b * pixels * c + i] =
          static_cast<float>(std::clamp<double>(v, a.value_min, a.value_max));
    }
  }
  return out;
}

Tensor same_data(const Node& n, const Tensor& in) {
  Tensor out;
  out.shape = n.type.shape;
  out.data = in.data;
  return out;
}

}  // namespace

namespace {
Tensor run_op(const Node& n, const std::vector<const Tensor*>& inputs);
}  // namespace

Tensor run_node(const Node& n, const std::vector<const Tensor*>& inputs) {
  if (n.op == OpKind::Input || n.op == OpKind::Parameter)
    fail(n, "an input or parameter is not run; run() takes its tensor");
  const auto& info = n.info();
  const int nin = static_cast<int>(inputs.size()) - (n.epilogue.add ? 1 : 0);
  if (nin < info.min_inputs || (info.max_inputs >= 0 && nin > info.max_inputs))
    fail(n, "got " + std::to_string(nin) + " input tensor(s)");
  // The inputs must be the tensors the node was typed for: re-infer and compare.
  std::vector<ir::TensorType> types;
  for (const Tensor* t : inputs) {
    if (!t) fail(n, "null input tensor");
    if (static_cast<int64_t>(t->data.size()) != t->elements() || t->shape.empty())
      fail(n, "an input tensor holds " + std::to_string(t->data.size()) + " values for shape " +
                  ir::shape_to_string(t->shape, true));
    types.push_back(ir::TensorType{t->shape});
  }
  ir::Inferred inf;
  try {
    inf = ir::infer(n, types, types[0].shape[0]);
  } catch (const Error& e) {
    fail(n, std::string("inputs do not fit: ") + e.what());
  }
  if (!(inf.type.shape == n.type.shape))
    fail(n, "inputs give output " + ir::shape_to_string(inf.type.shape, true) +
                ", the layer was typed " + ir::shape_to_string(n.type.shape, true));
  if (n.epilogue == ir::Epilogue{}) return run_op(n, inputs);
  // The op on its own inputs (the residual of epilogue=add comes last), then the epilogue.
  const std::vector<const Tensor*> own(inputs.begin(), inputs.end() - (n.epilogue.add ? 1 : 0));
  return with_epilogue(n, run_op(n, own), inputs);
}

namespace {
Tensor run_op(const Node& n, const std::vector<const Tensor*>& inputs) {
  const Tensor& x = *inputs[0];
  switch (n.op) {
    case OpKind::Input:
      break;  // run_node refuses it
    case OpKind::Conv2D:
      return conv2d(n, x);
    case OpKind::Conv2DTranspose:
      return conv2d_transpose(n, x);
    case OpKind::Dense:
      return dense(n, x);
    case OpKind::MaxPool2D:
      return pool2d(n, x, /*is_max=*/true);
    case OpKind::AvgPool2D:
      return pool2d(n, x, /*is_max=*/false);
    case OpKind::GlobalAvgPool2D:
      return global_pool(n, x, /*is_max=*/false);
    case OpKind::GlobalMaxPool2D:
      return global_pool(n, x, /*is_max=*/true);
    case OpKind::BatchNorm:
      return batch_norm(n, x);
    case OpKind::Affine:
      return affine(n, x);
    case OpKind::ReLU: {
      const auto& a = n.attr<ir::ReLUAttrs>();
      const double top = a.max_value, slope = a.negative_slope, threshold = a.threshold;
      return elementwise(n, x, [=](double v) {
        return v >= top ? top : v >= threshold ? v : slope * (v - threshold);
      });
    }
    case OpKind::LeakyReLU: {
      const double alpha = n.attr<ir::LeakyReLUAttrs>().alpha;
      return elementwise(n, x, [alpha](double v) { return v > 0 ? v : alpha * v; });
    }
#define CNNC_ACTIVATION(Name, text, keras_names, reference, halide, grad_from, grad_reference, \
                        grad_halide, doc)                                                      \
  case OpKind::Name:
#include "ir/activations.def"
#undef CNNC_ACTIVATION
      return elementwise(n, x, [k = n.op](double v) { return activate(k, v); });
    case OpKind::LayerNorm:
      return layer_norm(n, x);
    case OpKind::GroupNorm:
      return group_norm(n, x);
    case OpKind::UnitNorm:
      return unit_norm(n, x);
    case OpKind::Softmax:
      return softmax(n, x, /*log=*/false);
    case OpKind::LogSoftmax:
      return softmax(n, x, /*log=*/true);
    case OpKind::Add:
      return add(n, inputs);
    case OpKind::Multiply:
      return broadcast(n, inputs, [](double a, double b) { return a * b; });
    case OpKind::Maximum:
      return broadcast(n, inputs, [](double a, double b) { return std::max(a, b); });
    case OpKind::Minimum:
      return broadcast(n, inputs, [](double a, double b) { return std::min(a, b); });
    case OpKind::Concat:
      return concat(n, inputs);
    case OpKind::Flatten:
    case OpKind::Reshape:
    case OpKind::Dropout:  // identity at inference
    case OpKind::Augment:
      return same_data(n, x);
    case OpKind::ZeroPadding2D:
      return zero_padding(n, x);
    case OpKind::Resize:
      return resize(n, x);
    case OpKind::Cropping2D:
      return cropping(n, x);
    case OpKind::ChannelSlice:
      return channel_slice(n, x);
    case OpKind::Transpose:
      return transpose(n, x);
    case OpKind::Parameter:
      break;  // run() takes its value from the layer it stands for
    case OpKind::Warp:
      return warp(n, x, *inputs[1]);
    case OpKind::Recolor:
      return recolor(n, x, *inputs[1]);
    case OpKind::Conv2DGradInput:
    case OpKind::Conv2DGradKernel:
    case OpKind::DenseGradInput:
    case OpKind::DenseGradKernel:
    case OpKind::BiasGrad:
    case OpKind::MaxPool2DGrad:
    case OpKind::AvgPool2DGrad:
    case OpKind::GlobalAvgPool2DGrad:
    case OpKind::ActivationGrad:
    case OpKind::SoftmaxCrossEntropyGrad:
    case OpKind::MeanSquaredErrorGrad:
    case OpKind::SumToShape:
    case OpKind::BatchSums:
    case OpKind::BatchNormTrain:
    case OpKind::BatchNormGammaGrad:
    case OpKind::BatchNormGrad:
    case OpKind::LayerNormGrad:
    case OpKind::GroupNormGrad:
    case OpKind::GroupNormGammaGrad:
    case OpKind::ResizeGrad:
    case OpKind::ExtremumGrad:
    case OpKind::LayerNormGammaGrad:
    case OpKind::ChannelScale:
    case OpKind::GlobalMaxPool2DGrad:
    case OpKind::UnitNormGrad:
    case OpKind::SoftmaxGrad:
      return run_gradient_op(n, inputs);
  }
  fail(n, "unknown op");
}
}  // namespace

std::vector<Tensor> run(const ir::Graph& g, const std::vector<Tensor>& inputs) {
  const auto in_ids = g.inputs();
  if (inputs.size() != in_ids.size())
    throw Error("reference: the network '" + g.name + "' takes " + std::to_string(in_ids.size()) +
                " input(s), got " + std::to_string(inputs.size()));
  for (size_t i = 0; i < in_ids.size(); ++i) {
    const Node& n = g.node(in_ids[i]);
    if (inputs[i].shape != n.type.shape)
      throw Error("reference: " + g.where(n) + ": input " + std::to_string(i + 1) + " has shape " +
                  ir::shape_to_string(inputs[i].shape, true) + ", expected " +
                  ir::shape_to_string(n.type.shape, true) + " (batch first)");
    if (static_cast<int64_t>(inputs[i].data.size()) != inputs[i].elements())
      throw Error("reference: " + g.where(n) + ": input " + std::to_string(i + 1) + " holds " +
                  std::to_string(inputs[i].data.size()) + " values, its shape needs " +
                  std::to_string(inputs[i].elements()));
  }
  for (const Node& n : g.nodes())
    for (const auto& p : n.params)
      if (p.value.data.empty())
        throw Error("reference: " + g.where(n) + ": weights '" + p.role +
                    "' are not set (initialise or load them first)");

  std::vector<Tensor> values(static_cast<size_t>(g.size()));
  for (size_t i = 0; i < in_ids.size(); ++i) values[static_cast<size_t>(in_ids[i])] = inputs[i];
  for (int id = 0; id < g.size(); ++id) {
    const Node& n = g.node(id);
    if (n.op == OpKind::Input) continue;
    if (n.op == OpKind::Parameter) {
      values[static_cast<size_t>(id)] = ir::parameter_value(g, n).value;
      continue;
    }
    std::vector<const Tensor*> args;
    for (ir::NodeId in : n.inputs) args.push_back(&values[static_cast<size_t>(in)]);
    try {
      values[static_cast<size_t>(id)] = run_node(n, args);
    } catch (const Error& e) {
      // Name the layer with its file and line, which run_node cannot know.
      std::string msg = e.what();
      const std::string prefix = "reference: " + layer(n) + ": ";
      if (msg.rfind(prefix, 0) == 0) msg = msg.substr(prefix.size());
      throw Error("reference: " + g.where(n) + ": " + msg);
    }
  }
  std::vector<Tensor> outs;
  for (ir::NodeId o : g.outputs()) outs.push_back(values[static_cast<size_t>(o)]);
  return outs;
}

}  // namespace cnnc::runtime::reference
