#pragma once
// Shared by passes: who reads each value, and rebuilding a graph without some nodes.
#include <vector>

#include "ir/graph.h"

namespace cnnc::passes {

// replacement[i] == i keeps node i; any other value removes node i and makes its users (and
// the graph's outputs) read node replacement[i] instead (which must come before i); -1 removes
// a node nothing reads. Nodes (and their weights) are moved, not copied.
ir::Graph rebuild(ir::Graph g, const std::vector<ir::NodeId>& replacement);

// What a rewrite builds into: no nodes, g's name, source, batch and import flags.
ir::Graph empty_like(const ir::Graph& g);
// Gives `out` g's outputs, through new_id (g's node ids to out's).
void copy_outputs(const ir::Graph& g, const std::vector<ir::NodeId>& new_id, ir::Graph& out);

// The readers of every node's value, and which values are graph outputs.
struct Uses {
  std::vector<std::vector<ir::NodeId>> readers;  // a node reading a value twice is listed twice
  std::vector<bool> is_output;
  // The one node reading `id`, or -1 when several do, none does, or it is a graph output.
  ir::NodeId sole_reader(ir::NodeId id) const {
    return readers[id].size() == 1 && !is_output[id] ? readers[id][0] : -1;
  }
};
Uses find_uses(const ir::Graph& g);

}  // namespace cnnc::passes
