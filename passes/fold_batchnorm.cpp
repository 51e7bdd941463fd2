#include "passes/fold_batchnorm.h"

#include <cmath>

#include "passes/rewrite.h"

namespace cnnc::passes {

namespace {

// The normalisation as y = scale * x + shift per channel, in double.
struct ScaleShift {
  std::vector<double> scale, shift;
};

ScaleShift scale_shift(const ir::Node& n) {
  ScaleShift s;
  if (n.op == ir::OpKind::Affine) {
    const auto &a = n.param("scale")->value.data, &b = n.param("shift")->value.data;
    s.scale.assign(a.begin(), a.end());
    s.shift.assign(b.begin(), b.end());
    return s;
  }
  const double eps = n.attr<ir::BatchNormAttrs>().epsilon;
  const auto& gamma = n.param("gamma")->value.data;
  const auto& beta = n.param("beta")->value.data;
  const auto& mean = n.param("moving_mean")->value.data;
  const auto& var = n.param("moving_variance")->value.data;
  for (size_t c = 0; c < gamma.size(); ++c) {
    s.scale.push_back(gamma[c] / std::sqrt(double(var[c]) + eps));
    s.shift.push_back(beta[c] - s.scale.back() * mean[c]);
  }
  return s;
}

bool weights_set(const ir::Node& n) {
  for (const auto& p : n.params)
    if (static_cast<int64_t>(p.value.data.size()) != p.value.elements()) return false;
  return true;
}

// Why the normalisation node `bn` cannot be folded into its producer, or "" when it can.
std::string cannot_fold(const ir::Graph& g, const ir::Node& bn, const std::vector<int>& uses,
                        const std::vector<bool>& is_output) {
  if (bn.op != ir::OpKind::BatchNorm && bn.op != ir::OpKind::Affine) return "not a normalisation";
  const ir::NodeId p = bn.inputs[0];
  const ir::Node& producer = g.node(p);
  if (producer.op != ir::OpKind::Conv2D && producer.op != ir::OpKind::Dense) return "producer is not conv2d/dense";
  if (uses[p] != 1 || is_output[p]) return "producer's output is also read elsewhere";
  if (!weights_set(producer) || !weights_set(bn)) return "weights not set";
  return "";
}

void fold_into(ir::Node& producer, const ScaleShift& s) {
  ir::Param* kernel = nullptr;
  for (auto& p : producer.params)
    if (p.role == "kernel") kernel = &p;
  // HWIO conv kernels and (in, units) dense kernels both keep the output channel innermost.
  const size_t out_c = s.scale.size();
  for (size_t i = 0; i < kernel->value.data.size(); ++i)
    kernel->value.data[i] = static_cast<float>(kernel->value.data[i] * s.scale[i % out_c]);
  bool* use_bias = producer.op == ir::OpKind::Conv2D ? &std::get<ir::Conv2DAttrs>(producer.attrs).use_bias
                                                     : &std::get<ir::DenseAttrs>(producer.attrs).use_bias;
  if (!*use_bias) {
    // A bias the source model did not have: derived, so parameter counts stay the model's.
    producer.params.push_back({"bias", ir::Tensor({static_cast<int64_t>(out_c)}), true});
    producer.params.back().value.data.assign(out_c, 0.f);
    *use_bias = true;
  }
  for (auto& p : producer.params)
    if (p.role == "bias")
      for (size_t c = 0; c < out_c; ++c)
        p.value.data[c] = static_cast<float>(p.value.data[c] * s.scale[c] + s.shift[c]);
}

int64_t counted_params(const ir::Node& n) {
  int64_t count = 0;
  for (const auto& p : n.params)
    if (!p.derived) count += p.value.elements();
  return count;
}

}  // namespace

ir::Graph fold_batchnorm(ir::Graph g) {
  std::vector<int> uses(g.size(), 0);
  for (const auto& n : g.nodes())
    for (ir::NodeId in : n.inputs) ++uses[in];
  std::vector<bool> is_output(g.size(), false);
  for (ir::NodeId o : g.outputs()) is_output[o] = true;

  std::vector<ir::NodeId> replacement(g.size());
  for (int i = 0; i < g.size(); ++i) {
    replacement[i] = i;
    ir::Node& bn = g.node(i);
    if (!cannot_fold(g, bn, uses, is_output).empty()) continue;
    fold_into(g.node(bn.inputs[0]), scale_shift(bn));
    g.node(bn.inputs[0]).absorbed.push_back(bn.name);
    // The folded weights still count as the source model's parameters.
    g.folded_params += counted_params(bn);
    replacement[i] = bn.inputs[0];
  }
  return rebuild(std::move(g), replacement);
}

}  // namespace cnnc::passes
