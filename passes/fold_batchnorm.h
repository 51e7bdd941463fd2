#pragma once
#include "ir/graph.h"

namespace cnnc::passes {

// Folds an inference BatchNorm (or a per-channel Affine) into the Conv2D or Dense that is its
// only producer: the layer's kernel is scaled per output channel and its bias shifted, so the
// normalisation costs nothing at run time. Exact up to float rounding (the fold is computed in
// double). A producer read by anything else, or that is a graph output, keeps its BatchNorm.
// Otherwise a normalisation whose only reader is a Conv2D that pads nothing, or a Dense, folds
// into that reader instead: its weights scaled per input channel, its bias shifted by the
// shifts seen through the weights (a padded border would be zero after the normalisation,
// which no bias reproduces, so a padding conv keeps its BatchNorm).
ir::Graph fold_batchnorm(ir::Graph g);

}  // namespace cnnc::passes
