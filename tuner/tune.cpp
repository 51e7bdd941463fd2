#include "tuner/tune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "codegen/compile.h"
#include "ir/error.h"
#include "ir/text.h"
#include "tuner/cost_model.h"
#include "tuner/database.h"
#include "tuner/fingerprint.h"
#include "tuner/measure.h"
#include "tuner/search.h"
#include "tuner/workload.h"

namespace cnnc::tuner {

namespace {

using Clock = std::chrono::steady_clock;

std::string fmt_ms(double ms) {
  std::ostringstream os;
  os.precision(3);
  os << ms;
  return os.str();
}

}  // namespace

std::vector<std::pair<double, std::string>> recheck_contenders(
    std::vector<std::pair<double, std::string>> measured, const std::string& heuristic,
    double heuristic_ms) {
  std::sort(measured.begin(), measured.end());
  std::vector<std::pair<double, std::string>> contenders;
  std::set<std::string> kinds;  // those with a contender already
  for (const auto& [ms, sched] : measured)
    if (sched != heuristic && ms <= 1.5 * heuristic_ms &&
        kinds.insert(sched.substr(0, sched.find(':'))).second)
      contenders.push_back({ms, sched});
  return contenders;
}

std::pair<std::string, double> recheck_verdict(
    const std::map<std::string, std::vector<double>>& readings, const std::string& heuristic) {
  std::string best = heuristic;
  double best_ms = INFINITY;
  if (const auto h = readings.find(heuristic); h != readings.end() && !h->second.empty())
    best_ms = median(h->second);
  for (const auto& [sched, ms] : readings)
    if (sched != heuristic && !ms.empty() && median(ms) < best_ms)
      best = sched, best_ms = median(ms);
  return {best, best_ms};
}

TuneResult tune(const ir::Graph& optimized, const TuneOptions& opts) {
  const auto start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  Database db(opts.db_path);
  const std::string fp = fingerprint(opts.target);
  const std::vector<Workload> work = workloads(optimized, opts.micro_batch);
  Worker worker = opts.worker.empty() ? Worker() : Worker(opts.worker);
  // The model as the worker re-creates it for in-context timing (schedules included).
  const std::string context = opts.in_context ? ir::print(optimized) : std::string();
  std::mt19937_64 rng(opts.seed);
  TuneResult result;

  struct State {
    const Workload* w;
    ir::Graph graph;  // the workload alone, at its batch
    std::set<std::string> tried;
    std::vector<std::pair<double, std::string>> good;  // (ms, schedule), measured
    WorkloadResult r;
  };
  std::vector<State> states;
  for (const Workload& w : work) {
    State s{&w, ir::parse(w.net, "workload", w.batch), {}, {}, {}};
    s.r.key = w.key;
    s.r.layers = w.layers;
    s.r.heuristic = ir::to_text(w.heuristic);
    // Resume: what earlier runs measured counts, and is not measured again.
    for (const Record& rec : db.records(fp, w.key, opts.target.name, opts.threads)) {
      if (rec.cnnc_version != cnnc_version() || rec.halide_version != halide_version()) continue;
      s.tried.insert(rec.schedule);
      ++s.r.trials;
      if (!rec.ok) {
        ++s.r.failed;
        continue;
      }
      s.good.push_back({rec.ms, rec.schedule});
      if (rec.schedule == s.r.heuristic) s.r.heuristic_ms = rec.ms;
    }
    states.push_back(std::move(s));
  }

  // A record of this tune's key (hardware, workload, target, threads, versions) for a schedule.
  auto record_for = [&](const State& s, const std::string& schedule, const char* source) {
    Record r;
    r.fingerprint = fp;
    r.workload = s.w->key;
    r.target = opts.target.name;
    r.threads = opts.threads;
    r.cnnc_version = cnnc_version();
    r.halide_version = halide_version();
    r.schedule = schedule;
    r.source = source;
    r.date = now_utc();
    return r;
  };

  auto request = [&](const State& s, const std::string& schedule) {
    return Request{s.w->net, s.w->batch,  schedule, opts.target.name, opts.threads,
                   5,        opts.min_ms, context,  s.w->layers};
  };
  // A measurement (or a failed build) committed to the database and counted.
  auto commit = [&](State& s, const std::string& schedule, const char* source,
                    const Measurement& m) {
    Record rec = record_for(s, schedule, source);
    rec.ok = m.ok;
    rec.ms = m.ok ? m.ms : 0;
    rec.noise = m.ok && std::isfinite(m.noise) ? m.noise : 0;
    rec.heuristic_ms = m.ok && schedule == s.r.heuristic ? m.ms : s.r.heuristic_ms;
    rec.error = m.error.substr(0, 1000);
    db.add(rec);  // committed before the next candidate starts
    s.tried.insert(schedule);
    ++s.r.trials;
    if (!m.ok) {
      ++s.r.failed;
      return;
    }
    s.good.push_back({m.ms, schedule});
    if (schedule == s.r.heuristic) s.r.heuristic_ms = m.ms;
  };
  auto measure = [&](State& s, const std::string& schedule, const char* source) {
    const Request req = request(s, schedule);
    // Compiling takes seconds (in context, the first candidate also compiles or loads the rest
    // of the model's kernels); a candidate ten times slower than the heuristic still finishes.
    const double limit = (context.empty() ? 60 : 300) +
                         10 * (req.repeats + 2) * std::max(s.r.heuristic_ms, opts.min_ms) * 1e-3;
    commit(s, schedule, source, worker.measure(req, limit));
  };

  // Builders: one process per core compiles a batch of candidates at once into the kernel disk
  // cache, then the measuring worker times them one by one, loading each from there, with the
  // machine quiet (compiling beside a measurement would disturb it). Compiling is most of a
  // trial's time. GPU kernels are JIT-compiled in the measuring process, and without the disk
  // cache a kernel built elsewhere cannot be loaded: no builders then.
  const int jobs =
      opts.target.family == ir::Target::Gpu || !codegen::kernel_disk_cache_available() ? 1
      : opts.build_jobs > 0 ? opts.build_jobs
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::unique_ptr<Worker>> builders;
  for (int k = 0; jobs > 1 && k < jobs; ++k)
    builders.push_back(opts.worker.empty() ? std::make_unique<Worker>()
                                           : std::make_unique<Worker>(opts.worker));
  // Candidates compiled by the builders, up to one each at a time, then measured one by one; one
  // that did not compile is recorded as failed, with nothing to time (without builders the
  // measuring worker compiles each). `after(k)` runs once candidate k is recorded.
  struct Candidate {
    State* s;
    std::string schedule;
    const char* source;
  };
  auto try_all = [&](const std::vector<Candidate>& items,
                     const std::function<void(size_t)>& after = nullptr) {
    std::vector<Measurement> built(items.size());
    for (size_t first = 0; first < items.size(); first += std::max<size_t>(1, builders.size())) {
      const size_t end = std::min(items.size(), first + builders.size());
      for (size_t k = first; k < end; ++k) {
        Request req = request(*items[k].s, items[k].schedule);
        req.build_only = true;
        req.context.clear();  // a build needs the layer alone, not the model around it
        builders[k - first]->send(req);
      }
      for (size_t k = first; k < end; ++k) built[k] = builders[k - first]->receive(300);
    }
    for (size_t k = 0; k < items.size(); ++k) {
      const Candidate& c = items[k];
      if (builders.empty() || built[k].ok)
        measure(*c.s, c.schedule, c.source);
      else
        commit(*c.s, c.schedule, c.source, built[k]);
      if (after) after(k);
    }
  };

  // The learned model: every successful measurement, as time over its workload's heuristic.
  CostModel model;
  size_t trained_on = 0;
  auto learn = [&](State& s, const std::string& schedule, double ms) {
    ir::Schedule sc;
    std::string why;
    if (s.r.heuristic_ms <= 0 || !ir::parse_schedule(schedule, sc, why)) return;
    model.add(features(s.graph, s.graph.node(s.graph.size() - 1), sc), ms / s.r.heuristic_ms);
  };

  // The model's time as the tuner sees it: each kernel's best time times its uses.
  auto model_ms = [&] {
    double total = 0;
    for (const State& s : states) {
      double best = s.r.heuristic_ms;
      for (const auto& [ms, sc] : s.good) best = std::min(best, ms);
      total += best * static_cast<double>(s.w->layers.size());
    }
    return total;
  };

  // Every workload's heuristic schedule first: the baseline, and each one's share of the time
  // (compiled by the builders first; one that fails to build fails its measurement too).
  std::vector<Candidate> heuristics;
  for (State& s : states)
    if (s.r.heuristic_ms == 0 && !s.tried.count(s.r.heuristic))
      heuristics.push_back({&s, s.r.heuristic, "heuristic"});
  try_all(heuristics);
  result.curve.push_back({elapsed(), model_ms()});

  // The largest share of model time first; the budget split by share and re-planned after each.
  std::vector<State*> order;
  for (State& s : states) order.push_back(&s);
  auto share = [](const State* s) {
    return s->r.heuristic_ms * static_cast<double>(s->w->layers.size());
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](State* a, State* b) { return share(a) > share(b); });
  double total_share = 0;
  for (State* s : order) total_share += share(s);
  for (size_t i = 0; i < order.size(); ++i) {
    State& s = *order[i];
    const double left = opts.budget_s - elapsed();
    if (left <= 0 || total_share <= 0) break;
    const double slice = left * share(&s) / total_share;
    total_share -= share(&s);
    const auto started = Clock::now();
    const ir::Node& node = s.graph.node(s.graph.size() - 1);
    std::vector<Candidate> seeds;  // an autoscheduler takes seconds to minutes: built at once
    for (const std::string& seed : opts.seeds)
      if (!s.tried.count(seed) && (seed == "mullapudi2016" || slice >= opts.kSlowSeedSeconds) &&
          elapsed() < opts.budget_s)
        seeds.push_back({&s, seed, "autoscheduler"});
    if (opts.alternatives)
      for (const ir::Schedule& alt : opts.alternatives(s.graph, node))
        if (const std::string text = ir::to_text(alt); !s.tried.count(text))
          seeds.push_back({&s, text, "alternative"});
    try_all(seeds);
    // The search gets its whole slice after the seeds: the seeds' time comes out of the later
    // workloads' slices (re-planned from what is left), not out of this one's search. On Zen 3,
    // ResNet50's largest workload spent all of its 144 s on Mullapudi2016 and Adams2019 (12 and
    // 109 ms against the heuristic's 1.8) and was never searched.
    const auto ws = Clock::now();
    int stale = 0;
    while (std::chrono::duration<double>(Clock::now() - ws).count() < slice &&
           elapsed() < opts.budget_s && stale < 50) {
      // Evolution: mutate one of the best four (tournament), or a random candidate (1 in 4).
      std::sort(s.good.begin(), s.good.end());
      auto propose = [&] {
        if (s.good.empty() || std::uniform_int_distribution<int>(0, 3)(rng) == 0)
          return random_schedule(s.graph, node, opts.target, rng);
        const auto& parent = s.good[std::uniform_int_distribution<size_t>(
            0, std::min<size_t>(4, s.good.size()) - 1)(rng)];
        ir::Schedule p;
        std::string why;
        ir::parse_schedule(parent.second, p, why);
        return mutate(p, s.graph, node, opts.target, rng);
      };
      if (opts.cost_model && model.size() >= trained_on + 8) {
        model.train();
        trained_on = model.size();
      }
      // A batch of distinct new candidates, one per builder (one without builders).
      std::vector<Candidate> batch;
      auto is_new = [&](const std::string& text) {
        if (s.tried.count(text)) return false;
        for (const Candidate& b : batch)
          if (b.schedule == text) return false;
        return true;
      };
      while (batch.size() < std::max<size_t>(1, builders.size()) && stale < 50) {
        ir::Schedule candidate = propose();
        bool ranked = false;
        if (opts.cost_model && model.trained() &&
            std::uniform_int_distribution<int>(0, 7)(rng) != 0) {
          // Propose many, measure the one the model predicts fastest (one in eight stays a
          // plain proposal, so the model keeps seeing where it is wrong).
          std::vector<ir::Schedule> pool;
          std::vector<std::vector<float>> xs;
          for (int k = 0; k < 48; ++k) {
            ir::Schedule c = k ? propose() : candidate;
            if (!is_new(ir::to_text(c))) continue;
            xs.push_back(features(s.graph, node, c));
            pool.push_back(c);
          }
          if (!pool.empty()) {
            const std::vector<float> p = model.predict(xs);
            candidate = pool[std::min_element(p.begin(), p.end()) - p.begin()];
            ranked = true;
          }
        }
        const std::string text = ir::to_text(candidate);
        if (!is_new(text)) {
          ++stale;  // the space near the best is exhausted
          continue;
        }
        stale = 0;
        batch.push_back({&s, text, ranked ? "model" : "search"});
      }
      try_all(batch, [&](size_t k) {
        const std::string& text = batch[k].schedule;
        if (!s.good.empty() && s.good.back().second == text) learn(s, text, s.good.back().first);
        result.curve.push_back({elapsed(), model_ms()});
        if (opts.progress) {
          double best = s.r.heuristic_ms;
          for (const auto& [ms, sc] : s.good) best = std::min(best, ms);
          std::ostringstream os;
          os << "workload " << (i + 1) << "/" << order.size() << " (" << s.w->layers.front()
             << (s.w->layers.size() > 1 ? " +" + std::to_string(s.w->layers.size() - 1) : "")
             << "): " << s.r.trials << " trials, best " << fmt_ms(best) << " ms vs heuristic "
             << fmt_ms(s.r.heuristic_ms) << " ms; model " << fmt_ms(model_ms()) << " ms; "
             << static_cast<int>(opts.budget_s - elapsed()) << " s left";
          opts.progress(os.str());
        }
      });
    }
    // Recheck: the heuristic and the fastest schedule of each kind within 1.5x of it (its own
    // kind's included), measured again alternately, so that a gain is not a slow moment of the
    // machine during the heuristic's first measurement, nor a loss one during a kind's only
    // measurement (this VM has them: on Zen 3 ResNet50's 14x14x256 3x3 measured its Winograd
    // alternative once, in context, at 1.83 ms against the direct tile's 1.80; alone they run
    // 1.08-1.15 and 1.94-2.23). The verdict reads the recheck's readings only: a contender's
    // search time is the least of many noisy readings (low by selection), and the heuristic's
    // first reading, taken while the tune starts, ran a median 7-32% slow on Zen 3.
    const auto contenders = recheck_contenders(s.good, s.r.heuristic, s.r.heuristic_ms);
    if (!contenders.empty()) {
      std::map<std::string, std::vector<double>> readings;
      std::vector<std::string> in_turn{s.r.heuristic};
      for (const auto& c : contenders) in_turn.push_back(c.second);
      for (int k = 0; k < kRecheckRounds; ++k)
        for (const std::string& sched : in_turn) {
          const size_t before = s.good.size();
          measure(s, sched, "recheck");
          if (s.good.size() > before) readings[sched].push_back(s.good.back().first);
        }
      if (readings[s.r.heuristic].empty()) readings[s.r.heuristic] = {s.r.heuristic_ms};
      // The verdict, a record of its own that the database prefers.
      std::tie(s.r.verified, s.r.recheck_best_ms) = recheck_verdict(readings, s.r.heuristic);
      s.r.heuristic_ms = median(readings[s.r.heuristic]);
      Record v = record_for(s, s.r.verified, "verified");
      v.ms = s.r.recheck_best_ms;
      v.heuristic_ms = s.r.heuristic_ms;
      db.add(v);
    }
    s.r.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  }
  for (State& s : states) {
    std::sort(s.good.begin(), s.good.end());
    s.r.best_ms = s.good.empty()            ? 0
                  : s.r.recheck_best_ms > 0 ? s.r.recheck_best_ms
                                            : s.good.front().first;
    s.r.best = !s.r.verified.empty() ? s.r.verified
               : s.good.empty()      ? s.r.heuristic
                                     : s.good.front().second;
    result.workloads.push_back(s.r);
  }
  return result;
}

}  // namespace cnnc::tuner
