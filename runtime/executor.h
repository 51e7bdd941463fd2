#pragma once
// A compiled model: the graph, its weights, one buffer per value and the kernels in order.
// run(inputs) -> outputs.
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

class CompiledModel {
 public:
  // Compiles the graph, whose weights must all be set (init_weights or load_weights).
  CompiledModel(ir::Graph g, const codegen::CompileOptions& opts = {});

  // Inputs in the order of graph().inputs(), each of its input's exact shape; outputs in the
  // order of graph().outputs(). Throws cnnc::Error on a wrong count or shape.
  std::vector<ir::Tensor> run(const std::vector<ir::Tensor>& inputs);

  // Runs the kernels on the inputs already set by a previous run (for benchmarks).
  void rerun();
  // Runs only kernel k (index into compiled().kernels), for per-layer timing: its inputs may
  // hold later values sharing their bytes (the memory plan), which changes no timing.
  void run_kernel(size_t k);

  const ir::Graph& graph() const { return graph_; }
  const codegen::CompiledGraph& compiled() const { return compiled_; }
  const MemoryPlan& memory_plan() const { return plan_; }

 private:
  std::vector<const float*> kernel_args(const ir::Node& n) const;

  ir::Graph graph_;
  codegen::CompiledGraph compiled_;
  MemoryPlan plan_;
  Arena arena_;                              // every activation, at plan_'s offsets
  std::vector<std::vector<float>> packed_;   // per node: its kernel weights as its kernel reads them
  std::vector<float*> data_;                  // per node: its storage or the viewed input's
};

}  // namespace cnnc::runtime
