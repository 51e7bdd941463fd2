// cnnc compile NET --emit=graph|schedule: stop after a stage and show it.
#include <cstdio>

#include "codegen/kernel.h"
#include "ir/dot.h"
#include "ir/text.h"
#include "runtime/executor.h"
#include "runtime/memory_plan.h"
#include "tools/format.h"
#include "tools/commands.h"
#include "tools/prepare.h"

namespace cnnc::tools {

namespace {

struct CompileFlags {
  std::string net, emit = "graph", dump_graph;
  int64_t batch = 1;
  PassFlags passes;
};

int compile(const CompileFlags& o) {
  // With weights: folding needs their values (a .cnn without weights gets the seeded ones).
  ir::Graph loaded = load_with_weights(o.net, o.batch, "", 0);
  const ir::Graph before = o.dump_graph.empty() ? ir::Graph{} : loaded;
  ir::Graph g = optimize(std::move(loaded), o.passes);
  if (!o.dump_graph.empty()) {
    write_file_atomically(o.dump_graph, ir::to_dot(before, g));
    std::fprintf(stderr, "wrote %s (render: dot -Tsvg %s -o graph.svg)\n", o.dump_graph.c_str(), o.dump_graph.c_str());
  }
  if (o.emit == "graph") {
    std::printf("%s", ir::print(g).c_str());
    return 0;
  }
  const codegen::CompileOptions options = compile_options(o.passes, 0);
  // The kernels are compiled for one micro-batch, as `run` and `bench` would.
  const int64_t batch = g.batch(), micro = runtime::choose_micro_batch(g, options.micro_batch);
  g.set_batch(micro);
  if (micro < batch)
    std::printf("# micro-batch %lld of batch %lld: kernels and memory are for %lld image(s) per pass\n",
                static_cast<long long>(micro), static_cast<long long>(batch), static_cast<long long>(micro));
  const codegen::CompiledGraph cg = codegen::compile(g, options);
  std::printf("# %zu kernels: %zu compiled, %zu from the disk cache, %zu reusing one of the same signature; %.2f s\n",
              cg.kernels.size(), cg.compiled, cg.from_disk, cg.kernels.size() - cg.compiled - cg.from_disk,
              cg.compile_seconds);
  const runtime::MemoryPlan plan = runtime::plan_memory(g, options.reuse_memory);
  std::printf("# activations: %s in one arena (%s with a buffer per value)\n", bytes(plan.arena_bytes).c_str(),
              bytes(plan.unshared_bytes).c_str());
  for (const auto& k : cg.kernels) {
    const ir::Node& n = g.node(k.node);
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%6.2f s", k.compile_seconds);
    std::printf("%-24s %-16s %s  %s\n", n.name.c_str(), std::string(n.info().text).c_str(),
                k.cached ? "  cached" : seconds, k.kernel->schedule().c_str());
  }
  return 0;
}

}  // namespace

Action add_compile(CLI::App& app) {
  auto* sub = app.add_subcommand("compile", "Compile and show a stage: the optimised IR or the kernels' schedules");
  auto o = std::make_shared<CompileFlags>();
  sub->add_option("NET", o->net, "network file (.cnn)")->required();
  sub->add_option("--emit", o->emit, "what to show: graph (the IR after the passes) or schedule")
      ->check(CLI::IsMember({"graph", "schedule"}));
  sub->add_option("--batch", o->batch, "batch size")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option("--dump-graph", o->dump_graph, "write the graph before and after the passes as Graphviz, fused groups as clusters");
  add_pass_flags(*sub, o->passes);
  return [o] { return compile(*o); };
}

}  // namespace cnnc::tools
