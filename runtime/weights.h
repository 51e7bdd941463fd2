#pragma once
// Layer weights: deterministic initialisation as Keras does it, and a weights file.
#include <cstdint>
#include <string>

#include "ir/graph.h"

namespace cnnc::runtime {

// Sets every weight of the graph that is not set yet: kernels Glorot-uniform (Keras' default for Conv2D and Dense),
// biases and betas 0, gammas 1, BatchNorm statistics mean 0 / variance 1. Each tensor's values
// depend only on the seed, the layer name and the role, not on the order of layers.
void init_weights(ir::Graph& g, uint64_t seed);

// The weights file (.cnnw): "CNNCWTS1", a little-endian u64 header length, a JSON header
// {"layers": {NAME: {ROLE: {"shape": [...], "offset": BYTES}}}}, then float32 data.
void save_weights(const ir::Graph& g, const std::string& path);
// Loads weights by layer name and role; every weight of the graph must be in the file with the
// same shape. Throws cnnc::Error naming the file, layer and role otherwise.
void load_weights(ir::Graph& g, const std::string& path);

}  // namespace cnnc::runtime
