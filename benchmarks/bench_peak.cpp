// The machine's limits, as Google Benchmark counters: FMA peak GFLOP/s and memory bandwidth,
// on 1 and on all cores.
#include <benchmark/benchmark.h>

#include <thread>

#include "benchmarks/peak.h"

static void BM_FmaPeak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  double gflops = 0;
  for (auto _ : state) gflops = cnnc::bench::measure_fma_peak_gflops(threads);
  state.counters["GFLOP/s"] = gflops;
}
BENCHMARK(BM_FmaPeak)->Arg(1)->Arg(std::thread::hardware_concurrency())->Iterations(3)->Unit(benchmark::kMillisecond);

static void BM_MemoryBandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  double gbs = 0;
  for (auto _ : state) gbs = cnnc::bench::measure_memory_bandwidth_gbs(threads);
  state.counters["GB/s"] = gbs;
}
BENCHMARK(BM_MemoryBandwidth)->Arg(1)->Arg(std::thread::hardware_concurrency())->Iterations(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
