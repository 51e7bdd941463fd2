#include "passes/pipeline.h"

#include <chrono>
#include <type_traits>

#include "ir/error.h"
#include "ir/text.h"

#include "passes/choose_tiles.h"
#include "passes/dead_code_elimination.h"
#include "passes/fold_batchnorm.h"
#include "passes/fuse_epilogues.h"
#include "passes/fuse_padding.h"
#include "passes/remove_identities.h"
#include "passes/subsample_strided_convs.h"

namespace cnnc::passes {

namespace {
struct PassInfo {
  const char* name;
  ir::Graph (*run)(ir::Graph, const PipelineOptions&);
  const char* doc;
};
// A pass takes the graph, and the tiling options if it needs them.
template <auto Pass>
ir::Graph run_pass(ir::Graph g, const PipelineOptions& opts) {
  if constexpr (std::is_invocable_v<decltype(Pass), ir::Graph, const TilingOptions&>)
    return Pass(std::move(g), opts.tiling);
  else
    return Pass(std::move(g));
}
const PassInfo kPasses[] = {
#define CNNC_PASS(name, fn, doc) {#name, run_pass<fn>, doc},
#include "passes/passes.def"
#undef CNNC_PASS
};
}  // namespace

std::vector<std::string> pass_names() {
  std::vector<std::string> names;
  for (const auto& p : kPasses) names.push_back(p.name);
  return names;
}

ir::Graph optimize(ir::Graph g, const PipelineOptions& opts) {
  for (const auto& d : opts.disabled) {
    bool known = false;
    for (const auto& p : kPasses) known |= d == p.name;
    if (!known) {
      std::string all;
      for (const auto& n : pass_names()) all += (all.empty() ? "" : ", ") + n;
      throw Error("unknown pass '" + d + "'; the passes are: " + all);
    }
  }
  for (const auto& p : kPasses) {
    if (opts.disabled.count(p.name)) continue;
    const std::string before = opts.after_pass ? ir::print(g) : std::string();
    const auto t0 = std::chrono::steady_clock::now();
    g = p.run(std::move(g), opts);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Always (a few microseconds a layer): a pass that breaks the graph is cnnc's bug, and is
    // caught at the pass that did it, in the tests and for users alike.
    try {
      ir::verify(g);
    } catch (const Error& e) {
      throw InternalError(std::string("pass ") + p.name + " left an invalid graph: " + e.what());
    }
    if (opts.after_pass) opts.after_pass({p.name, g, ir::print(g) != before, seconds});
  }
  return g;
}

}  // namespace cnnc::passes
