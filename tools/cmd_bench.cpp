// cnnc bench NET: compile time, latency (median, min, p90 after warm-up), throughput, GFLOP/s
// and the fraction of the FMA peak measured on this machine in the same run.
//   --profile      each kernel alone, with its place on the roofline
//   --vs PEERS     side by side with Keras / ONNX Runtime: runs benchmarks/vs_peers.py, which
//                  drives this same binary in --serve mode (one process per system, so no
//                  system's thread pool or allocator shares a process with another's)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "benchmarks/peak.h"
#include "ir/atomic_file.h"
#include "ir/error.h"
#include "ir/schedule.h"
#include "ir/shape_inference.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/scratch_pool.h"
#include "tools/commands.h"
#include "tools/format.h"
#include "tools/prepare.h"
#include "tuner/measure.h"

namespace cnnc::tools {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string net;
  int64_t batch = 1;
  int threads = 0;
  double min_seconds = 2.0;
  int min_runs = 10;
  int warmup = 3;  // runs after the first, before timing
  uint64_t seed = 0;
  bool profile = false;
  std::vector<std::string> vs;  // peers for the side-by-side run
  std::string json_out;         // where to write the results as JSON
  bool serve = false;
  // A GPU target's limits, measured by benchmarks/cuda_peak on that GPU (0: not given).
  double device_peak_gflops = 0, device_gbs = 0;
  PassFlags passes;
};

const std::vector<std::string> kPeers = {"keras", "onnxruntime"};

using tuner::quantile;

// Bytes a kernel must move at least once: its inputs, its weights and its output.
int64_t kernel_bytes(const ir::Graph& g, const ir::Node& n) {
  int64_t elements = n.type.elements();
  for (const ir::TensorType& t : ir::input_types(g, n)) elements += t.elements();
  for (const ir::Param& p : n.params) elements += p.value.elements();
  return elements * static_cast<int64_t>(sizeof(float));
}

