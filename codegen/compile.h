#pragma once
// codegen's public functions (Halide-free): a graph to a Program for a target, the target's facts
// for the passes, and each stage of a kernel as text (`cnnc compile --emit`).
#include <string>

#include "codegen/program.h"
#include "ir/graph.h"
#include "ir/target.h"

namespace cnnc::codegen {

struct CompileOptions {
  std::string target = "host";  // ir::kTargetSyntax
  // Off only to measure what it gains (`--no-memory-reuse`):
  bool reuse_memory = true;  // the memory plan shares bytes between dead and new values
  bool disk_cache = true;    // kernels through the on-disk cache (CNNC_CACHE_DIR; "off" disables)
  // Images per pass through the network: 0 lets codegen choose, N runs the batch N images at a
  // time (N must divide it).
  int64_t micro_batch = 0;
};

// The facts of a target (--target: host, a CPU Halide target string, opencl, cuda[:sm_XX]), for
// the tiling pass and the tuner. Throws cnnc::Error naming what is accepted. Asks no GPU: a GPU
// target compiles anywhere, and only running it needs the device.
ir::Target describe_target(const std::string& name);

// The GPU a GPU target runs on here ("NVIDIA H200, 132 SMs"), asking its driver; "" for a CPU
// target or when no device is found. What tuning records of a GPU are keyed by.
std::string gpu_device_name(const ir::Target& target);

// Images per pass through the network: `requested` if > 0 (it must divide the batch), else on a
// CPU the largest divisor of the batch up to 4 (measured; see compile.cpp), on a GPU the whole
// batch (a GPU needs every image's threads to fill its SMs).
int64_t choose_micro_batch(const ir::Graph& g, int64_t requested,
                           ir::Target::Family family = ir::Target::Cpu);

// Whether CPU kernels go through the on-disk cache (not with CNNC_CACHE_DIR=off, or when its
// folder or the linker is unusable): what a kernel compiled in one process can be loaded from
// in another.
bool kernel_disk_cache_available();

// Compiles every kernel of the graph (whose passes have run) for the target at the micro-batch,
// and plans its memory. Throws cnnc::Error naming the layer if a layer cannot be compiled (a
// schedule that does not fit it, say).
Program compile(ir::Graph g, const CompileOptions& opts = {});

// Plans the buffers of `g`'s nodes that have storage: a view's readers keep the viewed buffer
// alive; graph inputs live throughout, graph outputs to the end. Greedy by size (largest first,
// lowest offset that fits beside the live ones), as TFLite's planner. reuse = false gives every
// buffer its own bytes (to measure what reuse saves).
MemoryPlan plan_memory(const ir::Graph& g, bool reuse = true,
                       int64_t alignment = MemoryPlan::kCpuAlignment);

// Why the node's schedule cannot be applied to it on the target, or "" when it can (what
// compile() would refuse; the tuner filters candidates with it).
std::string schedule_problem(const ir::Graph& g, const ir::Node& n, const ir::Target& target);

// The Halide version kernels are compiled with ("21.0.0").
std::string halide_version();

// One kernel's stage as text: Halide's lowered statement (loops, vectors, allocations after the
// schedule), the target's assembly (the host code, for a GPU target), or for a CUDA target the
// PTX of its GPU kernels (as Halide embeds it in the object; needs no GPU).
enum class Stage { Halide, Assembly, Ptx };
std::string emit(const ir::Graph& g, const ir::Node& n, const ir::Target& target, Stage stage);

}  // namespace cnnc::codegen
