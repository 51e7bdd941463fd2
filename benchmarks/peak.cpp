#include "benchmarks/peak.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace cnnc::bench {

namespace {

using Clock = std::chrono::steady_clock;

// 12 chains of 8 floats; returns a value so the compiler cannot drop the work.
__attribute__((target("avx2,fma"))) float fma_chains(long iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long k = 0; k < iters; ++k)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}
constexpr double kFlopsPerIter = 12 * 8 * 2;

// The same with 16-float vectors, for CPUs with AVX-512 (Zen 4/5, Intel server parts): the
// kernels Halide emits for such a host use these, so the peak must too.
__attribute__((target("avx512f"))) float fma_chains_512(long iters) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long k = 0; k < iters; ++k)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, s);
  return out[0];
}

bool has_avx512() { return __builtin_cpu_supports("avx512f"); }
// FLOPs per iteration and the chain function for the widest FMA this CPU has.
double flops_per_iter() { return has_avx512() ? 2 * kFlopsPerIter : kFlopsPerIter; }
float best_fma_chains(long iters) { return has_avx512() ? fma_chains_512(iters) : fma_chains(iters); }

// Reads a buffer once with four independent vector sums, so the loads, not the adds, limit it.
__attribute__((target("avx2"))) float stream_sum(const std::vector<float>& v) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const size_t n = v.size() / 32 * 32;
  for (size_t i = 0; i < n; i += 32)
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_add_ps(acc[k], _mm256_loadu_ps(&v[i + 8 * k]));
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  return out[0];
}

// The best rate of 5 runs of `work` on `threads` threads at once, in units per second.
template <class Work>
double best_rate(int threads, double units_per_call, Work work) {
  threads = std::max(1, threads);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { work(t); });
    for (auto& th : pool) th.join();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, units_per_call * threads / dt);
  }
  return best;
}

}  // namespace

double measure_fma_peak_gflops(int threads, double seconds) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
  // Calibrate the iteration count to about `seconds` on one thread.
  long iters = 1 << 20;
  for (;;) {
    const auto t0 = Clock::now();
    volatile float sink = best_fma_chains(iters);
    (void)sink;
    if (std::chrono::duration<double>(Clock::now() - t0).count() > seconds / 4) break;
    iters *= 2;
  }
  iters *= 4;
  std::vector<float> sinks(static_cast<size_t>(std::max(1, threads)) * 16);
  return best_rate(threads, static_cast<double>(iters) * flops_per_iter(),
                   [&](int t) { sinks[static_cast<size_t>(t) * 16] = best_fma_chains(iters); }) * 1e-9;
}

double measure_memory_bandwidth_gbs(int threads) {
  if (!__builtin_cpu_supports("avx2")) return 0;
  threads = std::max(1, threads);
  const size_t per_thread = size_t{64} << 20;  // 64 MiB each, far beyond the caches
  std::vector<std::vector<float>> bufs(static_cast<size_t>(threads),
                                       std::vector<float>(per_thread / sizeof(float), 1.f));
  std::vector<float> sinks(static_cast<size_t>(threads) * 16);
  return best_rate(threads, static_cast<double>(per_thread), [&](int t) {
           sinks[static_cast<size_t>(t) * 16] = stream_sum(bufs[static_cast<size_t>(t)]);
         }) * 1e-9;
}

}  // namespace cnnc::bench
