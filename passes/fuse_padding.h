#pragma once
#include "ir/graph.h"

namespace cnnc::passes {

// Folds a zeropadding2d into the conv2d that is its only reader: the conv pads by the sum,
// reading the unpadded input, so the padded copy is never written. Exact: both pad with zeros.
ir::Graph fuse_padding(ir::Graph g);

}  // namespace cnnc::passes
