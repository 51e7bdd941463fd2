#pragma once
// What `run` and `bench` share: a network loaded at a batch size, with its weights.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace cnnc::tools {

// Loads NET at the batch size; weights from `weights_path` if given, else initialised from seed.
ir::Graph load_with_weights(const std::string& net, int64_t batch, const std::string& weights_path,
                            uint64_t seed);

// Deterministic inputs in [0, 1) for every graph input (like a normalised image).
std::vector<ir::Tensor> random_inputs(const ir::Graph& g, uint64_t seed);

}  // namespace cnnc::tools
