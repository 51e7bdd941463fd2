#pragma once
// The kernel interface: what codegen hands to the runtime, free of Halide. A Program is a graph
// compiled for one target: a kernel per node that computes, the memory plan of its activations,
// and the batch it runs in. The runtime executes a Program and never calls codegen; this header
// is all it includes of codegen/.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codegen/winograd_transforms.h"
#include "ir/error.h"
#include "ir/graph.h"
#include "ir/target.h"

namespace cnnc::codegen {

// A GPU program's memory on the device: a mirror of host memory regions (the activation arena,
// each weight tensor). GPU kernels take host addresses, as CPU kernels do, and read and write
// the device's copy of those bytes; the runtime copies only the model's inputs to the device and
// its outputs back. Implemented by codegen (codegen/device_memory.cpp) for the GPU API of the
// target; null in a CPU Program.
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  // Mirrors [host, host + bytes) on the device; `upload` copies the bytes there now (weights).
  // Throws cnnc::Error when there is no device, or not enough memory on it (naming the need).
  virtual void map(const void* host, size_t bytes, bool upload) = 0;
  virtual void to_device(const void* host, size_t bytes) = 0;  // within a mapped region
  virtual void to_host(void* host, size_t bytes) = 0;          // within a mapped region
  virtual void finish() = 0;  // waits until every kernel launched so far has run
  virtual size_t mapped_bytes() const = 0;
};

// What a kernel calls back into while it runs, provided by the runtime (runtime/services.h): its
// parallel loops' workers and the memory of its own buffers (Halide's do_par_for, malloc, free),
// and for a GPU program the device memory its buffers live in.
struct RuntimeServices {
  int (*do_par_for)(void* user_context, int (*task)(void*, int, uint8_t*), int min, int size,
                    uint8_t* closure) = nullptr;
  void* (*malloc)(void* user_context, size_t bytes) = nullptr;
  void (*free)(void* user_context, void* ptr) = nullptr;
  DeviceMemory* device = nullptr;
};

// One compiled node. Shapes are fixed at compile time; run() takes the data pointers of the
// node's inputs followed by its weights (in ir::Node::params order), and of the output.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(const std::vector<const float*>& args, float* out,
                   const RuntimeServices& services) const = 0;
  // The schedule applied, in words (for `cnnc bench` and --emit schedule).
  virtual std::string schedule() const = 0;
  // > 0: the kernel reads its "kernel" weights pre-packed in blocks of this many output
  // channels, [out/B][kh][kw][in][B] (runtime::pack_weights), so each register tile's weights
  // are one contiguous stream instead of B floats every `out` floats.
  virtual int weight_block() const { return 0; }
  // m > 0 (with weight_block() = B): the kernel reads Winograd F(m x m, 3x3)'s transformed
  // kernel U = G g G' instead (its 3x3 taps as (m+2) x (m+2)), [out/B][(m+2)^2][in][B]
  // (winograd_kernel_transform), made when the weights are loaded or change rather than on every
  // call. 0: not a Winograd kernel's.
  virtual int winograd_outputs() const { return 0; }
};

// Packs HWIO (or dense (in, out)) weights into blocks of `block` output channels,
// [out/block][h][w][in][block], the layout a kernel with Kernel::weight_block() == block reads
// (done once when a model is loaded, or exported). `out` must be a multiple of `block`.
// Blocks [first, end) of output channels into `packed` (kernel.data.size() floats).
inline void pack_weights(const ir::Tensor& kernel, int block, float* packed, int64_t first,
                         int64_t end) {
  const int64_t out = kernel.shape.back(), rows = kernel.elements() / out;  // rows: h*w*in
  internal_assert(
      block > 0 && out % block == 0,
      "cannot pack " + std::to_string(out) + " channels in blocks of " + std::to_string(block));
  // Block by block, row by row: one contiguous copy of `block` floats each (a training step
  // packs its dense weights again after every update).
  const float* from = kernel.data.data();
  for (int64_t b = first; b < end; ++b)
    for (int64_t r = 0; r < rows; ++r)
      std::copy_n(from + r * out + b * block, block, packed + (b * rows + r) * block);
}

