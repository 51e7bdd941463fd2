#include "runtime/executor.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "ir/error.h"
#include "runtime/services.h"
#include "runtime/thread_pool.h"

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

CompiledModel::CompiledModel(codegen::Program program, int threads) : program_(std::move(program)) {
  set_num_threads(threads);
  const ir::Graph& g = program_.graph;
  slices_ = g.batch() / program_.micro_batch;
  // Weights in the layout each kernel reads, packed once here rather than on every run.
  packed_.resize(g.size());
  pack();
  arena_ = Arena(static_cast<size_t>(program_.plan.arena_bytes));
  if (slices_ > 1) {
    for (ir::NodeId i : g.inputs())
      batch_in_.emplace_back(static_cast<size_t>(g.node(i).type.elements()));
    for (ir::NodeId o : g.outputs())
      batch_out_.emplace_back(static_cast<size_t>(g.node(o).type.elements()));
  }
  data_.resize(g.size());
  for (int i = 0; i < g.size(); ++i) {
    const ir::Node& n = g.node(i);
    const int64_t offset = program_.plan.offset[i];
    if (n.op == ir::OpKind::Parameter)  // a training graph's weights: its layer's, unpacked
      data_[i] = const_cast<float*>(ir::parameter_value(g, n).value.data.data());
    else
      data_[i] = offset >= 0 ? arena_.data() + offset / int64_t{sizeof(float)}
                             : data_[n.inputs[0]];  // a view: same data, another shape
  }
  services_ = services();
  if (codegen::DeviceMemory* device = program_.device.get()) {
    // The arena and every weight live on the device from now on; the weights go there once.
    services_.device = device;
    device->map(arena_.data(), static_cast<size_t>(program_.plan.arena_bytes), false);
    for (const auto& ck : program_.kernels) {
      const ir::Node& n = g.node(ck.node);
      const auto args = kernel_args(n);  // inputs, then the weights as the kernel reads them
      for (size_t p = 0; p < n.params.size(); ++p)
        if (const size_t floats = n.params[p].value.data.size())
          device->map(args[n.inputs.size() + p], floats * sizeof(float), true);
    }
  }
}

float* CompiledModel::weights(const std::string& layer, const std::string& role) {
  if (const ir::NodeId id = program_.graph.find(layer); id >= 0)
    if (ir::Param* p = program_.graph.node(id).param(role)) return p->value.data.data();
  throw Error(program_.graph.name + ": no weights '" + role + "' in a layer '" + layer + "'");
}

void CompiledModel::pack() {
  if (!packed_arena_.data()) {
    // One arena for all of them, each a whole number of cache lines: at batch 1 the weights do
    // not stay in the caches between runs (ResNet50's are 100 MB), and each kernel streams its
    // own from memory; in 4 KB pages that stream also walks the page tables every 4 KB.
    constexpr size_t kLine = 64 / sizeof(float);
    std::vector<size_t> offset(program_.graph.size(), SIZE_MAX);
    size_t floats = 0;
    for (const auto& ck : program_.kernels)
      if (ck.kernel->weight_block() > 0) {
        const ir::Tensor& kernel = program_.graph.node(ck.node).param("kernel")->value;
        offset[ck.node] = floats;
        floats +=
            (codegen::packed_kernel_floats(kernel, ck.kernel->winograd_outputs()) + kLine - 1) /
            kLine * kLine;
      }
    if (!floats) return;
    packed_arena_ = Arena(floats * sizeof(float));
    for (size_t id = 0; id < offset.size(); ++id)
      if (offset[id] != SIZE_MAX) packed_[id] = packed_arena_.data() + offset[id];
  }
  for (const auto& ck : program_.kernels)
    if (const int block = ck.kernel->weight_block(); block > 0) {
      // In place after the first time: a GPU program mapped these bytes.
      const ir::Tensor& kernel = program_.graph.node(ck.node).param("kernel")->value;
      // A block of output channels per task (a training step does this after every update).
      const int winograd = ck.kernel->winograd_outputs();
      float* packed = packed_[ck.node];
      parallel_for(static_cast<int>(kernel.shape.back() / block),
                   [&](int b) { codegen::pack_kernel(kernel, block, winograd, packed, b, b + 1); });
    }
}

void CompiledModel::weights_changed() {
  pack();
  if (codegen::DeviceMemory* device = program_.device.get()) {
    // The device's copy of every weight, as the constructor mapped them.
    for (const auto& ck : program_.kernels) {
      const ir::Node& n = program_.graph.node(ck.node);
      const auto args = kernel_args(n);
      for (size_t p = 0; p < n.params.size(); ++p)
        if (const size_t floats = n.params[p].value.data.size())
          device->to_device(args[n.inputs.size() + p], floats * sizeof(float));
    }
  }
}

std::vector<const float*> CompiledModel::kernel_args(const ir::Node& n) const {
  std::vector<const float*> args;
  for (ir::NodeId in : n.inputs) args.push_back(data_[in]);
  const float* packed = packed_[static_cast<size_t>(&n - program_.graph.nodes().data())];
  for (const auto& p : n.params)
    args.push_back(p.role == "kernel" && packed ? packed : p.value.data.data());
  return args;
}

