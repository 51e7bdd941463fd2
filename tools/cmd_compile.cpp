// cnnc compile NET --emit=graph|schedule: stop after a stage and show it.
#include <cstdio>

#include "codegen/kernel.h"
#include "frontend/load.h"
#include "ir/text.h"
#include "tools/commands.h"
#include "tools/prepare.h"

namespace cnnc::tools {

namespace {

struct CompileFlags {
  std::string net, emit = "graph";
  int64_t batch = 1;
  PassFlags passes;
};

int compile(const CompileFlags& o) {
  ir::Graph g = optimize(frontend::load(o.net, o.batch), o.passes);
  if (o.emit == "graph") {
    std::printf("%s", ir::print(g).c_str());
    return 0;
  }
  // Kernels compile from shapes and schedules; the weights' values do not matter here.
  const codegen::CompiledGraph cg = codegen::compile(g);
  std::printf("# %zu kernels compiled in %.2f s\n", cg.kernels.size(), cg.compile_seconds);
  for (const auto& k : cg.kernels) {
    const ir::Node& n = g.node(k.node);
    std::printf("%-24s %-16s %6.2f s  %s\n", n.name.c_str(), std::string(n.info().text).c_str(),
                k.compile_seconds, k.kernel->schedule().c_str());
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
  add_pass_flags(*sub, o->passes);
  return [o] { return compile(*o); };
}

}  // namespace cnnc::tools
