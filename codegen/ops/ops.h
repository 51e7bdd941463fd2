#pragma once
// The algorithms: what each op family computes, as Halide Funcs, with no schedule and no target
// (codegen-internal; includes Halide). codegen/schedules/ applies a Schedule to them, as Halide's
// apps/conv_layer keeps one algorithm and a schedule per target.
#include <Halide.h>

#include <string>
#include <vector>

#include "ir/graph.h"

namespace cnnc::codegen {

// What every algorithm has: its arguments (activations, then weights) with the dimensions each
// buffer is seen with (Halide order: innermost first), its output Func and dimensions, and the
// output's pure variables, innermost (channels) first.
struct Algorithm {
  std::vector<Halide::ImageParam> args;
  std::vector<std::vector<int>> arg_dims;
  Halide::Func out;
  std::vector<int> out_dims;
  std::vector<Halide::Var> vars;
  int weight_block = 0;           // see Kernel::weight_block
  int winograd_outputs = 0;       // see Kernel::winograd_outputs
  // A new argument (make_input) appended to args and arg_dims: the executor passes activations
  // first, then weights, so an algorithm adds them in that order.
  Halide::ImageParam add_arg(const std::string& name, const std::vector<int>& dims);
  // out(vars) = `result` through the epilogue (the residual argument added, then the
  // activation), named `name` and bounded to `dims`: how conv, Winograd and pooling end.
  void epilogue_output(const std::string& name, const ir::Epilogue& e, Halide::Expr result,
                       const Halide::ImageParam& residual, const std::vector<int>& dims);
};

// A convolution (dense is a 1x1 convolution over a row of pixels), as numbers.
struct ConvSpec {
  int n, in_h, in_w, in_c;  // input
  int out_h, out_w, out_c;  // output
  int kh, kw, sh, sw, dh, dw, pad_top, pad_left;
  int groups;
  bool bias;
  ir::Epilogue epilogue;  // add: a residual input of the output's dims, after the input
  // An input gradient (ir::input_gradient_is_conv): the input is dy and the kernel argument is
  // the forward layer's, read flipped and with its input and output channels exchanged.
  bool transposed = false;
  // > 0: the image's rows of this many pixels seen as one row (ir::tile_spans_rows), with
  // out_w = in_w = its pixels and out_h = in_h = 1; image_rows() is how many there were.
  int row_pixels = 0;
  int image_rows() const { return row_pixels ? out_w / row_pixels : out_h; }
};
ConvSpec conv_spec(const ir::Graph& g, const ir::Node& n);
// The spec that a CPU schedule `sc` computes: for a `tile` where ir::tile_spans_rows, the
// pixels as one row (the buffers keep their bytes; their dims say H*W x 1).
ConvSpec conv_spec(const ir::Graph& g, const ir::Node& n, const ir::Schedule& sc);

struct ConvAlgorithm : Algorithm {
  ConvSpec spec;
  bool depthwise = false;
  bool padded_input = false;  // `padded` is a zero-padded copy of the input (else a clamped view)
  Halide::Func padded;        // the input as the taps read it
  Halide::ImageParam residual;  // what the epilogue adds (spec.epilogue.add)
  Halide::Func conv;          // the accumulation: pure = bias, update = the reduction r
  Halide::RDom r;             // kw, kh[, input channels per group]
  std::vector<Halide::Func> stages;  // computed once before the conv (a transposed kernel)
};
// `weight_block` > 0: the kernel weights arrive pre-packed in blocks of that many output
// channels (a data layout the schedule chose, so the algorithm reads it).
ConvAlgorithm conv_algorithm(const ConvSpec& s, int weight_block, const std::string& name);

// A 3x3, stride-1, ungrouped conv (or such an input gradient) as Winograd's F(m x m, 3x3), m = 2
// or 4: each m x m block of outputs (a tile) from an alpha x alpha window of the input (alpha =
// m + 2), transformed (V = B'dB), alpha^2 products with the transformed kernel (U = GgG') summed
// over the input channels (M), and transformed back (A'MA). alpha^2 multiplies per output pair
// of channels and tile, where the direct conv does 9 m^2. Funcs are indexed by tile (tx, ty) and
// p = a + alpha b, a position of the alpha x alpha.
struct WinogradAlgorithm : Algorithm {
  ConvSpec spec;
  int m = 2;
  int tiles_w = 0, tiles_h = 0;
  Halide::Func padded;   // the input as the windows read it, zero outside
  Halide::Func kernel;   // U(oc, ic, p): the transformed kernel
  Halide::Func input;    // V(ic, p, tx, ty, n): the transformed input windows
  Halide::Func product;  // M(oc, p, tx, ty, n) = sum over ic of U V
  Halide::RDom r;        // the input channels
  Halide::Var p, tx, ty;
};
// `weight_block` > 0 (a forward conv): the kernel arrives already transformed, U in blocks of
// that many output channels (Kernel::winograd_outputs), so no call transforms it again.
WinogradAlgorithm winograd_algorithm(const ConvSpec& s, int m, int weight_block,
                                     const std::string& name);
// Why a conv cannot be computed as Winograd's F(m x m, 3x3), or "".
std::string winograd_error(const ConvSpec& s);

// Max and average pooling (with its epilogue).
Algorithm pool_algorithm(const ir::Graph& g, const ir::Node& n);

// Every other kernel: activations, normalisations, add, multiply, concat, padding, cropping,
// resizing
// (Map: one output element from a few inputs), concat (one update per input's channel slice),
// softmax and log-softmax (a reduction over the channels of each row), global pooling (a
// reduction over the pixels of each image).
struct PointwiseAlgorithm : Algorithm {
  enum Form { Map, Concat, RowReduction, PixelReduction, GroupReduction } form = Map;
  // RowReduction: a reduction over the row, then optionally a map and a second reduction
  // (softmax: max, exp, sum; layernorm: mean, centred, var; unitnorm: the sum of squares);
  // PixelReduction: total; GroupReduction: mean(g, n) and rstd(g, n) of each image's channel groups
  // (groupnorm), over `reduction`.
  std::vector<Halide::Func> stages;
  std::vector<Halide::RDom> slices;  // Concat: the channels of each input
  Halide::RDom reduction;            // PixelReduction: the pixels; GroupReduction: a group
};
PointwiseAlgorithm pointwise_algorithm(const ir::Graph& g, const ir::Node& n);

// The backward ops of training graphs (passes/gradient): a Map (one output element from a few
// inputs: activation, loss and pooling gradients) or a Reduction into `acc` over r (conv and
// dense gradients, bias gradients), acc's first var vectorisable and its second a register tile
// (input channels x pixels for a conv's input gradient, output x input channels for a kernel's).
// `stages` are computed once before the output (dy spread onto the stride grid, transposed
// weights, each pooling window's maximum).
// A sum over the batch (weight and bias gradients) is computed in `slices` > 0 partial sums:
// acc(vars, slice, strip) sums one strip of a slice over r, partial(vars, slice) adds acc over
// the `strips`, and out sums `partial` over the slices.
struct GradientAlgorithm : Algorithm {
  enum Form { Map, Reduction } form = Map;
  std::vector<Halide::Func> stages;
  std::vector<int> stage_channels;  // each stage's first dim's extent
  Halide::Func acc;
  Halide::RDom r;
  int slices = 0;
  Halide::Var slice, strip;
  Halide::RDom strips;
  Halide::Func partial;
};
GradientAlgorithm gradient_algorithm(const ir::Graph& g, const ir::Node& n);

// exp(x), inf from x > 88.73 on as a float's: Halide's CPU exp wraps to 0 above x ~ 1.49e9.
// Every exp of codegen goes through it.
Halide::Expr safe_exp(Halide::Expr x);
// The parameter-free activations (ir::is_epilogue_activation) as Halide expressions.
Halide::Expr activation(ir::OpKind k, Halide::Expr x);
// The derivative of a table activation at v, its output or its input as the table's grad_from
// says (ir::activation_grad_from_output).
Halide::Expr activation_derivative(ir::OpKind k, Halide::Expr v);
// x through an epilogue's activation, if it has one.
Halide::Expr with_activation(const ir::Epilogue& e, Halide::Expr x);

// Creates an input with fixed, dense bounds: dims innermost first.
Halide::ImageParam make_input(const std::string& name, const std::vector<int>& dims);
// Fixes the output's bounds to dims (innermost first) so the schedule can rely on them.
void bound_output(Halide::Func& f, const std::vector<int>& dims);
// An ir shape (outermost first) as Halide dims (innermost first).
std::vector<int> halide_dims(const ir::Shape& s);

}  // namespace cnnc::codegen
