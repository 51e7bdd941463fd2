#pragma once
// A compiled model: the graph, its weights, one buffer per value and the kernels in order.
// run(inputs) -> outputs. A batch runs as consecutive micro-batches through the whole network
// (kernels compiled for the micro-batch), so each image's activations are still in cache when
// the next layer reads them instead of a whole batch's going through memory between layers.
#include <string>
#include <vector>

#include "codegen/kernel.h"
#include "ir/graph.h"
#include "runtime/memory_plan.h"

namespace cnnc::runtime {

// One zeroed allocation for all activations.
class Arena {
 public:
  Arena() = default;
  explicit Arena(size_t bytes);
  Arena(const Arena&) = delete;
  Arena& operator=(Arena&& o) noexcept;
  ~Arena();
  float* data() const { return data_; }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

// Images per pass through the network: `requested` if > 0 (it must divide the batch), else the
// largest divisor of the batch up to 4 (measured; see executor.cpp).
int64_t choose_micro_batch(const ir::Graph& g, int64_t requested);

class CompiledModel {
 public:
  // Compiles the graph, whose weights must all be set (init_weights or load_weights).
  CompiledModel(ir::Graph g, const codegen::CompileOptions& opts = {});

  // Inputs in the order of graph().inputs(), each of its input's exact shape; outputs in the
  // order of graph().outputs(). Throws cnnc::Error on a wrong count or shape.
  std::vector<ir::Tensor> run(const std::vector<ir::Tensor>& inputs);

  // Runs the kernels on the inputs already set by a previous run (for benchmarks).
  void rerun();
  // Runs only kernel k (index into compiled().kernels) on every micro-batch, for per-layer
  // timing: its inputs may hold later values sharing their bytes (the memory plan), which
  // changes no timing.
  void run_kernel(size_t k);

  // The graph at the caller's batch (the kernels see it at micro_batch()).
  const ir::Graph& graph() const { return graph_; }
  const codegen::CompiledGraph& compiled() const { return compiled_; }
  // The plan of one micro-batch's activations.
  const MemoryPlan& memory_plan() const { return plan_; }
  int64_t micro_batch() const { return micro_batch_; }

 private:
  std::vector<const float*> kernel_args(const ir::Node& n) const;
  void run_kernels();  // every kernel once, on the micro-batch in the arena
  void run_slice(int64_t s);

  ir::Graph graph_;
  int64_t micro_batch_ = 1;
  int64_t slices_ = 1;                       // batch / micro_batch_
  std::vector<std::vector<float>> batch_in_, batch_out_;  // whole-batch inputs/outputs when slices_ > 1
  codegen::CompiledGraph compiled_;
  MemoryPlan plan_;
  Arena arena_;                              // every activation, at plan_'s offsets
  std::vector<std::vector<float>> packed_;   // per node: its kernel weights as its kernel reads them
  std::vector<float*> data_;                  // per node: its storage or the viewed input's
};

}  // namespace cnnc::runtime
