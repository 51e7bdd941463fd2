#pragma once
// Reads a network description into an ir::Graph, choosing the reader by file extension.
#include <string>

#include "ir/graph.h"

namespace cnnc::frontend {

// Throws cnnc::Error naming the file (and line and layer) on any problem.
ir::Graph load(const std::string& path, int64_t batch = 1);

// Reads a whole file, refusing unreadable, missing or oversized ones with a clear message.
std::string read_file(const std::string& path, size_t max_bytes);

}  // namespace cnnc::frontend
