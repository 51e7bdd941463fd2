#pragma once
// Op kinds, their attribute structs and static facts, all generated from ops.def.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <variant>

#include "ir/types.h"

namespace cnnc::ir {

// Height x width pair (kernel size, strides, dilation).
struct Pair {
  int64_t h = 1, w = 1;
  bool operator==(const Pair&) const = default;
};

// valid: no padding; same: Keras' rule (out = ceil(in / stride), the odd pixel at bottom/right);
// explicit: the four amounts given.
struct Padding {
  enum Mode { Valid, Same, Explicit } mode = Valid;
  int64_t top = 0, bottom = 0, left = 0, right = 0;
  bool operator==(const Padding&) const = default;
};

// What a window that does not tile the input exactly means: an error (exact, our default, as the
// lecture says to avoid such cases) or dropping the last partial window (floor, Keras' behaviour).
enum class Rounding { Exact, Floor };

enum class OpKind;

// What a layer does to its result before storing it, set by the fusion pass so the result is
// finished while it is still in registers: add the layer's second input (a residual connection;
// conv2d and dense only), then apply an activation op (is_epilogue_activation, defaults).
struct Epilogue {
  bool add = false;
  bool has_activation = false;
  OpKind activation{};
  bool operator==(const Epilogue&) const = default;
};

// How a conv2d or dense kernel is tiled: plain data, proposed by the tiling pass
// (passes/choose_tiles) from shapes, registers and cache sizes, applied by codegen, and meant to
// be searched by the tuner. `none` (the default): codegen's plain schedule, vectorised over
// channels and parallel over rows, with no register tiling.
struct Schedule {
  enum Kind { None, Tile, Gemv, Stream } kind = None;
  int64_t vector = 0;  // lanes per vector
  // tile: a register tile of `channels` output channels x `pixels` of a row, the reduction in
  //   chunks of `chunk` input channels (0: depthwise, no chunks), `rows` output rows per task;
  // gemv: `channels` output channels per task held in registers (matrix-vector shape);
  // stream: `channels` output channels per task, accumulators in L1, weights in storage order.
  int64_t channels = 0, pixels = 0, chunk = 0, rows = 0;
  // tile, 1: every tap inside the tile (the whole reduction while the tile is in registers),
  // for convs with few input channels; 0: each chunk and tap swept over a row of tiles.
  int64_t taps_inside = 0;
  // Output channels per block of pre-packed weights (Kernel::weight_block); 0: stored layout.
  int64_t pack = 0;
  bool operator==(const Schedule&) const = default;
};

// Attribute structs. visit() lists the fields once, in printing order, for the printer, the
// parser and equality; `required` fields have no default and must be written.
constexpr bool kRequired = true;

struct NoAttrs {
  template <class V> void visit(V&) {}
  bool operator==(const NoAttrs&) const = default;
};
struct InputAttrs {
  Shape shape;
  template <class V> void visit(V& v) { v("shape", shape, kRequired); }
  bool operator==(const InputAttrs&) const = default;
};
struct Conv2DAttrs {
  int64_t filters = 0;
  Pair kernel;
  Pair strides;
  Padding padding;
  Pair dilation;
  int64_t groups = 1;
  bool use_bias = true;
  Rounding round = Rounding::Exact;
  Epilogue epilogue;
  Schedule schedule;
  template <class V> void visit(V& v) {
    v("filters", filters, kRequired);
    v("kernel", kernel, kRequired);
    v("strides", strides);
    v("padding", padding);
    v("dilation", dilation);
    v("groups", groups);
    v("use_bias", use_bias);
    v("round", round);
    v("epilogue", epilogue);
    v("schedule", schedule);
  }
  bool operator==(const Conv2DAttrs&) const = default;
};
struct DenseAttrs {
  int64_t units = 0;
  bool use_bias = true;
  Epilogue epilogue;
  Schedule schedule;
  template <class V> void visit(V& v) {
    v("units", units, kRequired);
    v("use_bias", use_bias);
    v("epilogue", epilogue);
    v("schedule", schedule);
  }
  bool operator==(const DenseAttrs&) const = default;
};
struct Pool2DAttrs {
  Pair pool;
  Pair strides{0, 0};  // 0x0: the pool size, as in Keras
  Padding padding;
  Rounding round = Rounding::Exact;
  template <class V> void visit(V& v) {
    v("pool", pool, kRequired);
    v("strides", strides);
    v("padding", padding);
    v("round", round);
  }
  Pair effective_strides() const { return strides.h == 0 ? pool : strides; }
  bool operator==(const Pool2DAttrs&) const = default;
};
struct GlobalPoolAttrs {
  bool keepdims = false;
  template <class V> void visit(V& v) { v("keepdims", keepdims); }
  bool operator==(const GlobalPoolAttrs&) const = default;
};
struct BatchNormAttrs {
  float epsilon = 1e-3f;  // Keras' default
  Epilogue epilogue;      // an activation only (fuse_epilogues)
  template <class V> void visit(V& v) {
    v("epsilon", epsilon);
    v("epilogue", epilogue);
  }
  bool operator==(const BatchNormAttrs&) const = default;
};
struct AffineAttrs {
  Epilogue epilogue;  // an activation only (fuse_epilogues)
  template <class V> void visit(V& v) { v("epilogue", epilogue); }
  bool operator==(const AffineAttrs&) const = default;
};
struct LeakyReLUAttrs {
  float alpha = 0.3f;  // Keras' default negative slope
  template <class V> void visit(V& v) { v("alpha", alpha); }
  bool operator==(const LeakyReLUAttrs&) const = default;
};
// Keras' ReLU: max_value above, the identity from threshold, a slope below. The defaults are
// max(x, 0), so a plain `relu` prints without attributes.
struct ReLUAttrs {
  float max_value = std::numeric_limits<float>::infinity();
  float negative_slope = 0.f;
  float threshold = 0.f;
  template <class V> void visit(V& v) {
    v("max_value", max_value);
    v("negative_slope", negative_slope);
    v("threshold", threshold);
  }
  bool operator==(const ReLUAttrs&) const = default;
};
struct PadAttrs {
  Padding pad{Padding::Explicit, 1, 1, 1, 1};
  template <class V> void visit(V& v) { v("pad", pad); }
  bool operator==(const PadAttrs&) const = default;
};
struct CropAttrs {
  Padding crop{Padding::Explicit, 0, 0, 0, 0};
  template <class V> void visit(V& v) { v("crop", crop); }
  bool operator==(const CropAttrs&) const = default;
};
// The shape without the batch: HxWxC or C.
struct ReshapeAttrs {
  Shape shape;
  template <class V> void visit(V& v) { v("shape", shape, kRequired); }
  bool operator==(const ReshapeAttrs&) const = default;
};
struct DropoutAttrs {
  float rate = 0.5f;
  template <class V> void visit(V& v) { v("rate", rate); }
  bool operator==(const DropoutAttrs&) const = default;
};

enum class OpKind {
#define CNNC_OP(Name, text, Attrs, Pattern, min_in, max_in, doc) Name,
#include "ir/ops.def"
#undef CNNC_OP
};

constexpr int kNumOps = 0
#define CNNC_OP(Name, text, Attrs, Pattern, min_in, max_in, doc) +1
#include "ir/ops.def"
#undef CNNC_OP
    ;

enum class PatternKind { ElemWise, Broadcast, Injective, Reduction, OutEWiseFusable, Opaque };

using Attrs = std::variant<NoAttrs, InputAttrs, Conv2DAttrs, DenseAttrs, Pool2DAttrs,
                           GlobalPoolAttrs, BatchNormAttrs, AffineAttrs, LeakyReLUAttrs, ReLUAttrs, PadAttrs,
                           CropAttrs, ReshapeAttrs, DropoutAttrs>;

struct OpInfo {
  OpKind kind;
  std::string_view text;  // the name in the network format
  PatternKind pattern;
  int min_inputs, max_inputs;
  std::string_view doc;
};

const OpInfo& op_info(OpKind k);
// Finds an op by its format name; nullptr when unknown.
const OpInfo* find_op(std::string_view text);
// The format names of all ops, comma separated (for "accepted are ..." messages).
std::string op_names();
// A default-constructed attribute struct of the op's kind.
Attrs default_attrs(OpKind k);
const char* pattern_name(PatternKind p);
// The activations a conv2d/dense epilogue can apply (relu only with its default attributes).
bool is_epilogue_activation(OpKind k);
// The schedule of a conv2d or dense node's attributes; nullptr for other ops.
const Schedule* schedule_of(const Attrs& a);
Schedule* schedule_of(Attrs& a);
// The epilogue of a conv2d, dense, batchnorm or affine node's attributes; nullptr for other ops.
// A batchnorm's or affine's epilogue is an activation only.
const Epilogue* epilogue_of(const Attrs& a);
Epilogue* epilogue_of(Attrs& a);

}  // namespace cnnc::ir
