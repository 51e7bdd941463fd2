#pragma once
// A model being trained: its training graph (passes/gradient) through the training pipeline and
// codegen as one Program, forward and backward kernels in one memory plan, run on a batch at a
// time; the optimiser updating the layers' weights in place between steps; and the forward
// graph compiled for inference (the same weights, copied in) for validation and evaluation.
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/gradient.h"
#include "runtime/executor.h"
#include "train/optimizer.h"

namespace cnnc::train {

struct ModelOptions {
  passes::Loss loss = passes::Loss::SparseCategoricalCrossEntropy;
  OptimizerOptions optimizer;
  std::string target = "host";
  int threads = 0;
  int64_t batch = 32;
  uint64_t seed = 0;  // dropout masks
  bool winograd = true;  // false: 3x3 convs and their input gradients computed directly
};

// --augment's text: "flip,flip_v,rotate=0.1,zoom=0.1,translate=0.1,contrast=0.2,brightness=0.1,
// min=0,max=1" (any of them; the value range 0..1 unless given); throws naming what is accepted.
ir::AugmentAttrs parse_augment(const std::string& spec);
// The graph with an augment layer after its (one) input, which every layer then reads.
ir::Graph with_augmentation(const ir::Graph& g, const ir::AugmentAttrs& a);

// One affine map per image (a b c d e f, as warp reads them) for an augment layer's settings:
// a random flip, rotation, zoom and shift about the image's centre; for a crop, the shift of
// one window (passes::crop_window) for the whole batch to the top-left corner.
void draw_maps(const ir::AugmentAttrs& a, int64_t width, int64_t height, float* maps,
               int64_t images, std::mt19937_64& rng);
// A dropout mask of n elements: each 1 / (1 - rate) with probability 1 - rate (as Keras scales
// the kept ones), else 0; from a counter-based hash of `seed` (two 32-bit draws per 64-bit
// value), computed in parallel, the same for the same seed.
void draw_dropout_mask(float rate, float* mask, size_t n, uint64_t seed);
// Per image a contrast factor and a brightness shift (as recolor reads them) for an augment
// layer's settings: uniform in [1 - contrast, 1 + contrast] and in [-brightness, brightness]
// times the value range.
void draw_colors(const ir::AugmentAttrs& a, float* factors, int64_t images, std::mt19937_64& rng);

struct StepResult {
  double loss = 0;      // mean over the batch
  int64_t correct = 0;  // argmax == label (classifiers)
};

class TrainingModel {
 public:
  // `forward` as loaded (no passes run), with its weights set. Compiles both programs; throws
  // cnnc::Error naming the layer that cannot train, or the target that cannot run training.
  TrainingModel(const ir::Graph& forward, const ModelOptions& o);

  // One optimisation step on a batch: x of the input's shape at the training batch, labels N x 1
  // class indices (sparse cross-entropy) or of the output's shape. Returns the batch's loss
  // before the update.
  StepResult step(const ir::Tensor& x, const ir::Tensor& labels, double lr);

  // The loss and correct count of a batch without training (inference program, no dropout),
  // over its first `rows` samples (the rest pad a last, partial batch); 0: all of them.
  StepResult evaluate(const ir::Tensor& x, const ir::Tensor& labels, int64_t rows = 0);

  // Everything a checkpoint keeps, in place: each trained weight, each batchnorm's moving
  // statistics, the optimiser's state. After writing into them, call state_changed().
  struct Slot {
    std::string name;
    float* data;
    size_t size;
  };
  std::vector<Slot> slots();
  void state_changed();

  // The trained weights (and moving statistics), into a graph with the same layers (saving).
  void copy_weights_to(ir::Graph& g);

  // Each kernel of the training program on the last step's inputs: (layer, op, schedule, ms),
  // the median of `repeats` runs, in program order.
  struct KernelTime {
    std::string layer, op, schedule;
    double ms = 0;
  };
  std::vector<KernelTime> profile(int repeats);

  // The data input's shape at the training batch (batch x H x W x C, or batch x C).
  const ir::Shape& input_shape() const { return input_shapes_[data_input_]; }
  Optimizer& optimizer() { return *optimizer_; }
  const passes::TrainingGraph& training_graph() const { return graph_; }
  const runtime::CompiledModel& program() const { return *training_; }
  int64_t batch() const { return o_.batch; }
  std::mt19937_64& rng() { return rng_; }

 private:
  StepResult score(const ir::Tensor& prediction, const ir::Tensor& labels, int64_t rows) const;
  void sync_inference();  // the inference program's weights from the training program's
  struct Weights {        // a layer's weights the training changes: trained ones, moving statistics
    std::string layer, role;
    float* data;
    size_t size;
  };
  std::vector<Weights> layer_weights();

  ModelOptions o_;
  passes::TrainingGraph graph_;  // names; its graph's weights are not the trained ones
  std::unique_ptr<runtime::CompiledModel> training_, inference_;
  bool inference_stale_ = true;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<float*> weights_;  // per trainable: the training program's weights
  struct MovingStatistics {
    std::string layer;
    size_t sums_output = 0;  // the batch_sums output
    float *mean = nullptr, *variance = nullptr;
    int64_t channels = 0, count = 0;  // values per channel per batch
    bool shared = false;  // a later call of a shared batchnorm: it moves `layer`'s statistics too
  };
  std::vector<MovingStatistics> moving_;
  // A layer that shares another's weights (a Keras layer called several times), or a backward
  // op that reads a layer's weights as its own: after each step its weights are the other's again.
  struct Copy {
    std::string layer, role;
    float* data = nullptr;  // in the training program
    float* from = nullptr;  // the shared weights, in the training program
    size_t size = 0;
    bool backward = false;  // of the training graph only (not a layer of the model)
  };
  std::vector<Copy> copies_;
  void sync_copies();                 // the shared weights to their copies (then weights_changed)
  std::vector<size_t> sizes_;         // per trainable
  std::vector<size_t> grad_outputs_;  // per trainable: index into the outputs
  std::vector<size_t> mask_inputs_;   // per mask: index into the inputs
  struct AugmentInputs {              // per augmentation: indices into the inputs
    static constexpr size_t kNone = static_cast<size_t>(-1);
    size_t maps = kNone, colors = kNone;
  };
  std::vector<AugmentInputs> augment_inputs_;
  std::vector<ir::Shape> input_shapes_;  // in the training graph's input order
  size_t data_input_ = 0, label_input_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace cnnc::train
