#pragma once
// Using what was learned: each kernel of an optimised graph takes the best record of the
// tuning database for this hardware, target and thread count, or keeps the tiling pass's
// schedule. A record from other hardware is never applied.
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/target.h"

namespace cnnc::tuner {

// One line per kernel: which schedule it runs and why.
struct Explanation {
  std::string layer, schedule, why;
};

// Applies the records of the database at `db_path` (nothing when the file does not exist) to
// the graph, whose kernels run `micro_batch` images at a time on `threads` threads.
std::vector<Explanation> apply_records(ir::Graph& g, const std::string& db_path,
                                       const ir::Target& target, int threads, int64_t micro_batch);

}  // namespace cnnc::tuner
