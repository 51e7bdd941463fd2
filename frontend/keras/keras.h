#pragma once
// Keras models: a Keras 3 .keras archive, a legacy .h5 model, or an architecture .json (from
// model.to_json()) with its weights in NAME.weights.h5 beside it when present. Trained weights go
// back in Keras' own layout: NAME.weights.h5 (model.load_weights) or a whole NAME.keras.
#include <string>
#include <vector>

#include "frontend/keras/convert.h"
#include "ir/graph.h"

namespace cnnc::frontend::keras {

// `origins`, when given, receives where each weight of the graph came from in the file.
ir::Graph load(const std::string& path, int64_t batch,
               std::vector<WeightOrigin>* origins = nullptr);

// Throws, before any training, when `out` cannot be written from `source`: `out` must end in
// .weights.h5 or .keras (a .keras from a .keras source only), and `source` must be a Keras 3
// model whose weights file gives the layout (.keras with weights, or .json with NAME.weights.h5).
void check_weights_target(const std::string& source, const std::string& out);

// Writes the weights of `trained` (the graph loaded from `source`, its weights changed, by node
// name and role) into a copy of the source's Keras 3 weights file: every group, variable and
// attribute as it was, the values of the weights cnnc holds replaced. The file is written to a
// temporary name and renamed: `out` is whole or untouched.
void save_weights(const std::string& source, const ir::Graph& trained, const std::string& out);

}  // namespace cnnc::frontend::keras
