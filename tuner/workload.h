#pragma once
// A workload: one distinct kernel of a model (its workload key at the micro-batch the model
// runs), as a standalone network that can be compiled and timed alone with any schedule.
#include <string>
#include <vector>

#include "ir/graph.h"

namespace cnnc::tuner {

struct Workload {
  std::string key;         // ir::workload_key at `batch`
  std::string net;         // inputs + the one layer `L`, in the network format, no schedule
  int64_t batch = 1;       // images per kernel call (the model's micro-batch)
  ir::Schedule heuristic;  // what the tiling pass chose
  std::vector<std::string> layers;  // the model's layers with this key
  double flops = 0;                 // per call
};

// The distinct kernels of an optimised graph (its schedules recorded), in graph order; the
// graph is at its full batch, the kernels run `micro_batch` images at a time.
std::vector<Workload> workloads(const ir::Graph& g, int64_t micro_batch);

}  // namespace cnnc::tuner
