#include "passes/rewrite.h"

namespace cnnc::passes {

ir::Graph empty_like(const ir::Graph& g) {
  ir::Graph out;
  out.name = g.name;
  out.source = g.source;
  out.folded_params = g.folded_params;
  out.channels_first_io = g.channels_first_io;
  out.set_batch(g.batch());
  return out;
}

void copy_outputs(const ir::Graph& g, const std::vector<ir::NodeId>& new_id, ir::Graph& out) {
  std::vector<ir::NodeId> outs;
  for (ir::NodeId o : g.outputs()) outs.push_back(new_id.at(o));
  out.set_outputs(outs);
}

ir::Graph rebuild(ir::Graph g, const std::vector<ir::NodeId>& replacement) {
  ir::Graph out = empty_like(g);
  std::vector<ir::NodeId> new_id(g.size(), -1);
  for (int i = 0; i < g.size(); ++i) {
    if (replacement[i] != i) {
      new_id[i] = replacement[i] >= 0 ? new_id[replacement[i]] : -1;
      continue;
    }
    ir::Node n = std::move(g.node(i));
    for (auto& in : n.inputs) in = new_id[in];
    new_id[i] = out.add(std::move(n));
  }
  copy_outputs(g, new_id, out);
  return out;
}

Uses find_uses(const ir::Graph& g) {
  Uses u{std::vector<std::vector<ir::NodeId>>(g.size()), std::vector<bool>(g.size(), false)};
  for (int i = 0; i < g.size(); ++i)
    for (ir::NodeId in : g.node(i).inputs) u.readers[in].push_back(i);
  for (ir::NodeId o : g.outputs()) u.is_output[o] = true;
  return u;
}

}  // namespace cnnc::passes
