// codegen::compile: every node of the graph to one JIT-compiled Halide pipeline.
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include <unistd.h>

#include "codegen/disk_cache.h"
#include "codegen/kernel.h"
#include "codegen/scratch_pool.h"
#include "codegen/thread_pool.h"
#include "codegen/lower.h"
#include "ir/error.h"
#include "ir/text.h"

namespace cnnc::codegen {

using namespace Halide;

ImageParam make_input(const std::string& name, const std::vector<int>& dims) {
  ImageParam p(Float(32), static_cast<int>(dims.size()), name);
  int stride = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    p.dim(static_cast<int>(i)).set_bounds(0, dims[i]).set_stride(stride);
    stride *= dims[i];
  }
  return p;
}

void bound_output(Func& f, const std::vector<int>& dims) {
  int stride = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    f.output_buffer().dim(static_cast<int>(i)).set_bounds(0, dims[i]).set_stride(stride);
    stride *= dims[i];
  }
}

std::vector<int> halide_dims(const ir::Shape& s) {
  return std::vector<int>(s.rbegin(), s.rend());
}

int vector_width(int channels, const Target& t) {
  return ir::vector_lanes_for(channels, t.natural_vector_size<float>());
}

std::vector<float> pack_weights(const ir::Tensor& kernel, int block) {
  const int64_t out = kernel.shape.back(), rows = kernel.elements() / out;  // rows: h*w*in
  if (block <= 0 || out % block) throw Error("internal: cannot pack " + std::to_string(out) + " channels in blocks of " + std::to_string(block));
  std::vector<float> packed(kernel.data.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o)
      packed[static_cast<size_t>(((o / block) * rows + r) * block + o % block)] = kernel.data[static_cast<size_t>(r * out + o)];
  return packed;
}

bool is_view(ir::OpKind op) {
  return op == ir::OpKind::Input || op == ir::OpKind::Flatten || op == ir::OpKind::Reshape ||
         op == ir::OpKind::Dropout;
}

namespace {

thread_local std::string last_error;
void capture_error(JITUserContext*, const char* msg) { last_error = msg; }

// A kernel JIT-compiled in memory (a Callable) or loaded from the disk cache (an AOT function).
class HalideKernel final : public Kernel {
 public:
  HalideKernel(Callable c, const Lowered& l) : callable_(std::move(c)) { describe(l); }
  HalideKernel(AotFunction f, const Lowered& l) : aot_(f) { describe(l); }

  void run(const std::vector<const float*>& args, float* out) const override {
    if (args.size() != arg_dims_.size())
      throw Error("internal: kernel called with " + std::to_string(args.size()) + " buffers, needs " +
                  std::to_string(arg_dims_.size()));
    std::vector<Runtime::Buffer<const float>> in;
    in.reserve(args.size());
    for (size_t i = 0; i < args.size(); ++i) in.emplace_back(args[i], arg_dims_[i]);
    Runtime::Buffer<float> result(out, out_dims_);
    if (aot_) {
      std::vector<void*> argv;
      for (auto& b : in) argv.push_back(b.raw_buffer());
      argv.push_back(result.raw_buffer());
      if (aot_(argv.data()) != 0) throw Error("kernel failed: " + DiskCache::last_error());
      return;
    }
    JITUserContext ctx;
    ctx.handlers.custom_error = capture_error;
    ctx.handlers.custom_do_par_for = [](JITUserContext* uc, int (*task)(JITUserContext*, int, uint8_t*), int min,
                                        int size, uint8_t* closure) {
      // The same ABI as Halide's AOT task type, whose user context is a void*.
      return pool_do_par_for(uc, reinterpret_cast<int (*)(void*, int, uint8_t*)>(task), min, size, closure);
    };
    ctx.handlers.custom_malloc = [](JITUserContext* uc, size_t bytes) { return scratch_malloc(uc, bytes); };
    ctx.handlers.custom_free = [](JITUserContext* uc, void* ptr) { scratch_free(uc, ptr); };
    JITUserContext* ctx_ptr = &ctx;
    std::vector<const void*> argv{&ctx_ptr};
    for (auto& b : in) argv.push_back(b.raw_buffer());
    argv.push_back(result.raw_buffer());
    if (callable_->call_argv_fast(argv.size(), argv.data()) != 0)
      throw Error("kernel failed: " + last_error);
  }
  std::string schedule() const override { return schedule_; }
  int weight_block() const override { return weight_block_; }

