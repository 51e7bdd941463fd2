#include "passes/fold_batchnorm.h"

#include <cmath>
#include <stdexcept>

#include "ir/shape_inference.h"
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

// Why `bn` is not a normalisation that can fold anywhere, or "".
std::string not_foldable(const ir::Node& bn) {
  if (bn.op != ir::OpKind::BatchNorm && bn.op != ir::OpKind::Affine) return "not a normalisation";
  if (!(bn.epilogue == ir::Epilogue{})) return "it applies an activation (epilogue)";
  return "";
}

// Why the normalisation node `bn` cannot be folded into its producer, or "" when it can.
std::string cannot_fold(const ir::Graph& g, const ir::Node& bn, const Uses& uses) {
  if (auto why = not_foldable(bn); !why.empty()) return why;
  const ir::NodeId p = bn.inputs[0];
  const ir::Node& producer = g.node(p);
  if (producer.op != ir::OpKind::Conv2D && producer.op != ir::OpKind::Dense &&
      producer.op != ir::OpKind::Conv2DTranspose)
    return "producer is not conv2d/conv2d_transpose/dense";
  if (uses.sole_reader(p) < 0) return "producer's output is also read elsewhere";
  if (!(producer.epilogue == ir::Epilogue{})) return "producer applies an epilogue";
  if (!weights_set(producer) || !weights_set(bn)) return "weights not set";
  return "";
}

// Why the normalisation node `bn` cannot be folded into the conv/dense that reads it, or "".
// Exact only where the consumer pads nothing: a padded border is zero after the normalisation,
// which a shifted bias would not reproduce.
std::string cannot_fold_forward(const ir::Graph& g, ir::NodeId id, const Uses& uses) {
  const ir::Node& bn = g.node(id);
  if (auto why = not_foldable(bn); !why.empty()) return why;
  if (uses.sole_reader(id) < 0) return "not read by exactly one layer";
  const ir::Node& consumer = g.node(uses.sole_reader(id));
  if (consumer.op != ir::OpKind::Conv2D && consumer.op != ir::OpKind::Dense)
    return "reader is not conv2d/dense";
  if (consumer.inputs[0] != id) return "it is the reader's residual, not its input";
  if (consumer.op == ir::OpKind::Conv2D) {
    const auto geo = ir::window_geometry(consumer, bn.type);
    if (geo.pad_top || geo.pad_bottom || geo.pad_left || geo.pad_right)
      return "the reading conv pads its input";
  }
  if (!weights_set(consumer) || !weights_set(bn)) return "weights not set";
  return "";
}

// The layer's bias, added (zero, derived: parameter counts stay the model's) if it had none.
ir::Param& bias_of(ir::Node& n, size_t out_c) {
  bool* use_bias = n.op == ir::OpKind::Conv2D ? &std::get<ir::Conv2DAttrs>(n.attrs).use_bias
                   : n.op == ir::OpKind::Conv2DTranspose
                       ? &std::get<ir::Conv2DTransposeAttrs>(n.attrs).use_bias
                       : &std::get<ir::DenseAttrs>(n.attrs).use_bias;
  if (!*use_bias) {
    n.params.push_back({"bias", ir::Tensor({static_cast<int64_t>(out_c)}), true});
    n.params.back().value.data.assign(out_c, 0.f);
    *use_bias = true;
  }
  for (auto& p : n.params)
    if (p.role == "bias") return p;
  throw std::logic_error("unreachable: bias added above");
}

ir::Param& kernel_of(ir::Node& n) {
  for (auto& p : n.params)
    if (p.role == "kernel") return p;
  throw std::logic_error("conv2d/dense without a kernel");
}

// x -> conv(scale * x + shift): each weight scaled by its input channel's scale, and the bias
// shifted by what the shifts contribute through the weights (computed in double).
void fold_into_reader(ir::Node& reader, const ScaleShift& s) {
  std::vector<float>& w = kernel_of(reader).value.data;
  const size_t in_c = s.scale.size(), out_c = static_cast<size_t>(reader.type.channels());
  // HWIO (or (in, out) for dense): of a group of `og` outputs, input i is channel g * ig + i.
  const size_t groups = reader.op == ir::OpKind::Conv2D
                            ? static_cast<size_t>(reader.attr<ir::Conv2DAttrs>().groups)
                            : 1;
  const size_t ig = in_c / groups, og = out_c / groups;
  std::vector<double> shift_sum(out_c, 0.0);
  for (size_t k = 0; k < w.size(); ++k) {
    const size_t o = k % out_c, c = (o / og) * ig + (k / out_c) % ig;
    shift_sum[o] += double(w[k]) * s.shift[c];
    w[k] = static_cast<float>(w[k] * s.scale[c]);
  }
  std::vector<float>& b = bias_of(reader, out_c).value.data;
  for (size_t o = 0; o < out_c; ++o) b[o] = static_cast<float>(b[o] + shift_sum[o]);
}

void fold_into(ir::Node& producer, const ScaleShift& s) {
  std::vector<float>& w = kernel_of(producer).value.data;
  // HWIO conv kernels and (in, units) dense kernels both keep the output channel innermost; a
  // transposed conv's (kh, kw, out, in) kernel has the input channels inside it.
  const size_t out_c = s.scale.size();
  size_t inner = 1;  // values per output channel in a row of the kernel
  if (producer.op == ir::OpKind::Conv2DTranspose) {
    const ir::Pair& k = producer.attr<ir::Conv2DTransposeAttrs>().kernel;
    inner = w.size() / out_c / static_cast<size_t>(k.h * k.w);
  }
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<float>(w[i] * s.scale[(i / inner) % out_c]);
  std::vector<float>& b = bias_of(producer, out_c).value.data;
  for (size_t c = 0; c < out_c; ++c) b[c] = static_cast<float>(b[c] * s.scale[c] + s.shift[c]);
}

int64_t counted_params(const ir::Node& n) {
  int64_t count = 0;
  for (const auto& p : n.params)
    if (!p.derived) count += p.value.elements();
  return count;
}

}  // namespace

namespace {

// One sweep: every normalisation whose neighbour can take it. `folded` counts them.
ir::Graph fold_once(ir::Graph g, int& folded) {
  const Uses uses = find_uses(g);

  std::vector<ir::NodeId> replacement(g.size());
  for (int i = 0; i < g.size(); ++i) {
    replacement[i] = i;
    ir::Node& bn = g.node(i);
    ir::Node* into = nullptr;
    if (cannot_fold(g, bn, uses).empty()) {
      into = &g.node(bn.inputs[0]);
      fold_into(*into, scale_shift(bn));
    } else if (cannot_fold_forward(g, i, uses).empty()) {
      into = &g.node(uses.sole_reader(i));
      fold_into_reader(*into, scale_shift(bn));
    } else {
      continue;
    }
    into->absorbed.push_back(bn.name);
    // The folded weights still count as the source model's parameters.
    g.folded_params += counted_params(bn);
    replacement[i] = bn.inputs[0];
    ++folded;
  }
  return rebuild(std::move(g), replacement);
}

}  // namespace

// Sweeps until nothing folds: a chain of normalisations (an ONNX export's BatchNorm as a Mul
// then an Add, each an affine) folds one link per sweep, as each sweep sees the graph before it.
ir::Graph fold_batchnorm(ir::Graph g) {
  for (int folded = 1; folded > 0;) {
    folded = 0;
    g = fold_once(std::move(g), folded);
  }
  return g;
}

}  // namespace cnnc::passes
