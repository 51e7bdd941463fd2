#pragma once
#include "ir/graph.h"

namespace cnnc::passes {

// Fuses into each anchor the chain of consumers an epilogue can compute while the result is
// still in registers, decided by the anchor's fusion pattern (ir::epilogue_rule). An
// out-elementwise-fusable op (conv2d, dense, pooling) takes a two-input add (the residual
// connection: the add's other input becomes the layer's last input), then an activation; a
// broadcast op (a batchnorm/affine that could not fold into a conv, add, multiply) takes an
// activation, so BN -> ReLU (DenseNet, pre-activation ResNets) is one pass over memory.
// A link joins only when the value before it has no other reader and is not a graph output;
// the fused layer keeps the anchor's name and takes the place of the chain's last node.
ir::Graph fuse_epilogues(ir::Graph g);

}  // namespace cnnc::passes
