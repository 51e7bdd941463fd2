#include "tuner/measure.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "codegen/compile.h"
#include "ir/error.h"
#include "ir/text.h"
#include "runtime/executor.h"
#include "runtime/reference/reference.h"
#include "runtime/weights.h"

extern char** environ;

namespace cnnc::tuner {

namespace {

using Clock = std::chrono::steady_clock;

// Seeded uniform inputs in [lo, hi) for every input of the graph.
std::vector<ir::Tensor> uniform_inputs(const ir::Graph& g, uint64_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::vector<ir::Tensor> inputs;
  for (ir::NodeId id : g.inputs()) {
    ir::Tensor t(g.node(id).type.shape);
    for (auto& v : t.data)
      v = static_cast<float>(static_cast<double>(rng() >> 11) * 0x1.0p-53 * (hi - lo) + lo);
    inputs.push_back(std::move(t));
  }
  return inputs;
}

// A workload's weights, inputs and reference outputs, made once per worker.
struct Fixture {
  ir::Graph graph;
  std::vector<ir::Tensor> inputs, want;
};

const Fixture& fixture(const std::string& net, int64_t batch) {
  static std::map<std::string, Fixture> cache;
  const std::string key = std::to_string(batch) + "\n" + net;
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  Fixture f;
  f.graph = ir::parse(net, "workload", batch);
  runtime::init_weights(f.graph, 7);
  f.inputs = uniform_inputs(f.graph, 11, -1, 1);
  f.want = runtime::reference::run(f.graph, f.inputs);
  return cache.emplace(key, std::move(f)).first->second;
}

nlohmann::json to_json(const Measurement& m) {
  return {{"ok", m.ok},
          {"ms", m.ms},
          {"noise", m.noise},
          {"max_rel_error", m.max_rel_error},
          {"error", m.error}};
}

// The whole model with the candidate on the workload's layers, compiled once per candidate; the
// other kernels come from the kernel cache after the first.
std::unique_ptr<runtime::CompiledModel> in_context(const Request& r) {
  static std::map<std::string, ir::Graph> models;  // parsed and weighted once per worker
  const std::string key = std::to_string(r.batch) + "\n" + r.context;
  auto it = models.find(key);
  if (it == models.end()) {
    ir::Graph g = ir::parse(r.context, "model", r.batch);
    runtime::init_weights(g, 7);
    it = models.emplace(key, std::move(g)).first;
  }
  ir::Graph g = it->second;
  ir::Schedule s;
  std::string why;
  if (!ir::parse_schedule(r.schedule, s, why)) throw Error("schedule '" + r.schedule + "': " + why);
  for (const auto& name : r.layers)
    if (const ir::NodeId id = g.find(name); id >= 0) g.node(id).schedule = s;
  codegen::CompileOptions o;
  o.target = r.target;
  o.micro_batch = r.batch;
  auto m = std::make_unique<runtime::CompiledModel>(codegen::compile(std::move(g), o), r.threads);
  m->run(uniform_inputs(m->graph(), 13, 0, 1));
  return m;
}

// The workload's graph `g` (its layer last) compiled with the candidate's schedule.
codegen::Program compile_candidate(ir::Graph g, const Request& r) {
  std::string why;
  if (!ir::parse_schedule(r.schedule, g.node(g.size() - 1).schedule, why))
    throw Error("schedule '" + r.schedule + "': " + why);
  codegen::CompileOptions o;
  o.target = r.target;
  o.micro_batch = r.batch;
  return codegen::compile(std::move(g), o);
}

}  // namespace

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Measurement measure_here(const Request& r) {
  Measurement m;
  try {
    if (r.build_only) {
      // Compiled alone (or found in the disk cache), not run: no reference needed.
      ir::Graph g = ir::parse(r.net, "workload", r.batch);
      runtime::init_weights(g, 7);
      compile_candidate(std::move(g), r);
      m.ok = true;
      return m;
    }
    const Fixture& f = fixture(r.net, r.batch);
    runtime::CompiledModel model(compile_candidate(f.graph, r), r.threads);
    const auto got = model.run(f.inputs);
    // Differential: the candidate's output against the reference, relative to its largest value.
    for (size_t i = 0; i < got.size(); ++i) {
      double diff = 0, mag = 1;
      for (size_t k = 0; k < got[i].data.size(); ++k) {
        const double d = std::abs(double(got[i].data[k]) - double(f.want[i].data[k]));
        diff = std::isnan(d) ? INFINITY : std::max(diff, d);
        mag = std::max(mag, std::abs(double(f.want[i].data[k])));
      }
      m.max_rel_error = std::max(m.max_rel_error, diff / mag);
    }
    if (!(m.max_rel_error <= 1e-4))
      throw Error("wrong result: relative error " + std::to_string(m.max_rel_error) +
                  " against the reference");
    std::vector<double> ms;
    const auto start = Clock::now();
    auto more = [&] {
      return static_cast<int>(ms.size()) < r.repeats ||
             (std::chrono::duration<double, std::milli>(Clock::now() - start).count() < r.min_ms &&
              ms.size() < 100000);
    };
    if (r.context.empty()) {
      for (int i = 0; i < 2; ++i) model.rerun();  // warm-up
      while (more()) {
        const auto t0 = Clock::now();
        model.rerun();
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    } else {
      const std::unique_ptr<runtime::CompiledModel> model_ptr = in_context(r);
      runtime::CompiledModel& whole = *model_ptr;
      std::vector<size_t> mine;  // the kernels of the candidate's layers
      for (size_t k = 0; k < whole.kernels().size(); ++k) {
        const std::string& name = whole.graph().node(whole.kernels()[k].node).name;
        if (std::find(r.layers.begin(), r.layers.end(), name) != r.layers.end()) mine.push_back(k);
      }
      if (mine.empty()) throw Error("context: none of the workload's layers is in the model");
      std::vector<double> per;
      for (int i = 0; i < 2; ++i) whole.rerun_profiled(per);  // warm-up
      while (more()) {
        std::fill(per.begin(), per.end(), 0.0);
        whole.rerun_profiled(per);
        double t = 0;
        for (size_t k : mine) t += per[k];
        ms.push_back(t / static_cast<double>(mine.size()));
      }
    }
    m.ms = quantile(ms, 0.5);
    m.noise = m.ms > 0 ? (quantile(ms, 0.9) - quantile(ms, 0.1)) / m.ms : 0;
    m.ok = true;
  } catch (const std::exception& e) {
    m.ok = false;
    m.error = e.what();
  }
  return m;
}

int serve_worker() {
  std::string line;
  while (std::getline(std::cin, line)) {
    Measurement m;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("net") || !j["net"].is_string() || !j.contains("schedule") ||
        !j["schedule"].is_string()) {
      m.error =
          "a request is a JSON object with net, batch, schedule, target, threads, repeats, min_ms";
    } else {
      Request r;
      r.net = j["net"];
      r.schedule = j["schedule"];
      r.batch = j.value("batch", int64_t{1});
      r.target = j.value("target", std::string("host"));
      r.threads = j.value("threads", 0);
      r.repeats = j.value("repeats", 10);
      r.min_ms = j.value("min_ms", 200.0);
      r.context = j.value("context", std::string());
      r.build_only = j.value("build", false);
      if (j.contains("layers") && j["layers"].is_array())
        for (const auto& l : j["layers"])
          if (l.is_string()) r.layers.push_back(l.get<std::string>());
      if (r.batch < 1 || r.batch > 4096 || r.threads < 0 || r.threads > 256 || r.repeats < 1 ||
          r.repeats > 100000 || !(r.min_ms >= 0 && r.min_ms <= 600000))
        m.error = "batch, threads, repeats or min_ms out of range";
      else
        m = measure_here(r);
    }
    std::cout << to_json(m).dump() << std::endl;
  }
  return 0;
}

Worker::~Worker() { stop(); }

void Worker::start() {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0)
    throw Error(std::string("tune: cannot make a pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  for (int fd : {in[0], in[1], out[0], out[1]}) posix_spawn_file_actions_addclose(&fa, fd);
  std::vector<std::string> args = argv_;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = posix_spawnp(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    pid_ = 0;
    throw Error(std::string("tune: cannot start a measuring worker: ") + std::strerror(rc));
  }
  to_ = in[1];
  from_ = out[0];
  pending_.clear();
}

void Worker::stop() {
  if (to_ >= 0) close(to_);
  if (from_ >= 0) close(from_);
  to_ = from_ = -1;
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = 0;
}

void Worker::send(const Request& r) {
  signal(SIGPIPE, SIG_IGN);  // a worker that died mid-request is an error, not a signal here
  send_error_.clear();
  if (pid_ == 0) start();
  const std::string line = nlohmann::json({{"net", r.net},
                                           {"batch", r.batch},
                                           {"schedule", r.schedule},
                                           {"target", r.target},
                                           {"threads", r.threads},
                                           {"repeats", r.repeats},
                                           {"min_ms", r.min_ms},
                                           {"context", r.context},
                                           {"layers", r.layers},
                                           {"build", r.build_only}})
                               .dump() +
                           "\n";
  for (size_t done = 0; done < line.size();) {
    const ssize_t n = write(to_, line.data() + done, line.size() - done);
    if (n <= 0) {
      stop();
      send_error_ = "the measuring worker died before the request";
      return;
    }
    done += static_cast<size_t>(n);
  }
}

Measurement Worker::receive(double timeout_s) {
  Measurement failed;
  if (!send_error_.empty() || pid_ == 0) {
    failed.error = send_error_.empty() ? "no request was sent to the worker" : send_error_;
    return failed;
  }
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (pending_.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{from_, POLLIN, 0};
    const int ready = left > 0 ? poll(&p, 1, static_cast<int>(left)) : 0;
    if (ready <= 0) {
      stop();
      failed.error = "timed out after " + std::to_string(static_cast<int>(timeout_s)) + " s";
      return failed;
    }
    char buf[4096];
    const ssize_t n = read(from_, buf, sizeof buf);
    if (n <= 0) {
      int status = 0;
      const pid_t dead = pid_;
      close(to_);
      close(from_);
      to_ = from_ = -1;
      waitpid(dead, &status, 0);
      pid_ = 0;
      failed.error = WIFSIGNALED(status) ? "the candidate crashed the worker (signal " +
                                               std::to_string(WTERMSIG(status)) + ")"
                                         : "the measuring worker exited";
      return failed;
    }
    pending_.append(buf, static_cast<size_t>(n));
  }
  const size_t nl = pending_.find('\n');
  const std::string reply = pending_.substr(0, nl);
  pending_.erase(0, nl + 1);
  nlohmann::json j = nlohmann::json::parse(reply, nullptr, false);
  if (!j.is_object()) {
    stop();
    failed.error = "the measuring worker answered something other than a result";
    return failed;
  }
  Measurement m;
  m.ok = j.value("ok", false);
  m.ms = j.value("ms", 0.0);
  m.noise = j.value("noise", 0.0);
  m.max_rel_error = j.value("max_rel_error", 0.0);
  m.error = j.value("error", std::string());
  return m;
}

}  // namespace cnnc::tuner
