// Device memory through Halide's runtime: each mapped host region is one device allocation (a
// 1-D byte buffer); a kernel's buffer is a crop of its region at its offset, cached, with the
// kernel's own shape.
#include "codegen/device_memory.h"

#include <dlfcn.h>

#include <cstdint>

#include <limits>
#include <map>
#include <mutex>
#include <utility>

#include "codegen/compile.h"
#include "ir/error.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

std::string mib(size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

// Why the target's GPU API cannot run here ("" when it can): the driver library and a device.
std::string missing_device(const ir::Target& t) {
  if (t.gpu.api == ir::GpuFacts::Cuda) {
    void* lib = dlopen("libcuda.so.1", RTLD_LAZY);
    if (!lib) return "there is no CUDA driver on this machine (libcuda.so.1 not found)";
    using Init = int (*)(unsigned);
    using Count = int (*)(int*);
    auto init = reinterpret_cast<Init>(dlsym(lib, "cuInit"));
    auto count = reinterpret_cast<Count>(dlsym(lib, "cuDeviceGetCount"));
    int n = 0;
    if (!init || !count || init(0) != 0 || count(&n) != 0 || n == 0)
      return "the CUDA driver finds no GPU on this machine";
    return "";
  }
  void* lib = dlopen("libOpenCL.so", RTLD_LAZY);
  if (!lib) lib = dlopen("libOpenCL.so.1", RTLD_LAZY);
  if (!lib) return "there is no OpenCL loader on this machine (libOpenCL.so not found)";
  using Platforms = int (*)(unsigned, void*, unsigned*);
  auto platforms = reinterpret_cast<Platforms>(dlsym(lib, "clGetPlatformIDs"));
  unsigned n = 0;
  if (!platforms || platforms(0, nullptr, &n) != 0 || n == 0)
    return "no OpenCL platform is installed (Debian's pocl-opencl-icd runs OpenCL on the CPU)";
  return "";
}

}  // namespace

std::string gpu_device_name(const ir::Target& t) {
  if (t.family != ir::Target::Gpu || !missing_device(t).empty()) return "";
  char name[256] = {0};
  int units = 0;
  if (t.gpu.api == ir::GpuFacts::Cuda) {
    // Device 0: the one Halide's CUDA runtime uses unless HL_GPU_DEVICE says otherwise.
    void* lib = dlopen("libcuda.so.1", RTLD_LAZY);
    using Get = int (*)(int*, int);
    using Name = int (*)(char*, int, int);
    using Attribute = int (*)(int*, int, int);
    auto get = reinterpret_cast<Get>(dlsym(lib, "cuDeviceGet"));
    auto get_name = reinterpret_cast<Name>(dlsym(lib, "cuDeviceGetName"));
    auto attribute = reinterpret_cast<Attribute>(dlsym(lib, "cuDeviceGetAttribute"));
    int dev = 0;
    const int kMultiprocessorCount = 16;  // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
    if (!get || !get_name || !attribute || get(&dev, 0) != 0 ||
        get_name(name, sizeof name - 1, dev) != 0 || attribute(&units, kMultiprocessorCount, dev))
      return "";
    return std::string(name) + ", " + std::to_string(units) + " SMs";
  }
  // OpenCL: the first device of the first platform (PoCL's CPU device here).
  void* lib = dlopen("libOpenCL.so", RTLD_LAZY);
  if (!lib) lib = dlopen("libOpenCL.so.1", RTLD_LAZY);
  using Platforms = int (*)(unsigned, void**, unsigned*);
  using Devices = int (*)(void*, uint64_t, unsigned, void**, unsigned*);
  using Info = int (*)(void*, unsigned, size_t, void*, size_t*);
  auto platforms = reinterpret_cast<Platforms>(dlsym(lib, "clGetPlatformIDs"));
  auto devices = reinterpret_cast<Devices>(dlsym(lib, "clGetDeviceIDs"));
  auto info = reinterpret_cast<Info>(dlsym(lib, "clGetDeviceInfo"));
  void* platform = nullptr;
  void* device = nullptr;
  const uint64_t kAllTypes = 0xFFFFFFFF;                  // CL_DEVICE_TYPE_ALL
  const unsigned kName = 0x102B, kComputeUnits = 0x1002;  // CL_DEVICE_NAME, _MAX_COMPUTE_UNITS
  unsigned n = 0;
  if (!platforms || !devices || !info || platforms(1, &platform, &n) != 0 || n == 0 ||
      devices(platform, kAllTypes, 1, &device, &n) != 0 || n == 0 ||
      info(device, kName, sizeof name - 1, name, nullptr) != 0 ||
      info(device, kComputeUnits, sizeof units, &units, nullptr) != 0)
    return "";
  return std::string(name) + ", " + std::to_string(units) + " compute units";
}

