#include "codegen/compile.h"

#include <algorithm>
#include <numeric>

namespace cnnc::codegen {

MemoryPlan plan_memory(const ir::Graph& g, bool reuse, int64_t alignment) {
  const int n = g.size();
  MemoryPlan p;
  p.alignment = alignment;
  p.offset.assign(n, -1);
  p.bytes.assign(n, 0);
  p.first.assign(n, 0);
  p.last.assign(n, 0);
  // The node whose buffer each node's value lives in (itself, or the viewed one's).
  std::vector<int> owner(n);
  for (int i = 0; i < n; ++i) {
    const ir::Node& node = g.node(i);
    const bool view = ir::is_view(node.op);
    owner[i] = view ? owner[node.inputs[0]] : i;
    if (view || node.op == ir::OpKind::Parameter) continue;  // a parameter is its layer's weights
    p.bytes[i] = (node.type.elements() * int64_t{sizeof(float)} + alignment - 1) / alignment *
                 alignment;
    p.first[i] = node.op == ir::OpKind::Input ? 0 : i;
    p.last[i] = i;
  }
  for (int i = 0; i < n; ++i)
    for (ir::NodeId in : g.node(i).inputs) p.last[owner[in]] = std::max(p.last[owner[in]], i);
  for (ir::NodeId o : g.outputs()) p.last[owner[o]] = n;
  // Inputs stay too, so that a model can run again on the same inputs (benchmarks).
  for (ir::NodeId in : g.inputs()) p.last[in] = n;

  std::vector<int> order;
  for (int i = 0; i < n; ++i)
    if (p.bytes[i] > 0) order.push_back(i), p.unshared_bytes += p.bytes[i];
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return p.bytes[a] > p.bytes[b]; });
  std::vector<int> placed;
  for (int i : order) {
    // Candidate offsets: 0 and the end of each placed buffer live at the same time; take the
    // lowest that overlaps none of them.
    std::vector<std::pair<int64_t, int64_t>> busy;  // [begin, end) of live placed buffers
    for (int j : placed)
      if (!reuse || (p.first[j] <= p.last[i] && p.first[i] <= p.last[j]))
        busy.push_back({p.offset[j], p.offset[j] + p.bytes[j]});
    std::sort(busy.begin(), busy.end());
    int64_t at = 0;
    for (const auto& [begin, end] : busy) {
      if (at + p.bytes[i] <= begin) break;
      at = std::max(at, end);
    }
    p.offset[i] = at;
    p.arena_bytes = std::max(p.arena_bytes, at + p.bytes[i]);
    placed.push_back(i);
  }
  return p;
}

}  // namespace cnnc::codegen
