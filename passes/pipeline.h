#pragma once
// passes::optimize: the linear pipeline of passes.def, with the verifier after every pass.
#include <functional>
#include <set>
#include <string>

#include "ir/graph.h"
#include "passes/choose_tiles.h"

namespace cnnc::passes {

struct PipelineOptions {
  std::set<std::string> disabled;  // pass names to skip
  TilingOptions tiling;             // the machine and batch the schedules are chosen for
  // Called after each pass that ran; `changed` is false when the pass left the graph as it was.
  struct PassRun {
    const std::string& pass;
    const ir::Graph& graph;
    bool changed;
    double seconds;
  };
  std::function<void(const PassRun&)> after_pass;
};

ir::Graph optimize(ir::Graph g, const PipelineOptions& opts = {});

// The pass names, in pipeline order (for --disable-pass and messages).
std::vector<std::string> pass_names();

}  // namespace cnnc::passes
