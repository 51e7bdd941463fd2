#pragma once
// codegen::export_library: a graph compiled ahead of time into a static library with a C header,
// for a C or C++ application (`cnnc export`, docs/deploy.md). Halide-free.
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace cnnc::codegen {

struct ExportOptions {
  std::string dir;               // the output folder (created)
  std::string name;              // the C prefix of every symbol: NAME_create, NAME_run ...
  std::string target = "host";   // host, or a CPU target string (arm-64-linux cross-compiles)
  bool embed_weights = false;    // the weights inside the library, else in NAME.weights
  int64_t micro_batch = 0;       // images per pass (0: as `cnnc run` chooses)
};

struct ExportResult {
  std::string name;                // the C prefix (opts.name made an identifier)
  std::vector<std::string> files;  // what was written, in the folder
  std::string compiler;            // the C compiler that built the executor
  int64_t library_bytes = 0, weight_bytes = 0;
  size_t kernels = 0;              // distinct kernels compiled
};

// Writes into opts.dir: libNAME.a (every kernel, the Halide runtime, the executor with its
// memory plan), NAME.h (the C API: NAME_create, NAME_run, NAME_destroy, the shapes and names of
// the inputs and outputs) and NAME.weights unless embedded. `g` has had its passes (schedules
// recorded) and has its weights. The C compiler is $CC (host) or the target's cross compiler
// (aarch64-linux-gnu-gcc for arm-64-linux); throws cnnc::Error naming what is missing.
ExportResult export_library(ir::Graph g, const ExportOptions& opts);

}  // namespace cnnc::codegen
