#include "codegen/disk_cache.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>

#include "codegen/spawn.h"
#include "ir/error.h"

namespace cnnc::codegen {

namespace {

#define CNNC_STR2(x) #x
#define CNNC_STR(x) CNNC_STR2(x)
constexpr const char* kHalideVersion = "halide-" CNNC_STR(HALIDE_VERSION_MAJOR) "." CNNC_STR(
    HALIDE_VERSION_MINOR) "." CNNC_STR(HALIDE_VERSION_PATCH);

std::mutex mutex;
thread_local std::string error_message;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The compiler's identity: a hash of the binary holding this code (cnnc, or a test), so any
// rebuild that could change what a signature lowers to (a schedule, a lowering) misses the
// entries of the old build instead of loading stale kernels.
const std::string& compiler_id() {
  static const std::string id = [] {
    Dl_info info{};
    std::string bytes;
    if (dladdr(reinterpret_cast<void*>(&fnv1a), &info) && info.dli_fname)
      if (std::ifstream f(info.dli_fname, std::ios::binary); f)
        bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (bytes.empty()) bytes = __DATE__ " " __TIME__;  // unreadable binary: this build's time
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a(bytes)));
    return std::string(buf);
  }();
  return id;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Runs `c++ -shared` on an object; true on success.
bool link_shared(const std::string& object, const std::string& library) {
  const char* cxx = std::getenv("CXX");
  return run_program({cxx && *cxx ? cxx : "c++", "-shared", "-o", library, object});
}

// A unique temporary name beside `path`, so the final rename is atomic on the same filesystem.
std::string temp_beside(const std::string& path) {
  return path + ".tmp." + std::to_string(getpid()) + "." +
         hex(fnv1a(path + std::to_string(reinterpret_cast<uintptr_t>(&path))));
}

void report_error(void*, const char* msg) { error_message = msg; }

std::string cache_root() {
  if (const char* d = std::getenv("CNNC_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/cnnc";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/cnnc";
  return "";
}

}  // namespace

std::string DiskCache::last_error() { return error_message; }

DiskCache* DiskCache::instance() {
  static DiskCache* cache = []() -> DiskCache* {
    const std::string root = cache_root();
    if (root == "off") return nullptr;
    auto off = [](const std::string& why) -> DiskCache* {
      std::cerr << "cnnc: note: on-disk kernel cache off (" << why
                << "); kernels compile in memory\n";
      return nullptr;
    };
    if (root.empty()) return off("no CNNC_CACHE_DIR, XDG_CACHE_HOME or HOME");
    std::error_code ec;
    const std::string dir = root + "/kernels";
    std::filesystem::create_directories(dir, ec);
    if (ec || access(dir.c_str(), W_OK) != 0) return off("cannot write " + dir);
    return new DiskCache(dir);  // lives as long as the process: its libraries stay loaded
  }();
  return cache;
}

void DiskCache::load_runtime(const Halide::Target& target) {
  const std::string t = target.to_string();
  if (runtime_target_ == t) return;
  if (!runtime_target_.empty())
    throw InternalError("the kernel cache holds one Halide runtime per process (" +
                        runtime_target_ + "), asked for " + t);
  const std::string lib = dir_ + "/halide_runtime-" + hex(fnv1a(t + kHalideVersion)) + ".so";
  // Global: the kernels' libraries resolve halide_* against it. A library that does not load
  // (truncated, overwritten) is built again.
  void* h = access(lib.c_str(), R_OK) == 0 ? dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL) : nullptr;
  if (!h) {
    const std::string obj = temp_beside(lib) + ".o", tmp = temp_beside(lib);
    Halide::compile_standalone_runtime(obj, target);
    const bool ok = link_shared(obj, tmp);
    std::remove(obj.c_str());
    if (!ok || std::rename(tmp.c_str(), lib.c_str()) != 0) {
      std::remove(tmp.c_str());
      throw Error("cannot link the Halide runtime into " + lib + " (needs c++ on PATH)");
    }
    h = dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!h) throw Error("cannot load " + lib + ": " + dlerror());
  }
  using SetHandler = void* (*)(void (*)(void*, const char*));
  if (auto set = reinterpret_cast<SetHandler>(dlsym(h, "halide_set_error_handler")))
    set(report_error);
  // Kernels' parallel loops and own buffers go to the runtime's services (use_services).
  set_par_for_ = reinterpret_cast<SetParFor>(dlsym(h, "halide_set_custom_do_par_for"));
  set_malloc_ = reinterpret_cast<SetMalloc>(dlsym(h, "halide_set_custom_malloc"));
  set_free_ = reinterpret_cast<SetFree>(dlsym(h, "halide_set_custom_free"));
  if (!set_par_for_ || !set_malloc_ || !set_free_)
    throw Error(lib + " lacks halide_set_custom_do_par_for/malloc/free; delete it to rebuild it");
  runtime_target_ = t;
}

void DiskCache::use_services(const RuntimeServices& services) {
  if (services_installed_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(mutex);
  if (services_installed_.load(std::memory_order_relaxed)) return;
  internal_assert(set_par_for_ && services.do_par_for && services.malloc && services.free,
                  "kernel cache: services installed before the Halide runtime was loaded");
  set_par_for_(services.do_par_for);
  set_malloc_(services.malloc);
  set_free_(services.free);
  services_installed_.store(true, std::memory_order_release);
}

AotFunction DiskCache::load_or_build(
    const std::string& key, const Halide::Target& target,
    const std::function<void(const std::string&, const std::string&)>& write_object, bool& hit) {
  std::lock_guard<std::mutex> lock(mutex);
  load_runtime(target);
  const std::string full = "cnnc-" + compiler_id() + " " + kHalideVersion + " " + key;
  const std::string id = hex(fnv1a(full)), function = "cnnc_kernel_" + id;
  const std::string lib = dir_ + "/" + id + ".so", meta = dir_ + "/" + id + ".key";
  // A hit needs the library and its key file with the same key (a hash collision is a miss),
  // and a library that loads; anything else is built again.
  hit = false;
  void* h = nullptr;
  if (std::ifstream m(meta); m) {
    std::string stored((std::istreambuf_iterator<char>(m)), std::istreambuf_iterator<char>());
    hit = stored == full && (h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr;
  }
  if (!hit) {
    const std::string obj = temp_beside(lib) + ".o", tmp = temp_beside(lib),
                      tmp_meta = temp_beside(meta);
    write_object(obj, function);
    const bool linked = link_shared(obj, tmp);
    std::remove(obj.c_str());
    if (!linked) {
      std::remove(tmp.c_str());
      throw Error("cannot link a kernel into " + lib +
                  " (needs c++ on PATH; CNNC_CACHE_DIR=off to compile in memory)");
    }
    std::ofstream(tmp_meta) << full;
    // The library first, then its key: a reader that sees the key finds the library complete.
    if (std::rename(tmp.c_str(), lib.c_str()) != 0 ||
        std::rename(tmp_meta.c_str(), meta.c_str()) != 0) {
      std::remove(tmp.c_str());
      std::remove(tmp_meta.c_str());
      throw Error("cannot store a kernel in " + dir_);
    }
    h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) throw Error("cannot load the kernel just built, " + lib + ": " + dlerror());
  }
  auto fn = reinterpret_cast<AotFunction>(dlsym(h, (function + "_argv").c_str()));
  if (!fn) throw Error("cached kernel " + lib + " lacks " + function + "_argv");
  return fn;
}

}  // namespace cnnc::codegen
