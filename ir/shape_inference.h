#pragma once
// Exact shape inference, parameter shapes and work counts for every op.
#include <vector>

#include "ir/graph.h"

namespace cnnc::ir {

// What a layer's weights are and how Keras initialises them.
enum class Init { GlorotUniform, Zeros, Ones };
struct ParamSpec {
  std::string role;
  Shape shape;
  Init init;
  int64_t fan_in = 0, fan_out = 0;
};

struct Inferred {
  TensorType type;
  std::vector<ParamSpec> params;
};

// Infers a node's output type and weight shapes from its attributes and input types. Throws
// cnnc::Error with a message that says what is wrong and what would work (no location: the
// caller adds it).
Inferred infer(const Node& n, const std::vector<TensorType>& inputs, int64_t batch);

// Sliding-window geometry (conv and pooling) with the padding resolved to explicit amounts.
struct WindowGeometry {
  int64_t in_h, in_w, out_h, out_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  Pair kernel, strides, dilation;
};
WindowGeometry window_geometry(const Node& n, const TensorType& input);

// A transposed conv's geometry: its output size and how many rows/columns of the full output
// ((in - 1) * stride + dilated kernel) are cropped before the first output row/column.
struct TransposedGeometry {
  int64_t out_h, out_w, crop_top, crop_left;
};
TransposedGeometry transposed_geometry(const Conv2DTransposeAttrs& a, int64_t in_h, int64_t in_w);

// Multiply-accumulates a layer performs (0 for layers without weights).
int64_t macs(const Node& n, const std::vector<TensorType>& inputs);
// Number of weights of a layer (derived constants left out).
int64_t param_count(const Node& n);
// The model's parameter count as its source framework counts it: every layer's weights plus
// the weights folded by the importer.
int64_t total_params(const Graph& g);

// Largest tensor we accept: Halide indexes with 32-bit integers.
constexpr int64_t kMaxElements = (int64_t{1} << 31) - 1;

}  // namespace cnnc::ir
