#include "runtime/executor.h"

#include <sys/mman.h>

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

CompiledModel::CompiledModel(ir::Graph g, const codegen::CompileOptions& opts)
    : graph_(std::move(g)) {
  for (const auto& n : graph_.nodes())
    for (const auto& p : n.params)
      if (static_cast<int64_t>(p.value.data.size()) != p.value.elements())
        throw Error(graph_.where(n) + ": weights '" + p.role + "' are not set");
  compiled_ = codegen::compile(graph_, opts);
  // Weights in the layout each kernel reads, packed once here rather than on every run.
  packed_.resize(graph_.size());
  for (const auto& ck : compiled_.kernels)
    if (const int block = ck.kernel->weight_block(); block > 0)
      packed_[ck.node] = codegen::pack_weights(graph_.node(ck.node).param("kernel")->value, block);
  plan_ = plan_memory(graph_, opts.reuse_memory);
  arena_ = Arena(static_cast<size_t>(plan_.arena_bytes));
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
  ck.kernel->run(kernel_args(graph_.node(ck.node)), data_[ck.node]);
}

void CompiledModel::rerun() {
  for (size_t k = 0; k < compiled_.kernels.size(); ++k) run_kernel(k);
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
    std::copy(inputs[i].data.begin(), inputs[i].data.end(), data_[ids[i]]);
  }
  rerun();
  std::vector<ir::Tensor> outs;
  for (ir::NodeId o : graph_.outputs()) {
    ir::Tensor t;
    t.shape = graph_.node(o).type.shape;
    t.data.assign(data_[o], data_[o] + t.elements());
    outs.push_back(std::move(t));
  }
  return outs;
}

}  // namespace cnnc::runtime
