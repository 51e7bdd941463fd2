#pragma once
// Measuring one candidate schedule of a workload, safely: in a worker process (`cnnc tune
// --worker`, JSON lines on its stdin and stdout) that the tuner restarts when a candidate
// crashes it or overruns its time limit, so a bad candidate costs one trial, never the run.
// Every candidate's output is checked against the reference before its time counts.
#include <sys/types.h>
#include <string>
#include <vector>

#include "ir/schedule.h"

namespace cnnc::tuner {

struct Request {
  std::string net;  // tuner::Workload::net
  int64_t batch = 1;
  std::string schedule;  // ir::to_text
  std::string target = "host";
  int threads = 0;
  int repeats = 10;     // timed runs, at least
  double min_ms = 200;  // timed for at least this long
  // In the model's context: the whole model (the network text of the optimised graph, with
  // its schedules) is run with the candidate on every layer named here, and the time is theirs
  // inside the run (caches as the layers before left them), per layer. Empty: the kernel alone.
  std::string context;
  std::vector<std::string> layers;
  // Only compile the candidate into the kernel disk cache (a builder's job: candidates compile
  // in parallel, then the measuring worker finds them there); nothing runs or is timed.
  bool build_only = false;
};

struct Measurement {
  bool ok = false;
  double ms = 0;     // median of the timed runs
  double noise = 0;  // (p90 - p10) / median
  double max_rel_error = 0;
  std::string error;  // why it failed (a schedule that does not fit, a wrong result, a crash)
};

// The q-quantile of `v`, interpolated between its neighbours (q = 0.5: the median).
double quantile(std::vector<double> v, double q);
// The middle of `v` sorted, the upper one of an even count: a time that was measured.
double median(std::vector<double> v);

// The measurement itself, in this process (what the worker runs).
Measurement measure_here(const Request& r);

// The worker's loop: one JSON request per line in, one JSON result per line out, until EOF.
int serve_worker();

// A worker process of this same binary, restarted when it dies or times out.
class Worker {
 public:
  // `exe`: the cnnc binary to run as `exe tune --worker` (this process's own by default); or
  // the whole command line of a process that serves the same protocol (serve_worker), such as
  // `python -m cnnc._worker`.
  explicit Worker(std::string exe = "/proc/self/exe") : argv_{std::move(exe), "tune", "--worker"} {}
  explicit Worker(std::vector<std::string> argv) : argv_(std::move(argv)) {}
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Measures in the worker; a crash or a timeout (seconds) is a failed Measurement.
  Measurement measure(const Request& r, double timeout_s) {
    send(r);
    return receive(timeout_s);
  }
  // The same in two halves, so that several workers can work at once: send a request to each,
  // then receive each one's answer.
  void send(const Request& r);
  Measurement receive(double timeout_s);
  // The worker process, for tests that kill it (0 when none is running).
  pid_t pid() const { return pid_; }

 private:
  void start();
  void stop();
  std::vector<std::string> argv_;
  pid_t pid_ = 0;
  int to_ = -1, from_ = -1;
  std::string pending_;  // bytes read past the last line
  std::string send_error_;  // why the last request did not reach the worker
};

}  // namespace cnnc::tuner
