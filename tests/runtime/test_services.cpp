// What the compiled kernels run on besides their own code: the workers of their parallel loops
// and the scratch pool behind their own buffers.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "runtime/scratch_pool.h"
#include "runtime/thread_pool.h"

using namespace cnnc;

namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

struct Loop {
  std::vector<std::atomic<int>> runs;
  int fail_at = -1;
  explicit Loop(int n) : runs(n) {}
};

int count_task(void* uc, int i, uint8_t* closure) {
  auto* loop = reinterpret_cast<Loop*>(closure);
  loop->runs[static_cast<size_t>(i - *static_cast<int*>(uc))].fetch_add(1);
  return i == loop->fail_at ? 7 : 0;
}

}  // namespace

TEST_CASE("thread pool: every iteration runs once, on any number of threads; the first error is returned") {
  for (int threads : {1, 2, 3, 5}) {
    runtime::set_pool_threads(threads);
    for (int size : {0, 1, 2, 3, 7, 64, 1001}) {
      for (int min : {0, 5}) {
        CAPTURE(threads);
        CAPTURE(size);
        CAPTURE(min);
        Loop loop(size);
        int base = min;
        CHECK(runtime::pool_do_par_for(&base, count_task, min, size, reinterpret_cast<uint8_t*>(&loop)) == 0);
        for (auto& r : loop.runs) REQUIRE(r.load() == 1);
      }
    }
    Loop loop(100);
    loop.fail_at = 60;
    int base = 0;
    CHECK(runtime::pool_do_par_for(&base, count_task, 0, 100, reinterpret_cast<uint8_t*>(&loop)) == 7);
  }
  runtime::set_pool_threads(0);
}

TEST_CASE("scratch pool: aligned blocks, kept and handed out again without faulting their pages back") {
  const size_t big = size_t{40} << 20;  // above glibc's mmap threshold: malloc would unmap it on free
  auto* a = static_cast<char*>(runtime::scratch_malloc(nullptr, big));
  REQUIRE(a != nullptr);
  CHECK(runtime::scratch_bytes_held() >= big);  // reported beside the arena by `cnnc bench`
  CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  std::memset(a, 1, big);
  volatile char around = a[-8];  // Halide may read a few bytes either side
  around = a[big + 7];
  (void)around;
  runtime::scratch_free(nullptr, a);

  // The same bytes, or a few less, get the same block back, its pages already there.
  const long before = minor_faults();
  auto* b = static_cast<char*>(runtime::scratch_malloc(nullptr, big - 4096));
  CHECK(b == a);
  std::memset(b, 2, big - 4096);
  CHECK(minor_faults() - before < 100);  // 10,240 if the 40 MiB were faulted again
  runtime::scratch_free(nullptr, b);

  // A block freed on another thread is that thread's to hand out next.
  auto* small = runtime::scratch_malloc(nullptr, 1000);
  void* again = nullptr;
  std::thread([&] {
    runtime::scratch_free(nullptr, small);
    again = runtime::scratch_malloc(nullptr, 1000);
    runtime::scratch_free(nullptr, again);
  }).join();
  CHECK(again == small);
  runtime::scratch_free(nullptr, nullptr);  // as free(nullptr): nothing
}
