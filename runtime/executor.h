#pragma once
// A compiled model: a Program (the graph, its weights, the kernels in order, the memory plan)
// with its arena and packed weights. run(inputs) -> outputs. A batch runs as consecutive
// micro-batches through the whole network (kernels compiled for the micro-batch), so each image's
// activations are still in cache when the next layer reads them instead of a whole batch's going
// through memory between layers.
#include <string>
#include <vector>

#include "codegen/program.h"
#include "ir/graph.h"

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
  // Takes a compiled Program (codegen::compile) to run on `threads` worker threads (0: one
  // per core).
  explicit CompiledModel(codegen::Program program, int threads = 0);

  // Inputs in the order of graph().inputs(), each of its input's exact shape; outputs in the
  // order of graph().outputs(). Throws cnnc::Error on a wrong count or shape.
  std::vector<ir::Tensor> run(const std::vector<ir::Tensor>& inputs);

  // Runs the kernels on the inputs already set by a previous run (for benchmarks).
  void rerun();

  // For a program that runs its batch in one pass (micro-batch = batch: training): input i's
  // and output o's data in place, to fill before and read after run_in_place(), which copies
  // nothing but a GPU program's inputs to its device and outputs back.
  float* input_data(size_t i);
  const float* output_data(size_t o) const;
  void run_in_place();
  // Runs every kernel on the inputs already set, as rerun() does, and adds each kernel's time
  // (ms, over all micro-batches) into per_kernel: kernels timed in the model's context, with the
  // caches as the kernels before them left them.
  void rerun_profiled(std::vector<double>& per_kernel);
  // Runs only kernel k (index into compiled().kernels) on every micro-batch, for per-layer
  // timing: its inputs may hold later values sharing their bytes (the memory plan), which
  // changes no timing.
  void run_kernel(size_t k);

  // A layer's weights, to change between runs (training); weights_changed() then re-packs them
  // for the kernels that read them packed. Throws cnnc::Error naming a missing layer or role.
  float* weights(const std::string& layer, const std::string& role);
  void weights_changed();

  // The graph at the caller's batch (the kernels see it at micro_batch()).
  const ir::Graph& graph() const { return program_.graph; }
  const codegen::Program& program() const { return program_; }
  const std::vector<codegen::CompiledNode>& kernels() const { return program_.kernels; }
  // The plan of one micro-batch's activations.
  const codegen::MemoryPlan& memory_plan() const { return program_.plan; }
  int64_t micro_batch() const { return program_.micro_batch; }

 private:
  std::vector<const float*> kernel_args(const ir::Node& n) const;
  void pack();  // the kernel weights of every kernel that reads them packed
  // Every kernel once, on the micro-batch in the arena; with per_kernel, each one's time added.
  void run_kernels(std::vector<double>* per_kernel);
  void run_slice(int64_t s, std::vector<double>* per_kernel);
  void run_all(std::vector<double>* per_kernel);  // every micro-batch
  // A GPU program: the inputs' bytes of one micro-batch to the device, the outputs' back.
  void inputs_to_device();
  void outputs_to_host();
  size_t bytes_per_slice(ir::NodeId id) const;

  codegen::Program program_;
  int64_t slices_ = 1;  // batch / micro-batch
  std::vector<std::vector<float>> batch_in_,
      batch_out_;                           // whole-batch inputs/outputs when slices_ > 1
  Arena arena_;                             // every activation, at the plan's offsets
  Arena packed_arena_;                      // every packed kernel's weights, in huge pages
  std::vector<float*> packed_;  // per node: its kernel weights as its kernel reads them, or null
  std::vector<float*> data_;                // per node: its storage or the viewed input's
  codegen::RuntimeServices services_;       // the worker pool's, and the Program's device memory
};

}  // namespace cnnc::runtime
