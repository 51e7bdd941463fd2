#pragma once
// The schedule space of a workload: every field of its kernel kind's schedules, sampled at
// random and mutated one field at a time; a candidate is kept only if codegen would apply it.
#include <random>

#include "ir/graph.h"
#include "ir/target.h"

namespace cnnc::tuner {

// A random schedule that fits node `n` of `g` on the target (the heuristic one if none is
// found in a bounded number of draws).
ir::Schedule random_schedule(const ir::Graph& g, const ir::Node& n, const ir::Target& t,
                             std::mt19937_64& rng);
// `s` with one field changed (or its kind, for convs of matrix-vector shape), fitting the node.
ir::Schedule mutate(const ir::Schedule& s, const ir::Graph& g, const ir::Node& n,
                    const ir::Target& t, std::mt19937_64& rng);

}  // namespace cnnc::tuner
