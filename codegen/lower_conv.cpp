// Convolution (and dense, as a 1x1 convolution) lowered to Halide with a register-blocked
// CPU schedule: a tile of output channels x output pixels held in vector registers while the
// reduction (input channels, then kernel taps) runs inside it.
#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "codegen/lower.h"
#include "ir/error.h"
#include "ir/shape_inference.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

// Why a recorded schedule cannot be applied to this layer, or "" when it can. Schedules come
// from the tiling pass, the tuner, or a user's IR text, so they are checked, not trusted.
std::string schedule_error(const ConvSpec& s) {
  const ir::Schedule& sc = s.schedule;
  if (sc.kind == ir::Schedule::None) return "";
  const int ig = s.in_c / s.groups;
  const bool depthwise = ig == 1 && s.groups > 1;
  const int64_t v = sc.vector;
  if (v < 1 || v > 64 || (v & (v - 1))) return "v (vector lanes) must be a power of two from 1 to 64";
  if (sc.channels < 1 || (sc.kind != ir::Schedule::Stream && sc.channels % v))
    return "c (output channels per tile) must be a positive multiple of v";
  if (sc.kind != ir::Schedule::Stream && sc.channels > s.out_c)
    return "c (output channels per tile) must not exceed the layer's " + std::to_string(s.out_c);
  if (sc.pack && (s.groups != 1 || sc.pack != sc.channels || s.out_c % sc.pack))
    return "p (packed block) must equal c and divide the output channels (" + std::to_string(s.out_c) +
           "), on a conv that is not grouped";
  switch (sc.kind) {
    case ir::Schedule::None: break;
    case ir::Schedule::Tile:
      if (sc.pixels < 1 || sc.rows < 1) return "tile needs x (pixels per tile) and r (rows per task)";
      if (sc.channels / v * std::min<int64_t>(sc.pixels, s.out_w) > 64)
        return "the register tile (c/v x x) may hold at most 64 vectors";
      if (depthwise ? sc.chunk != 0 : (sc.chunk < 1 || ig % sc.chunk))
        return depthwise ? "a depthwise conv takes no k (chunk)"
                         : "k (input channels per chunk) must divide the input channels per group (" + std::to_string(ig) + ")";
      if (sc.taps_inside && (depthwise || sc.taps_inside != 1 || sc.chunk != ig))
        return "t1 (taps inside the tile) needs k equal to the input channels per group, and no depthwise conv";
      break;
    case ir::Schedule::Gemv:
      if (depthwise || s.groups != 1 || sc.pack != sc.channels || sc.pixels || sc.chunk || sc.rows)
        return "gemv takes only v, c and p = c, on a conv that is not grouped";
      [[fallthrough]];
    case ir::Schedule::Stream:
      if (depthwise) return "a depthwise conv cannot stream its weights";
      if (s.out_w > 16) return "gemv and stream are for rows of at most 16 pixels (here " + std::to_string(s.out_w) + ")";
      if (sc.taps_inside) return "t (taps inside) is for tile schedules";
      if (sc.kind == ir::Schedule::Stream && (sc.pack || sc.pixels || sc.chunk || sc.rows))
        return "stream takes only v and c";
      break;
  }
  return "";
}

void check_schedule(const ir::Graph& g, const ir::Node& node, const ConvSpec& s) {
  const std::string why = schedule_error(s);
  if (!why.empty())
    throw Error(g.where(node) + ": cannot apply its schedule: " + why +
                "; leave it out (schedule=none) to let the tiling pass choose one");
}

}  // namespace

