#pragma once
#include "ir/graph.h"

namespace cnnc::passes {

// A strided 1x1 conv2d without padding reads one pixel in every stride: it becomes a 1x1
// maxpool2d with that stride (a copy of those pixels, named INPUT_subsample_SxS, one per input
// and stride, shared by the convs that read it) and a stride-1 1x1 conv2d of the copy. The
// stride-1 conv's register tiles run on across rows (ir::tile_spans_rows) and read pixels one
// after another: a strided tile reads pixels stride x channels floats apart, which for 512 or
// more channels puts all of them in one L1 set on x86 (4 KiB a way).
// Then the subsampling moves up: where it reads a stride-1, unpadded 1x1 conv2d that nothing
// else reads, that conv computes only the pixels read, from subsampled copies of its input and
// of its residual (ResNet's last conv of a stage, whose output the next stage reads at stride
// 2: a quarter of its work). Exact: a 1x1 conv and its epilogue compute each pixel on its own.
ir::Graph subsample_strided_convs(ir::Graph g);

}  // namespace cnnc::passes
