#pragma once
#include "ir/graph.h"

namespace cnnc::passes {

// Bypasses dropout and augment layers, which are the identity at inference: their users read
// their input.
// Safe: the value is unchanged, only a copy (or view) disappears.
ir::Graph remove_identities(ir::Graph g);

}  // namespace cnnc::passes
