#include "codegen/scratch_pool.h"

#include <bit>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace cnnc::codegen {

namespace {

// Halide's vector loads may touch bytes just outside a buffer: a guard before and after.
constexpr size_t kAlign = 64, kGuard = 64;

// Sizes round up to a class, a quarter-power of two (at most 25% over), so a kernel asking for
// the same bytes every call finds its block again, and so does one a little smaller.
size_t size_class(size_t bytes) {
  bytes = std::max<size_t>(bytes, kAlign);
  const size_t step = std::max<size_t>(kAlign, std::bit_floor(bytes) / 4);
  return (bytes + step - 1) / step * step;
}

struct Pool {
  std::mutex mutex;
  std::map<size_t, std::vector<char*>> free_blocks;  // by class: blocks held for reuse
  std::unordered_map<void*, size_t> in_use;          // handed-out pointer -> its class
};

// Never destroyed: a kernel may still free into it while static objects are torn down.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

void* scratch_malloc(void*, size_t bytes) {
  const size_t cls = size_class(bytes);
  Pool& p = pool();
  char* base = nullptr;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    if (auto it = p.free_blocks.find(cls); it != p.free_blocks.end() && !it->second.empty()) {
      base = it->second.back();
      it->second.pop_back();
    }
  }
  if (!base) base = static_cast<char*>(std::aligned_alloc(kAlign, cls + 2 * kGuard));
  if (!base) return nullptr;  // Halide reports the failed allocation
  void* ptr = base + kGuard;
  std::lock_guard<std::mutex> lock(p.mutex);
  p.in_use.emplace(ptr, cls);
  return ptr;
}

void scratch_free(void*, void* ptr) {
  if (!ptr) return;
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  auto it = p.in_use.find(ptr);
  if (it == p.in_use.end()) return;  // not ours: nothing to do rather than corrupt the heap
  p.free_blocks[it->second].push_back(static_cast<char*>(ptr) - kGuard);
  p.in_use.erase(it);
}

}  // namespace cnnc::codegen
