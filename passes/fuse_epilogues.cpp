#include "passes/fuse_epilogues.h"

#include <optional>

#include "passes/rewrite.h"

namespace cnnc::passes {

namespace {

// A layer whose fusion pattern takes an epilogue (ir::epilogue_rule), with none yet.
bool is_anchor(const ir::Node& n) {
  return ir::epilogue_rule(n.op) != ir::EpilogueRule::None && n.epilogue == ir::Epilogue{};
}

// Only an out-elementwise-fusable anchor (conv2d, dense, pooling) also absorbs a residual add:
// a broadcast anchor (a normalisation, add, multiply) takes an activation only, so it stays one
// pass over its inputs.
bool absorbs_add(const ir::Node& n) {
  return ir::epilogue_rule(n.op) == ir::EpilogueRule::AddAndActivation;
}

// The epilogue activation that computes exactly what layer n does, if there is one: its own op,
// or for a relu with attributes, relu6 when they say min(max(x, 0), 6) (Keras' ReLU(6.0)).
std::optional<ir::OpKind> epilogue_activation(const ir::Node& n) {
  if (!ir::is_epilogue_activation(n.op)) return std::nullopt;
  if (n.op != ir::OpKind::ReLU) return n.op;
  const auto& a = n.attr<ir::ReLUAttrs>();
  if (a == ir::ReLUAttrs{}) return ir::OpKind::ReLU;
  ir::ReLUAttrs relu6;
  relu6.max_value = 6.f;
  if (a == relu6) return ir::OpKind::ReLU6;
  return std::nullopt;
}

}  // namespace

ir::Graph fuse_epilogues(ir::Graph g) {
  const Uses uses = find_uses(g);
  std::vector<ir::NodeId> replacement(g.size());
  for (int i = 0; i < g.size(); ++i) replacement[i] = i;

  for (int a = 0; a < g.size(); ++a) {
    if (replacement[a] != a || !is_anchor(g.node(a))) continue;
    ir::Epilogue e;
    ir::NodeId residual = -1, last = a;
    std::vector<ir::NodeId> absorbed;
    ir::NodeId next = uses.sole_reader(a);
    if (next >= 0 && absorbs_add(g.node(a)) && replacement[next] == next &&
        g.node(next).op == ir::OpKind::Add && g.node(next).inputs.size() == 2) {
      const auto& ins = g.node(next).inputs;
      residual = ins[0] == last ? ins[1] : ins[0];
      if (residual != last) {  // not x + x
        e.add = true;
        absorbed.push_back(last = next);
        next = uses.sole_reader(last);
      }
    }
    if (next >= 0 && replacement[next] == next && epilogue_activation(g.node(next))) {
      e.has_activation = true;
      e.activation = *epilogue_activation(g.node(next));
      absorbed.push_back(last = next);
    }
    if (absorbed.empty()) continue;

    // The anchor moves into the chain's last slot: every input it reads comes before it there.
    ir::Node fused = std::move(g.node(a));
    fused.epilogue = e;
    if (e.add) fused.inputs.push_back(residual);
    for (ir::NodeId id : absorbed) fused.absorbed.push_back(g.node(id).name);
    replacement[a] = -1;
    for (ir::NodeId id : absorbed) replacement[id] = -1;
    replacement[last] = last;
    g.node(last) = std::move(fused);
  }
  return rebuild(std::move(g), replacement);
}

}  // namespace cnnc::passes
