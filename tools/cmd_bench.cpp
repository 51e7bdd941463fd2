// cnnc bench NET: compile time, latency (median, min, p90 after warm-up), throughput, GFLOP/s
// and the fraction of the FMA peak measured on this machine in the same run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <thread>

#include "benchmarks/peak.h"
#include "ir/shape_inference.h"
#include "runtime/executor.h"
#include "tools/commands.h"
#include "tools/format.h"
#include "tools/prepare.h"

namespace cnnc::tools {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string net;
  int64_t batch = 1;
  int threads = 0;
  double min_seconds = 2.0;
  int min_runs = 10;
  uint64_t seed = 0;
  bool profile = false;
  PassFlags passes;
};

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// Per-kernel median time over a few runs of each kernel alone, slowest first.
void print_profile(runtime::CompiledModel& model, double peak) {
  const ir::Graph& g = model.graph();
  struct Row {
    size_t k;
    double ms;
  };
  std::vector<Row> rows;
  double total = 0;
  for (size_t k = 0; k < model.compiled().kernels.size(); ++k) {
    std::vector<double> ms;
    for (int i = 0; i < 5 || (ms.size() < 200 && std::accumulate(ms.begin(), ms.end(), 0.0) < 200); ++i) {
      const auto t0 = Clock::now();
      model.run_kernel(k);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    rows.push_back({k, quantile(ms, 0.5)});
    total += rows.back().ms;
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
  std::printf("  per kernel (median of runs of each kernel alone; sum %.3f ms):\n", total);
  std::printf("  %-24s %-16s %-18s %10s %7s %9s %7s  %s\n", "layer", "op", "output", "ms", "share",
              "GFLOP/s", "%peak", "schedule");
  for (const auto& r : rows) {
    const auto& ck = model.compiled().kernels[r.k];
    const ir::Node& n = g.node(ck.node);
    const double gf = 2.0 * static_cast<double>(ir::macs(n, ir::input_types(g, n))) / (r.ms * 1e-3) * 1e-9;
    std::printf("  %-24s %-16s %-18s %10.3f %6.1f%% %9.1f %6.1f%%  %s\n", n.name.c_str(),
                std::string(n.info().text).c_str(), ir::shape_to_string(n.type.shape, true).c_str(),
                r.ms, 100 * r.ms / total, gf, peak > 0 ? 100 * gf / peak : 0.0, ck.kernel->schedule().c_str());
  }
}

int bench(const BenchOptions& o) {
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  ir::Graph g = optimize(load_with_weights(o.net, o.batch, "", o.seed), o.passes);
  int64_t macs = 0;
  for (const auto& n : g.nodes()) macs += ir::macs(n, ir::input_types(g, n));
  const auto inputs = random_inputs(g, o.seed);

  runtime::CompiledModel model(std::move(g), {.threads = threads});
  model.run(inputs);  // the first run also starts Halide's thread pool
  // Warm-up: at least 3 runs and 0.3 s.
  const auto warm_start = Clock::now();
  for (int i = 0; i < 3 || Clock::now() - warm_start < std::chrono::milliseconds(300); ++i) model.rerun();

  std::vector<double> ms;
  const auto start = Clock::now();
  while (static_cast<int>(ms.size()) < o.min_runs ||
         (std::chrono::duration<double>(Clock::now() - start).count() < o.min_seconds && ms.size() < 10000)) {
    const auto t0 = Clock::now();
    model.rerun();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  // The peak with the same number of threads, measured now, on this machine.
  const double peak = bench::measure_fma_peak_gflops(threads);
  const double median = quantile(ms, 0.5);
  const double gflops = 2.0 * static_cast<double>(macs) / (median * 1e-3) * 1e-9;

  std::printf("%s (%s), batch %lld, %d thread(s)\n", model.graph().name.c_str(), o.net.c_str(),
              static_cast<long long>(o.batch), threads);
  std::printf("  compile:    %.2f s for %zu kernels (Halide JIT, host CPU)\n",
              model.compiled().compile_seconds, model.compiled().kernels.size());
  std::printf("  latency:    median %.3f ms, min %.3f ms, p90 %.3f ms over %zu runs\n", median,
              quantile(ms, 0.0), quantile(ms, 0.9), ms.size());
  std::printf("  throughput: %.1f images/s\n", static_cast<double>(o.batch) / (median * 1e-3));
  std::printf("  work:       %s MACs per batch = %.3f GFLOP\n", with_commas(macs).c_str(),
              2e-9 * static_cast<double>(macs));
  if (peak > 0)
    std::printf("  speed:      %.1f GFLOP/s = %.1f%% of the FMA peak (%.1f GFLOP/s on %d thread(s), measured now)\n",
                gflops, 100.0 * gflops / peak, peak, threads);
  else
    std::printf("  speed:      %.1f GFLOP/s (no AVX2+FMA: peak not measured)\n", gflops);
  if (o.profile) print_profile(model, peak);
  return 0;
}

}  // namespace

Action add_bench(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "Measure latency, throughput, GFLOP/s and % of the FMA peak");
  auto o = std::make_shared<BenchOptions>();
  sub->add_option("NET", o->net, "network file (.cnn)")->required();
  sub->add_option("--batch", o->batch, "batch size")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option("--threads", o->threads, "worker threads (0: one per core)")->check(CLI::Range(0, 256));
  sub->add_option("--min-time", o->min_seconds, "seconds to measure for, at least")->check(CLI::Range(0.0, 600.0));
  sub->add_option("--min-runs", o->min_runs, "runs to measure, at least")->check(CLI::Range(1, 100000));
  sub->add_option("--seed", o->seed, "seed for weights and input");
  sub->add_flag("--profile", o->profile, "also time each kernel alone, slowest first");
  add_pass_flags(*sub, o->passes);
  return [o] { return bench(*o); };
}

}  // namespace cnnc::tools
