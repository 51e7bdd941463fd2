// Loads a network, runs cnnc's passes and compiles it for this CPU, runs it on seeded weights and
// a constant input, and prints the first output's values, one per line: the same numbers as
// `cnnc run NET --seed 3` on that input (tests/package/test.sh compares them).
#include <cstdio>

#include "codegen/compile.h"
#include "frontend/load.h"
#include "passes/pipeline.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/weights.h"

int main(int argc, char** argv) {
  if (argc != 3) return std::fprintf(stderr, "usage: uses_cnnc NET INPUT.npy\n"), 2;
  try {
    cnnc::ir::Graph g = cnnc::frontend::load(argv[1], 1);
    cnnc::runtime::init_weights(g, 3);
    cnnc::passes::PipelineOptions options;
    options.tiling.target = cnnc::codegen::describe_target("host");
    cnnc::runtime::CompiledModel model(cnnc::codegen::compile(cnnc::passes::optimize(g, options)));
    const auto outputs = model.run({cnnc::runtime::read_npy(argv[2])});
    for (float v : outputs[0].data) std::printf("%.6f\n", v);
  } catch (const std::exception& e) {
    return std::fprintf(stderr, "uses_cnnc: %s\n", e.what()), 1;
  }
  return 0;
}
