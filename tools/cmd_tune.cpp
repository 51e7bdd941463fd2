// cnnc tune MODEL: search each distinct kernel's schedule on this machine and keep what was
// learned in the tuning database; then the whole model timed tuned against untuned, side by
// side. `cnnc tune --worker` is the measuring process the tuner starts (JSON lines on stdin
// and stdout), so a crashing or hanging candidate costs one trial, never the run.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>

#include "codegen/compile.h"
#include "ir/error.h"
#include "ir/text.h"
#include "runtime/executor.h"
#include "tools/chart.h"
#include "tools/commands.h"
#include "tools/format.h"
#include "tools/prepare.h"
#include "tuner/database.h"
#include "tuner/fingerprint.h"
#include "tuner/measure.h"
#include "tuner/tune.h"

namespace cnnc::tools {

namespace {

struct TuneFlags {
  std::string net, budget = "15m", curve;
  int64_t batch = 1;
  int threads = 0;
  uint64_t seed = 1;
  bool worker = false, no_cost_model = false, alone = false, seeds_given = false;
  int build_jobs = 0;
  std::vector<std::string> seeds;
  PassFlags passes;
};

// "15m", "90s", "1h", "300" (seconds).
double parse_budget(const std::string& s) {
  static const std::regex form(R"(^\s*([0-9]+(\.[0-9]+)?)\s*([smh]?)\s*$)");
  std::smatch m;
  if (!std::regex_match(s, m, form))
    throw Error("--budget '" + s + "': give a duration like 90s, 15m or 1h");
  const double v = std::stod(m[1]);
  return m[3] == "h" ? v * 3600 : m[3] == "m" ? v * 60 : v;
}

// Median milliseconds of `rounds` blocks of runs, alternating the two models (side by side).
// The two models in alternating blocks of runs (each block at least 0.25 s, 12 blocks each):
// the median over every run, and the share of blocks in which the second model was faster. A
// slow period of the machine falls on both, block by block.
struct SideBySide {
  double a_ms, b_ms;
  int b_faster, blocks;
};
SideBySide side_by_side(runtime::CompiledModel& a, runtime::CompiledModel& b,
                        const std::vector<ir::Tensor>& in) {
  using Clock = std::chrono::steady_clock;
  using tuner::median;
  a.run(in);
  b.run(in);
  std::vector<double> ta, tb;
  SideBySide r{0, 0, 0, 12};
  for (int block = 0; block < r.blocks; ++block) {
    double block_median[2];
    int which = 0;
    for (auto [m, t] : {std::pair{&a, &ta}, std::pair{&b, &tb}}) {
      std::vector<double> runs;
      const auto start = Clock::now();
      while (runs.size() < 3 || Clock::now() - start < std::chrono::milliseconds(250)) {
        const auto t0 = Clock::now();
        m->rerun();
        runs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      t->insert(t->end(), runs.begin(), runs.end());
      block_median[which++] = median(runs);
    }
    r.b_faster += block_median[1] < block_median[0];
  }
  r.a_ms = median(ta);
  r.b_ms = median(tb);
  return r;
}

int tune(const TuneFlags& o) {
  if (o.worker) return tuner::serve_worker();
  if (o.net.empty()) throw Error("tune: give a MODEL (or --worker)");
  const double budget = parse_budget(o.budget);
  const int threads = resolve_threads(o.threads);
  const ir::Target target = codegen::describe_target(o.passes.target);
  const bool gpu = target.family == ir::Target::Gpu;
  if (gpu && codegen::gpu_device_name(target).empty())
    throw Error("--target " + o.passes.target + ": tuning measures on the GPU, and its driver " +
                "finds no device on this machine (cnnc run --target " + o.passes.target +
                " says why)");
  // Seeds: the autoschedulers of the target's family (CPU: Mullapudi2016, Adams2019; GPU:
  // Anderson2021), unless --seeds names them.
  std::vector<std::string> seeds = o.seeds_given ? o.seeds
                                   : gpu         ? std::vector<std::string>{"anderson2021"}
                                         : std::vector<std::string>{"mullapudi2016", "adams2019"};
  for (const auto& seed : seeds)
    if (seed != "none" && (seed == "anderson2021") != gpu)
      throw Error("--seeds " + seed + ": an autoscheduler for " + (gpu ? "CPU" : "GPU") +
                  " schedules; for --target " + o.passes.target + " give " +
                  (gpu ? "anderson2021" : "mullapudi2016, adams2019") + " or none");
  PassFlags untuned = o.passes;
  untuned.no_tuning = true;
  ir::Graph g = optimize(load_with_weights(o.net, o.batch, "", o.seed), untuned, threads);
  tuner::TuneOptions t;
  t.budget_s = budget;
  t.db_path = o.passes.db.empty() ? tuner::default_database_path() : o.passes.db;
  t.target = target;
  t.threads = threads;
  t.micro_batch = codegen::choose_micro_batch(g, o.passes.micro_batch, target.family);
  t.seed = o.seed;
  t.cost_model = !o.no_cost_model;
  t.seeds.clear();
  for (const auto& seed : seeds)
    if (seed != "none") t.seeds.push_back(seed);
  t.in_context = !o.alone;
  t.build_jobs = o.build_jobs;
  t.alternatives = [target](const ir::Graph& workload, const ir::Node& layer) {
    return tiling_alternatives(target, workload, layer);
  };
  // A live line on a terminal; on a log, one line every 25 trials.
  const bool tty = isatty(2);
  t.progress = [tty, n = 0](const std::string& line) mutable {
    if (tty)
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
    else if (++n % 25 == 0)
      std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  };
  std::printf(
      "tuning %s (batch %lld, %lld per kernel call, %d threads) for %.0f s on %s\n  database %s\n",
      g.name.c_str(), static_cast<long long>(o.batch), static_cast<long long>(t.micro_batch),
      threads, budget, tuner::fingerprint(t.target).c_str(), t.db_path.c_str());
  const tuner::TuneResult r = tuner::tune(g, t);
  std::fprintf(stderr, "\n");
  std::printf("  %-28s %6s %7s %11s %11s %7s  %s\n", "workload (first layer)", "uses", "trials",
              "heuristic", "tuned", "gain", "schedule");
  for (const auto& w : r.workloads)
    std::printf("  %-28s %6zu %7d %9.3f ms %8.3f ms %6.2fx  %s\n", w.layers.front().c_str(),
                w.layers.size(), w.trials, w.heuristic_ms, w.best_ms,
                w.best_ms > 0 ? w.heuristic_ms / w.best_ms : 1.0, w.best.c_str());
  if (!o.curve.empty()) {
    write_chart(o.curve, g.name + ": the tuning curve",
                {{"best model time (its kernels' sum)",
                  "tuning time (s)",
                  "ms",
                  {{"best so far", r.curve, 0x1f77b4, /*steps=*/true}}}});
    std::printf("  tuning curve: %s\n", o.curve.c_str());
  }
  // The whole model, tuned against untuned, alternating runs in this process.
  PassFlags tuned = o.passes;
  tuned.no_tuning = false;
  runtime::CompiledModel before(
      build_program(load_with_weights(o.net, o.batch, "", o.seed), untuned, threads), threads);
  runtime::CompiledModel after(
      build_program(load_with_weights(o.net, o.batch, "", o.seed), tuned, threads), threads);
  const auto inputs = random_inputs(before.graph(), o.seed);
  const SideBySide sbs = side_by_side(before, after, inputs);
  std::printf(
      "  model: untuned %.3f ms, tuned %.3f ms: %.2fx (medians of %d alternating blocks of "
      "runs; tuned faster in %d of them)\n",
      sbs.a_ms, sbs.b_ms, sbs.a_ms / sbs.b_ms, sbs.blocks, sbs.b_faster);
  return 0;
}

}  // namespace

Action add_tune(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "tune",
      "Search each kernel's schedule on this machine; keep the best in the tuning database");
  auto o = std::make_shared<TuneFlags>();
  sub->add_option("MODEL", o->net, "network file (.cnn, .keras, .h5, .json, .onnx)");
  sub->add_option("--budget", o->budget, "time to spend (90s, 15m, 1h)");
  sub->add_option("--batch", o->batch, "batch size")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option("--threads", o->threads, "worker threads (0: one per core)")
      ->check(CLI::Range(0, 256));
  sub->add_option("--seed", o->seed, "seed for the search, the weights and the input");
  sub->add_option(
      "--curve", o->curve,
      "write the tuning curve (best model time against tuning time) as PNG (SVG if NAME.svg)");
  sub->add_flag("--no-cost-model", o->no_cost_model,
                "measure the search's proposals as they come, without the learned model's ranking");
  auto* seeds =
      sub->add_option("--seeds", o->seeds,
                      "Halide's autoschedulers measured first as seeds (default: mullapudi2016,"
                      "adams2019 on a CPU, anderson2021 on a GPU; adams2019 and anderson2021 "
                      "only on workloads with 4 minutes of budget or more), or none")
          ->delimiter(',')
          ->check(CLI::IsMember({"adams2019", "mullapudi2016", "anderson2021", "none"}));
  sub->add_option("--build-jobs", o->build_jobs,
                  "candidates compiled at once before they are measured one by one (0: one per "
                  "core; 1: each compiled by the measuring worker)")
      ->check(CLI::Range(0, 256));
  sub->add_flag("--alone", o->alone,
                "time each candidate kernel alone, not inside a run of the whole model");
  sub->add_flag("--worker", o->worker,
                "measure candidates sent as JSON lines on stdin (the tuner starts this)");
  add_pass_flags(*sub, o->passes);
  return [o, seeds] {
    o->seeds_given = seeds->count() > 0;
    return tune(*o);
  };
}

}  // namespace cnnc::tools
