#include "tools/prepare.h"

#include <algorithm>
#include <cstdio>

#include "frontend/load.h"
#include "ir/error.h"
#include "ir/text.h"
#include "passes/pipeline.h"
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

void add_pass_flags(CLI::App& sub, PassFlags& flags) {
  sub.add_option("--disable-pass", flags.disabled, "skip this optimisation pass (repeatable)");
  sub.add_option("--print-after", flags.print_after, "print the IR after this pass ('all': after each)");
}

ir::Graph optimize(ir::Graph g, const PassFlags& flags) {
  passes::PipelineOptions opts;
  opts.disabled = {flags.disabled.begin(), flags.disabled.end()};
  const auto names = passes::pass_names();
  if (!flags.print_after.empty() && flags.print_after != "all" &&
      std::find(names.begin(), names.end(), flags.print_after) == names.end())
    throw Error("--print-after: unknown pass '" + flags.print_after + "'; use 'all' or one of the passes listed by --help");
  if (!flags.print_after.empty())
    opts.after_pass = [&](const std::string& pass, const ir::Graph& after, bool changed) {
      if (flags.print_after != "all" && flags.print_after != pass) return;
      std::printf("# IR after %s%s\n%s", pass.c_str(), changed ? "" : " (unchanged)",
                  changed ? ir::print(after).c_str() : "");
    };
  return passes::optimize(std::move(g), opts);
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
