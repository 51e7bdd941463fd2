#include "train/training_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "codegen/compile.h"
#include "ir/error.h"
#include "passes/pipeline.h"

namespace cnnc::train {

namespace {

// The training pipeline: the inference pipeline without the passes that assume inference.
// Dropout is live (a product with its mask); BatchNorm would train on batch statistics (the
// gradient pass refuses it for now); a fused padding would leave the conv's padded input, which
// its kernel gradient reads, computed twice.
const std::set<std::string> kInferenceOnlyPasses = {"remove_identities", "fold_batchnorm",
                                                    "fuse_padding"};

codegen::Program compile_graph(ir::Graph g, const ModelOptions& o, bool training) {
  passes::PipelineOptions p;
  p.tiling.target = codegen::describe_target(o.target);
  p.tiling.kernel_batch = o.batch;
  if (training) p.disabled = kInferenceOnlyPasses;
  codegen::CompileOptions c;
  c.target = o.target;
  c.micro_batch = o.batch;  // weight gradients sum over the whole batch
  return codegen::compile(passes::optimize(std::move(g), p), c);
}

}  // namespace

TrainingModel::TrainingModel(const ir::Graph& forward, const ModelOptions& o)
    : o_(o), rng_(o.seed) {
  ir::Graph at_batch = forward;
  at_batch.set_batch(o.batch);
  if (at_batch.inputs().size() != 1)
    throw Error(forward.name + ": training takes a model with one input, this one has " +
                std::to_string(at_batch.inputs().size()));
  graph_ = passes::build_training_graph(at_batch, o.loss);
  training_ = std::make_unique<runtime::CompiledModel>(
      compile_graph(graph_.graph, o, /*training=*/true), o.threads);
  inference_ = std::make_unique<runtime::CompiledModel>(
      compile_graph(at_batch, o, /*training=*/false), o.threads);

  const ir::Graph& g = training_->graph();
  const auto ins = g.inputs();
  for (size_t i = 0; i < ins.size(); ++i) {
    const ir::Node& n = g.node(ins[i]);
    input_shapes_.push_back(n.type.shape);
    if (n.name == graph_.labels) label_input_ = i;
    for (const auto& m : graph_.masks)
      if (m.input == n.name) mask_inputs_.push_back(i);
    if (n.name == forward.node(forward.inputs()[0]).name) data_input_ = i;
  }
  const auto outs = g.outputs();
  for (const auto& t : graph_.trainables) {
    weights_.push_back(training_->weights(t.layer, t.role));
    sizes_.push_back(
        static_cast<size_t>(ir::Tensor::count(g.node(g.find(t.layer)).param(t.role)->value.shape)));
    const auto at = std::find(outs.begin(), outs.end(), g.find(t.gradient));
    internal_assert(at != outs.end(), "the gradient " + t.gradient + " is not an output");
    grad_outputs_.push_back(static_cast<size_t>(at - outs.begin()));
  }
  optimizer_ = std::make_unique<Optimizer>(o.optimizer, sizes_);
}

StepResult TrainingModel::score(const ir::Tensor& p, const ir::Tensor& labels, int64_t rows) const {
  StepResult r;
  const int64_t c = p.elements() / p.shape[0], n = rows > 0 ? rows : p.shape[0];
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p.data.data() + i * c;
    const int64_t top = std::max_element(row, row + c) - row;
    switch (o_.loss) {
      case passes::Loss::SparseCategoricalCrossEntropy: {
        const auto label = static_cast<int64_t>(labels.data[i]);
        r.loss -= std::log(std::clamp<double>(row[label], 1e-7, 1.0));  // Keras' epsilon
        r.correct += top == label;
        break;
      }
      case passes::Loss::CategoricalCrossEntropy: {
        const float* t = labels.data.data() + i * c;
        for (int64_t k = 0; k < c; ++k)
          r.loss -= t[k] * std::log(std::clamp<double>(row[k], 1e-7, 1.0));
        r.correct += top == std::max_element(t, t + c) - t;
        break;
      }
      case passes::Loss::MeanSquaredError:
        for (int64_t k = 0; k < c; ++k) {
          const double d = double(row[k]) - labels.data[i * c + k];
          r.loss += d * d / static_cast<double>(c);
        }
        break;
    }
  }
  r.loss /= static_cast<double>(n);
  return r;
}

