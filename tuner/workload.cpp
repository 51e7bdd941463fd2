#include "tuner/workload.h"

#include <map>

#include "ir/schedule.h"
#include "ir/shape_inference.h"
#include "ir/text.h"

namespace cnnc::tuner {

std::vector<Workload> workloads(const ir::Graph& full, int64_t micro_batch) {
  ir::Graph g = full;
  g.set_batch(micro_batch);
  std::vector<Workload> out;
  std::map<std::string, size_t> seen;
  for (const ir::Node& n : g.nodes()) {
    // Gathers (a strided conv2d_transpose) keep codegen's own schedule: nothing to tune yet.
    if (!ir::has_kernel(n.op) || ir::kernel_kind(g, n) == ir::KernelKind::Gradient) continue;
    const std::string key = ir::workload_key(g, n);
    if (auto it = seen.find(key); it != seen.end()) {
      out[it->second].layers.push_back(n.name);
      continue;
    }
    Workload w;
    w.key = key;
    w.batch = micro_batch;
    w.heuristic = n.schedule;
    w.layers = {n.name};
    w.flops = 2.0 * static_cast<double>(ir::macs(n, ir::input_types(g, n)));
    std::string inputs;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      w.net += "input in" + std::to_string(i) +
               " shape=" + ir::shape_to_string(g.node(n.inputs[i]).type.shape) + "\n";
      inputs += (i ? ", in" : "in") + std::to_string(i);
    }
    ir::Node bare = n;
    bare.schedule = {};
    w.net += std::string(n.info().text) + " L" + ir::print_attrs(bare) + " <- " + inputs + "\n";
    seen[key] = out.size();
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace cnnc::tuner