// Winograd F(m x m, 3x3)'s kernel transform of HWIO 3x3 weights, U = G g G' per pair of
// channels, [out/block][alpha^2][in][block] with position p = a + alpha b of the alpha x alpha
// (alpha = m + 2; codegen/ops/winograd.cpp's expressions, in the same order: the same floats).
// Blocks [first, end) of output channels, so that callers can spread the blocks over threads;
// `packed` holds alpha^2 / 9 of the kernel's floats.
inline void winograd_kernel_transform(const ir::Tensor& kernel, int m, int block, float* packed,
                                      int64_t first, int64_t end) {
  internal_assert(kernel.shape.size() == 4 && kernel.shape[0] == 3 && kernel.shape[1] == 3 &&
                      block > 0 && kernel.shape[3] % block == 0,
                  "a Winograd kernel transform needs 3x3 HWIO weights in whole blocks");
  const WinogradTransforms& w = winograd_transforms(m);
  const int64_t in = kernel.shape[2], out = kernel.shape[3], points = w.alpha * w.alpha;
  const float* g = kernel.data.data();
  for (int64_t cb = first; cb < end; ++cb)
    for (int64_t ic = 0; ic < in; ++ic)
      for (int64_t j = 0; j < block; ++j) {
        const int64_t oc = cb * block + j;
        auto tap = [&](int kx, int ky) { return g[((ky * 3 + kx) * in + ic) * out + oc]; };
        for (int pb = 0; pb < w.alpha; ++pb) {
          float u[6];  // alpha <= 6
          winograd_kernel_row(w, tap, pb, u);
          for (int pa = 0; pa < w.alpha; ++pa)
            packed[((cb * points + pa + w.alpha * pb) * in + ic) * block + j] = u[pa];
        }
      }
}

// A kernel's "kernel" weights in the layout it reads (Kernel::weight_block > 0; winograd: its
// Kernel::winograd_outputs, 0 if none): how many floats, and its blocks [first, end) of output
// channels written (callers spread the blocks over threads, or take all at once).
inline size_t packed_kernel_floats(const ir::Tensor& kernel, int winograd) {
  const size_t alpha = static_cast<size_t>(winograd) + 2;
  return winograd ? kernel.data.size() / 9 * alpha * alpha : kernel.data.size();
}
inline void pack_kernel(const ir::Tensor& kernel, int block, int winograd, float* packed,
                        int64_t first, int64_t end) {
  if (winograd)
    winograd_kernel_transform(kernel, winograd, block, packed, first, end);
  else
    pack_weights(kernel, block, packed, first, end);
}

// Every value a kernel writes gets an offset in one arena; two values share bytes only when
// their lifetimes do not overlap (liveness-based reuse).
struct MemoryPlan {
  // Every offset and size is a multiple of the alignment: on a CPU a cache line and an AVX-512
  // vector; on a GPU 512 bytes, because a kernel's buffer is an OpenCL sub-buffer at its offset,
  // which must be a multiple of the device's base-address alignment (PoCL 128, GPUs up to 512).
  static constexpr int64_t kCpuAlignment = 64, kGpuAlignment = 512;
  int64_t alignment = kCpuAlignment;
  std::vector<int64_t> offset;   // per node, in bytes; -1 for views and parameters (no storage)
  std::vector<int64_t> bytes;    // per node: its buffer's size (0 for views)
  std::vector<int> first, last;  // per node: the steps its buffer is live (inclusive)
  int64_t arena_bytes = 0;       // the arena: peak activation memory with reuse
  int64_t unshared_bytes = 0;    // what one buffer per value would take
};

struct CompiledNode {
  ir::NodeId node;
  // Shared by all layers with the same workload key, schedule and target.
  std::shared_ptr<const Kernel> kernel;
  double compile_seconds = 0;  // 0 when the kernel came from a cache
  bool cached = false;         // reused a kernel compiled earlier in this process
};

struct Program {
  // The graph at the caller's batch; the kernels and the plan are for `micro_batch` images, and
  // a batch runs through the whole network that many images at a time, so each image's
  // activations are still in cache when the next layer reads them.
  ir::Graph graph;
  int64_t micro_batch = 1;
  ir::Target target;
  std::vector<CompiledNode> kernels;     // nodes in graph order; views and inputs have none
  MemoryPlan plan;                       // one micro-batch's activations
  std::shared_ptr<DeviceMemory> device;  // GPU targets: where the kernels' buffers live
  double compile_seconds = 0;
  size_t compiled = 0;   // kernels compiled now
  size_t from_disk = 0;  // kernels loaded from the on-disk cache; the rest reused one in memory
};

}  // namespace cnnc::codegen