Lowered lower_conv_core(const ConvSpec& s, const std::string& name, const Target& t) {
  Lowered l;
  const int ig = s.in_c / s.groups, og = s.out_c / s.groups;
  const std::vector<int> in_dims{s.in_c, s.in_w, s.in_h, s.n};
  const std::vector<int> w_dims{s.out_c, ig, s.kw, s.kh};
  const std::vector<int> out_dims{s.out_c, s.out_w, s.out_h, s.n};
  ImageParam in = make_input(name + "_in", in_dims);
  l.args = {in};
  l.arg_dims = {in_dims};
  ImageParam residual;
  if (s.epilogue.add) {  // the executor passes inputs before weights
    residual = make_input(name + "_residual", out_dims);
    l.args.push_back(residual);
    l.arg_dims.push_back(out_dims);
  }
  const ir::Schedule& sc = s.schedule;
  // Pre-packed weights (see Kernel::weight_block): each tile's or task's block of output
  // channels then streams its weights contiguously.
  l.weight_block = static_cast<int>(sc.pack);
  const std::vector<int> w_store = l.weight_block
      ? std::vector<int>{l.weight_block, ig, s.kw, s.kh, s.out_c / l.weight_block} : w_dims;
  ImageParam w_in = make_input(name + "_kernel", w_store);
  l.args.push_back(w_in);
  l.arg_dims.push_back(w_store);
  Func w(name + "_weights");
  Var wc("wc"), wi("wi"), wx("wx"), wy("wy");
  if (l.weight_block)
    w(wc, wi, wx, wy) = w_in(wc % l.weight_block, wi, wx, wy, wc / l.weight_block);
  else
    w(wc, wi, wx, wy) = w_in(wc, wi, wx, wy);
  ImageParam b;
  if (s.bias) {
    b = make_input(name + "_bias", {s.out_c});
    l.args.push_back(b);
    l.arg_dims.push_back({s.out_c});
  }

  Var c("c"), x("x"), y("y"), n("n");
  // Zero padding, computed once into its own buffer when there is any (not per tap).
  const int pad_bottom = std::max(0, (s.out_h - 1) * s.sh + (s.kh - 1) * s.dh + 1 - s.in_h - s.pad_top);
  const int pad_right = std::max(0, (s.out_w - 1) * s.sw + (s.kw - 1) * s.dw + 1 - s.in_w - s.pad_left);
  const bool padded_input = s.pad_top || s.pad_left || pad_bottom || pad_right;
  Func padded(name + "_padded");
  if (padded_input) {
    Func bounded = BoundaryConditions::constant_exterior(
        in, 0.f, {{Expr(), Expr()}, {0, s.in_w}, {0, s.in_h}, {Expr(), Expr()}});
    padded(c, x, y, n) = bounded(c, x - s.pad_left, y - s.pad_top, n);
  } else {
    // The last tile of a row is rounded up: clamp its extra columns onto the last real one.
    padded(c, x, y, n) = in(c, min(x, s.in_w - 1), y, n);
  }

  const bool depthwise = ig == 1 && s.groups > 1;
  Func conv(name + "_conv");
  conv(c, x, y, n) = s.bias ? b(c) : Expr(0.f);
  RDom r = depthwise ? RDom(0, s.kw, 0, s.kh) : RDom(0, s.kw, 0, s.kh, 0, ig);
  Expr ix = x * s.sw + r.x * s.dw, iy = y * s.sh + r.y * s.dh;
  if (depthwise) {
    conv(c, x, y, n) += w(c, 0, r.x, r.y) * padded(c / og, ix, iy, n);
  } else {
    Expr ic = s.groups == 1 ? Expr(r.z) : (c / og) * ig + r.z;
    conv(c, x, y, n) += w(c, r.z, r.x, r.y) * padded(ic, ix, iy, n);
  }
  // The epilogue runs on each register tile as it leaves the accumulators.
  Expr result = conv(c, x, y, n);
  if (s.epilogue.add) result += residual(c, x, y, n);
  if (s.epilogue.has_activation) result = activation(s.epilogue.activation, result);
  l.out = Func(name);
  l.out(c, x, y, n) = result;
  l.out_dims = out_dims;
  bound_output(l.out, l.out_dims);

  Var co("co"), ci("ci"), xo("xo"), xi("xi"), task("task");
  RVar rzo("rzo"), rzi("rzi");
  const int vec = static_cast<int>(sc.vector);
  std::ostringstream os;
  switch (sc.kind) {
    case ir::Schedule::None: {
      // No schedule recorded (the tiling pass did not run): vectorised over the output
      // channels, one pixel at a time, parallel over rows; no register tiling.
      const int v = vector_width(s.out_c, t);
      const TailStrategy tail = s.out_c % v ? TailStrategy::GuardWithIf : TailStrategy::RoundUp;
      l.out.fuse(y, n, task).parallel(task).vectorize(c, v);
      conv.compute_at(l.out, x).vectorize(c, v, tail);
      conv.update().vectorize(c, v, tail);
      os << "plain: vectorised over channels, one pixel at a time, parallel over rows (no tiling)";
      break;
    }
    case ir::Schedule::Gemv: {
      // Matrix-vector shape (a dense layer at batch 1): memory-bound on the weights. Each task
      // keeps a block of output channels in registers and streams that block's pre-packed
      // weights, one contiguous run, over the whole reduction.
      l.out.split(c, co, ci, static_cast<int>(sc.channels)).reorder(ci, x, co, y, n).fuse(co, y, task).fuse(task, n, task)
          .parallel(task).vectorize(ci, vec).unroll(ci);
      conv.compute_at(l.out, task).vectorize(c, vec).unroll(c).unroll(x);
      conv.update().reorder(c, x, r.z, r.x, r.y, y, n).vectorize(c, vec).unroll(c).unroll(x);
      os << "matrix-vector: " << sc.channels << " output channels per task in registers, their weights streamed";
      break;
    }
    case ir::Schedule::Stream: {
      // Matrix-vector shape without a block that fits the registers: stream the weights in
      // their storage order, a block of output channels per task, accumulators in L1.
      const int block = static_cast<int>(std::min<int64_t>(s.out_c, sc.channels));
      const int v = std::min(vec, block);
      l.out.split(c, co, ci, block).reorder(ci, x, co, y, n).fuse(co, y, task).fuse(task, n, task)
          .parallel(task).vectorize(ci, v);
      // An accumulation must not run twice on an element, so a partial last vector is masked.
      const TailStrategy tail = block % v ? TailStrategy::GuardWithIf : TailStrategy::RoundUp;
      conv.compute_at(l.out, task).vectorize(c, v, tail);
      conv.update().reorder(c, x, r.z, r.x, r.y, y, n).vectorize(c, v, tail).unroll(x);
      os << "weights streamed in order, " << block << " output channels per task";
      break;
    }
    case ir::Schedule::Tile: {
      // Register tile: `channels` (whole vectors) x `pixels` of one row, accumulated over a
      // chunk of input channels; a whole row of tiles is swept per chunk and tap, so the
      // chunk's weights for a tap stay in L1 while they are reused across the row.
      const int tile_c = static_cast<int>(sc.channels);
      const int tile_x = static_cast<int>(std::min<int64_t>(sc.pixels, s.out_w));
      const int rows = static_cast<int>(std::min<int64_t>(sc.rows, s.out_h));
      const int kc = static_cast<int>(sc.chunk);
      Var yo("yo"), yi("yi");
      l.out.split(c, co, ci, tile_c)
          .split(x, xo, xi, tile_x)
          .split(y, yo, yi, rows)
          .reorder(ci, xi, xo, yi, co, yo, n)
          .fuse(co, yo, task)
          .fuse(task, n, task)
          .parallel(task)
          .vectorize(ci, vec)
          .unroll(ci)
          .unroll(xi);
      conv.compute_at(l.out, task).vectorize(c, vec).unroll(c);
      Stage u = conv.update();
      u.split(x, xo, xi, tile_x, TailStrategy::RoundUp);
      if (depthwise) {
        u.reorder(c, xi, r.x, r.y, xo, y, n);
      } else if (sc.taps_inside) {
        // The whole reduction inside the tile: its accumulators stay in registers throughout.
        u.reorder(c, xi, r.z, r.x, r.y, xo, y, n);
        if (kc <= 4) u.unroll(r.z);
      } else {
        u.split(r.z, rzo, rzi, kc).reorder(c, xi, rzi, xo, y, r.x, r.y, rzo, n);
        if (kc % 2 == 0) u.unroll(rzi, 2);
      }
      u.vectorize(c, vec).unroll(c).unroll(xi);
      os << (depthwise ? "depthwise, " : "") << "register tile " << tile_c << "c x " << tile_x
         << "px; "
         << (sc.taps_inside ? "all " + std::to_string(kc) + " in-channels and taps inside the tile, over "
                            : depthwise ? "taps outside a sweep of "
                                        : "in-channel chunks of " + std::to_string(kc) + ", taps outside a sweep of ")
         << rows << " row(s); parallel over channel blocks x row blocks x batch";
      break;
    }
  }
  if (padded_input && depthwise && sc.kind == ir::Schedule::Tile) {
    // A depthwise task reads only its own channels and rows: pad just those, inside the task,
    // while they are in cache (a padded copy of the whole input costs more than the conv).
    padded.compute_at(l.out, task).vectorize(c, vector_width(s.in_c, t), TailStrategy::GuardWithIf);
    os << "; padding per task";
  } else if (padded_input) {
    padded.compute_root().parallel(y).vectorize(c, vector_width(s.in_c, t));
    os << "; padding computed once";
  }
  if (s.epilogue.add || s.epilogue.has_activation) os << "; epilogue applied per tile";
  if (l.weight_block) os << "; weights pre-packed in blocks of " << l.weight_block << " channels";
  l.schedule = os.str();
  return l;
}

