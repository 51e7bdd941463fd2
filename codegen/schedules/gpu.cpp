// GPU schedules (CUDA and OpenCL): a thread block per tile of output channels x pixels x rows,
// each thread a small tile of them with its accumulators in registers; the block's input tile
// optionally staged in shared memory. Pooling and pointwise kernels: threads over channels and
// pixels. Every stage of a kernel runs on the device, so no data crosses to the host between
// kernels.
#include <algorithm>
#include <sstream>

#include "codegen/schedules/schedules.h"
#include "ir/error.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

// The limits every GPU of the APIs honours (ir::GpuFacts' defaults, which the tiling pass sizes
// its proposals by): threads and shared memory per block.
const ir::GpuFacts kLimits;
const int64_t kMaxThreads = kLimits.max_threads_per_block;
const int64_t kSharedBytes = kLimits.shared_bytes_per_block;

int64_t clamp_to(int64_t v, int64_t extent) { return std::max<int64_t>(1, std::min(v, extent)); }

// The block tile of a conv after clamping to the layer (a block never exceeds the output).
struct ConvTile {
  int C, X, R;  // block: channels, pixels, rows
  int c, x;     // thread: channels, pixels
  int k, u;     // reduction chunk, unroll
  bool shared;  // input tile staged in shared memory
};

// The defaults for a conv whose schedule is `none` (the tiling pass did not run).
ir::Schedule default_conv(const ConvSpec& s, bool depthwise) {
  ir::Schedule sc;
  sc.kind = ir::ScheduleKind::GpuTile;
  sc.block_channels = 32, sc.block_pixels = 8, sc.block_rows = 2;
  sc.channels = depthwise ? 1 : 4, sc.pixels = 2;
  sc.chunk = depthwise ? 0 : s.in_c / s.groups;
  return sc;
}

ConvTile conv_tile(const ConvSpec& s, const ir::Schedule& sc) {
  ConvTile t;
  t.C = static_cast<int>(clamp_to(sc.block_channels, s.out_c));
  t.X = static_cast<int>(clamp_to(sc.block_pixels, s.out_w));
  t.R = static_cast<int>(clamp_to(sc.block_rows, s.out_h));
  t.c = static_cast<int>(clamp_to(sc.channels, t.C));
  t.x = static_cast<int>(clamp_to(sc.pixels, t.X));
  t.k = static_cast<int>(sc.chunk ? sc.chunk : s.in_c / s.groups);
  t.u = static_cast<int>(std::max<int64_t>(sc.unroll, 1));
  t.shared = sc.shared == 1;
  return t;
}

// The bytes of input a block reads: its channels (all of a group's for a conv that is not
// depthwise) over the window of its pixels and rows.
int64_t input_tile_bytes(const ConvSpec& s, const ConvTile& t, bool depthwise) {
  const int64_t w = int64_t{t.X - 1} * s.sw + int64_t{s.kw - 1} * s.dw + 1;
  const int64_t h = int64_t{t.R - 1} * s.sh + int64_t{s.kh - 1} * s.dh + 1;
  const int64_t channels = depthwise ? t.C : s.in_c;
  return channels * w * h * 4;
}

}  // namespace

std::string gpu_schedule_error(const ConvSpec& s, bool depthwise, const ir::Schedule& sc) {
  const int ig = s.in_c / s.groups;
  for (int64_t v : {sc.block_channels, sc.block_pixels, sc.block_rows, sc.channels, sc.pixels})
    if (v < 1) return "gpu_tile needs C, X, R (block) and c, x (thread) set";
  const ConvTile t = conv_tile(s, sc);
  if (t.C % t.c || t.X % t.x)
    return "c must divide C and x must divide X (after clamping the block to the layer: C" +
           std::to_string(t.C) + ", X" + std::to_string(t.X) + ")";
  if (const int64_t threads = int64_t{t.C / t.c} * (t.X / t.x) * t.R; threads > kMaxThreads)
    return "a block of " + std::to_string(threads) + " threads (C/c x X/x x R) exceeds " +
           std::to_string(kMaxThreads);
  if (int64_t{t.c} * t.x > 64) return "a thread's tile (c x x) may hold at most 64 accumulators";
  if (!depthwise && (t.k < 1 || ig % t.k))
    return "k (input channels per chunk) must divide the input channels per group (" +
           std::to_string(ig) + ")";
  if (depthwise && sc.chunk) return "a depthwise conv takes no k (one input channel per output)";
  if (t.u > 1 && (depthwise || t.k % t.u)) return "u (unroll) must divide k";
  if (sc.shared > 1) return "s takes 1 (stage the block's input tile in shared memory)";
  if (t.shared && input_tile_bytes(s, t, depthwise) > kSharedBytes)
    return "the block's input tile (" + std::to_string(input_tile_bytes(s, t, depthwise) >> 10) +
           " KiB) does not fit the 48 KiB of shared memory";
  return "";
}

