#pragma once
// The native network format (.cnn): the IR's textual form, documented in docs/format.md.
#include <string>

#include "ir/graph.h"

namespace cnnc::frontend::native {

ir::Graph load(const std::string& path, int64_t batch);

}  // namespace cnnc::frontend::native