namespace {

class HalideDeviceMemory final : public DeviceMemory {
 public:
  HalideDeviceMemory(ir::Target target, const Halide::Target& halide)
      : target_(std::move(target)), halide_(halide) {}

  ~HalideDeviceMemory() override {
    views_.clear();  // crops before the regions they crop
    for (auto& [begin, r] : regions_) r.buffer.device_free();
  }

  void map(const void* host, size_t bytes, bool upload) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!interface_) {
      if (const std::string why = missing_device(target_); !why.empty())
        throw Error("target " + target_.name + ": cannot run: " + why +
                    "; compiling (cnnc compile, --emit) needs no GPU");
      interface_ = get_device_interface_for_device_api(
          target_.gpu.api == ir::GpuFacts::Cuda ? DeviceAPI::CUDA : DeviceAPI::OpenCL, halide_);
    }
    if (bytes > static_cast<size_t>(std::numeric_limits<int>::max()))
      throw Error("target " + target_.name + ": a buffer of " + mib(bytes) +
                  " is more than one device allocation of this runtime holds (2 GiB); " +
                  "use a smaller batch or --micro-batch");
    const auto begin = reinterpret_cast<uintptr_t>(host);
    if (auto it = regions_.find(begin); it != regions_.end() && it->second.bytes >= bytes) return;
    Region r{bytes, Runtime::Buffer<uint8_t>(static_cast<uint8_t*>(const_cast<void*>(host)),
                                             static_cast<int>(bytes))};
    if (r.buffer.device_malloc(interface_) != 0)
      throw Error("target " + target_.name + ": the device has not " + mib(bytes) +
                  " free for this model (it needs " + mib(mapped_ + bytes) +
                  " of device memory in all: activations and weights)");
    if (upload) {
      r.buffer.set_host_dirty();
      r.buffer.copy_to_device(interface_);
    }
    mapped_ += bytes;
    regions_.erase(begin);
    regions_.emplace(begin, std::move(r));
  }

  void to_device(const void* host, size_t bytes) override {
    auto& v = view(host, bytes);
    v.set_host_dirty();
    v.copy_to_device(interface_);
  }
  void to_host(void* host, size_t bytes) override {
    auto& v = view(host, bytes);
    v.set_device_dirty();
    v.copy_to_host();
  }
  void finish() override {
    if (interface_ && !regions_.empty()) regions_.begin()->second.buffer.device_sync();
  }
  size_t mapped_bytes() const override { return mapped_; }

  // The device buffer of [host, host + bytes): a crop of the region holding it, made once.
  Runtime::Buffer<uint8_t>& view(const void* host, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto at = reinterpret_cast<uintptr_t>(host);
    const auto key = std::make_pair(at, bytes);
    if (auto it = views_.find(key); it != views_.end()) return it->second;
    auto it = regions_.upper_bound(at);
    internal_assert(it != regions_.begin(), "a GPU kernel's buffer is in no mapped region");
    --it;
    Region& r = it->second;
    internal_assert(at + bytes <= it->first + r.bytes,
                    "a GPU kernel's buffer runs past its mapped region");
    return views_
        .emplace(key,
                 r.buffer.cropped(0, static_cast<int>(at - it->first), static_cast<int>(bytes)))
        .first->second;
  }

 private:
  struct Region {
    size_t bytes;
    Runtime::Buffer<uint8_t> buffer;
  };
  ir::Target target_;
  Halide::Target halide_;
  const halide_device_interface_t* interface_ = nullptr;
  std::mutex mutex_;
  std::map<uintptr_t, Region> regions_;  // by host address
  std::map<std::pair<uintptr_t, size_t>, Runtime::Buffer<uint8_t>> views_;
  size_t mapped_ = 0;
};

}  // namespace

std::shared_ptr<DeviceMemory> make_device_memory(const ir::Target& target,
                                                 const Halide::Target& halide) {
  return std::make_shared<HalideDeviceMemory>(target, halide);
}

void bind(DeviceMemory& device, halide_buffer_t& buf, bool input) {
  const auto& view = static_cast<HalideDeviceMemory&>(device).view(
      buf.host, static_cast<size_t>(buf.size_in_bytes()));
  buf.device = view.raw_buffer()->device;
  buf.device_interface = view.raw_buffer()->device_interface;
  buf.set_host_dirty(false);
  buf.set_device_dirty(input);
}

void unbind(halide_buffer_t& buf) {
  buf.device = 0;
  buf.device_interface = nullptr;
  buf.set_host_dirty(false);
  buf.set_device_dirty(false);
}

}  // namespace cnnc::codegen
