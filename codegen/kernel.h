#pragma once
// What codegen hands to the runtime: compiled kernels behind a Halide-free interface, so that
// only codegen/ includes Halide.h.
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/machine.h"

namespace cnnc::codegen {

// One compiled op. Shapes are fixed at compile time; run() takes the data pointers of the node's
// inputs followed by its weights (in ir::Node::params order), and of the output.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(const std::vector<const float*>& args, float* out) const = 0;
  // The schedule applied, in words (for `cnnc bench` and --emit).
  virtual std::string schedule() const = 0;
  // > 0: the kernel reads its "kernel" weights pre-packed in blocks of this many output
  // channels, [out/B][kh][kw][in][B] (pack_weights), so each register tile's weights are one
  // contiguous stream instead of B floats every `out` floats.
  virtual int weight_block() const { return 0; }
};

// Packs HWIO (or dense (in, out)) weights into blocks of `block` output channels:
// [out/block][h][w][in][block]. `out` must be a multiple of `block`.
std::vector<float> pack_weights(const ir::Tensor& kernel, int block);

struct CompileOptions {
  std::string target = "host";  // a Halide target string; "host" is this machine's CPU
  int threads = 0;              // worker threads at run time; 0: one per core
  // Off only to measure what it gains (`--no-memory-reuse`):
  bool reuse_memory = true;     // the runtime's memory plan shares bytes between dead and new values
  bool disk_cache = true;       // kernels through the on-disk cache (CNNC_CACHE_DIR; "off" disables)
  // Images per pass through the network (runtime::CompiledModel): 0 lets the runtime choose,
  // N runs the batch N images at a time (N must divide it).
  int64_t micro_batch = 0;
};

struct CompiledNode {
  ir::NodeId node;
  // Shared by all layers with the same signature (ir::signature) and target.
  std::shared_ptr<const Kernel> kernel;
  double compile_seconds = 0;  // 0 when the kernel came from the cache
  bool cached = false;
};

struct CompiledGraph {
  // Nodes in graph order; views (input, flatten, reshape, dropout) have no kernel.
  std::vector<CompiledNode> kernels;
  double compile_seconds = 0;
  size_t compiled = 0;   // kernels compiled now
  size_t from_disk = 0;  // kernels loaded from the on-disk cache; the rest reused one in memory
};

// Ops that need no code: their output is their input's data, seen with another shape.
bool is_view(ir::OpKind op);

// Compiles every node of the graph for the target. Throws cnnc::Error naming the layer if a
// layer cannot be compiled.
CompiledGraph compile(const ir::Graph& g, const CompileOptions& opts = {});

// The vector registers and L1 size of a target (a Halide target string, "host" for this
// machine) for the tiling pass. Throws cnnc::Error on an unknown target.
ir::MachineInfo describe_target(const std::string& target);

// Sets the number of worker threads Halide's runtime uses (0: one per core). Must be called
// before the first kernel runs.
void set_num_threads(int threads);

}  // namespace cnnc::codegen
