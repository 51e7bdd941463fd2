#pragma once
// cnnc tune: each distinct workload of a model searched for its fastest schedule on this
// hardware, the largest share of model time first, within a time budget; every measurement
// committed to the tuning database as it is taken, so a tune killed at any moment resumes.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/target.h"

namespace cnnc::tuner {

struct TuneOptions {
  double budget_s = 900;
  std::string db_path;
  ir::Target target;
  int threads = 0;  // resolved (> 0)
  int64_t micro_batch = 1;
  uint64_t seed = 1;
  double min_ms = 150;     // each candidate timed for at least this long
  bool cost_model = true;  // candidates ranked by the learned model before they are measured
  // Halide's autoschedulers measured first on each workload, as seeds of the search (schedule
  // kinds: adams2019, mullapudi2016; anderson2021 for a GPU). Adams2019 takes 10-80 s to
  // schedule a conv on 2 cores (81 s for ResNet50's 14x14x256 3x3 on Zen 3; Anderson2021
  // longer), and where it seeded a conv it was far slower than the heuristic (that 3x3: 5.8x
  // on Zen 4, 60x on Zen 3), so these two seed only workloads whose share of the budget is at
  // least kSlowSeedSeconds: their time stays under a third of the search's.
  std::vector<std::string> seeds = {"mullapudi2016", "adams2019"};
  static constexpr double kSlowSeedSeconds = 240;
  // Time each candidate inside a run of the whole model (its layers' time there, caches as the
  // layers before left them) rather than alone.
  bool in_context = true;
  // Other schedules of a workload's layer to measure before its search (cnnc tune gives the
  // tiling pass's Winograd alternative of a 3x3 conv: the search draws that kind rarely).
  std::function<std::vector<ir::Schedule>(const ir::Graph&, const ir::Node&)> alternatives;
  // Processes compiling candidates in parallel before they are measured (0: one per core; 1:
  // none, the measuring worker compiles each candidate itself). Always 1 for a GPU target.
  int build_jobs = 0;
  // The measuring process's command line (tuner::Worker); empty: this binary's `tune --worker`.
  std::vector<std::string> worker;
  // Called after each trial: workload i of n, trials so far, the best and heuristic times.
  std::function<void(const std::string& line)> progress;
};

struct WorkloadResult {
  std::string key;
  std::vector<std::string> layers;
  // Medians of the heuristic's and the recheck winner's measurements, taken alternately at the end.
  double heuristic_ms = 0, best_ms = 0, recheck_best_ms = 0;
  std::string heuristic, best;  // schedules
  std::string verified;  // the recheck's winner (a contender, or the heuristic), if rechecked
  int trials = 0, failed = 0;   // this run's and earlier runs' (resumed)
  double seconds = 0;           // spent on it in this run
};

struct TuneResult {
  std::vector<WorkloadResult> workloads;
  std::vector<std::pair<double, double>> curve;  // (tuning seconds, best model time estimate ms)
};

TuneResult tune(const ir::Graph& optimized, const TuneOptions& opts);

// What a workload's recheck measures again beside its heuristic: of the schedules measured
// (time, schedule), the fastest of each schedule kind (tile, winograd, ...), other than the
// heuristic, within 1.5x of the heuristic's time, with that time. A kind measured once in a slow
// moment of the machine gets a second and third chance; kinds far behind do not cost the
// recheck's time.
std::vector<std::pair<double, std::string>> recheck_contenders(
    std::vector<std::pair<double, std::string>> measured, const std::string& heuristic,
    double heuristic_ms);

// Alternating rounds of a workload's recheck: three fresh readings of each schedule, so one
// slow moment of the machine cannot decide its median.
constexpr int kRecheckRounds = 3;

// The recheck's verdict from its readings (schedule -> the recheck's times, ms): the schedule
// with the lowest median, the heuristic unless another's median beats its own, with that median.
std::pair<std::string, double> recheck_verdict(
    const std::map<std::string, std::vector<double>>& readings, const std::string& heuristic);

}  // namespace cnnc::tuner