StepResult TrainingModel::step(const ir::Tensor& x, const ir::Tensor& labels, double lr) {
  // Inputs written and outputs read where the program keeps them: a step copies nothing else.
  runtime::CompiledModel& p = *training_;
  std::copy(x.data.begin(), x.data.end(), p.input_data(data_input_));
  std::copy(labels.data.begin(), labels.data.end(), p.input_data(label_input_));
  // Dropout: each element kept with probability 1 - rate, scaled by 1 / (1 - rate) (Keras);
  // two 32-bit draws from each 64-bit number (a batch's mask is 10^5-10^6 elements).
  for (size_t k = 0; k < graph_.masks.size(); ++k) {
    const float rate = graph_.masks[k].rate, keep = 1.f / (1.f - rate);
    const auto threshold = static_cast<uint64_t>(static_cast<double>(rate) * 4294967296.0);
    float* mask = p.input_data(mask_inputs_[k]);
    const auto n = static_cast<size_t>(ir::Tensor::count(input_shapes_[mask_inputs_[k]]));
    for (size_t i = 0; i < n; i += 2) {
      const uint64_t bits = rng_();
      mask[i] = (bits & 0xffffffffu) >= threshold ? keep : 0.f;
      if (i + 1 < n) mask[i + 1] = (bits >> 32) >= threshold ? keep : 0.f;
    }
  }
  p.run_in_place();
  ir::Tensor prediction(p.graph().node(p.graph().outputs()[0]).type.shape);
  const float* y = p.output_data(0);
  std::copy(y, y + prediction.elements(), prediction.data.begin());
  std::vector<const float*> grads;
  for (size_t k = 0; k < weights_.size(); ++k) grads.push_back(p.output_data(grad_outputs_[k]));
  optimizer_->update(weights_, grads, lr);
  p.weights_changed();
  inference_stale_ = true;
  return score(prediction, labels, 0);
}

std::vector<TrainingModel::KernelTime> TrainingModel::profile(int repeats) {
  std::vector<std::vector<double>> runs;
  for (int r = 0; r < repeats; ++r) {
    std::vector<double> t;
    training_->rerun_profiled(t);
    runs.push_back(t);
  }
  std::vector<KernelTime> out;
  const auto& kernels = training_->kernels();
  for (size_t k = 0; k < kernels.size(); ++k) {
    std::vector<double> t;
    for (const auto& r : runs) t.push_back(r[k]);
    std::nth_element(t.begin(), t.begin() + static_cast<long>(t.size() / 2), t.end());
    const ir::Node& n = training_->graph().node(kernels[k].node);
    out.push_back(
        {n.name, std::string(n.info().text), kernels[k].kernel->schedule(), t[t.size() / 2]});
  }
  return out;
}

void TrainingModel::sync_inference() {
  if (!inference_stale_) return;
  for (size_t k = 0; k < weights_.size(); ++k) {
    const auto& t = graph_.trainables[k];
    std::memcpy(inference_->weights(t.layer, t.role), weights_[k], sizes_[k] * sizeof(float));
  }
  inference_->weights_changed();
  inference_stale_ = false;
}

StepResult TrainingModel::evaluate(const ir::Tensor& x, const ir::Tensor& labels, int64_t rows) {
  sync_inference();
  return score(inference_->run({x}).at(0), labels, rows);
}

void TrainingModel::copy_weights_to(ir::Graph& g) {
  for (size_t k = 0; k < weights_.size(); ++k) {
    const auto& t = graph_.trainables[k];
    const ir::NodeId id = g.find(t.layer);
    ir::Param* p = nullptr;
    if (id >= 0)
      for (auto& q : g.node(id).params)
        if (q.role == t.role) p = &q;
    if (!p || static_cast<size_t>(p->value.elements()) != sizes_[k])
      throw Error(g.name + ": no weights '" + t.role + "' of " + std::to_string(sizes_[k]) +
                  " values in a layer '" + t.layer + "'");
    p->value.data.assign(weights_[k], weights_[k] + sizes_[k]);
  }
}

void TrainingModel::copy_weights_from(const ir::Graph& g) {
  for (size_t k = 0; k < weights_.size(); ++k) {
    const auto& t = graph_.trainables[k];
    const ir::NodeId id = g.find(t.layer);
    const ir::Param* p = id >= 0 ? g.node(id).param(t.role) : nullptr;
    if (!p || p->value.data.size() != sizes_[k])
      throw Error(g.name + ": no weights '" + t.role + "' of " + std::to_string(sizes_[k]) +
                  " values in a layer '" + t.layer + "'");
    std::copy(p->value.data.begin(), p->value.data.end(), weights_[k]);
  }
  training_->weights_changed();
  inference_stale_ = true;
}

}  // namespace cnnc::train