std::string gpu_pointwise_error(const ir::Schedule& sc, int64_t channels) {
  if (sc.block_channels < 1 || sc.block_pixels < 1)
    return "gpu_pointwise needs C (channels per block) and X (pixels per block)";
  const int64_t v = std::max<int64_t>(sc.vector, 1);
  if (v > 16 || (v & (v - 1))) return "v (lanes per thread) must be 1, 2, 4, 8 or 16";
  const int64_t C = clamp_to(sc.block_channels, channels);
  if (C % v) return "v must divide C";
  if (C / v * sc.block_pixels > kMaxThreads)
    return "a block of " + std::to_string(C / v * sc.block_pixels) + " threads exceeds " +
           std::to_string(kMaxThreads);
  return "";
}

std::string schedule_conv_gpu(ConvAlgorithm& a, const ir::Schedule& given) {
  const ConvSpec& s = a.spec;
  const ir::Schedule sc =
      given.kind == ir::ScheduleKind::None ? default_conv(s, a.depthwise) : given;
  const ConvTile t = conv_tile(s, sc);
  for (Func& f : a.stages) {  // a transposed kernel, once per run
    Var bx("bx"), by("by"), tx("tx"), ty("ty");
    f.compute_root().gpu_tile(f.args()[0], f.args()[1], bx, by, tx, ty, 16, 16,
                              TailStrategy::GuardWithIf);
  }
  Var c = a.vars[0], x = a.vars[1], y = a.vars[2], n = a.vars[3];
  Var co("co"), ci("ci"), xo("xo"), xi("xi"), yo("yo"), yi("yi"), yn("yn");
  Var ct("ct"), cr("cr"), xt("xt"), xr("xr");
  // Blocks over channel tiles x pixel tiles x (row tiles x images); threads over a block's
  // channels / c x pixels / x x rows; each thread's c x x outputs unrolled (registers).
  a.out.split(c, co, ci, t.C)
      .split(x, xo, xi, t.X)
      .split(y, yo, yi, t.R)
      .split(ci, ct, cr, t.c)
      .split(xi, xt, xr, t.x)
      .reorder(cr, xr, ct, xt, yi, co, xo, yo, n)
      .fuse(yo, n, yn)
      .gpu_blocks(co, xo, yn)
      .gpu_threads(ct, xt, yi)
      .unroll(cr)
      .unroll(xr);
  a.conv.compute_at(a.out, ct).store_in(MemoryType::Register).unroll(c).unroll(x);
  Stage u = a.conv.update();
  std::ostringstream os;
  os << "GPU: block " << t.C << "c x " << t.X << "px x " << t.R << " row(s) ("
     << (t.C / t.c) * (t.X / t.x) * t.R << " threads), each thread " << t.c << "c x " << t.x
     << "px in registers";
  if (a.depthwise) {
    u.reorder(c, x, a.r.x, a.r.y).unroll(c).unroll(x);
  } else {
    RVar rzo("rzo"), rzi("rzi"), rzu("rzu");
    u.split(a.r.z, rzo, rzi, t.k).reorder(c, x, rzi, a.r.x, a.r.y, rzo).unroll(c).unroll(x);
    if (t.u > 1) u.split(rzi, rzi, rzu, t.u).unroll(rzu);
    os << ", in-channel chunks of " << t.k;
    if (t.u > 1) os << " unrolled by " << t.u;
  }
  if (t.shared) {
    // The block's input window, loaded once by all its threads, then read from shared memory.
    // One thread axis over its channels, as wide as the block (guarded: no channel past the
    // input's is read).
    Var pc = a.padded.args()[0], pco("pco"), pci("pci");
    const int threads = (t.C / t.c) * (t.X / t.x) * t.R;
    a.padded.compute_at(a.out, co)
        .store_in(MemoryType::GPUShared)
        .split(pc, pco, pci, std::min(threads, a.depthwise ? t.C : s.in_c),
               TailStrategy::GuardWithIf)
        .gpu_threads(pci);
    os << "; input tile staged in shared memory";
  }
  if (s.epilogue.add || s.epilogue.has_activation) os << "; epilogue applied per thread";
  return os.str();
}

