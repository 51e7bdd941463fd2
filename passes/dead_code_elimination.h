#pragma once
#include "ir/graph.h"

namespace cnnc::passes {

// Removes layers that no output depends on. Graph inputs stay, so the network's signature does
// not change. Safe: nothing observable reads what is removed.
ir::Graph dead_code_elimination(ir::Graph g);

}  // namespace cnnc::passes
