#include "tuner/tune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <set>
#include <sstream>

#include "ir/error.h"
#include "ir/text.h"
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

TuneResult tune(const ir::Graph& optimized, const TuneOptions& opts) {
  const auto start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  Database db(opts.db_path);
  const std::string fp = fingerprint(opts.target);
  const std::vector<Workload> work = workloads(optimized, opts.micro_batch);
  Worker worker;
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

  auto measure = [&](State& s, const std::string& schedule, const char* source) {
    Request req{s.w->net, s.w->batch, schedule, opts.target.name, opts.threads, 5, opts.min_ms};
    // Compiling takes seconds; a candidate ten times slower than the heuristic still finishes.
    const double limit =
        60 + 10 * (req.repeats + 2) * std::max(s.r.heuristic_ms, opts.min_ms) * 1e-3;
    const Measurement m = worker.measure(req, limit);
    Record rec;
    rec.fingerprint = fp;
    rec.workload = s.w->key;
    rec.target = opts.target.name;
    rec.threads = opts.threads;
    rec.cnnc_version = cnnc_version();
    rec.halide_version = halide_version();
    rec.schedule = schedule;
    rec.source = source;
    rec.ok = m.ok;
    rec.ms = m.ok ? m.ms : 0;
    rec.noise = m.ok && std::isfinite(m.noise) ? m.noise : 0;
    rec.heuristic_ms = m.ok && schedule == s.r.heuristic ? m.ms : s.r.heuristic_ms;
    rec.error = m.error.substr(0, 1000);
    rec.date = now_utc();
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

  // Every workload's heuristic schedule first: the baseline, and each one's share of the time.
  for (State& s : states)
    if (s.r.heuristic_ms == 0 && !s.tried.count(s.r.heuristic))
      measure(s, s.r.heuristic, "heuristic");
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
    const auto ws = Clock::now();
    const ir::Node& node = s.graph.node(s.graph.size() - 1);
    int stale = 0;
    while (std::chrono::duration<double>(Clock::now() - ws).count() < slice &&
           elapsed() < opts.budget_s && stale < 50) {
      // Evolution: mutate one of the best four (tournament), or a random candidate (1 in 4).
      std::sort(s.good.begin(), s.good.end());
      ir::Schedule candidate;
      if (s.good.empty() || std::uniform_int_distribution<int>(0, 3)(rng) == 0) {
        candidate = random_schedule(s.graph, node, opts.target, rng);
      } else {
        const auto& parent = s.good[std::uniform_int_distribution<size_t>(
            0, std::min<size_t>(4, s.good.size()) - 1)(rng)];
        ir::Schedule p;
        std::string why;
        ir::parse_schedule(parent.second, p, why);
        candidate = mutate(p, s.graph, node, opts.target, rng);
      }
      const std::string text = ir::to_text(candidate);
      if (s.tried.count(text)) {
        ++stale;  // the space near the best is exhausted
        continue;
      }
      stale = 0;
      measure(s, text, "search");
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
    }
    s.r.seconds = std::chrono::duration<double>(Clock::now() - ws).count();
  }
  for (State& s : states) {
    std::sort(s.good.begin(), s.good.end());
    s.r.best_ms = s.good.empty() ? 0 : s.good.front().first;
    s.r.best = s.good.empty() ? s.r.heuristic : s.good.front().second;
    result.workloads.push_back(s.r);
  }
  return result;
}

}  // namespace cnnc::tuner