namespace {

// A pooling or Map kernel of rank 4 (c, x, y, n) or 2 (c, n): threads over C channels (v per
// thread) x X pixels, blocks over the rest.
void gpu_map(Func& f, const std::vector<Var>& v, int C, int X, int lanes) {
  Var co("co"), ci("ci"), cv("cv"), xo("xo"), xi("xi"), yn("yn");
  f.split(v[0], co, ci, C);
  if (lanes > 1) f.split(ci, ci, cv, lanes).vectorize(cv);
  if (v.size() == 1) {  // a vector without a batch (a bias's gradient)
    f.gpu_blocks(co).gpu_threads(ci);
  } else if (v.size() == 4) {
    f.split(v[1], xo, xi, X).reorder(ci, xi, co, xo, v[2], v[3]).fuse(v[2], v[3], yn);
    f.gpu_blocks(co, xo, yn).gpu_threads(ci, xi);
  } else {
    f.split(v.back(), xo, xi, X).reorder(ci, xi, co, xo).gpu_blocks(co, xo).gpu_threads(ci, xi);
  }
}

ir::Schedule pointwise_defaults(const ir::Schedule& given, int64_t channels) {
  if (given.kind != ir::ScheduleKind::None) return given;
  ir::Schedule sc;
  sc.kind = ir::ScheduleKind::GpuPointwise;
  sc.vector = 1;
  sc.block_channels = clamp_to(64, channels);
  sc.block_pixels = 4;
  return sc;
}

std::string describe_map(int C, int X, int lanes) {
  return "GPU: threads over " + std::to_string(C / lanes) + " channel groups (" +
         std::to_string(lanes) + " per thread) x " + std::to_string(X) +
         " pixels per block, blocks over the rest";
}

}  // namespace

std::string schedule_pool_gpu(Algorithm& a, const ir::Schedule& given) {
  const ir::Schedule sc = pointwise_defaults(given, a.out_dims[0]);
  const int C = static_cast<int>(clamp_to(sc.block_channels, a.out_dims[0]));
  const int X = static_cast<int>(clamp_to(sc.block_pixels, a.out_dims[1]));
  const int lanes = static_cast<int>(std::max<int64_t>(sc.vector, 1));
  gpu_map(a.out, a.vars, C, X, lanes);
  return describe_map(C, X, lanes) + "; window reduced per thread";
}

