#include "runtime/executor.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "ir/error.h"

namespace cnnc::runtime {

// Huge pages where the kernel grants them (THP in madvise mode): a batch-32 arena spans
// hundreds of MB, and with 4 KB pages the kernels' strided reads miss the TLB.
Arena::Arena(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  size_ = (std::max<size_t>(bytes, 1) + kHuge - 1) / kHuge * kHuge;
  data_ = static_cast<float*>(std::aligned_alloc(kHuge, size_));
  if (!data_) throw std::bad_alloc();
  madvise(data_, size_, MADV_HUGEPAGE);
  std::memset(data_, 0, size_);
}
Arena::~Arena() { std::free(data_); }
Arena& Arena::operator=(Arena&& o) noexcept {
  std::swap(data_, o.data_);
  std::swap(size_, o.size_);
  return *this;
}

// Four images per pass (or the largest divisor of the batch below that): measured at batch 32
// on a 2-core Zen 4, interleaved (benchmarks/vs_peers.py's blocks), against the whole batch per
// layer: DenseNet121 1111 vs 1395 ms, VGG16 4943 vs 5237, ResNet50 1259-1276 (2 or 8 per pass)
// vs 1295; one image per pass was slower than four on DenseNet121 and VGG16. A rule from the cache sizes did not
// predict this (VGG16's first layers exceed every cache either way), so it stays a measured
// default until the autotuner chooses it per model and machine.
static int64_t auto_micro_batch(const ir::Graph& g) {
  int64_t m = 1;
  for (int64_t d = 1; d <= std::min<int64_t>(g.batch(), 4); ++d)
    if (g.batch() % d == 0) m = d;
  return m;
}

int64_t choose_micro_batch(const ir::Graph& g, int64_t requested) {
  const int64_t m = requested > 0 ? requested : auto_micro_batch(g);
  if (m > g.batch() || g.batch() % m)
    throw Error("micro-batch " + std::to_string(m) + " does not divide the batch " + std::to_string(g.batch()) +
                "; use a divisor of it (or 0 to let cnnc choose)");
  return m;
}

CompiledModel::CompiledModel(ir::Graph g, const codegen::CompileOptions& opts)
    : graph_(std::move(g)) {
  for (const auto& n : graph_.nodes())
    for (const auto& p : n.params)
      if (static_cast<int64_t>(p.value.data.size()) != p.value.elements())
        throw Error(graph_.where(n) + ": weights '" + p.role + "' are not set");
  const int64_t batch = graph_.batch();
  micro_batch_ = choose_micro_batch(graph_, opts.micro_batch);
  slices_ = batch / micro_batch_;
  // Kernels and memory plan for one micro-batch; the graph keeps the caller's batch.
  graph_.set_batch(micro_batch_);
  compiled_ = codegen::compile(graph_, opts);
  // Weights in the layout each kernel reads, packed once here rather than on every run.
  packed_.resize(graph_.size());
  for (const auto& ck : compiled_.kernels)
    if (const int block = ck.kernel->weight_block(); block > 0)
      packed_[ck.node] = codegen::pack_weights(graph_.node(ck.node).param("kernel")->value, block);
  plan_ = plan_memory(graph_, opts.reuse_memory);
  graph_.set_batch(batch);
  arena_ = Arena(static_cast<size_t>(plan_.arena_bytes));
  if (slices_ > 1) {
    for (ir::NodeId i : graph_.inputs()) batch_in_.emplace_back(static_cast<size_t>(graph_.node(i).type.elements()));
    for (ir::NodeId o : graph_.outputs()) batch_out_.emplace_back(static_cast<size_t>(graph_.node(o).type.elements()));
  }
  data_.resize(graph_.size());
  for (int i = 0; i < graph_.size(); ++i) {
    const ir::Node& n = graph_.node(i);
    data_[i] = plan_.offset[i] >= 0 ? arena_.data() + plan_.offset[i] / int64_t{sizeof(float)}
                                    : data_[n.inputs[0]];  // a view: same data, another shape
  }
}

std::vector<const float*> CompiledModel::kernel_args(const ir::Node& n) const {
  std::vector<const float*> args;
  for (ir::NodeId in : n.inputs) args.push_back(data_[in]);
  const auto& packed = packed_[static_cast<size_t>(&n - graph_.nodes().data())];
  for (const auto& p : n.params)
    args.push_back(p.role == "kernel" && !packed.empty() ? packed.data() : p.value.data.data());
  return args;
}

void CompiledModel::run_kernel(size_t k) {
  const auto& ck = compiled_.kernels.at(k);
  const auto args = kernel_args(graph_.node(ck.node));
  for (int64_t s = 0; s < slices_; ++s) ck.kernel->run(args, data_[ck.node]);
}

// One micro-batch: its images of the inputs in, every kernel, its images of the outputs out.
void CompiledModel::run_slice(int64_t s) {
  const auto ins = graph_.inputs(), outs = graph_.outputs();
  for (size_t i = 0; i < ins.size(); ++i) {
    const size_t n = batch_in_[i].size() / static_cast<size_t>(slices_);
    std::copy_n(batch_in_[i].data() + static_cast<size_t>(s) * n, n, data_[ins[i]]);
  }
  run_kernels();
  for (size_t o = 0; o < outs.size(); ++o) {
    const size_t n = batch_out_[o].size() / static_cast<size_t>(slices_);
    std::copy_n(data_[outs[o]], n, batch_out_[o].data() + static_cast<size_t>(s) * n);
  }
}

void CompiledModel::run_kernels() {
  for (const auto& ck : compiled_.kernels) ck.kernel->run(kernel_args(graph_.node(ck.node)), data_[ck.node]);
}

void CompiledModel::rerun() {
  if (slices_ == 1) return run_kernels();  // inputs and outputs live in the arena
  for (int64_t s = 0; s < slices_; ++s) run_slice(s);
}

std::vector<ir::Tensor> CompiledModel::run(const std::vector<ir::Tensor>& inputs) {
  const auto ids = graph_.inputs();
  if (inputs.size() != ids.size())
    throw Error(graph_.name + ": expects " + std::to_string(ids.size()) + " input(s), got " +
                std::to_string(inputs.size()));
  for (size_t i = 0; i < ids.size(); ++i) {
    const ir::Node& n = graph_.node(ids[i]);
    if (inputs[i].shape != n.type.shape)
      throw Error(graph_.where(n) + ": input has shape " + ir::shape_to_string(inputs[i].shape, true) +
                  ", the network expects " + ir::shape_to_string(n.type.shape, true) +
                  " (batch first)");
    std::copy(inputs[i].data.begin(), inputs[i].data.end(), slices_ == 1 ? data_[ids[i]] : batch_in_[i].data());
  }
  rerun();
  std::vector<ir::Tensor> outs;
  const auto out_ids = graph_.outputs();
  for (size_t o = 0; o < out_ids.size(); ++o) {
    ir::Tensor t;
    t.shape = graph_.node(out_ids[o]).type.shape;
    const float* from = slices_ == 1 ? data_[out_ids[o]] : batch_out_[o].data();
    t.data.assign(from, from + t.elements());
    outs.push_back(std::move(t));
  }
  return outs;
}

}  // namespace cnnc::runtime
