#pragma once
// The on-disk kernel cache (codegen-internal): each kernel compiled ahead of time into a shared
// object, keyed by a hash of its signature, schedule options, target, Halide version and the
// compiler build (a hash of the binary), and loaded with dlopen when a later process needs the
// same kernel.
// All kernels share one Halide runtime library, built once per target.
#include <Halide.h>

#include <atomic>
#include <functional>
#include <string>

#include "codegen/program.h"

namespace cnnc::codegen {

// The AOT calling convention: argv[i] points at the i-th buffer (inputs, weights, output).
using AotFunction = int (*)(void** argv);

class DiskCache {
 public:
  // The cache at CNNC_CACHE_DIR, else $XDG_CACHE_HOME/cnnc, else ~/.cache/cnnc; nullptr when
  // CNNC_CACHE_DIR=off or when the directory or the linker (c++) is not usable (then kernels
  // are JIT-compiled in memory only; the reason is printed once).
  static DiskCache* instance();

  // The kernel `key` for `target`: loaded from the cache when there (hit = true), else built by
  // `write_object` (which must write an object file, without the Halide runtime, defining
  // `function` and its _argv wrapper, to the path it is given), linked and stored.
  AotFunction load_or_build(const std::string& key, const Halide::Target& target,
                            const std::function<void(const std::string& object,
                                                     const std::string& function)>& write_object,
                            bool& hit);

  // The message of the last error a cached kernel reported on this thread.
  static std::string last_error();

  // Routes the cached kernels' parallel loops and buffers to the runtime's services (the
  // runtime's, which are the same for the whole process: installed once).
  void use_services(const RuntimeServices& services);

  const std::string& directory() const { return dir_; }

 private:
  explicit DiskCache(std::string dir) : dir_(std::move(dir)) {}
  void load_runtime(const Halide::Target& target);
  std::string dir_;
  std::string runtime_target_;  // the target whose runtime is loaded ("" before the first)
  using ParFor = int (*)(void*, int (*)(void*, int, uint8_t*), int, int, uint8_t*);
  using SetParFor = ParFor (*)(ParFor);
  using SetMalloc = void* (*(*)(void* (*)(void*, size_t)))(void*, size_t);
  using SetFree = void (*(*)(void (*)(void*, void*)))(void*, void*);
  SetParFor set_par_for_ = nullptr;
  SetMalloc set_malloc_ = nullptr;
  SetFree set_free_ = nullptr;
  std::atomic<bool> services_installed_{false};
};

}  // namespace cnnc::codegen
