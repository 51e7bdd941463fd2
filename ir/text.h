#pragma once
// The textual form of a graph, which is also the native network format (docs/format.md).
// print() writes the canonical form: every layer on one line with its non-default attributes,
// inputs written out where they are not the previous layer, the inferred shape as a comment.
// parse(print(g)) prints identically.
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace cnnc::ir {

std::string print(const Graph& g);
// A layer's non-default attributes as printed (" filters=64 kernel=3x3 ..."), then its
// epilogue and schedule.
std::string print_attrs(const Node& n);
// What a layer's kernel computes: op, attributes, epilogue, input/output/weight shapes; not its
// schedule, names or weight values. Layers with equal keys compute the same function, so the
// tuner searches schedules per workload key, and a kernel compiled for a key and a schedule
// serves every such layer.
std::string workload_key(const Graph& g, const Node& n);

// Parses the network format. `source` names the file in messages ("file:line: ...").
// Throws cnnc::Error on any malformed line, unknown layer or attribute, or impossible shape.
Graph parse(std::string_view text, const std::string& source, int64_t batch = 1);

// Checks a whole graph: names, order, arity, types and weight shapes (used between passes).
void verify(const Graph& g);

}  // namespace cnnc::ir
