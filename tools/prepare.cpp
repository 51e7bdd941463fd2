#include "tools/prepare.h"

#include "frontend/load.h"
#include "runtime/weights.h"

namespace cnnc::tools {

ir::Graph load_with_weights(const std::string& net, int64_t batch, const std::string& weights_path,
                            uint64_t seed) {
  ir::Graph g = frontend::load(net, batch);
  if (weights_path.empty())
    runtime::init_weights(g, seed);
  else
    runtime::load_weights(g, weights_path);
  return g;
}

std::vector<ir::Tensor> random_inputs(const ir::Graph& g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<ir::Tensor> inputs;
  for (ir::NodeId id : g.inputs()) {
    ir::Tensor t(g.node(id).type.shape);
    for (auto& v : t.data) v = static_cast<float>(static_cast<double>(rng() >> 11) * 0x1.0p-53);
    inputs.push_back(std::move(t));
  }
  return inputs;
}

}  // namespace cnnc::tools
