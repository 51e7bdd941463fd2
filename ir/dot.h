#pragma once
// Graphviz view of what the passes did: the graph before and after, side by side; in the
// "after" graph each layer that absorbed others (folded batchnorm, fused padding, add and
// activation) is drawn as a cluster of its parts.
#include <string>

#include "ir/graph.h"

namespace cnnc::ir {

std::string to_dot(const Graph& before, const Graph& after);

}  // namespace cnnc::ir
