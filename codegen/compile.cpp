// codegen::compile: every kernel of a graph as an algorithm (codegen/ops/) with its schedule
// applied (codegen/schedules/), compiled by Halide (JIT in memory, or AOT through the on-disk
// kernel cache), and the memory plan: a Program for the runtime.
#include "codegen/compile.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

#include "codegen/device_memory.h"
#include "codegen/disk_cache.h"
#include "codegen/lower.h"
#include "codegen/ops/ops.h"
#include "codegen/schedules/schedules.h"
#include "ir/error.h"
#include "ir/text.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

thread_local std::string last_error;
void capture_error(JITUserContext*, const char* msg) { last_error = msg; }

// A kernel JIT-compiled in memory (a Callable) or loaded from the disk cache (an AOT function).
class HalideKernel final : public Kernel {
 public:
  HalideKernel(Callable c, const Lowered& l, bool gpu) : callable_(std::move(c)), gpu_(gpu) {
    describe(l);
  }
  HalideKernel(AotFunction f, DiskCache* disk, const Lowered& l) : aot_(f), disk_(disk) {
    describe(l);
  }

  void run(const std::vector<const float*>& args, float* out,
           const RuntimeServices& services) const override {
    internal_assert(args.size() == arg_dims_.size(),
                    "kernel called with " + std::to_string(args.size()) + " buffers, needs " +
                        std::to_string(arg_dims_.size()));
    std::vector<Runtime::Buffer<const float>> in;
    in.reserve(args.size());
    for (size_t i = 0; i < args.size(); ++i) in.emplace_back(args[i], arg_dims_[i]);
    Runtime::Buffer<float> result(out, out_dims_);
    // A GPU kernel's buffers are views of the device's copy of these bytes.
    struct DeviceViews {
      std::vector<halide_buffer_t*> bufs;
      ~DeviceViews() {
        for (halide_buffer_t* b : bufs) unbind(*b);
      }
    } views;
    internal_assert(gpu_ == (services.device != nullptr),
                    "a GPU kernel needs its Program's device memory, a CPU kernel none");
    if (gpu_) {
      for (auto& b : in) views.bufs.push_back(b.raw_buffer()), bind(*services.device, *b.raw_buffer(), true);
      views.bufs.push_back(result.raw_buffer());
      bind(*services.device, *result.raw_buffer(), false);
    }
    if (aot_) {
      disk_->use_services(services);
      std::vector<void*> argv;
      for (auto& b : in) argv.push_back(b.raw_buffer());
      argv.push_back(result.raw_buffer());
      if (aot_(argv.data()) != 0) throw Error("kernel failed: " + DiskCache::last_error());
      return;
    }
    // The services reach the JIT handlers through the user context (ours, as the first field).
    struct Context {
      JITUserContext jit;
      const RuntimeServices* services;
    } ctx;
    static_assert(std::is_standard_layout_v<Context>, "the handlers cast the JIT context to ours");
    ctx.services = &services;
    ctx.jit.handlers.custom_error = capture_error;
    ctx.jit.handlers.custom_do_par_for = [](JITUserContext* uc,
                                            int (*task)(JITUserContext*, int, uint8_t*), int min,
                                            int size, uint8_t* closure) {
      // The same ABI as Halide's AOT task type, whose user context is a void*.
      return reinterpret_cast<Context*>(uc)->services->do_par_for(
          uc, reinterpret_cast<int (*)(void*, int, uint8_t*)>(task), min, size, closure);
    };
    ctx.jit.handlers.custom_malloc = [](JITUserContext* uc, size_t bytes) {
      return reinterpret_cast<Context*>(uc)->services->malloc(uc, bytes);
    };
    ctx.jit.handlers.custom_free = [](JITUserContext* uc, void* ptr) {
      reinterpret_cast<Context*>(uc)->services->free(uc, ptr);
    };
    JITUserContext* ctx_ptr = &ctx.jit;
    std::vector<const void*> argv{&ctx_ptr};
    for (auto& b : in) argv.push_back(b.raw_buffer());
    argv.push_back(result.raw_buffer());
    if (callable_->call_argv_fast(argv.size(), argv.data()) != 0)
      throw Error("kernel failed: " + last_error);
    // A GPU kernel whose last stage ran on the host (an autoscheduler's choice) left its output
    // there: the device copy is the one the next kernel reads.
    if (halide_buffer_t* r = result.raw_buffer(); gpu_ && r->host_dirty())
      r->device_interface->copy_to_device(nullptr, r, r->device_interface);
  }
  std::string schedule() const override { return schedule_; }
  int weight_block() const override { return weight_block_; }
  int winograd_outputs() const override { return winograd_outputs_; }

