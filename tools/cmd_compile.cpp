// cnnc compile NET --emit graph|fused|schedule|halide|asm|ptx: stop after a stage and show it.
#include <cstdio>
#include <set>

#include "codegen/compile.h"
#include "ir/atomic_file.h"
#include "ir/dot.h"
#include "ir/error.h"
#include "ir/text.h"
#include "tools/commands.h"
#include "tools/format.h"
#include "tools/prepare.h"

namespace cnnc::tools {

namespace {

struct CompileFlags {
  std::string net, emit = "graph", dump_graph, layer;
  int64_t batch = 1;
  PassFlags passes;
};

// The fused groups: each kernel with the layers the passes merged into it.
void print_fused(const ir::Graph& g) {
  std::printf("# %s: the kernels after fusion; 'fused' lists the layers each absorbed\n",
              g.name.c_str());
  for (const ir::Node& n : g.nodes()) {
    if (!ir::has_kernel(n.op)) continue;
    std::string fused;
    for (const auto& a : n.absorbed) fused += (fused.empty() ? "" : ", ") + a;
    std::printf("%-28s %-16s %-10s %-22s %s\n", n.name.c_str(), std::string(n.info().text).c_str(),
                ir::kernel_kind_name(ir::kernel_kind(g, n)), ir::pattern_name(n.info().pattern),
                fused.empty() ? "" : ("fused: " + fused).c_str());
  }
}

// Halide's lowered statement or the assembly of each distinct kernel (or of --layer's).
void print_stage(const ir::Graph& g, const CompileFlags& o, codegen::Stage stage) {
  const ir::Target target = codegen::describe_target(o.passes.target);
  std::set<std::string> seen;
  bool found = o.layer.empty();
  for (const ir::Node& n : g.nodes()) {
    if (!ir::has_kernel(n.op) || (!o.layer.empty() && n.name != o.layer)) continue;
    found = true;
    const std::string key = ir::workload_key(g, n) + " " + ir::to_text(n.schedule);
    if (!seen.insert(key).second) {
      std::printf("# kernel of layer '%s': the same as an earlier layer's\n", n.name.c_str());
      continue;
    }
    std::printf("# kernel of layer '%s' (%s), schedule=%s, target %s\n", n.name.c_str(),
                std::string(n.info().text).c_str(), ir::to_text(n.schedule).c_str(),
                target.name.c_str());
    std::printf("%s\n", codegen::emit(g, n, target, stage).c_str());
  }
  if (!found)
    throw Error(o.net + ": no layer with a kernel is named '" + o.layer +
                "' (after the passes; see --emit fused)");
}

int compile(const CompileFlags& o) {
  // With weights: folding needs their values (a .cnn without weights gets the seeded ones).
  ir::Graph loaded = load_with_weights(o.net, o.batch, "", 0);
  const ir::Graph before = o.dump_graph.empty() ? ir::Graph{} : loaded;
  ir::Graph g = optimize(std::move(loaded), o.passes);
  if (!o.dump_graph.empty()) {
    ir::write_file_atomically(o.dump_graph, ir::to_dot(before, g));
    std::fprintf(stderr, "wrote %s (render: dot -Tsvg %s -o graph.svg)\n", o.dump_graph.c_str(),
                 o.dump_graph.c_str());
  }
  if (o.emit == "graph") {
    std::printf("%s", ir::print(g).c_str());
    return 0;
  }
  if (o.emit == "fused") {
    print_fused(g);
    return 0;
  }
  // The kernels are compiled for one micro-batch, as `run` and `bench` would.
  const int64_t batch = g.batch(),
                micro = codegen::choose_micro_batch(
                    g, o.passes.micro_batch, codegen::describe_target(o.passes.target).family);
  if (micro < batch)
    std::printf(
        "# micro-batch %lld of batch %lld: kernels and memory are for %lld image(s) per pass\n",
        static_cast<long long>(micro), static_cast<long long>(batch),
        static_cast<long long>(micro));
  if (o.emit == "halide" || o.emit == "asm" || o.emit == "ptx") {
    g.set_batch(micro);
    print_stage(g, o,
                o.emit == "halide" ? codegen::Stage::Halide
                : o.emit == "asm"  ? codegen::Stage::Assembly
                                   : codegen::Stage::Ptx);
    return 0;
  }
  const codegen::Program p = codegen::compile(std::move(g), compile_options(o.passes));
  std::printf(
      "# %zu kernels: %zu compiled, %zu from the disk cache, %zu reusing one of the same key; %.2f "
      "s\n",
      p.kernels.size(), p.compiled, p.from_disk, p.kernels.size() - p.compiled - p.from_disk,
      p.compile_seconds);
  std::printf("# target: %s\n", p.target.describe().c_str());
  std::printf("# activations: %s in one arena (%s with a buffer per value)\n",
              bytes(p.plan.arena_bytes).c_str(), bytes(p.plan.unshared_bytes).c_str());
  for (const auto& k : p.kernels) {
    const ir::Node& n = p.graph.node(k.node);
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%6.2f s", k.compile_seconds);
    std::printf("%-24s %-16s %s  %-30s %s\n", n.name.c_str(), std::string(n.info().text).c_str(),
                k.cached ? "  cached" : seconds, ir::to_text(n.schedule).c_str(),
                k.kernel->schedule().c_str());
  }
  return 0;
}

}  // namespace

Action add_compile(CLI::App& app) {
  auto* sub =
      app.add_subcommand("compile",
                         "Compile and show a stage: the IR, the fused kernels, their schedules, "
                         "Halide's lowered statements or the assembly");
  auto o = std::make_shared<CompileFlags>();
  sub->add_option("NET", o->net, "network file (.cnn, .keras, .h5, .json, .onnx)")->required();
  sub->add_option("--emit", o->emit,
                  "what to show: graph (the IR after the passes), fused (each kernel and the "
                  "layers fused into it), "
                  "schedule (each kernel's schedule, compiled), halide (Halide's lowered statement "
                  "of each kernel), "
                  "asm (each kernel's assembly), ptx (each kernel's PTX, for --target cuda; "
                  "assemble it with the CUDA Toolkit's ptxas -arch=sm_90 -v)")
      ->check(CLI::IsMember({"graph", "fused", "schedule", "halide", "asm", "ptx"}));
  sub->add_option("--layer", o->layer, "with --emit halide|asm|ptx: only this layer's kernel");
  sub->add_option("--batch", o->batch, "batch size")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option(
      "--dump-graph", o->dump_graph,
      "write the graph before and after the passes as Graphviz, fused groups as clusters");
  add_pass_flags(*sub, o->passes);
  return [o] { return compile(*o); };
}

}  // namespace cnnc::tools