std::string schedule_pointwise_gpu(PointwiseAlgorithm& a, const ir::Schedule& given) {
  const std::vector<Var>& v = a.vars;
  const int rank = static_cast<int>(v.size());
  const ir::Schedule sc = pointwise_defaults(given, a.out_dims[0]);
  const int C = static_cast<int>(clamp_to(sc.block_channels, a.out_dims[0]));
  // The axis threads cover besides channels: pixels of a row (rank 4) or rows (rank 2).
  const int X =
      static_cast<int>(clamp_to(sc.block_pixels, rank == 4 ? a.out_dims[1] : a.out_dims.back()));
  const int lanes = static_cast<int>(std::max<int64_t>(sc.vector, 1));
  Func& out = a.out;
  switch (a.form) {
    case PointwiseAlgorithm::Map:
      // Per-channel constants (batchnorm's scale and shift) are recomputed inline per element.
      gpu_map(out, v, C, X, lanes);
      return describe_map(C, X, lanes);
    case PointwiseAlgorithm::Concat: {
      gpu_map(out, v, C, X, lanes);  // the zero fill
      for (size_t i = 0; i < a.slices.size(); ++i) {
        Stage u = out.update(static_cast<int>(i));
        const int ci = a.arg_dims[i][0];
        RVar so("so"), si("si");
        Var yn("yn"), xo("xo"), xi("xi");
        // Guarded: an update rounded up past the output would read past its input.
        const TailStrategy guard = TailStrategy::GuardWithIf;
        u.split(a.slices[i].x, so, si, static_cast<int>(clamp_to(C, ci)), guard);
        if (rank == 4) {
          u.split(v[1], xo, xi, X, guard).reorder(si, xi, so, xo, v[2], v[3]).fuse(v[2], v[3], yn);
          u.gpu_blocks(so, xo, yn).gpu_threads(si, xi);
        } else {
          u.split(v.back(), xo, xi, X, guard)
              .reorder(si, xi, so, xo)
              .gpu_blocks(so, xo)
              .gpu_threads(si, xi);
        }
      }
      return "GPU: each input's channel slice written by its own launch, threads over " +
             std::to_string(C) + " channels x " + std::to_string(X) + " pixels";
    }
    case PointwiseAlgorithm::RowReduction: {
      // One thread per row: the row's max and sum computed by it; exp recomputed inline.
      Var ro("ro"), ri("ri");
      if (rank == 4)
        out.split(v[1], ro, ri, X).reorder(v[0], ri, ro, v[2], v[3]).gpu_blocks(ro, v[2], v[3]);
      else
        out.split(v.back(), ro, ri, X).reorder(v[0], ri, ro).gpu_blocks(ro);
      out.gpu_threads(ri);
      a.stages[0].compute_at(out, ri);
      if (a.stages.size() > 2) a.stages[2].compute_at(out, ri);
      return "GPU: one thread per row of channels (" + std::to_string(X) +
             " rows per block), its max and sum in registers";
    }
    case PointwiseAlgorithm::GroupReduction: {
      // One thread per group of an image reducing over its pixels, then a thread per element.
      for (Func& f : a.stages) {
        Var g = f.args()[0], n = f.args()[1], go("go"), gi("gi");
        f.compute_root()
            .split(g, go, gi, 32, TailStrategy::GuardWithIf)
            .gpu_blocks(go, n)
            .gpu_threads(gi);
      }
      gpu_map(out, v, C, X, lanes);
      return "GPU: a thread per group of an image for its statistics, then " +
             describe_map(C, X, lanes);
    }
    case PointwiseAlgorithm::PixelReduction: {
      // One thread per channel of an image, summing (or maxing) over its pixels: neighbouring
      // threads read neighbouring channels.
      Var co("co"), ci("ci");
      out.split(v[0], co, ci, C);
      if (rank == 4) out.reorder(v[1], v[2], ci, co, v[3]);
      out.gpu_blocks(co, v[rank - 1]).gpu_threads(ci);
      a.stages[0].compute_at(out, ci);
      return "GPU: one thread per channel (" + std::to_string(C) +
             " per block) reducing over the pixels";
    }
  }
  return "";
}

namespace {

// A thread per element of a Func or update Stage: its first dim across a block's threads, every
// other pure dim fused into the second; the rest of the definition (an update's reduction) runs
// in the thread. Guarded at the edges. Returns the innermost thread var.
template <class FuncOrStage>
Var gpu_each(FuncOrStage& f, const std::vector<Var>& dims) {
  Var bx("bx"), by("by"), tx("tx"), ty("ty"), rest("rest");
  if (dims.size() == 1) {
    f.gpu_tile(dims[0], bx, tx, 64, TailStrategy::GuardWithIf);
    return tx;
  }
  Var fused = dims[1];
  if (dims.size() > 2) {
    f.fuse(dims[1], dims[2], rest);
    for (size_t d = 3; d < dims.size(); ++d) f.fuse(rest, dims[d], rest);
    fused = rest;
  }
  f.gpu_tile(dims[0], fused, bx, by, tx, ty, 16, 16, TailStrategy::GuardWithIf);
  return tx;
}

}  // namespace

// Training's backward ops on a GPU: a thread per output element, its reduction in the thread
// (a weight gradient's: per slice of the batch, then a sum of the slices). Correct everywhere
// (checked on OpenCL/PoCL), not tuned for speed.
std::string schedule_gradient_gpu(GradientAlgorithm& a, const ir::Schedule&) {
  for (Func& f : a.stages) {
    f.compute_root();
    gpu_each(f, f.args());
  }
  if (a.form == GradientAlgorithm::Map) {
    gpu_each(a.out, a.vars);
    return "GPU: a thread per element";
  }
  if (a.slices > 0) {
    std::vector<Var> with_slice = a.vars;
    with_slice.push_back(a.slice);
    Func& p = a.partial;
    p.compute_root();
    gpu_each(p, with_slice);
    Stage u = p.update();
    gpu_each(u, with_slice);
    a.acc.compute_at(p, a.strips.x);  // one strip's sum, per thread
    gpu_each(a.out, a.vars);
    return "GPU: a thread per element and slice of the batch, then a sum of the slices";
  }
  const Var tx = gpu_each(a.out, a.vars);
  a.acc.compute_at(a.out, tx);
  return "GPU: a thread per element, its reduction in the thread";
}

}  // namespace cnnc::codegen