 private:
  void describe(const Lowered& l) {
    arg_dims_ = l.arg_dims;
    out_dims_ = l.out_dims;
    schedule_ = l.schedule;
    weight_block_ = l.weight_block;
    winograd_outputs_ = l.winograd_outputs;
  }
  std::optional<Callable> callable_;
  bool gpu_ = false;
  AotFunction aot_ = nullptr;
  DiskCache* disk_ = nullptr;
  std::vector<std::vector<int>> arg_dims_;
  std::vector<int> out_dims_;
  std::string schedule_;
  int weight_block_ = 0;
  int winograd_outputs_ = 0;
};

// What the OS says of the CPU: "model name" and family/model, for reports and fingerprints.
std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, name, family, model;
  while (std::getline(f, line) && (name.empty() || family.empty() || model.empty())) {
    auto value = [&] { return line.substr(line.find(':') + 2); };
    if (line.rfind("model name", 0) == 0 && name.empty())
      name = value();
    else if (line.rfind("cpu family", 0) == 0 && family.empty())
      family = value();
    else if (line.rfind("model\t", 0) == 0 && model.empty())
      model = value();
  }
  if (name.empty()) return "";
  return family.empty() ? name : name + " (family " + family + ", model " + model + ")";
}

// The size of a cache level as Linux reports it for CPU 0 (sysfs: "1024K"); 0 if unknown.
// (glibc's sysconf misreads L3 on some VMs: 320 MiB for a 32 MiB L3 seen on a Zen 4 guest.)
int64_t sysfs_cache_bytes(int level) {
  for (int index = 0; index < 8; ++index) {
    const std::string dir =
        "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream l(dir + "level"), t(dir + "type"), s(dir + "size");
    int lv = 0;
    std::string type, size;
    if (!(l >> lv) || !(t >> type) || !(s >> size)) continue;
    if (lv != level || type == "Instruction") continue;
    const int64_t n = std::atoll(size.c_str());
    return size.back() == 'K' ? n << 10 : size.back() == 'M' ? n << 20 : n;
  }
  return 0;
}

// The in-memory kernel cache of this process: a kernel depends only on its workload key, its
// schedule and the target (weights are arguments), so repeated blocks (ResNet's bottlenecks)
// and repeated compiles (batch sweeps, tests) compile once.
std::shared_ptr<const Kernel> cached_kernel(
    const std::string& key, const std::function<std::shared_ptr<const Kernel>()>& make, bool& hit) {
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

}  // namespace

namespace {

// cuda[:sm_XX]: the Halide CUDA capability to compile for, the highest Halide 21 knows that the
// requested GPU runs (its PTX is JIT-compiled by the driver for a newer GPU: sm_90 runs sm_86's).
struct CudaCapability {
  int value;
  Target::Feature feature;
};
constexpr CudaCapability kCudaCapabilities[] = {
    {30, Target::CUDACapability30}, {32, Target::CUDACapability32},
    {35, Target::CUDACapability35}, {50, Target::CUDACapability50},
    {61, Target::CUDACapability61}, {70, Target::CUDACapability70},
    {75, Target::CUDACapability75}, {80, Target::CUDACapability80},
    {86, Target::CUDACapability86},
};

ir::Target describe_gpu_target(const std::string& name) {
  ir::Target r = describe_target("host");
  r.name = name;
  r.family = ir::Target::Gpu;
  Target t = get_host_target();  // the host CPU's features; never host-cuda, which asks the GPU
  if (name == "opencl") {
    r.gpu.api = ir::GpuFacts::OpenCL;
    t = t.with_feature(Target::OpenCL);
  } else {
    int sm = 86;
    if (name != "cuda") {
      const std::string v = name.substr(std::string("cuda:sm_").size());
      const bool digits = name.rfind("cuda:sm_", 0) == 0 && !v.empty() && v.size() <= 3 &&
                          v.find_first_not_of("0123456789") == std::string::npos;
      sm = digits ? std::stoi(v) : 0;
      if (sm < kCudaCapabilities[0].value)
        throw Error("target '" + name + "': expected cuda or cuda:sm_XX with XX a compute " +
                    "capability of 30 or more (cuda:sm_86, cuda:sm_90); accepted: " +
                    ir::kTargetSyntax);
    }
    const CudaCapability* best = &kCudaCapabilities[0];
    for (const auto& c : kCudaCapabilities)
      if (c.value <= sm) best = &c;
    r.gpu.api = ir::GpuFacts::Cuda;
    r.gpu.capability = best->value;
    r.gpu.requested_capability = sm;
    t = t.with_feature(Target::CUDA).with_feature(best->feature);
  }
  r.halide = t.to_string();
  return r;
}

}  // namespace

