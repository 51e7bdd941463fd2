#include "runtime/scratch_pool.h"

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <vector>

namespace cnnc::runtime {

namespace {

// Halide's vector loads may touch bytes just outside a buffer: a guard before and after. The
// guard before also holds the block's header.
constexpr size_t kAlign = 64, kGuard = 64;
constexpr uint64_t kMagic = 0x636e6e6373637261;  // "cnncscra"

struct Header {
  uint64_t magic;
  size_t size_class;
};

// Sizes round up to a class, a quarter-power of two (at most 25% over), so a kernel asking for
// the same bytes every call finds its block again, and so does one a little smaller.
size_t size_class(size_t bytes) {
  bytes = std::max<size_t>(bytes, kAlign);
  const size_t step = std::max<size_t>(kAlign, std::bit_floor(bytes) / 4);
  return (bytes + step - 1) / step * step;
}

// Free blocks by class, one cache per thread: kernels allocate per task on the workers, and a
// shared cache's lock put a worker to sleep (MobileNetV2 at batch 1 ran at half speed). A block
// freed on another thread than the one that took it joins that thread's cache.
std::atomic<size_t> held{0};

struct ThreadCache {
  std::map<size_t, std::vector<char*>> free_blocks;
  ~ThreadCache() {
    for (auto& [cls, blocks] : free_blocks)
      for (char* b : blocks) {
        std::free(b);
        held.fetch_sub(cls + 2 * kGuard);
      }
  }
};
thread_local ThreadCache cache;

}  // namespace

void* scratch_malloc(void*, size_t bytes) {
  const size_t cls = size_class(bytes);
  char* base = nullptr;
  if (auto it = cache.free_blocks.find(cls); it != cache.free_blocks.end() && !it->second.empty()) {
    base = it->second.back();
    it->second.pop_back();
  } else {
    base = static_cast<char*>(std::aligned_alloc(kAlign, cls + 2 * kGuard));
    if (!base) return nullptr;  // Halide reports the failed allocation
    *reinterpret_cast<Header*>(base) = {kMagic, cls};
    held.fetch_add(cls + 2 * kGuard);
  }
  return base + kGuard;
}

void scratch_free(void*, void* ptr) {
  if (!ptr) return;
  char* base = static_cast<char*>(ptr) - kGuard;
  const Header& h = *reinterpret_cast<const Header*>(base);
  if (h.magic != kMagic) return;  // not from this pool: leave it rather than corrupt a heap
  cache.free_blocks[h.size_class].push_back(base);
}

size_t scratch_bytes_held() { return held.load(); }

}  // namespace cnnc::runtime
