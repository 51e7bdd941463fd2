#pragma once
// Keras models: a Keras 3 .keras archive, a legacy .h5 model, or an architecture .json (from
// model.to_json()) with its weights in NAME.weights.h5 beside it when present.
#include <string>

#include "ir/graph.h"

namespace cnnc::frontend::keras {

ir::Graph load(const std::string& path, int64_t batch);

}  // namespace cnnc::frontend::keras