ir::Target describe_target(const std::string& name) {
  if (name == "opencl" || name == "cuda" || name.rfind("cuda:", 0) == 0)
    return describe_gpu_target(name);
  ir::Target r;
  r.name = name;
  if (name != "host" && !Target::validate_target_string(name))
    throw Error("unknown target '" + name + "'; accepted: " + ir::kTargetSyntax);
  const Target t = name == "host" ? get_host_target() : Target(name);
  if (t.has_gpu_feature())
    throw Error("target '" + name + "': a GPU is named by --target opencl or cuda[:sm_XX], " +
                "not by a GPU feature in a target string; accepted: " + ir::kTargetSyntax);
  r.halide = name == "host" ? "host" : t.to_string();
  r.cpu.arch = t.arch == Target::X86   ? "x86-64"
               : t.arch == Target::ARM ? "arm-" + std::to_string(t.bits)
                                       : "other";
  r.cpu.isa = t.has_feature(Target::AVX512)  ? "avx512"
              : t.has_feature(Target::AVX2)  ? "avx2"
              : t.has_feature(Target::SSE41) ? "sse41"
              : t.arch == Target::ARM        ? "neon"
                                             : "";
  r.cpu.vector_lanes = t.natural_vector_size<float>();
  r.cpu.vector_registers = t.arch == Target::X86 && !t.has_feature(Target::AVX512) ? 16 : 32;
  // The host's caches and cores from the OS; for another target, common sizes.
  if (name == "host") {
    if (const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE); l1 > 0) r.cpu.l1_bytes = l1;
    if (const long ways = sysconf(_SC_LEVEL1_DCACHE_ASSOC); ways > 0)
      r.cpu.l1_ways = static_cast<int>(ways);
    r.cpu.l2_bytes = sysfs_cache_bytes(2);
    r.cpu.l3_bytes = sysfs_cache_bytes(3);
    r.cpu.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    r.cpu.model = cpu_model();
  }
  return r;
}

// Four images per pass (or the largest divisor of the batch below that): measured at batch 32
// on a 2-core Zen 4, interleaved (benchmarks/vs_peers.py's blocks), against the whole batch per
// layer: DenseNet121 1111 vs 1395 ms, VGG16 4943 vs 5237, ResNet50 1259-1276 (2 or 8 per pass)
// vs 1295; one image per pass was slower than four on DenseNet121 and VGG16. A rule from the
// cache sizes did not predict this (VGG16's first layers exceed every cache either way), so it
// stays a measured default until the autotuner chooses it per model and machine.
int64_t choose_micro_batch(const ir::Graph& g, int64_t requested, ir::Target::Family family) {
  int64_t m = requested;
  if (m <= 0 && family == ir::Target::Gpu) m = g.batch();
  if (m <= 0)
    for (int64_t d = 1; d <= std::min<int64_t>(g.batch(), 4); ++d)
      if (g.batch() % d == 0) m = d;
  if (m > g.batch() || g.batch() % m)
    throw Error("micro-batch " + std::to_string(m) + " does not divide the batch " +
                std::to_string(g.batch()) + "; use a divisor of it (or 0 to let cnnc choose)");
  return m;
}

bool kernel_disk_cache_available() { return DiskCache::instance() != nullptr; }

