#pragma once
// Keras layers to IR nodes: one converter per Keras layer class.
#include <string>

#include "frontend/keras/model_config.h"
#include "ir/graph.h"

namespace cnnc::frontend::keras {

// Builds the IR graph of a Keras model at the batch size. With weights, every layer's weights
// are checked against the shapes the layer needs and set; without, they stay empty (to be
// initialised), except constants that live in the config (Rescaling, Normalization, scaling).
// Throws cnnc::Error naming the source, the layer, its class and what is accepted.
ir::Graph convert(const ModelConfig& m, const LayerWeights* weights, const std::string& source, int64_t batch);

// The Keras layer classes convert() accepts, comma separated.
std::string supported_layers();

}  // namespace cnnc::frontend::keras
