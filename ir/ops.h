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

// What a kernel does to its result before storing it, set by the fusion pass so the result is
// finished while it is still in registers: add the layer's last input (a residual connection),
// then apply an activation op (is_epilogue_activation, at its defaults). Which ops take which
// part is decided by their fusion pattern (epilogue_rule).
struct Epilogue {
  bool add = false;
  bool has_activation = false;
  OpKind activation{};
  bool operator==(const Epilogue&) const = default;
};

// Attribute structs. visit() lists the fields once, in printing order, for the printer, the
// parser and equality; `required` fields have no default and must be written.
constexpr bool kRequired = true;

struct NoAttrs {
  template <class V>
  void visit(V&) {}
  bool operator==(const NoAttrs&) const = default;
};
struct InputAttrs {
  Shape shape;
  template <class V>
  void visit(V& v) {
    v("shape", shape, kRequired);
  }
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
  template <class V>
  void visit(V& v) {
    v("filters", filters, kRequired);
    v("kernel", kernel, kRequired);
    v("strides", strides);
    v("padding", padding);
    v("dilation", dilation);
    v("groups", groups);
    v("use_bias", use_bias);
    v("round", round);
  }
  bool operator==(const Conv2DAttrs&) const = default;
};
struct DenseAttrs {
  int64_t units = 0;
  bool use_bias = true;
  template <class V>
  void visit(V& v) {
    v("units", units, kRequired);
    v("use_bias", use_bias);
  }
  bool operator==(const DenseAttrs&) const = default;
};
struct Pool2DAttrs {
  Pair pool;
  Pair strides{0, 0};  // 0x0: the pool size, as in Keras
  Padding padding;
  Rounding round = Rounding::Exact;
  template <class V>
  void visit(V& v) {
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
  template <class V>
  void visit(V& v) {
    v("keepdims", keepdims);
  }
  bool operator==(const GlobalPoolAttrs&) const = default;
};
struct BatchNormAttrs {
  float epsilon = 1e-3f;  // Keras' default
  template <class V>
  void visit(V& v) {
    v("epsilon", epsilon);
  }
  bool operator==(const BatchNormAttrs&) const = default;
};
struct AffineAttrs {
  template <class V>
  void visit(V&) {}
  bool operator==(const AffineAttrs&) const = default;
};
struct LeakyReLUAttrs {
  float alpha = 0.3f;  // Keras' default negative slope
  template <class V>
  void visit(V& v) {
    v("alpha", alpha);
  }
  bool operator==(const LeakyReLUAttrs&) const = default;
};
// Keras' ReLU: max_value above, the identity from threshold, a slope below. The defaults are
// max(x, 0), so a plain `relu` prints without attributes.
struct ReLUAttrs {
  float max_value = std::numeric_limits<float>::infinity();
  float negative_slope = 0.f;
  float threshold = 0.f;
  template <class V>
  void visit(V& v) {
    v("max_value", max_value);
    v("negative_slope", negative_slope);
    v("threshold", threshold);
  }
  bool operator==(const ReLUAttrs&) const = default;
};
struct PadAttrs {
  Padding pad{Padding::Explicit, 1, 1, 1, 1};
  template <class V>
  void visit(V& v) {
    v("pad", pad);
  }
  bool operator==(const PadAttrs&) const = default;
};
struct CropAttrs {
  Padding crop{Padding::Explicit, 0, 0, 0, 0};
  template <class V>
  void visit(V& v) {
    v("crop", crop);
  }
  bool operator==(const CropAttrs&) const = default;
};
// The shape without the batch: HxWxC or C.
struct ReshapeAttrs {
  Shape shape;
  template <class V>
  void visit(V& v) {
    v("shape", shape, kRequired);
  }
  bool operator==(const ReshapeAttrs&) const = default;
};
struct LayerNormAttrs {
  float epsilon = 1e-3f;  // Keras' default
  template <class V>
  void visit(V& v) {
    v("epsilon", epsilon);
  }
  bool operator==(const LayerNormAttrs&) const = default;
};
// Channels [begin, begin + size) of the last axis.
struct ChannelSliceAttrs {
  int64_t begin = 0, size = 1;
  template <class V>
  void visit(V& v) {
    v("begin", begin);
    v("size", size);
  }
  bool operator==(const ChannelSliceAttrs&) const = default;
};
struct DropoutAttrs {
  float rate = 0.5f;
  template <class V>
  void visit(V& v) {
    v("rate", rate);
  }
  bool operator==(const DropoutAttrs&) const = default;
};

// Training-time augmentation (identity at inference). Per image and step: a flip (each enabled
// axis with probability 1/2), a rotation by up to `rotate` of a turn either way, a scale of the
// sampled area in [1 - zoom, 1 + zoom] (more than 1: zoomed out, as Keras' positive factors), a
// shift of up to `translate` of the height and width either way.
struct AugmentAttrs {
  bool flip_h = false, flip_v = false;
  float rotate = 0, zoom = 0, translate = 0;
  // Photometric: contrast factor in [1 - contrast, 1 + contrast], brightness shift in
  // [-brightness, brightness] times the value range, the result clipped to the value range
  // (Keras' RandomContrast, RandomBrightness; their default range is 0..255).
  float contrast = 0, brightness = 0;
  float value_min = 0, value_max = 255;
  // Keras' RandomCrop: a window of this size (0x0: none) at a random place when training, in an
  // augment layer of its own (the next layers see its size only when training).
  Pair crop{0, 0};
  template <class V>
  void visit(V& v) {
    v("flip_h", flip_h);
    v("flip_v", flip_v);
    v("rotate", rotate);
    v("zoom", zoom);
    v("translate", translate);
    v("contrast", contrast);
    v("brightness", brightness);
    v("value_min", value_min);
    v("value_max", value_max);
    v("crop", crop);
  }
  bool geometric() const { return flip_h || flip_v || rotate > 0 || zoom > 0 || translate > 0; }
  bool photometric() const { return contrast > 0 || brightness > 0; }
  bool operator==(const AugmentAttrs&) const = default;
};
// The gradient of a maximum or minimum for one of its inputs (numbered from 0).
struct ExtremumGradAttrs {
  int64_t index = 0;
  bool minimum = false;
  template <class V>
  void visit(V& v) {
    v("index", index);
    v("minimum", minimum);
  }
  bool operator==(const ExtremumGradAttrs&) const = default;
};
// Training's photometric augmentation: with contrast, each channel's mean over the image is
// kept and the rest scaled; the result is clipped to [value_min, value_max].
struct RecolorAttrs {
  bool contrast = false;
  float value_min = 0, value_max = 255;
  template <class V>
  void visit(V& v) {
    v("contrast", contrast);
    v("value_min", value_min);
    v("value_max", value_max);
  }
  bool operator==(const RecolorAttrs&) const = default;
};
// A trainable weight's full shape (no batch dimension is added).
struct ParameterAttrs {
  Shape shape;
  template <class V>
  void visit(V& v) {
    v("shape", shape, kRequired);
  }
  bool operator==(const ParameterAttrs&) const = default;
};
// A conv2d's gradients: the forward layer's attributes and its input's HxWxC (a strided conv's
// output does not determine its input's size).
struct ConvGradAttrs {
  Conv2DAttrs conv;
  Shape input;
  template <class V>
  void visit(V& v) {
    conv.visit(v);
    v("input", input, kRequired);
  }
  bool operator==(const ConvGradAttrs&) const = default;
};
// A transposed convolution (Keras' Conv2DTranspose): every input pixel scatters its kernel-sized
// patch of outputs, `strides` apart, onto the full output ((in - 1) * stride + dilated kernel);
// padding crops that: valid keeps it (out = in * stride + max(kernel - stride, 0), Keras'
// default), same gives out = in * stride (the crop's odd row at the bottom, as TensorFlow), or
// explicit amounts top,bottom,left,right. output_padding adds rows/columns at the bottom/right.
// The kernel is (kh, kw, filters, input channels), Keras' layout: the HWIO kernel of the conv
// whose input gradient this is.
struct Conv2DTransposeAttrs {
  int64_t filters = 0;
  Pair kernel;
  Pair strides;
  Padding padding;
  Pair dilation;
  Pair output_padding{0, 0};
  bool use_bias = true;
  template <class V>
  void visit(V& v) {
    v("filters", filters, kRequired);
    v("kernel", kernel, kRequired);
    v("strides", strides);
    v("padding", padding);
    v("dilation", dilation);
    v("output_padding", output_padding);
    v("use_bias", use_bias);
  }
  bool operator==(const Conv2DTransposeAttrs&) const = default;
};
// How resize samples: nearest (the pixel whose centre is closest, rounding down) or bilinear,
// both with half-pixel centres (TensorFlow's resize, Keras' Resizing and UpSampling2D).
enum class Interpolation { Nearest, Bilinear };
struct ResizeAttrs {
  Pair size;  // the output's height x width
  Interpolation interpolation = Interpolation::Bilinear;
  template <class V>
  void visit(V& v) {
    v("size", size, kRequired);
    v("interpolation", interpolation);
  }
  bool operator==(const ResizeAttrs&) const = default;
};
// Group normalisation: the channels in `groups` equal groups, each normalised over its channels
// and all pixels of one image.
struct GroupNormAttrs {
  int64_t groups = 32;    // Keras' default
  float epsilon = 1e-3f;  // Keras' default
  template <class V>
  void visit(V& v) {
    v("groups", groups);
    v("epsilon", epsilon);
  }
  bool operator==(const GroupNormAttrs&) const = default;
};
// L2 normalisation of each pixel's channels (Keras UnitNormalization).
struct UnitNormAttrs {
  float epsilon = 1e-12f;  // Keras' fixed lower bound of the norm
  template <class V>
  void visit(V& v) {
    v("epsilon", epsilon);
  }
  bool operator==(const UnitNormAttrs&) const = default;
};
// The order of the non-batch axes: output axis i (from 1) is input axis perm[i - 1].
struct TransposeAttrs {
  Shape perm;
  template <class V>
  void visit(V& v) {
    v("perm", perm, kRequired);
  }
  bool operator==(const TransposeAttrs&) const = default;
};
enum class OpKind;
// Which activation a gradient goes through (and leakyrelu's slope).
struct ActivationGradAttrs {
  OpKind of{};
  float alpha = 0.3f;
  template <class V>
  void visit(V& v) {
    v("of", of, kRequired);
    v("alpha", alpha);
  }
  bool operator==(const ActivationGradAttrs&) const = default;
};

enum class OpKind {
#define CNNC_OP(Name, text, Attrs, Pattern, min_in, max_in, traits, doc) Name,
#include "ir/ops.def"
#undef CNNC_OP
};

constexpr int kNumOps = 0
#define CNNC_OP(Name, text, Attrs, Pattern, min_in, max_in, traits, doc) +1
#include "ir/ops.def"
#undef CNNC_OP
    ;

enum class PatternKind { ElemWise, Broadcast, Injective, Reduction, OutEWiseFusable, Opaque };

using Attrs = std::variant<NoAttrs, InputAttrs, Conv2DAttrs, DenseAttrs, Pool2DAttrs,
                           GlobalPoolAttrs, BatchNormAttrs, AffineAttrs, LeakyReLUAttrs, ReLUAttrs,
                           PadAttrs, CropAttrs, ReshapeAttrs, ChannelSliceAttrs, DropoutAttrs,
                           LayerNormAttrs, ParameterAttrs, ConvGradAttrs, ActivationGradAttrs,
                           AugmentAttrs, Conv2DTransposeAttrs, ResizeAttrs, GroupNormAttrs,
                           UnitNormAttrs, TransposeAttrs, RecolorAttrs, ExtremumGradAttrs>;

// Op traits (the ops.def column): bits.
constexpr unsigned kView = 1;                // no kernel: the output is the input's data reshaped
constexpr unsigned kNamedActivation = 2;     // usable as `activation=NAME`, a Keras activation
constexpr unsigned kEpilogueActivation = 4;  // parameter-free: an epilogue can apply it
constexpr unsigned kNoBatch = 8;             // a weight or its gradient: no batch dimension
constexpr unsigned kBackward = 16;           // a training-graph op (backward ops, batch statistics)

struct OpInfo {
  OpKind kind;
  std::string_view text;  // the name in the network format
  PatternKind pattern;
  int min_inputs, max_inputs;  // not counting an epilogue's residual input
  unsigned traits;
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
// The activations an epilogue can apply (activations.def; relu at its defaults, too).
bool is_epilogue_activation(OpKind k);
// Ops that are a view of their input (no kernel, no storage of their own).
bool is_view(OpKind k);
// Ops that run a kernel: neither a view nor a graph input or parameter.
bool has_kernel(OpKind k);
// An activation by the name a network file or a Keras model gives it (relu, gelu, silu, ...);
// nullptr when there is none. activation_names() lists them all, for messages.
const OpInfo* find_activation(std::string_view name);
std::string activation_names();
// The names Keras 3 gives a table activation ("swish silu"), "" for other ops.
std::string_view keras_names(OpKind k);

// Whether an activation's gradient is computed from its output y (relu at its defaults,
// leakyrelu, and the table's activations marked Output: relu6, sigmoid, tanh, exponential),
// else from its input x (the table's others). Every activation of the table and relu and
// leakyrelu have a gradient (has_activation_grad).
bool activation_grad_from_output(OpKind k);
bool has_activation_grad(OpKind k);

// What an op's epilogue may hold, from its fusion pattern: an out-elementwise-fusable op
// (conv2d, dense, pooling) adds a residual and applies an activation; a broadcast op (batchnorm,
// affine, add, multiply) applies an activation; others take none.
enum class EpilogueRule { None, Activation, AddAndActivation };
EpilogueRule epilogue_rule(OpKind k);

}  // namespace cnnc::ir
