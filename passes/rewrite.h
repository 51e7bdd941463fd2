#pragma once
// Shared by passes: rebuilds a graph without some nodes, redirecting their uses.
#include <vector>

#include "ir/graph.h"

namespace cnnc::passes {

// replacement[i] == i keeps node i; any other value removes node i and makes its users (and
// the graph's outputs) read node replacement[i] instead (which must come before i); -1 removes
// a node nothing reads. Nodes (and their weights) are moved, not copied.
ir::Graph rebuild(ir::Graph g, const std::vector<ir::NodeId>& replacement);

}  // namespace cnnc::passes
