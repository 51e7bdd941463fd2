#include "runtime/reference/gradients.h"

#include <cmath>
#include <limits>
#include <string>

#include "ir/error.h"
#include "ir/shape_inference.h"

namespace cnnc::runtime::reference {

namespace {

using ir::Node;
using ir::OpKind;
using ir::Shape;
using ir::Tensor;

Tensor to_float(const Shape& shape, const std::vector<double>& acc) {
  Tensor t(shape);
  for (size_t i = 0; i < acc.size(); ++i) t.data[i] = static_cast<float>(acc[i]);
  return t;
}

// The forward pooling layer of a pooling gradient, for its windows.
Node forward_pool(const Node& n) {
  Node forward;
  forward.op = n.op == OpKind::MaxPool2DGrad ? OpKind::MaxPool2D : OpKind::AvgPool2D;
  forward.attrs = n.attrs;
  return forward;
}

// relu and leakyrelu from their output y; the table's activations as the table says.
double derivative(const ir::ActivationGradAttrs& a, double v) {
  if (a.of == OpKind::ReLU) return v > 0 ? 1 : 0;
  if (a.of == OpKind::LeakyReLU) return v > 0 ? 1 : a.alpha;
  return activation_derivative(a.of, v);
}

// A training batchnorm's per-channel mean and 1 / sqrt(var + eps) from its batch_sums.
struct BatchStats {
  std::vector<double> mean, rstd;
  double count = 0;  // values per channel: batch x pixels
};
BatchStats batch_stats(const Node& n, const Tensor& x, const Tensor& sums) {
  BatchStats b;
  const int64_t c = x.shape.back();
  b.count = static_cast<double>(x.elements() / c);
  for (int64_t k = 0; k < c; ++k) {
    const double mean = sums.data[k] / b.count, var = sums.data[c + k] / b.count - mean * mean;
    b.mean.push_back(mean);
    b.rstd.push_back(1 / std::sqrt(var + n.attr<ir::BatchNormAttrs>().epsilon));
  }
  return b;
}

}  // namespace

Tensor run_gradient_op(const Node& n, const std::vector<const Tensor*>& in) {
  const Tensor& a = *in[0];
  const Tensor& b = *in[1 % in.size()];
  std::vector<double> acc(static_cast<size_t>(ir::Tensor::count(n.type.shape)), 0.0);
  switch (n.op) {
    case OpKind::Conv2DGradInput:  // a = dy, b = kernel
      conv_taps(n.attr<ir::ConvGradAttrs>().conv, n.type.shape, a.shape,
                [&](size_t i, size_t k, size_t o) { acc[i] += double(a.data[o]) * b.data[k]; });
      break;
    case OpKind::Conv2DGradKernel:  // a = x, b = dy
      conv_taps(n.attr<ir::ConvGradAttrs>().conv, a.shape, b.shape,
                [&](size_t i, size_t k, size_t o) { acc[k] += double(a.data[i]) * b.data[o]; });
      break;
    case OpKind::DenseGradInput: {  // a = dy (rows x units), b = kernel (in x units)
      const int64_t units = b.shape[1], cin = b.shape[0], rows = a.elements() / units;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cin; ++c)
          for (int64_t u = 0; u < units; ++u)
            acc[r * cin + c] += double(a.data[r * units + u]) * b.data[c * units + u];
      break;
    }
    case OpKind::DenseGradKernel: {  // a = x (rows x in), b = dy (rows x units)
      const int64_t cin = a.shape.back(), units = b.shape.back(), rows = a.elements() / cin;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cin; ++c)
          for (int64_t u = 0; u < units; ++u)
            acc[c * units + u] += double(a.data[r * cin + c]) * b.data[r * units + u];
      break;
    }
    case OpKind::BiasGrad:
      for (size_t i = 0; i < a.data.size(); ++i) acc[i % acc.size()] += a.data[i];
      break;
    case OpKind::MaxPool2DGrad:  // a = x, b = dy: to the first maximum of each window
      pool_windows(forward_pool(n), a.shape, [&](size_t o, const std::vector<size_t>& w) {
        if (w.empty()) fail(n, "a pooling window sees only padding");
        size_t best = w[0];
        for (size_t i : w)
          if (a.data[i] > a.data[best]) best = i;
        acc[best] += b.data[o];
      });
      break;
    case OpKind::AvgPool2DGrad:
      pool_windows(forward_pool(n), a.shape, [&](size_t o, const std::vector<size_t>& w) {
        if (w.empty()) fail(n, "a pooling window sees only padding");
        for (size_t i : w) acc[i] += double(b.data[o]) / static_cast<double>(w.size());
      });
      break;
    case OpKind::GlobalAvgPool2DGrad: {
      const Shape& s = a.shape;
      const double pixels = static_cast<double>(s[1] * s[2]);
      for (size_t i = 0; i < acc.size(); ++i) {
        const size_t image = i / static_cast<size_t>(s[1] * s[2] * s[3]);
        acc[i] = b.data[image * static_cast<size_t>(s[3]) + i % static_cast<size_t>(s[3])] / pixels;
      }
      break;
    }
    case OpKind::GlobalMaxPool2DGrad: {  // a = x, b = dy: shared by the pixels at the maximum
      const size_t pixels = static_cast<size_t>(a.shape[1] * a.shape[2]);
      const size_t c = static_cast<size_t>(a.shape[3]);
      for (size_t image = 0; image < static_cast<size_t>(a.shape[0]); ++image)
        for (size_t k = 0; k < c; ++k) {
          const size_t first = image * pixels * c + k;
          float most = a.data[first];
          for (size_t p = 0; p < pixels; ++p) most = std::max(most, a.data[first + p * c]);
          double ties = 0;
          for (size_t p = 0; p < pixels; ++p) ties += a.data[first + p * c] == most;
          for (size_t p = 0; p < pixels; ++p)
            if (a.data[first + p * c] == most) acc[first + p * c] = b.data[image * c + k] / ties;
        }
      break;
    }
    case OpKind::SumToShape: {  // every element of a into the output element it broadcasts from
      const ir::Shape& os = n.type.shape;
      for (size_t i = 0; i < a.data.size(); ++i) {
        size_t rest = i, o = 0, stride = 1;
        for (size_t d = os.size(); d-- > 0;) {
          const auto extent = static_cast<size_t>(a.shape[d]);
          if (os[d] != 1) o += (rest % extent) * stride;
          rest /= extent;
          stride *= static_cast<size_t>(os[d]);
        }
        acc[o] += a.data[i];
      }
      break;
    }
    case OpKind::ActivationGrad:  // a = y or x (ir::activation_grad_from_output), b = dy
      for (size_t i = 0; i < acc.size(); ++i)
        acc[i] = b.data[i] * derivative(n.attr<ir::ActivationGradAttrs>(), a.data[i]);
      break;
    case OpKind::SoftmaxCrossEntropyGrad: {  // a = p (N x C), b = labels
      const int64_t batch = a.shape[0], classes = a.shape[1];
      const bool sparse = b.shape[1] == 1 && classes > 1;
      for (int64_t r = 0; r < batch; ++r) {
        for (int64_t c = 0; c < classes; ++c) acc[r * classes + c] = a.data[r * classes + c];
        if (sparse) {
          const float label = b.data[r];
          if (!(label >= 0 && label < classes) || label != std::floor(label))
            fail(n, "label " + std::to_string(label) + " of sample " + std::to_string(r) +
                        " is not a class index in 0.." + std::to_string(classes - 1));
          acc[r * classes + static_cast<int64_t>(label)] -= 1;
        } else {
          for (int64_t c = 0; c < classes; ++c) acc[r * classes + c] -= b.data[r * classes + c];
        }
        for (int64_t c = 0; c < classes; ++c) acc[r * classes + c] /= static_cast<double>(batch);
      }
      break;
    }
    case OpKind::BatchSums: {  // a = x
      const size_t c = static_cast<size_t>(a.shape.back());
      for (size_t i = 0; i < a.data.size(); ++i)
        acc[i % c] += a.data[i], acc[c + i % c] += double(a.data[i]) * a.data[i];
      break;
    }
    case OpKind::BatchNormTrain: {  // a = x, b = sums; the layer's gamma and beta
      const BatchStats st = batch_stats(n, a, b);
      const ir::Param *gamma = n.param("gamma"), *beta = n.param("beta");
      if (!gamma || !beta || gamma->value.data.empty() || beta->value.data.empty())
        fail(n, "gamma and beta are not set");
      const size_t c = st.mean.size();
      for (size_t i = 0; i < acc.size(); ++i)
        acc[i] = gamma->value.data[i % c] * (a.data[i] - st.mean[i % c]) * st.rstd[i % c] +
                 beta->value.data[i % c];
      break;
    }
    case OpKind::BatchNormGammaGrad: {  // a = x, b = sums, in[2] = dy: sum of dy xhat
      const BatchStats st = batch_stats(n, a, b);
      const size_t c = st.mean.size();
      for (size_t i = 0; i < a.data.size(); ++i)
        acc[i % c] += double(in[2]->data[i]) * (a.data[i] - st.mean[i % c]) * st.rstd[i % c];
      break;
    }
    case OpKind::BatchNormGrad: {  // x, sums, dy, dgamma, dbeta, gamma
      const BatchStats st = batch_stats(n, a, b);
      const size_t c = st.mean.size();
      const Tensor &dy = *in[2], &dgamma = *in[3], &dbeta = *in[4], &gamma = *in[5];
      for (size_t i = 0; i < acc.size(); ++i) {
        const size_t k = i % c;
        const double xhat = (a.data[i] - st.mean[k]) * st.rstd[k];
        acc[i] = gamma.data[k] * st.rstd[k] *
                 (dy.data[i] - dbeta.data[k] / st.count - xhat * dgamma.data[k] / st.count);
      }
      break;
    }
    case OpKind::LayerNormGrad: {  // x, dy, gamma
      const RowStats st = row_stats(a, n.attr<ir::LayerNormAttrs>().epsilon);
      const size_t c = static_cast<size_t>(a.shape.back());
      const Tensor &dy = b, &gamma = *in[2];
      for (size_t r = 0; r < st.mean.size(); ++r) {
        double mean_g = 0, mean_gx = 0;  // the row's means of g = dy gamma and of g xhat
        for (size_t k = 0; k < c; ++k) {
          const double g = double(dy.data[r * c + k]) * gamma.data[k];
          mean_g += g;
          mean_gx += g * (a.data[r * c + k] - st.mean[r]) * st.rstd[r];
        }
        mean_g /= static_cast<double>(c);
        mean_gx /= static_cast<double>(c);
        for (size_t k = 0; k < c; ++k) {
          const double xhat = (a.data[r * c + k] - st.mean[r]) * st.rstd[r];
          acc[r * c + k] =
              st.rstd[r] * (double(dy.data[r * c + k]) * gamma.data[k] - mean_g - xhat * mean_gx);
        }
      }
      break;
    }
    case OpKind::LayerNormGammaGrad: {  // x, dy: the sum of dy xhat over the rows
      const RowStats st = row_stats(a, n.attr<ir::LayerNormAttrs>().epsilon);
      const size_t c = static_cast<size_t>(a.shape.back());
      for (size_t i = 0; i < a.data.size(); ++i)
        acc[i % c] += double(b.data[i]) * (a.data[i] - st.mean[i / c]) * st.rstd[i / c];
      break;
    }
    case OpKind::GroupNormGrad:
    case OpKind::GroupNormGammaGrad: {  // x, dy[, gamma]: as layernorm's, over each image's group
      const auto& ga = n.attr<ir::GroupNormAttrs>();
      const GroupStats st = group_stats(a, ga.groups, ga.epsilon);
      const int64_t c = a.shape[3], per = c / ga.groups, image = a.elements() / a.shape[0];
      auto stat = [&](size_t i) {  // the index of element i's group statistics
        return static_cast<size_t>(static_cast<int64_t>(i) / image * ga.groups +
                                   static_cast<int64_t>(i) % c / per);
      };
      auto xhat = [&](size_t i) { return (a.data[i] - st.mean[stat(i)]) * st.rstd[stat(i)]; };
      if (n.op == OpKind::GroupNormGammaGrad) {
        for (size_t i = 0; i < a.data.size(); ++i)
          acc[i % static_cast<size_t>(c)] += double(b.data[i]) * xhat(i);
        break;
      }
      const Tensor& gamma = *in[2];
      std::vector<double> mean_g(st.mean.size()), mean_gx(st.mean.size());  // per group
      const double count = static_cast<double>(per * a.shape[1] * a.shape[2]);
      for (size_t i = 0; i < a.data.size(); ++i) {
        const double g = double(b.data[i]) * gamma.data[i % static_cast<size_t>(c)];
        mean_g[stat(i)] += g / count;
        mean_gx[stat(i)] += g * xhat(i) / count;
      }
      for (size_t i = 0; i < a.data.size(); ++i)
        acc[i] = st.rstd[stat(i)] * (double(b.data[i]) * gamma.data[i % static_cast<size_t>(c)] -
                                     mean_g[stat(i)] - xhat(i) * mean_gx[stat(i)]);
      break;
    }
    case OpKind::ExtremumGrad: {  // dy, then the forward inputs
      const auto& ea = n.attr<ir::ExtremumGradAttrs>();
      const std::vector<const Tensor*> forward(in.begin() + 1, in.end());
      broadcast_each(n.type.shape, forward, [&](size_t i, const std::vector<double>& v) {
        size_t first = 0;
        for (size_t k = 1; k < v.size(); ++k)
          if (ea.minimum ? v[k] < v[first] : v[k] > v[first]) first = k;
        acc[i] = first == static_cast<size_t>(ea.index) ? a.data[i] : 0.0;
      });
      break;
    }
    case OpKind::ResizeGrad: {  // dy back through the forward's taps (reference resize)
      const Shape &ys = a.shape, &xs = n.type.shape;
      const bool nearest = n.attr<ir::ResizeAttrs>().interpolation == ir::Interpolation::Nearest;
      for (int64_t y = 0; y < ys[1]; ++y) {
        const ResizeTap ty = resize_tap(nearest, y, xs[1], ys[1]);
        for (int64_t x = 0; x < ys[2]; ++x) {
          const ResizeTap tx = resize_tap(nearest, x, xs[2], ys[2]);
          for (int64_t im = 0; im < ys[0]; ++im)
            for (int64_t c = 0; c < ys[3]; ++c) {
              const double d = a.data[at4(ys, im, y, x, c)];
              acc[at4(xs, im, ty.lo, tx.lo, c)] += d * (1 - ty.w) * (1 - tx.w);
              acc[at4(xs, im, ty.lo, tx.hi, c)] += d * (1 - ty.w) * tx.w;
              acc[at4(xs, im, ty.hi, tx.lo, c)] += d * ty.w * (1 - tx.w);
              acc[at4(xs, im, ty.hi, tx.hi, c)] += d * ty.w * tx.w;
            }
        }
      }
      break;
    }
    case OpKind::SoftmaxGrad: {  // y, dy over each row's channels
      const bool log = n.attr<ir::ActivationGradAttrs>().of == OpKind::LogSoftmax;
      const size_t c = static_cast<size_t>(a.shape.back());
      for (size_t r = 0; r < acc.size() / c; ++r) {
        double total = 0;  // sum(dy y), or sum(dy) for log_softmax
        for (size_t k = 0; k < c; ++k) total += b.data[r * c + k] * (log ? 1.0 : a.data[r * c + k]);
        for (size_t k = 0; k < c; ++k) {
          const double y = a.data[r * c + k], dy = b.data[r * c + k];
          acc[r * c + k] = log ? dy - std::exp(y) * total : y * (dy - total);
        }
      }
      break;
    }
    case OpKind::UnitNormGrad: {  // x, dy: y = x / |x|, dx = (dy - y sum(dy y)) / |x|
      const double eps = n.attr<ir::UnitNormAttrs>().epsilon;
      const size_t c = static_cast<size_t>(a.shape.back());
      for (size_t r = 0; r < acc.size() / c; ++r) {
        double squares = 0, dot = 0;
        for (size_t k = 0; k < c; ++k) {
          squares += double(a.data[r * c + k]) * a.data[r * c + k];
          dot += double(a.data[r * c + k]) * b.data[r * c + k];
        }
        const double norm = std::sqrt(squares);
        for (size_t k = 0; k < c; ++k)
          acc[r * c + k] = norm > eps
                               ? (b.data[r * c + k] - a.data[r * c + k] * dot / squares) / norm
                               : b.data[r * c + k] / eps;
      }
      break;
    }
    case OpKind::ChannelScale:  // x, s
      for (size_t i = 0; i < acc.size(); ++i)
        acc[i] = double(a.data[i]) * b.data[i % b.data.size()];
      break;
    case OpKind::MeanSquaredErrorGrad:
      for (size_t i = 0; i < acc.size(); ++i)
        acc[i] = 2 * (double(a.data[i]) - b.data[i]) / static_cast<double>(acc.size());
      break;
    default:
      throw InternalError(std::string(n.info().text) + " is not a backward op");
  }
  return to_float(n.type.shape, acc);
}

}  // namespace cnnc::runtime::reference