void CompiledModel::run_kernel(size_t k) {
  const auto& ck = program_.kernels.at(k);
  const auto args = kernel_args(program_.graph.node(ck.node));
  for (int64_t s = 0; s < slices_; ++s) ck.kernel->run(args, data_[ck.node], services_);
  if (services_.device) services_.device->finish();
}

void CompiledModel::inputs_to_device() {
  if (!services_.device) return;
  for (ir::NodeId i : program_.graph.inputs())
    services_.device->to_device(data_[i], bytes_per_slice(i));
}

void CompiledModel::outputs_to_host() {
  if (!services_.device) return;
  for (ir::NodeId o : program_.graph.outputs())
    services_.device->to_host(data_[o], bytes_per_slice(o));
}

size_t CompiledModel::bytes_per_slice(ir::NodeId id) const {
  return static_cast<size_t>(program_.graph.node(id).type.elements() / slices_) * sizeof(float);
}

// One micro-batch: its images of the inputs in, every kernel, its images of the outputs out.
void CompiledModel::run_slice(int64_t s, std::vector<double>* per_kernel) {
  const auto ins = program_.graph.inputs(), outs = program_.graph.outputs();
  for (size_t i = 0; i < ins.size(); ++i) {
    const size_t n = batch_in_[i].size() / static_cast<size_t>(slices_);
    std::copy_n(batch_in_[i].data() + static_cast<size_t>(s) * n, n, data_[ins[i]]);
  }
  inputs_to_device();
  run_kernels(per_kernel);
  outputs_to_host();
  for (size_t o = 0; o < outs.size(); ++o) {
    const size_t n = batch_out_[o].size() / static_cast<size_t>(slices_);
    std::copy_n(data_[outs[o]], n, batch_out_[o].data() + static_cast<size_t>(s) * n);
  }
}

void CompiledModel::run_kernels(std::vector<double>* per_kernel) {
  using Clock = std::chrono::steady_clock;
  const codegen::RuntimeServices& s = services_;
  for (size_t k = 0; k < program_.kernels.size(); ++k) {
    const auto& ck = program_.kernels[k];
    const auto args = kernel_args(program_.graph.node(ck.node));
    if (!per_kernel) {
      ck.kernel->run(args, data_[ck.node], s);
      continue;
    }
    const auto t0 = Clock::now();
    ck.kernel->run(args, data_[ck.node], s);
    if (s.device) s.device->finish();  // a GPU kernel's time is until it has run
    (*per_kernel)[k] += std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }
  if (s.device) s.device->finish();
}

void CompiledModel::run_all(std::vector<double>* per_kernel) {
  if (slices_ == 1) return run_kernels(per_kernel);  // inputs and outputs live in the arena
  for (int64_t s = 0; s < slices_; ++s) run_slice(s, per_kernel);
}

void CompiledModel::rerun() { run_all(nullptr); }

float* CompiledModel::input_data(size_t i) {
  internal_assert(slices_ == 1, "input_data needs a program that runs its batch in one pass");
  return data_.at(static_cast<size_t>(program_.graph.inputs().at(i)));
}

const float* CompiledModel::output_data(size_t o) const {
  internal_assert(slices_ == 1, "output_data needs a program that runs its batch in one pass");
  return data_.at(static_cast<size_t>(program_.graph.outputs().at(o)));
}

void CompiledModel::run_in_place() {
  internal_assert(slices_ == 1, "run_in_place needs a program that runs its batch in one pass");
  inputs_to_device();
  rerun();
  outputs_to_host();
}

void CompiledModel::rerun_profiled(std::vector<double>& per_kernel) {
  per_kernel.resize(program_.kernels.size(), 0.0);
  run_all(&per_kernel);
}

std::vector<ir::Tensor> CompiledModel::run(const std::vector<ir::Tensor>& inputs) {
  const ir::Graph& g = program_.graph;
  const auto ids = g.inputs();
  if (inputs.size() != ids.size())
    throw Error(g.name + ": expects " + std::to_string(ids.size()) + " input(s), got " +
                std::to_string(inputs.size()));
  for (size_t i = 0; i < ids.size(); ++i) {
    const ir::Node& n = g.node(ids[i]);
    if (inputs[i].shape != n.type.shape)
      throw Error(g.where(n) + ": input has shape " + ir::shape_to_string(inputs[i].shape, true) +
                  ", the network expects " + ir::shape_to_string(n.type.shape, true) +
                  " (batch first)");
    std::copy(inputs[i].data.begin(), inputs[i].data.end(),
              slices_ == 1 ? data_[ids[i]] : batch_in_[i].data());
  }
  if (slices_ == 1) inputs_to_device();
  rerun();
  if (slices_ == 1) outputs_to_host();
  std::vector<ir::Tensor> outs;
  const auto out_ids = g.outputs();
  for (size_t o = 0; o < out_ids.size(); ++o) {
    ir::Tensor t;
    t.shape = g.node(out_ids[o]).type.shape;
    const float* from = slices_ == 1 ? data_[out_ids[o]] : batch_out_[o].data();
    t.data.assign(from, from + t.elements());
    outs.push_back(std::move(t));
  }
  return outs;
}

}  // namespace cnnc::runtime