Lowered lower_conv(const ir::Graph& g, const ir::Node& node, const Target& t) {
  const auto& a = node.attr<ir::Conv2DAttrs>();
  const ir::TensorType& in = g.node(node.inputs[0]).type;
  const auto geo = ir::window_geometry(node, in);
  ConvSpec s{};
  s.n = static_cast<int>(in.shape[0]);
  s.in_h = static_cast<int>(in.shape[1]), s.in_w = static_cast<int>(in.shape[2]);
  s.in_c = static_cast<int>(in.shape[3]);
  s.out_h = static_cast<int>(geo.out_h), s.out_w = static_cast<int>(geo.out_w);
  s.out_c = static_cast<int>(a.filters);
  s.kh = static_cast<int>(a.kernel.h), s.kw = static_cast<int>(a.kernel.w);
  s.sh = static_cast<int>(a.strides.h), s.sw = static_cast<int>(a.strides.w);
  s.dh = static_cast<int>(a.dilation.h), s.dw = static_cast<int>(a.dilation.w);
  s.pad_top = static_cast<int>(geo.pad_top), s.pad_left = static_cast<int>(geo.pad_left);
  s.groups = static_cast<int>(a.groups);
  s.bias = a.use_bias;
  s.epilogue = a.epilogue;
  s.schedule = a.schedule;
  check_schedule(g, node, s);
  return lower_conv_core(s, "conv", t);
}

Lowered lower_dense(const ir::Graph& g, const ir::Node& node, const Target& t) {
  // The (in, units) kernel is the HWIO kernel of a 1x1 conv; the rows of the input are the
  // pixels of a one-row image, so the batch (or H*W*N) is blocked like pixels are.
  const auto& a = node.attr<ir::DenseAttrs>();
  const ir::TensorType& in = g.node(node.inputs[0]).type;
  ConvSpec s{};
  s.n = 1, s.in_h = 1, s.out_h = 1;
  s.in_w = s.out_w = static_cast<int>(in.elements() / in.channels());
  s.in_c = static_cast<int>(in.channels());
  s.out_c = static_cast<int>(a.units);
  s.kh = s.kw = s.sh = s.sw = s.dh = s.dw = 1;
  s.groups = 1;
  s.bias = a.use_bias;
  s.epilogue = a.epilogue;
  s.schedule = a.schedule;
  check_schedule(g, node, s);
  Lowered l = lower_conv_core(s, "dense", t);
  // The executor passes the ir shapes; this kernel sees the same memory as one image row.
  return l;
}

}  // namespace cnnc::codegen
