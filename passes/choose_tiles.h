#pragma once
#include "ir/graph.h"
#include "ir/target.h"

namespace cnnc::passes {

struct TilingOptions {
  ir::Target target;  // the CPU facts: vector lanes and registers, L1
  // Images per kernel call (the runtime's micro-batch), which sets a dense layer's rows;
  // 0: the graph's batch.
  int64_t kernel_batch = 0;
  bool pack_weights = true;  // false: every schedule reads weights in their stored layout
  // true: 3x3 stride-1 convs as Winograd F(2x2,3x3) where it pays. Training turns it on; at
  // inference it is opt-in (--winograd): its rounding is a few times a direct conv's, which
  // models that amplify rounding show (EfficientNetV2B1 against Keras: 5.4e-5 -> 1.3e-4), and
  // its gain at batch 1 was within noise (ResNet50).
  bool winograd = false;
};

// Records a schedule on every kernel that has none (ir::Schedule): for a conv2d or dense the
// register tile, reduction chunk, rows per task and weight packing, from the layer's shapes, the
// target's vector registers and its L1 size; for pooling and the pointwise kernels the vector
// width and rows per task. Safe: a schedule changes how a layer is computed, not what.
ir::Graph choose_tiles(ir::Graph g, const TilingOptions& opts);

// The schedule choose_tiles gives one layer.
ir::Schedule tile_schedule(const ir::Graph& g, const ir::Node& n, const TilingOptions& opts);

// The Winograd F(m x m, 3x3) schedule choose_tiles would give a 3x3 stride-1 ungrouped conv on
// a CPU (m = 2; or its F(4x4, 3x3) with m = 4), whether or not it would choose it (the tuner
// measures both early: the rule is one machine's reading); an empty schedule (kind none) for any
// other layer.
ir::Schedule winograd_alternative(const ir::Graph& g, const ir::Node& n, const TilingOptions& opts,
                                  int m = 2);

}  // namespace cnnc::passes