Program compile(ir::Graph g, const CompileOptions& opts) {
  for (const auto& n : g.nodes())
    for (const auto& p : n.params)
      if (static_cast<int64_t>(p.value.data.size()) != p.value.elements())
        throw Error(g.where(n) + ": weights '" + p.role + "' are not set");
  Program p;
  p.target = describe_target(opts.target);
  const Target target = halide_target(p.target);
  const bool gpu = p.target.family == ir::Target::Gpu;
  // GPU kernels are JIT-compiled into one Halide runtime, whose device memory they share; the
  // disk cache holds CPU kernels only.
  if (gpu) p.device = make_device_memory(p.target, target);
  const int64_t batch = g.batch();
  p.micro_batch = choose_micro_batch(g, opts.micro_batch, p.target.family);
  // Kernels and memory plan for one micro-batch; the Program's graph keeps the caller's batch.
  g.set_batch(p.micro_batch);
  const auto start = std::chrono::steady_clock::now();
  for (int id = 0; id < g.size(); ++id) {
    const ir::Node& n = g.node(id);
    if (!ir::has_kernel(n.op)) continue;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      CompiledNode cn{id, nullptr};
      const std::string key = target.to_string() + " " + ir::workload_key(g, n) +
                              " schedule=" + ir::to_text(n.schedule);
      bool from_disk = false;
      cn.kernel = cached_kernel(
          key,
          [&]() -> std::shared_ptr<const Kernel> {
            Lowered l = lower(g, n, target, p.target);
            std::vector<Argument> args(l.args.begin(), l.args.end());
            if (DiskCache* disk = opts.disk_cache && !gpu ? DiskCache::instance() : nullptr) {
              AotFunction f = disk->load_or_build(
                  key, target,
                  [&](const std::string& object, const std::string& function) {
                    Pipeline(l.out).compile_to_object(object, args, function,
                                                      target.with_feature(Target::NoRuntime));
                  },
                  from_disk);
              return std::make_shared<const HalideKernel>(f, disk, l);
            }
            return std::make_shared<const HalideKernel>(
                Pipeline(l.out).compile_to_callable(args, target), l, gpu);
          },
          cn.cached);
      p.from_disk += from_disk;
      if (!cn.cached && !from_disk) {
        cn.compile_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ++p.compiled;
      }
      p.kernels.push_back(std::move(cn));
    } catch (const Halide::Error& e) {
      throw Error(g.where(n) + ": Halide could not compile this layer: " + e.what());
    }
  }
  p.compile_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  p.plan = plan_memory(g, opts.reuse_memory,
                       gpu ? MemoryPlan::kGpuAlignment : MemoryPlan::kCpuAlignment);
  g.set_batch(batch);
  p.graph = std::move(g);
  return p;
}

std::string schedule_problem(const ir::Graph& g, const ir::Node& n, const ir::Target& target) {
  return schedule_error(g, n, n.schedule,
                        target.family == ir::Target::Gpu ? ir::TargetFamily::Gpu : ir::TargetFamily::Cpu);
}

std::string halide_version() {
  return std::to_string(HALIDE_VERSION_MAJOR) + "." + std::to_string(HALIDE_VERSION_MINOR) + "." +
         std::to_string(HALIDE_VERSION_PATCH);
}

namespace {

// The PTX module Halide embeds in a CUDA target's object: NUL-terminated text around its
// ".target sm_" directive.
std::string ptx_in_object(const std::string& object) {
  const size_t at = object.find(".target sm_");
  if (at == std::string::npos) return "";
  const size_t begin = object.rfind('\0', at) + 1;  // npos + 1 == 0
  const size_t end = object.find('\0', at);
  return object.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace

std::string emit(const ir::Graph& g, const ir::Node& n, const ir::Target& t, Stage stage) {
  if (stage == Stage::Ptx && !(t.family == ir::Target::Gpu && t.gpu.api == ir::GpuFacts::Cuda))
    throw Error("--emit ptx is for a CUDA target (--target cuda[:sm_XX]), not " + t.name);
  const Target target = halide_target(t);
  Lowered l = lower(g, n, target, t);
  std::vector<Argument> args(l.args.begin(), l.args.end());
  char dir[] = "/tmp/cnnc-emit-XXXXXX";
  if (!mkdtemp(dir))
    throw Error(std::string("cannot make a temporary folder for --emit: ") + std::strerror(errno));
  const std::string file = std::string(dir) + "/kernel" +
                           (stage == Stage::Halide ? ".stmt" : stage == Stage::Ptx ? ".o" : ".s");
  try {
    if (stage == Stage::Halide)
      Pipeline(l.out).compile_to_lowered_stmt(file, args, StmtOutputFormat::Text, target);
    else if (stage == Stage::Ptx)
      Pipeline(l.out).compile_to_object(file, args, "kernel", target.with_feature(Target::NoRuntime));
    else
      Pipeline(l.out).compile_to_assembly(file, args, "kernel",
                                          target.with_feature(Target::NoRuntime));
  } catch (const Halide::Error& e) {
    throw Error(g.where(n) + ": Halide could not compile this layer: " + e.what());
  }
  std::ifstream f(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::remove(file.c_str());
  rmdir(dir);
  if (stage == Stage::Ptx) {
    text = ptx_in_object(text);
    internal_assert(!text.empty(), "no PTX in the object Halide wrote for " + g.where(n));
  }
  return text;
}

}  // namespace cnnc::codegen
