#pragma once
// The reference implementation of every op: naive loops, double accumulation, written to be
// obviously right and never fast. The ground truth for codegen, passes and the tuner.
#include <vector>

#include "ir/graph.h"

namespace cnnc::runtime::reference {

// Runs one node on its inputs (in order), using the node's weights (which must be set).
ir::Tensor run_node(const ir::Node& n, const std::vector<const ir::Tensor*>& inputs);

// Runs a whole graph; inputs in the order of g.inputs(), outputs in the order of g.outputs().
std::vector<ir::Tensor> run(const ir::Graph& g, const std::vector<ir::Tensor>& inputs);

}  // namespace cnnc::runtime::reference
