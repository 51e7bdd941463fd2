#pragma once
// Keras layers to IR nodes: one converter per Keras layer class.
#include <string>
#include <vector>

#include "frontend/keras/model_config.h"
#include "ir/graph.h"

namespace cnnc::frontend::keras {

// Where a weight of the graph came from: the Keras layer and the index of the variable among its
// weights (vars/<index> in a Keras 3 weights file), to write trained weights back.
struct WeightOrigin {
  std::string keras_layer;
  size_t index = 0;
  std::string node, role;
};

// Builds the IR graph of a Keras model at the batch size. With weights, every layer's weights
// are checked against the shapes the layer needs and set; without, they stay empty (to be
// initialised), except constants that live in the config (Rescaling, Normalization, scaling).
// Throws cnnc::Error naming the source, the layer, its class and what is accepted. `origins`, when
// given, receives the origin of every weight set from the file.
ir::Graph convert(const ModelConfig& m, const LayerWeights* weights, const std::string& source,
                  int64_t batch, std::vector<WeightOrigin>* origins = nullptr);

// The Keras layer classes convert() accepts, comma separated.
std::string supported_layers();

}  // namespace cnnc::frontend::keras
