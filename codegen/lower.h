#pragma once
// Lowering of one ir::Node to a scheduled Halide pipeline (codegen-internal; includes Halide).
#include <Halide.h>

#include <string>
#include <vector>

#include "ir/graph.h"

namespace cnnc::codegen {

// A lowered node: its Halide arguments (activations, then weights) with the dimensions each
// buffer is seen with (Halide order: innermost first), the output func and its dimensions.
struct Lowered {
  std::vector<Halide::ImageParam> args;
  std::vector<std::vector<int>> arg_dims;
  Halide::Func out;
  std::vector<int> out_dims;
  std::string schedule;  // in words
  int weight_block = 0;  // see Kernel::weight_block
};

// Creates an input with fixed, dense bounds: dims innermost first.
Halide::ImageParam make_input(const std::string& name, const std::vector<int>& dims);
// Fixes the output's bounds to dims (innermost first) so the schedule can rely on them.
void bound_output(Halide::Func& f, const std::vector<int>& dims);
// An ir shape (outermost first) as Halide dims (innermost first).
std::vector<int> halide_dims(const ir::Shape& s);
// The vector width for a channel count: the target's natural width, or the largest power of
// two not above the channel count.
int vector_width(int channels, const Halide::Target& t);

// The parameter-free activations (ir::is_epilogue_activation) as Halide expressions.
Halide::Expr activation(ir::OpKind k, Halide::Expr x);

Lowered lower_conv(const ir::Graph& g, const ir::Node& n, const Halide::Target& t);
Lowered lower_dense(const ir::Graph& g, const ir::Node& n, const Halide::Target& t);
Lowered lower_pool(const ir::Graph& g, const ir::Node& n, const Halide::Target& t);
Lowered lower_elementwise(const ir::Graph& g, const ir::Node& n, const Halide::Target& t);

// The shared convolution core, also used for dense layers (a 1x1 conv over a row of pixels).
struct ConvSpec {
  int n, in_h, in_w, in_c;  // input
  int out_h, out_w, out_c;  // output
  int kh, kw, sh, sw, dh, dw, pad_top, pad_left;
  int groups;
  bool bias;
  ir::Epilogue epilogue;  // add: a residual input of the output's dims, after the input
  ir::Schedule schedule;  // as recorded by the tiling pass; checked by lower_conv/lower_dense
};
Lowered lower_conv_core(const ConvSpec& s, const std::string& name, const Halide::Target& t);

}  // namespace cnnc::codegen
