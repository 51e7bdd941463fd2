#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "ir/error.h"
#include "runtime/thread_pool.h"

namespace cnnc::train {

OptimizerOptions::Kind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerOptions::Sgd;
  if (name == "adam") return OptimizerOptions::Adam;
  if (name == "adamw") return OptimizerOptions::AdamW;
  throw Error("unknown optimizer '" + name + "'; accepted: sgd, adam, adamw");
}

OptimizerOptions::Schedule parse_lr_schedule(const std::string& name) {
  if (name == "constant") return OptimizerOptions::Constant;
  if (name == "step") return OptimizerOptions::Step;
  if (name == "cosine") return OptimizerOptions::Cosine;
  throw Error("unknown learning-rate schedule '" + name + "'; accepted: constant, step, cosine");
}

std::string optimizer_name(OptimizerOptions::Kind k) {
  return k == OptimizerOptions::Sgd ? "sgd" : k == OptimizerOptions::Adam ? "adam" : "adamw";
}

Optimizer::Optimizer(const OptimizerOptions& o, const std::vector<size_t>& sizes)
    : o_(o), sizes_(sizes) {
  const bool moments = o.kind != OptimizerOptions::Sgd || o.momentum != 0;
  for (size_t n : sizes) {
    m_.emplace_back(moments ? n : 0, 0.f);
    v_.emplace_back(o.kind == OptimizerOptions::Sgd ? 0 : n, 0.f);
  }
}

double Optimizer::learning_rate(int64_t step, int64_t steps_per_epoch, int64_t total_steps) const {
  switch (o_.schedule) {
    case OptimizerOptions::Constant:
      break;
    case OptimizerOptions::Step:
      return o_.lr *
             std::pow(o_.gamma, static_cast<double>(step / (steps_per_epoch * o_.step_epochs)));
    case OptimizerOptions::Cosine:
      return o_.lr * 0.5 *
             (1 + std::cos(M_PI * static_cast<double>(step) /
                           static_cast<double>(std::max<int64_t>(total_steps, 1))));
  }
  return o_.lr;
}

std::vector<std::vector<float>*> Optimizer::state() {
  std::vector<std::vector<float>*> s;
  for (size_t k = 0; k < sizes_.size(); ++k) s.push_back(&m_[k]), s.push_back(&v_[k]);
  return s;
}

namespace {

constexpr size_t kChunk = 16384;  // floats per parallel task: 64 KiB of each array

struct Step {  // one update's constants
  OptimizerOptions::Kind kind;
  bool nesterov;
  float scale, lr, mu, alpha, b1, b2, eps, wd;
};
struct Range {  // a range of one tensor: its weights, gradient and state (null when unused)
  float* w;
  const float* g;
  float *m, *v;
  size_t n;
};

// Compiled for AVX-512 and AVX2 too (chosen at load), and this file without errno from sqrt, so
// the loops vectorise: a step updates every weight of the model, serially 10% of a small net's.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void update_range(const Step& s, const Range& r) {
  float* __restrict w = r.w;
  const float* __restrict g = r.g;
  float* __restrict m = r.m;
  float* __restrict v = r.v;
  const size_t n = r.n;
  if (s.wd != 0)  // decoupled weight decay, before the step (Keras' _apply_weight_decay)
    for (size_t i = 0; i < n; ++i) w[i] -= w[i] * s.wd;
  switch (s.kind) {
    case OptimizerOptions::Sgd:
      if (s.mu == 0) {
        for (size_t i = 0; i < n; ++i) w[i] -= s.lr * g[i] * s.scale;
      } else {
        for (size_t i = 0; i < n; ++i) {
          const float gi = g[i] * s.scale;
          m[i] = s.mu * m[i] - s.lr * gi;
          w[i] += s.nesterov ? s.mu * m[i] - s.lr * gi : m[i];
        }
      }
      break;
    case OptimizerOptions::Adam:
    case OptimizerOptions::AdamW:
      for (size_t i = 0; i < n; ++i) {
        const float gi = g[i] * s.scale;
        m[i] += (gi - m[i]) * (1 - s.b1);
        v[i] += (gi * gi - v[i]) * (1 - s.b2);
        w[i] -= s.alpha * m[i] / (std::sqrt(v[i]) + s.eps);
      }
      break;
  }
}

}  // namespace

void Optimizer::update(const std::vector<float*>& weights, const std::vector<const float*>& grads,
                       double lr) {
  internal_assert(weights.size() == sizes_.size() && grads.size() == sizes_.size(),
                  "optimizer: one weight and one gradient per tensor");
  // Global-norm clipping (Keras' global_clipnorm): one scale for every gradient.
  float scale = 1.f;
  if (o_.clip_norm > 0) {
    double sq = 0;
    for (size_t k = 0; k < sizes_.size(); ++k)
      for (size_t i = 0; i < sizes_[k]; ++i) sq += double(grads[k][i]) * grads[k][i];
    if (std::sqrt(sq) > o_.clip_norm) scale = static_cast<float>(o_.clip_norm / std::sqrt(sq));
  }
  ++iterations_;
  const auto t = static_cast<double>(iterations_);
  // Keras 3's Adam: alpha = lr sqrt(1 - beta2^t) / (1 - beta1^t); w -= alpha m / (sqrt(v) + eps).
  const float alpha =
      static_cast<float>(lr * std::sqrt(1 - std::pow(o_.beta2, t)) / (1 - std::pow(o_.beta1, t)));
  const float b1 = static_cast<float>(o_.beta1), b2 = static_cast<float>(o_.beta2);
  const float eps = static_cast<float>(o_.epsilon), mu = static_cast<float>(o_.momentum);
  const float flr = static_cast<float>(lr);
  const double decay = o_.kind == OptimizerOptions::AdamW && o_.weight_decay == 0
                           ? 0.004  // Keras' AdamW default
                           : o_.weight_decay;
  const float wd = static_cast<float>(decay * lr);
  const Step step{o_.kind, o_.nesterov, scale, flr, mu, alpha, b1, b2, eps, wd};
  // Ranges of kChunk floats of every tensor, in parallel on the kernels' workers.
  std::vector<Range> ranges;
  for (size_t k = 0; k < sizes_.size(); ++k)
    for (size_t i = 0; i < sizes_[k]; i += kChunk)
      ranges.push_back({weights[k] + i, grads[k] + i, m_[k].empty() ? nullptr : m_[k].data() + i,
                        v_[k].empty() ? nullptr : v_[k].data() + i,
                        std::min(kChunk, sizes_[k] - i)});
  runtime::parallel_for(static_cast<int>(ranges.size()),
                        [&](int r) { update_range(step, ranges[static_cast<size_t>(r)]); });
}

}  // namespace cnnc::train
