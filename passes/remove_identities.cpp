#include "passes/remove_identities.h"

#include "passes/rewrite.h"

namespace cnnc::passes {

ir::Graph remove_identities(ir::Graph g) {
  std::vector<ir::NodeId> replacement(g.size());
  for (int i = 0; i < g.size(); ++i)
    replacement[i] = g.node(i).op == ir::OpKind::Dropout || g.node(i).op == ir::OpKind::Augment
                         ? g.node(i).inputs[0]
                         : i;
  return rebuild(std::move(g), replacement);
}

}  // namespace cnnc::passes