// Per-kernel median time over a few runs of each kernel alone, slowest first, each placed on
// the roofline of the measured FMA peak and memory bandwidth: a kernel whose arithmetic
// intensity (FLOP per byte moved) is below peak/bandwidth is memory-bound, and its ceiling is
// intensity x bandwidth instead of the peak. Beside it, the kernel's median time inside whole
// runs of the model (caches as the kernels before left them), and what the model spends
// between its kernels. Returns the rows for --json: each kernel's layer, op, both times and
// schedule, in the model's order.
nlohmann::json print_profile(runtime::CompiledModel& model, double peak, double bandwidth,
                             double model_ms, const char* source) {
  const ir::Graph& g = model.graph();
  struct Row {
    size_t k;
    double ms;
  };
  std::vector<Row> rows;
  double total = 0;
  for (size_t k = 0; k < model.kernels().size(); ++k) {
    std::vector<double> ms;
    for (int i = 0; i < 5 || (ms.size() < 200 && std::accumulate(ms.begin(), ms.end(), 0.0) < 200);
         ++i) {
      const auto t0 = Clock::now();
      model.run_kernel(k);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    rows.push_back({k, quantile(ms, 0.5)});
    total += rows.back().ms;
  }
  // The same kernels inside whole runs: each kernel's time there, and per run what the run
  // spent outside its kernels.
  std::vector<std::vector<double>> runs(model.kernels().size());
  std::vector<double> per, walls, between;
  const auto start = Clock::now();
  for (int i = 0; i < 5 || (i < 200 && Clock::now() - start < std::chrono::milliseconds(300));
       ++i) {
    std::fill(per.begin(), per.end(), 0.0);
    const auto t0 = Clock::now();
    model.rerun_profiled(per);
    const double wall = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    walls.push_back(wall);
    between.push_back(wall - std::accumulate(per.begin(), per.end(), 0.0));
    for (size_t k = 0; k < per.size(); ++k) runs[k].push_back(per[k]);
  }
  std::vector<double> in_model(runs.size());
  for (size_t k = 0; k < runs.size(); ++k) in_model[k] = quantile(runs[k], 0.5);
  const double wall_ms = quantile(walls, 0.5), between_ms = quantile(between, 0.5);
  nlohmann::json kernels = nlohmann::json::array();  // rows are still in the model's order
  for (const auto& r : rows) {
    const ir::Node& n = g.node(model.kernels()[r.k].node);
    kernels.push_back({{"layer", n.name},
                       {"op", n.info().text},
                       {"ms_alone", r.ms},
                       {"ms_in_model", in_model[r.k]},
                       {"schedule", ir::to_text(n.schedule)}});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
  const double ridge = bandwidth > 0 ? peak / bandwidth : 0;
  std::printf("  per kernel (median of runs of each kernel alone; sum %.3f ms)\n", total);
  std::printf(
      "  in the model (runs timed kernel by kernel, %.3f ms median): %.3f ms (%.1f%%) outside its\n"
      "  kernels (thread hand-off, micro-batches copied in and out, the executor); the run "
      "without\n"
      "  per-kernel timing: %.3f ms\n",
      wall_ms, between_ms, wall_ms > 0 ? 100 * between_ms / wall_ms : 0.0, model_ms);
  if (peak > 0)
    std::printf(
        "  roofline: %.1f GFLOP/s peak, %.1f GB/s memory bandwidth (%s), ridge at %.1f "
        "FLOP/byte\n",
        peak, bandwidth, source, ridge);
  else
    std::printf("  roofline: no peak measured for this target (%%peak and bound left at 0)\n");
  std::printf("  %-24s %-16s %-18s %10s %9s %7s %9s %7s %8s %8s %-7s %6s  %s\n", "layer", "op",
              "output", "ms", "in model", "share", "GFLOP/s", "%peak", "GB/s", "FLOP/B", "bound",
              "%roof", "schedule");
  bool winograd = false;
  for (const auto& r : rows) {
    const auto& ck = model.kernels()[r.k];
    const ir::Node& n = g.node(ck.node);
    // A Winograd kernel's rates count the direct conv's multiply-adds: what it computes.
    const bool is_winograd = n.schedule.kind == ir::ScheduleKind::Winograd;
    winograd |= is_winograd;
    const std::string op = std::string(n.info().text) + (is_winograd ? " winograd" : "");
    const double flops = 2.0 * static_cast<double>(ir::macs(n, ir::input_types(g, n)));
    const double gf = flops / (r.ms * 1e-3) * 1e-9;
    const double bytes = static_cast<double>(kernel_bytes(g, n));
    const double gbs = bytes / (r.ms * 1e-3) * 1e-9;
    const double intensity = flops / bytes;
    const bool memory_bound = intensity < ridge;
    // Under the roof's slope, GFLOP/s over intensity x bandwidth is GB/s over bandwidth.
    const double roof_pct = peak <= 0      ? 0.0
                            : memory_bound ? (bandwidth > 0 ? 100 * gbs / bandwidth : 0.0)
                                           : 100 * gf / peak;
    std::printf(
        "  %-24s %-16s %-18s %10.3f %9.3f %6.1f%% %9.1f %6.1f%% %8.1f %8.2f %-7s %5.1f%%  %s\n",
        n.name.c_str(), op.c_str(), ir::shape_to_string(n.type.shape, true).c_str(), r.ms,
        in_model[r.k], 100 * r.ms / total, gf, peak > 0 ? 100 * gf / peak : 0.0, gbs, intensity,
        peak <= 0      ? "-"
        : memory_bound ? "memory"
                       : "compute",
        roof_pct, ck.kernel->schedule().c_str());
  }
  std::printf(
      "  bytes = inputs + weights + output, each moved once; %%roof = share of the kernel's "
      "ceiling\n"
      "  (the peak if compute-bound, else the DRAM bandwidth: over 100%% means its data came from "
      "cache)\n");
  if (winograd)
    std::printf(
        "  winograd rows: GFLOP/s and %%peak count the direct conv's multiply-adds (effective "
        "rates:\n  F(2x2,3x3) does 2.25x fewer, F(4x4,3x3) 4x), so they can pass the peak\n");
  return kernels;
}

// --serve: compile once, then answer one command per stdin line with one JSON line, so a
// driver (benchmarks/vs_peers.py) can interleave this model's runs with other systems'.
//   input PATH.npy   set graph input 0 and run once      -> {"ok": true}
//   output PATH.npy  write output 0 of the last input run -> {"ok": true}
//   time N           N timed runs on the current input    -> {"ms": [...]}
//   peak             FMA peak and memory bandwidth now    -> {"fma_peak_gflops": ., "memory_gbs":
//   .} quit
int serve(runtime::CompiledModel& model, int threads, int64_t batch, int64_t macs) {
  using nlohmann::json;
  auto reply = [](const json& j) { std::cout << j.dump() << std::endl; };
  std::vector<ir::Tensor> inputs = random_inputs(model.graph(), 0);
  std::vector<ir::Tensor> outputs = model.run(inputs);
  reply({{"ready", true},
         {"model", model.graph().name},
         {"batch", batch},
         {"threads", threads},
         {"kernels", model.kernels().size()},
         {"compiled", model.program().compiled},
         {"from_disk", model.program().from_disk},
         {"arena_bytes", model.memory_plan().arena_bytes},
         {"unshared_bytes", model.memory_plan().unshared_bytes},
         {"micro_batch", model.micro_batch()},
         {"compile_seconds", model.program().compile_seconds},
         {"macs", macs}});
  std::string line;
  while (std::getline(std::cin, line)) {
    const auto space = line.find(' ');
    const std::string cmd = line.substr(0, space),
                      arg = space == std::string::npos ? "" : line.substr(space + 1);
    try {
      if (cmd == "quit") return 0;
      if (cmd == "input") {
        inputs = {input_from_user(model.graph(), runtime::read_npy(arg))};
        outputs = model.run(inputs);
        reply({{"ok", true}});
      } else if (cmd == "output") {
        runtime::write_npy(arg, output_to_user(model.graph(), outputs.at(0)));
        reply({{"ok", true}});
      } else if (cmd == "time") {
        const int n = std::max(1, std::atoi(arg.c_str()));
        std::vector<double> ms;
        for (int i = 0; i < n; ++i) {
          const auto t0 = Clock::now();
          model.rerun();
          ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
        reply({{"ms", ms}});
      } else if (cmd == "peak") {
        reply({{"fma_peak_gflops", bench::measure_fma_peak_gflops(threads)},
               {"memory_gbs", bench::measure_memory_bandwidth_gbs(threads)}});
      } else {
        reply({{"error",
                "unknown command '" + cmd + "'; accepted: input, output, time, peak, quit"}});
      }
    } catch (const std::exception& e) {
      reply({{"error", e.what()}});
    }
  }
  return 0;
}

// --vs: hand over to the side-by-side driver, which runs this binary again in --serve mode.
int run_vs_peers(const BenchOptions& o, int threads) {
  for (const std::string& p : o.vs)
    if (std::find(kPeers.begin(), kPeers.end(), p) == kPeers.end())
      throw Error("cnnc bench: unknown peer '" + p + "' in --vs; accepted: keras, onnxruntime");
  const std::string ext = std::filesystem::path(o.net).extension().string();
  if (ext != ".keras" && ext != ".h5" && ext != ".onnx")
    throw Error("cnnc bench --vs: " + o.net +
                ": the peers need the model as a Keras file (.keras or .h5) or an ONNX file; "
                "tools/keras_export.py writes the zoo, LeNet5 and CIFAR10CNN as .keras");
  if (ext == ".onnx" && std::find(o.vs.begin(), o.vs.end(), "keras") != o.vs.end())
    throw Error("cnnc bench --vs keras: " + o.net +
                ": Keras cannot run an ONNX model; accepted peer for it: onnxruntime");
  const char* env_script = std::getenv("CNNC_VS_PEERS");
  const std::string script = env_script ? env_script : CNNC_BENCHMARKS_DIR "/vs_peers.py";
  if (access(script.c_str(), R_OK) != 0)
    throw Error("cnnc bench --vs: the driver " + script +
                " is missing (set CNNC_VS_PEERS to its path)");
  char self[4096];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) throw Error("cnnc bench --vs: cannot find this program's path in /proc/self/exe");
  self[len] = 0;
  std::string peers;
  for (const std::string& p : o.vs) peers += (peers.empty() ? "" : ",") + p;
  const char* env_python = std::getenv("CNNC_PYTHON");
  std::vector<std::string> args = {env_python ? env_python : "python3",
                                   script,
                                   "--cnnc",
                                   self,
                                   "--model",
                                   o.net,
                                   "--batch",
                                   std::to_string(o.batch),
                                   "--threads",
                                   std::to_string(threads),
                                   "--peers",
                                   peers,
                                   "--min-time",
                                   std::to_string(o.min_seconds),
                                   "--min-runs",
                                   std::to_string(o.min_runs),
                                   "--seed",
                                   std::to_string(o.seed)};
  if (!o.json_out.empty()) args.insert(args.end(), {"--json", o.json_out});
  // cnnc's side runs with this command's compile flags (the tuning database, an autoscheduler).
  std::vector<std::string> forwarded;
  if (!o.passes.db.empty()) forwarded.insert(forwarded.end(), {"--db", o.passes.db});
  if (o.passes.no_tuning) forwarded.push_back("--no-tuning");
  if (!o.passes.autoschedule.empty())
    forwarded.insert(forwarded.end(), {"--autoschedule", o.passes.autoschedule});
  if (o.passes.target != "host") forwarded.insert(forwarded.end(), {"--target", o.passes.target});
  if (o.passes.micro_batch)
    forwarded.insert(forwarded.end(), {"--micro-batch", std::to_string(o.passes.micro_batch)});
  for (const auto& f : forwarded) args.push_back("--cnnc-flag=" + f);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  execvp(argv[0], argv.data());
  throw Error("cnnc bench --vs: cannot run " + args[0] + ": " + std::strerror(errno) +
              " (the side-by-side run needs Python 3 with TensorFlow: tools/setup_keras.sh)");
}

int bench(const BenchOptions& o) {
  const int threads = resolve_threads(o.threads);
  if (!o.vs.empty()) return run_vs_peers(o, threads);
  runtime::CompiledModel model(
      build_program(load_with_weights(o.net, o.batch, "", o.seed), o.passes, threads), threads);
  const ir::Graph& g = model.graph();
  int64_t macs = 0;
  for (const auto& n : g.nodes()) macs += ir::macs(n, ir::input_types(g, n));
  const auto inputs = random_inputs(g, o.seed);
  if (o.serve) return serve(model, threads, o.batch, macs);
  model.run(inputs);  // the first run also starts Halide's thread pool
  // Warm-up: --warmup runs (3) and, if any, at least 0.3 s.
  const auto warm_start = Clock::now();
  for (int i = 0;
       i < o.warmup || (o.warmup > 0 && Clock::now() - warm_start < std::chrono::milliseconds(300));
       ++i)
    model.rerun();

  std::vector<double> ms;
  const auto start = Clock::now();
  while (static_cast<int>(ms.size()) < o.min_runs ||
         (std::chrono::duration<double>(Clock::now() - start).count() < o.min_seconds &&
          ms.size() < 10000)) {
    const auto t0 = Clock::now();
    model.rerun();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  // The peak with the same number of threads, measured now, on this machine: a CPU's. A GPU
  // target's limit is its GPU's (benchmarks/cuda_peak measures a CUDA GPU's).
  const bool gpu = model.program().target.family == ir::Target::Gpu;
  const double peak = gpu ? o.device_peak_gflops : bench::measure_fma_peak_gflops(threads);
  const double median = quantile(ms, 0.5);
  const double gflops = 2.0 * static_cast<double>(macs) / (median * 1e-3) * 1e-9;

  std::printf("%s (%s), batch %lld, %d thread(s)\n", model.graph().name.c_str(), o.net.c_str(),
              static_cast<long long>(o.batch), threads);
  const auto& cg = model.program();
  std::printf(
      "  compile:    %.2f s for %zu kernels: %zu compiled, %zu from the disk cache, %zu reused "
      "(Halide, %s)\n",
      cg.compile_seconds, cg.kernels.size(), cg.compiled, cg.from_disk,
      cg.kernels.size() - cg.compiled - cg.from_disk, cg.target.name.c_str());
  if (model.micro_batch() < o.batch)
    std::printf("  micro-batch: %lld images per pass through the network\n",
                static_cast<long long>(model.micro_batch()));
  std::printf("  latency:    median %.3f ms, min %.3f ms, p90 %.3f ms over %zu runs\n", median,
              quantile(ms, 0.0), quantile(ms, 0.9), ms.size());
  std::printf("  throughput: %.1f images/s\n", static_cast<double>(o.batch) / (median * 1e-3));
  std::printf(
      "  memory:     %s of activations in one arena (%s with a buffer per value); %s more held by\n"
      "              kernels' own buffers (padded inputs)\n",
      bytes(model.memory_plan().arena_bytes).c_str(),
      bytes(model.memory_plan().unshared_bytes).c_str(),
      bytes(static_cast<int64_t>(runtime::scratch_bytes_held())).c_str());
  if (const auto& device = model.program().device)
    std::printf("  device:     %s mirrored on the %s device (activations and weights)\n",
                bytes(static_cast<int64_t>(device->mapped_bytes())).c_str(),
                model.program().target.name.c_str());
  std::printf("  work:       %s MACs per batch = %.3f GFLOP\n", with_commas(macs).c_str(),
              2e-9 * static_cast<double>(macs));
  // A Winograd kernel does 16 (36) multiplies where the direct conv does 36 (144): its GFLOP/s
  // count the direct conv's work, so they (and the % of peak) can pass the FMA peak.
  int winograd = 0;
  for (const ir::Node& n : model.graph().nodes())
    winograd += n.schedule.kind == ir::ScheduleKind::Winograd;
  if (winograd)
    std::printf(
        "              (%d Winograd kernel(s): counted as the direct conv's MACs, so the speed\n"
        "              below is effective, and may pass the peak)\n",
        winograd);
  if (peak > 0 && gpu)
    std::printf("  speed:      %.1f GFLOP/s = %.1f%% of the device's FMA peak (%.1f GFLOP/s, "
                "--device-peak: cuda_peak's measurement)\n",
                gflops, 100.0 * gflops / peak, peak);
  else if (peak > 0)
    std::printf(
        "  speed:      %.1f GFLOP/s = %.1f%% of the FMA peak (%.1f GFLOP/s on %d thread(s), "
        "measured now)\n",
        gflops, 100.0 * gflops / peak, peak, threads);
  else if (gpu)
    std::printf("  speed:      %.1f GFLOP/s on the %s device (the CPU's peak does not apply; "
                "benchmarks/cuda_peak measures a CUDA GPU's)\n",
                gflops, model.program().target.name.c_str());
  else
    std::printf("  speed:      %.1f GFLOP/s (no AVX2+FMA: peak not measured)\n", gflops);
  nlohmann::json profile;
  if (o.profile)
    profile = print_profile(model, peak,
                            gpu ? o.device_gbs : bench::measure_memory_bandwidth_gbs(threads),
                            median, gpu ? "the device's, as given" : "measured now");
  if (!o.json_out.empty()) {
    nlohmann::json j = {{"model", model.graph().name},
                        {"net", o.net},
                        {"batch", o.batch},
                        {"threads", threads},
                        {"median_ms", median},
                        {"p10_ms", quantile(ms, 0.1)},
                        {"p90_ms", quantile(ms, 0.9)},
                        {"runs", ms.size()},
                        {"macs", macs},
                        {"gflops", gflops},
                        {"peak_gflops", peak},
                        {"compile_seconds", cg.compile_seconds},
                        {"kernels", cg.kernels.size()},
                        {"compiled", cg.compiled},
                        {"from_disk", cg.from_disk},
                        {"arena_bytes", model.memory_plan().arena_bytes},
                        {"unshared_bytes", model.memory_plan().unshared_bytes},
                        {"scratch_bytes", runtime::scratch_bytes_held()},
                        {"micro_batch", model.micro_batch()}};
    if (o.profile) j["profile"] = profile;  // per kernel, in the model's order
    ir::write_file_atomically(o.json_out, j.dump(1) + "\n");
  }
  return 0;
}

}  // namespace

Action add_bench(CLI::App& app) {
  auto* sub =
      app.add_subcommand("bench", "Measure latency, throughput, GFLOP/s and % of the FMA peak");
  auto o = std::make_shared<BenchOptions>();
  sub->add_option("NET", o->net, "network file (.cnn, .keras, .h5, .json, .onnx)")->required();
  sub->add_option("--batch", o->batch, "batch size")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option("--threads", o->threads, "worker threads (0: one per core)")
      ->check(CLI::Range(0, 256));
  sub->add_option("--min-time", o->min_seconds, "seconds to measure for, at least")
      ->check(CLI::Range(0.0, 600.0));
  sub->add_option("--min-runs", o->min_runs, "runs to measure, at least")
      ->check(CLI::Range(1, 100000));
  sub->add_option("--warmup", o->warmup,
                  "runs before timing, after the first (and, if any, at least 0.3 s)")
      ->check(CLI::Range(0, 1000));
  sub->add_option("--seed", o->seed, "seed for weights and input");
  sub->add_flag("--profile", o->profile, "also time each kernel alone, slowest first");
  sub->add_option("--vs", o->vs,
                  "also run the model in these systems, alternating runs: keras, onnxruntime "
                  "(a Keras model file; needs tools/setup_keras.sh)")
      ->delimiter(',');
  sub->add_option("--json", o->json_out, "also write the results to this JSON file");
  sub->add_option("--device-peak", o->device_peak_gflops,
                  "a GPU target's FMA peak in GFLOP/s, as benchmarks/cuda_peak measured it on "
                  "that GPU (for %peak and the roofline)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--device-bandwidth", o->device_gbs,
                  "a GPU target's memory bandwidth in GB/s (benchmarks/cuda_peak)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--serve", o->serve,
                "compile, then take commands on stdin (used by benchmarks/vs_peers.py)");
  add_pass_flags(*sub, o->passes);
  return [o] { return bench(*o); };
}

}  // namespace cnnc::tools
