#pragma once
// Optimisers: one fused pass per weight tensor that reads its gradient and state once and writes
// the new weights and state (SGD with momentum or Nesterov, Adam, AdamW; weight decay; gradient
// clipping by global norm), and learning-rate schedules. The formulas are Keras 3's, so a model
// trained here follows the same path as `model.fit` with the same settings.
#include <cstdint>
#include <string>
#include <vector>

namespace cnnc::train {

struct OptimizerOptions {
  enum Kind { Sgd, Adam, AdamW } kind = Adam;
  double lr = 1e-3;
  double momentum = 0;                                // SGD
  bool nesterov = false;                              // SGD
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;  // Adam (Keras' defaults)
  double weight_decay = 0;  // AdamW's decoupled decay (Keras' default 0.004 when chosen by name)
  double clip_norm = 0;     // > 0: gradients scaled so their global L2 norm is at most this
  // Learning-rate schedule over the whole run: constant, step (x gamma every `step_epochs`),
  // cosine (to 0 at the last step).
  enum Schedule { Constant, Step, Cosine } schedule = Constant;
  int step_epochs = 10;
  double gamma = 0.1;
};

// "sgd", "adam", "adamw"; throws naming the accepted names.
OptimizerOptions::Kind parse_optimizer(const std::string& name);
OptimizerOptions::Schedule parse_lr_schedule(const std::string& name);
std::string optimizer_name(OptimizerOptions::Kind k);

class Optimizer {
 public:
  // One state per weight tensor, of the sizes given.
  Optimizer(const OptimizerOptions& o, const std::vector<size_t>& sizes);

  // The learning rate at a step of a run of `total_steps`, `steps_per_epoch` per epoch.
  double learning_rate(int64_t step, int64_t steps_per_epoch, int64_t total_steps) const;

  // Updates every tensor: weights[k] (sizes[k] floats) from grads[k], at learning rate lr.
  void update(const std::vector<float*>& weights, const std::vector<const float*>& grads,
              double lr);

  int64_t iterations() const { return iterations_; }
  // The state as flat arrays (for checkpoints): per tensor its slots (momentum; m and v).
  std::vector<std::vector<float>*> state();
  void set_iterations(int64_t n) { iterations_ = n; }

 private:
  OptimizerOptions o_;
  std::vector<size_t> sizes_;
  std::vector<std::vector<float>> m_, v_;
  int64_t iterations_ = 0;
};

}  // namespace cnnc::train
