#include "runtime/thread_pool.h"

#include <immintrin.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace cnnc::runtime {

namespace {

constexpr auto kSpin = std::chrono::milliseconds(2);

// Each thread's share of a loop: a contiguous range of its iterations.
struct alignas(64) Range {
  std::atomic<int> next{0};
  int end = 0;
};

struct Job {
  int (*task)(void*, int, uint8_t*);
  void* user_context;
  uint8_t* closure;
  int min, size;
  Range* ranges;  // one per thread, caller first
  int parts;
  std::atomic<int> done{0}, status{0};

  // Thread `self` runs its own range first, then helps with the others' (from the next one on).
  // Kernels number their tasks by row band (then image), so a thread takes the same bands in
  // every kernel and reads what it wrote in the one before from its own cache.
  void work(int self) {
    for (int k = 0; k < parts; ++k) {
      Range& r = ranges[(self + k) % parts];
      for (int i; (i = r.next.fetch_add(1)) < r.end;) {
        if (int code = task(user_context, min + i, closure)) {
          int zero = 0;
          status.compare_exchange_strong(zero, code);
        }
        done.fetch_add(1);
      }
    }
  }
};

thread_local bool inside_pool = false;  // nested loops run serially in the thread that meets them

class Pool {
 public:
  ~Pool() { resize(0); }

  void resize(int workers) {
    std::lock_guard<std::mutex> caller(caller_mutex_);
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    stop_ = false;
    ranges_ = std::vector<Range>(workers + 1);
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { worker(i + 1); });
  }

  int run(void* uc, int (*task)(void*, int, uint8_t*), int min, int size, uint8_t* closure) {
    if (inside_pool || size <= 1 || threads_.empty()) return serial(uc, task, min, size, closure);
    std::lock_guard<std::mutex> caller(caller_mutex_);
    Job job;
    job.task = task, job.user_context = uc, job.closure = closure, job.min = min, job.size = size;
    job.ranges = ranges_.data(), job.parts = static_cast<int>(ranges_.size());
    for (int p = 0; p < job.parts; ++p) {
      ranges_[p].next.store(static_cast<int>(int64_t{size} * p / job.parts));
      ranges_[p].end = static_cast<int>(int64_t{size} * (p + 1) / job.parts);
    }
    job_.store(&job);
    generation_.fetch_add(1);
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
    inside_pool = true;
    job.work(0);
    inside_pool = false;
    while (job.done.load() < size) _mm_pause();
    // No worker may still hold the job when it goes out of scope: unpublish it, then wait for
    // those that took it before (a worker announces itself before reading job_).
    job_.store(nullptr);
    while (in_flight_.load() > 0) _mm_pause();
    return job.status.load();
  }

 private:
  static int serial(void* uc, int (*task)(void*, int, uint8_t*), int min, int size,
                    uint8_t* closure) {
    for (int i = min; i < min + size; ++i)
      if (int r = task(uc, i, closure)) return r;
    return 0;
  }

  void worker(int self) {
    inside_pool = true;
    uint64_t seen = generation_.load();
    for (;;) {
      // Spin for the next loop; sleep when none comes for a while.
      auto idle_since = std::chrono::steady_clock::now();
      while (generation_.load() == seen && !stop_.load()) {
        _mm_pause();
        if (std::chrono::steady_clock::now() - idle_since > kSpin) {
          std::unique_lock<std::mutex> lock(sleep_mutex_);
          ++sleepers_;
          wake_.wait(lock, [&] { return generation_.load() != seen || stop_.load(); });
          --sleepers_;
          idle_since = std::chrono::steady_clock::now();
        }
      }
      if (stop_.load()) return;
      seen = generation_.load();
      in_flight_.fetch_add(1);
      if (Job* job = job_.load()) job->work(self);
      in_flight_.fetch_sub(1);
    }
  }

  std::mutex caller_mutex_;  // one loop at a time from outside the pool
  std::vector<std::thread> threads_;
  std::vector<Range> ranges_;  // the running job's, reused: one loop at a time
  std::atomic<Job*> job_{nullptr};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> in_flight_{0}, sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
};

Pool& pool() {
  static Pool* p = [] {
    auto* created = new Pool;  // never destroyed: kernels may run from static destructors
    created->resize(static_cast<int>(std::thread::hardware_concurrency()) - 1);
    return created;
  }();
  return *p;
}

}  // namespace

void set_pool_threads(int threads) {
  const int n = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  static int current = -1;
  if (n == current) return;
  current = n;
  pool().resize(n - 1);
}

int pool_do_par_for(void* uc, int (*task)(void*, int, uint8_t*), int min, int size,
                    uint8_t* closure) {
  return pool().run(uc, task, min, size, closure);
}

void parallel_for(int count, const std::function<void(int)>& body) {
  auto task = [](void* uc, int i, uint8_t*) {
    (*static_cast<const std::function<void(int)>*>(uc))(i);
    return 0;
  };
  pool().run(const_cast<std::function<void(int)>*>(&body), task, 0, count, nullptr);
}

}  // namespace cnnc::runtime
