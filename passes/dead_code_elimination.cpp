#include "passes/dead_code_elimination.h"

#include "passes/rewrite.h"

namespace cnnc::passes {

ir::Graph dead_code_elimination(ir::Graph g) {
  std::vector<bool> live(g.size(), false);
  for (ir::NodeId o : g.outputs()) live[o] = true;
  for (int i = g.size() - 1; i >= 0; --i) {
    if (g.node(i).op == ir::OpKind::Input) live[i] = true;
    if (live[i])
      for (ir::NodeId in : g.node(i).inputs) live[in] = true;
  }
  std::vector<ir::NodeId> replacement(g.size());
  for (int i = 0; i < g.size(); ++i) replacement[i] = live[i] ? i : -1;
  return rebuild(std::move(g), replacement);
}

}  // namespace cnnc::passes
