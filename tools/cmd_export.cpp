// cnnc export NET -o DIR: the network compiled ahead of time into a static library, a C header
// and its weights, for an application on this machine or, cross-compiled, on another
// (docs/deploy.md).
#include <cstdio>

#include "codegen/export.h"
#include "ir/error.h"
#include "tools/commands.h"
#include "tools/prepare.h"

namespace cnnc::tools {

namespace {

struct ExportFlags {
  std::string net, dir, name, weights;
  int64_t batch = 1;
  uint64_t seed = 0;
  bool embed = false;
  PassFlags passes;
};

int export_net(const ExportFlags& o) {
  ir::Graph g = load_with_weights(o.net, o.batch, o.weights, o.seed);
  codegen::ExportOptions e;
  e.dir = o.dir;
  e.name = o.name.empty() ? g.name : o.name;
  e.target = o.passes.target;
  e.embed_weights = o.embed;
  e.micro_batch = o.passes.micro_batch;
  const codegen::ExportResult r = codegen::export_library(optimize(std::move(g), o.passes), e);
  std::printf("exported %s for %s (batch %lld): %zu kernels, library %.1f KiB, weights %.1f KiB%s\n",
              o.net.c_str(), o.passes.target.c_str(), static_cast<long long>(o.batch), r.kernels,
              r.library_bytes / 1024.0, r.weight_bytes / 1024.0,
              o.embed ? " (embedded)" : "");
  for (const auto& f : r.files) std::printf("  %s/%s\n", o.dir.c_str(), f.c_str());
  std::printf("  link: %s app.c -I %s %s/lib%s.a -lm -lpthread -ldl\n", r.compiler.c_str(),
              o.dir.c_str(), o.dir.c_str(), r.name.c_str());
  return 0;
}

}  // namespace

Action add_export(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "export", "Compile ahead of time into a static library + C header + weights (docs/deploy.md)");
  auto o = std::make_shared<ExportFlags>();
  sub->add_option("NET", o->net, "network file (.cnn, .keras, .h5, .json, .onnx)")->required();
  sub->add_option("-o,--output", o->dir, "the folder to write (created)")->required();
  sub->add_option("--name", o->name,
                  "the C prefix of the API (NAME_create, NAME_run ...); default: the network's "
                  "name");
  sub->add_option("--batch", o->batch, "images per NAME_run call (fixed at export)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option("--weights", o->weights,
                  "weights file (.cnnw); initialised from --seed if absent");
  sub->add_option("--seed", o->seed, "seed for the weights when --weights is absent");
  sub->add_flag("--embed-weights", o->embed,
                "put the weights inside the library (NAME_create(NULL)) instead of NAME.weights");
  add_pass_flags(*sub, o->passes);
  return [o] { return export_net(*o); };
}

}  // namespace cnnc::tools
