#pragma once
#include "ir/graph.h"

namespace cnnc::passes {

// Fuses into each conv2d/dense (an out-elementwise-fusable anchor) the chain of consumers an
// epilogue can compute while the result is still in registers: a two-input add (the residual
// connection: the add's other input becomes the layer's second input), then an activation.
// A link joins only when the value before it has no other reader and is not a graph output;
// the fused layer keeps the anchor's name and takes the place of the chain's last node.
ir::Graph fuse_epilogues(ir::Graph g);

}  // namespace cnnc::passes