 private:
  void describe(const Lowered& l) {
    arg_dims_ = l.arg_dims;
    out_dims_ = l.out_dims;
    schedule_ = l.schedule;
    weight_block_ = l.weight_block;
  }
  std::optional<Callable> callable_;
  AotFunction aot_ = nullptr;
  std::vector<std::vector<int>> arg_dims_;
  std::vector<int> out_dims_;
  std::string schedule_;
  int weight_block_ = 0;
};

Target resolve_target(const std::string& name) {
  if (name == "host") return get_host_target();
  if (!Target::validate_target_string(name))
    throw Error("unknown target '" + name + "'; accepted: host, or a Halide target string such as "
                "x86-64-linux-avx2-fma");
  Target t(name);
  if (t.has_gpu_feature())
    throw Error("target '" + name + "': GPU schedules are not built yet; accepted: CPU targets (host)");
  return t;
}

Lowered lower(const ir::Graph& g, const ir::Node& n, const Target& t) {
  switch (n.op) {
    case ir::OpKind::Conv2D: return lower_conv(g, n, t);
    case ir::OpKind::Dense: return lower_dense(g, n, t);
    case ir::OpKind::MaxPool2D:
    case ir::OpKind::AvgPool2D: return lower_pool(g, n, t);
    case ir::OpKind::GlobalAvgPool2D:
    case ir::OpKind::GlobalMaxPool2D:
    case ir::OpKind::BatchNorm:
    case ir::OpKind::Affine:
    case ir::OpKind::ReLU:
    case ir::OpKind::ReLU6:
    case ir::OpKind::LeakyReLU:
    case ir::OpKind::Sigmoid:
    case ir::OpKind::Tanh:
    case ir::OpKind::Swish:
    case ir::OpKind::HardSigmoid:
    case ir::OpKind::Softmax:
    case ir::OpKind::Add:
    case ir::OpKind::Multiply:
    case ir::OpKind::Concat:
    case ir::OpKind::ZeroPadding2D:
    case ir::OpKind::Cropping2D: return lower_elementwise(g, n, t);
    case ir::OpKind::Input:
    case ir::OpKind::Flatten:
    case ir::OpKind::Reshape:
    case ir::OpKind::Dropout: break;
  }
  throw Error("internal: " + g.where(n) + " is a view and has no kernel");
}

}  // namespace

ir::MachineInfo describe_target(const std::string& name) {
  const Target t = resolve_target(name);
  ir::MachineInfo m;
  m.vector_lanes = t.natural_vector_size<float>();
  m.vector_registers = t.arch == Target::X86 && !t.has_feature(Target::AVX512) ? 16 : 32;
  // The host's L1 from the OS; for another target, the common 32 KiB.
  const long l1 = name == "host" ? sysconf(_SC_LEVEL1_DCACHE_SIZE) : 0;
  if (l1 > 0) m.l1_bytes = l1;
  return m;
}

void set_num_threads(int threads) {
  if (threads > 0) setenv("HL_NUM_THREADS", std::to_string(threads).c_str(), 1);
  set_pool_threads(threads);
}

// The in-memory kernel cache of this process: a kernel depends only on its layer's signature
// and the target (weights are arguments), so repeated blocks (ResNet's bottlenecks) and
// repeated compiles (batch sweeps, tests) compile once.
std::shared_ptr<const Kernel> cached_kernel(const std::string& key,
                                            const std::function<std::shared_ptr<const Kernel>()>& make,
                                            bool& hit) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const Kernel>> cache;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) return hit = true, it->second;
  }
  hit = false;
  auto k = make();
  std::lock_guard<std::mutex> lock(mutex);
  return cache.emplace(key, std::move(k)).first->second;
}

CompiledGraph compile(const ir::Graph& g, const CompileOptions& opts) {
  set_num_threads(opts.threads);
  const Target target = resolve_target(opts.target);
  CompiledGraph cg;
  const auto start = std::chrono::steady_clock::now();
  for (int id = 0; id < g.size(); ++id) {
    const ir::Node& n = g.node(id);
    if (is_view(n.op)) continue;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      CompiledNode cn{id, nullptr};
      const std::string key = target.to_string() + " " + ir::signature(g, n);
      bool from_disk = false;
      cn.kernel = cached_kernel(key, [&]() -> std::shared_ptr<const Kernel> {
        Lowered l = lower(g, n, target);
        std::vector<Argument> args(l.args.begin(), l.args.end());
        if (DiskCache* disk = opts.disk_cache ? DiskCache::instance() : nullptr) {
          AotFunction f = disk->load_or_build(key, target, [&](const std::string& object, const std::string& function) {
            Pipeline(l.out).compile_to_object(object, args, function, target.with_feature(Target::NoRuntime));
          }, from_disk);
          return std::make_shared<const HalideKernel>(f, l);
        }
        return std::make_shared<const HalideKernel>(Pipeline(l.out).compile_to_callable(args, target), l);
      }, cn.cached);
      cg.from_disk += from_disk;
      if (!cn.cached && !from_disk) {
        cn.compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ++cg.compiled;
      }
      cg.kernels.push_back(std::move(cn));
    } catch (const Halide::Error& e) {
      throw Error(g.where(n) + ": Halide could not compile this layer: " + e.what());
    }
  }
  cg.compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return cg;
}

}  // namespace cnnc::codegen
