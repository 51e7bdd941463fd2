#pragma once
// The runtime's services to kernels (codegen::RuntimeServices): cnnc's worker pool for their
// parallel loops and the scratch pool for their own buffers. One set per process.
#include "codegen/program.h"

namespace cnnc::runtime {

const codegen::RuntimeServices& services();

// Worker threads for every kernel's parallel loops (0: one per core). Takes effect for later
// loops.
void set_num_threads(int threads);

}  // namespace cnnc::runtime
