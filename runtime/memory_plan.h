#pragma once
// Memory planning: every value a kernel writes gets an offset in one arena, and two values share
// bytes only when their lifetimes do not overlap (liveness-based reuse).
#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace cnnc::runtime {

struct MemoryPlan {
  static constexpr int64_t kAlignment = 64;  // bytes: a cache line, a full AVX-512 vector
  std::vector<int64_t> offset;               // per node, in bytes; -1 for views (no storage)
  std::vector<int64_t> bytes;                // per node: its buffer's size (0 for views)
  std::vector<int> first, last;              // per node: the steps its buffer is live (inclusive)
  int64_t arena_bytes = 0;                   // the arena: peak activation memory with reuse
  int64_t unshared_bytes = 0;                // what one buffer per value would take
};

// Plans the buffers of `g`'s non-view nodes (codegen::is_view). A view's readers keep the
// viewed buffer alive; graph inputs live throughout, graph outputs to the end. Greedy by
// size (largest first, lowest offset that fits beside the live ones), as TFLite's planner.
// reuse = false gives every buffer its own bytes (to measure what reuse saves).
MemoryPlan plan_memory(const ir::Graph& g, bool reuse = true);

}  // namespace cnnc::runtime
