#pragma once
// Lowering one node to a Halide pipeline (codegen-internal; includes Halide): shared by the JIT
// and disk-cache compile (compile.cpp) and the ahead-of-time export (export.cpp).
#include <Halide.h>

#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/target.h"

namespace cnnc::codegen {

// A node's algorithm with its schedule applied, ready for Halide to compile: its buffers
// (activations, then weights, each with its dims innermost first) and its output.
struct Lowered {
  Halide::Func out;
  std::vector<Halide::ImageParam> args;
  std::vector<std::vector<int>> arg_dims;
  std::vector<int> out_dims;
  std::string schedule;  // in words
  int weight_block = 0;  // see Kernel::weight_block
  int winograd_outputs = 0;  // see Kernel::winograd_outputs
};

// The node with its schedule (checked against the layer: a cnnc::Error naming it when it does
// not fit) for the Halide target `t` whose facts are `facts`.
Lowered lower(const ir::Graph& g, const ir::Node& n, const Halide::Target& t,
              const ir::Target& facts);

// The folder libHalide was loaded from: the wheel's lib64, beside its autoscheduler plugins and
// its include folder.
std::string halide_library_folder();

// The Halide target of an ir::Target.
Halide::Target halide_target(const ir::Target& t);

}  // namespace cnnc::codegen
