#pragma once
// The gradient pass: a forward graph to a training graph, the forward ops (dropout as a product
// with a mask the trainer draws each step), the loss's gradient, and the backward ops as
// ordinary IR ops, in reverse order, with every trainable weight a `parameter` value and its
// gradient a graph output. The later passes, codegen and memory planning treat it as any graph.
#include <string>
#include <vector>

#include "ir/graph.h"

namespace cnnc::passes {

enum class Loss {
  SparseCategoricalCrossEntropy,  // labels: class indices (N x 1); the model ends in softmax
  CategoricalCrossEntropy,        // labels: N x C probabilities; the model ends in softmax
  MeanSquaredError,               // targets of the output's shape
};
// "sparse_categorical_crossentropy" and its Keras aliases; throws naming the accepted names.
Loss parse_loss(const std::string& name);
std::string loss_name(Loss l);

// Values are named, not numbered: the passes after this one renumber nodes (fusion moves a
// conv2d into its relu's slot) but keep these names.
struct TrainingGraph {
  ir::Graph graph;
  std::string prediction;         // the forward output the loss reads (softmax probabilities)
  std::string labels = "labels";  // the graph input of the labels or targets
  Loss loss{};
  // A layer that shares another's weights (Graph::shared_weights) is no trainable of its own: its
  // gradient is summed into the other's, and the trainer copies the other's weights to it.
  struct Trainable {
    std::string layer, role;          // the forward layer's weights this is (one of its Params)
    std::string parameter, gradient;  // their values: LAYER.ROLE and its gradient
  };
  std::vector<Trainable> trainables;
  struct Mask {
    std::string input;  // filled each step: 0 or 1/(1 - rate) per element
    float rate = 0;
  };
  std::vector<Mask> masks;
  struct Augmentation {
    std::string maps;    // filled each step: the N x 6 affine maps of warp (none: no warp)
    std::string colors;  // filled each step: recolor's N x 2 factors (none: no recolor)
    ir::AugmentAttrs attrs;
    ir::Shape image;  // what it augments: N x H x W x C
  };
  std::vector<Augmentation> augmentations;
  struct BatchStatistics {
    std::string layer;  // a batchnorm: its moving_mean and moving_variance follow the batches'
    std::string sums;   // its batch_sums, a graph output
  };
  std::vector<BatchStatistics> batch_statistics;
  // A backward op holding a copy of a layer's weights (a conv2d_transpose's input gradient is a
  // conv2d with its kernel): the trainer copies `from`'s weights of `role` to it after each step.
  struct WeightCopy {
    std::string layer, role, from;
  };
  std::vector<WeightCopy> weight_copies;
};

// Where Keras' RandomCrop takes its window from an h x w image when training: at a random place
// (top in [0, h - crop.h], left in [0, w - crop.w], one place per batch) when the image is larger
// than the crop both ways; else the centred box of the crop's aspect ratio, from which Keras
// slices crop.h x crop.w at its corner, a fixed window when the image holds it (`fits`; else
// Keras resizes the slice, which cnnc does not train).
struct CropWindow {
  bool random = false, fits = true;
  int64_t top = 0, left = 0;  // the fixed window's corner (random: none)
};
CropWindow crop_window(ir::Pair crop, int64_t h, int64_t w);

// Builds the training graph of `forward` (whose passes have not run: activations are their own
// layers). Throws cnnc::Error naming the layer when an op has no gradient yet, and what trains.
TrainingGraph build_training_graph(const ir::Graph& forward, Loss loss);

}  // namespace cnnc::passes
