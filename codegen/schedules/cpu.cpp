// CPU schedules: register-blocked convolutions (a tile of output channels x output pixels held
// in vector registers while the reduction runs inside it), and vectorised, row-parallel
// pooling and pointwise kernels.
#include <algorithm>
#include <sstream>

#include "codegen/schedules/schedules.h"
#include "ir/target.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

// The target's vector width for `channels` outputs (ir::vector_lanes_for).
int vector_width(int channels, const Target& t) {
  return ir::vector_lanes_for(channels, t.natural_vector_size<float>());
}

bool power_of_two(int64_t v) { return v >= 1 && v <= 64 && !(v & (v - 1)); }

std::string conv_error(const ConvSpec& s, const ir::Schedule& sc) {
  using K = ir::ScheduleKind;
  const int ig = s.in_c / s.groups;
  const int64_t v = sc.vector;
  if (!power_of_two(v)) return "v (vector lanes) must be a power of two from 1 to 64";
  if (sc.channels < 1 || (sc.kind != K::Stream && sc.channels % v))
    return "c (output channels per tile) must be a positive multiple of v";
  if (sc.kind != K::Stream && sc.channels > s.out_c)
    return "c (output channels per tile) must not exceed the layer's " + std::to_string(s.out_c);
  if (sc.pack && s.transposed)
    return "p (packed weights): an input gradient reads the forward kernel as it is (no p)";
  if (sc.pack && (s.groups != 1 || sc.pack != sc.channels || s.out_c % sc.pack))
    return "p (packed block) must equal c and divide the output channels (" +
           std::to_string(s.out_c) + "), on a conv that is not grouped";
  switch (sc.kind) {
    case K::Tile:
    case K::Depthwise:
      if (sc.pixels < 1 || sc.rows < 1) return "it needs x (pixels per tile) and r (rows per task)";
      if (sc.channels / v * std::min<int64_t>(sc.pixels, s.out_w) > 64)
        return "the register tile (c/v x x) may hold at most 64 vectors";
      if (sc.kind == K::Tile && (sc.chunk < 1 || ig % sc.chunk))
        return "k (input channels per chunk) must divide the input channels per group (" +
               std::to_string(ig) + ")";
      if (sc.taps_inside && sc.chunk != ig)
        return "t1 (taps inside the tile) needs k equal to the input channels per group";
      if (sc.block_channels && (sc.kind != K::Tile || !sc.taps_inside ||
                                sc.block_channels % sc.channels || s.out_c % sc.block_channels))
        return "C (output channels per task) needs t1, a multiple of c that divides the output "
               "channels (" +
               std::to_string(s.out_c) + ")";
      break;
    case K::Gemv:
      if (s.groups != 1 || sc.pack != sc.channels)
        return "gemv takes p = c, on a conv that is not grouped";
      [[fallthrough]];
    case K::Stream:
      if (s.out_w > 16)
        return "gemv and stream are for rows of at most 16 pixels (here " +
               std::to_string(s.out_w) + ")";
      break;
    case K::Winograd:
      if (const std::string why = winograd_error(s); !why.empty()) return why;
      if (s.out_c % sc.channels)
        return "c (output channels per tile) must divide the output channels (" +
               std::to_string(s.out_c) + ")";
      if (sc.pixels < 1 || sc.rows < 1)
        return "it needs x (tiles per register tile) and r (tile rows per task)";
      if (sc.channels / v * sc.pixels > 64)
        return "the register tile (c/v x x) may hold at most 64 vectors";
      if (sc.outputs && sc.outputs != 2 && sc.outputs != 4)
        return "m (outputs per tile side) must be 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3))";
      break;
    case K::None:
    case K::Pool:
    case K::Pointwise:
    case K::GpuTile:
    case K::GpuPointwise:
    case K::Adams2019:
    case K::Mullapudi2016:
    case K::Anderson2021:
      break;  // refused or handled before
  }
  return "";
}

// Rows of the (fused rows x batch) loop per parallel task, on a Func or an update Stage;
// `extent` is the loop's length (a split wider than the loop would shift its tasks before the
// start).
template <class FuncOrStage>
void parallel_rows(FuncOrStage& f, Var rows, int64_t per_task, int64_t extent) {
  per_task = std::min(per_task, extent);
  if (per_task > 1) {
    Var outer("rows_o"), inner("rows_i");
    f.split(rows, outer, inner, static_cast<int>(per_task)).parallel(outer);
  } else {
    f.parallel(rows);
  }
}

}  // namespace

std::string schedule_error(const ir::Graph& g, const ir::Node& n, const ir::Schedule& sc,
                           ir::TargetFamily family) {
  if (sc.kind == ir::ScheduleKind::None) return "";
  const ir::KernelKind kind = ir::kernel_kind(g, n);
  if (!ir::schedule_fits(sc.kind, kind))
    return std::string(ir::schedule_kind_name(sc.kind)) + " is not a schedule of a " +
           ir::kernel_kind_name(kind) + " kernel";
  if (ir::target_family(sc.kind) != family)
    return std::string(ir::schedule_kind_name(sc.kind)) + " is a " +
           (family == ir::TargetFamily::Cpu ? "GPU schedule, and the target is a CPU"
                                            : "CPU schedule, and the target is a GPU");
  if (ir::is_autoscheduler(sc.kind)) return "";
  if (family == ir::TargetFamily::Gpu)
    return kind == ir::KernelKind::Conv || kind == ir::KernelKind::Depthwise
               ? gpu_schedule_error(conv_spec(g, n), kind == ir::KernelKind::Depthwise, sc)
               : gpu_pointwise_error(sc, n.type.channels());
  if (kind == ir::KernelKind::Conv || kind == ir::KernelKind::Depthwise)
    return conv_error(conv_spec(g, n, sc), sc);
  if (!power_of_two(sc.vector)) return "v (vector lanes) must be a power of two from 1 to 64";
  if (sc.vector > n.type.channels())
    return "v (vector lanes) must not exceed the output channels (" +
           std::to_string(n.type.channels()) + ")";
  if (sc.rows < 1) return "r (rows per task) must be set";
  return "";
}

std::string schedule_conv_cpu(ConvAlgorithm& a, const ir::Schedule& sc, const Target& t) {
  const ConvSpec& s = a.spec;
  Func& out = a.out;
  Func& conv = a.conv;
  const RDom& r = a.r;
  Var c = a.vars[0], x = a.vars[1], y = a.vars[2], n = a.vars[3];
  Var co("co"), ci("ci"), xo("xo"), xi("xi"), task("task");
  RVar rzo("rzo"), rzi("rzi");
  const int vec = static_cast<int>(sc.vector);
  // The output in register tiles (`tile_c` channels x `tile_x` pixels of a row), a task per
  // block of `task_c` channels x `rows` rows x image; returns the loop just outside a register
  // tile. Pixels spanning rows (s.row_pixels): the image is one row of tiles, a task the tiles
  // covering `rows` rows (pixels split into tasks first left the last task's tiles a size Halide
  // could not fix). A task of several tiles' channels computes them one after another at each
  // tile of pixels: a pixel's outputs (and residual) are then one run of memory, not a cache
  // line every pixel's channels apart, and the tile's input stays in L1 for all of them.
  auto tile_output = [&](int tile_c, int tile_x, int rows, int task_c) {
    Var yo("yo"), yi("yi"), cb("cb"), tile = xo;
    out.split(c, co, ci, tile_c).split(x, xo, xi, tile_x);
    std::vector<VarOrRVar> order{ci, xi};
    if (task_c > tile_c) {
      out.split(co, co, cb, task_c / tile_c);
      order.push_back(cb);
    }
    if (s.row_pixels) {
      const int tiles = (s.out_w + tile_x - 1) / tile_x;
      const int per_task = std::min(tiles, (rows * s.row_pixels + tile_x - 1) / tile_x);
      tile = Var("xt");
      out.split(xo, yo, tile, per_task);
      order.insert(order.end(), {tile, y, co, yo, n});
    } else {
      out.split(y, yo, yi, rows);
      order.insert(order.end(), {xo, yi, co, yo, n});
    }
    out.reorder(order)
        .fuse(co, yo, task)
        .fuse(task, n, task)
        .parallel(task)
        .vectorize(ci, vec)
        .unroll(ci)
        .unroll(xi);
    return task_c > tile_c ? cb : tile;
  };
  std::ostringstream os;
  switch (sc.kind) {
    case ir::ScheduleKind::Gemv: {
      // Matrix-vector shape (a dense layer at batch 1): memory-bound on the weights. Each task
      // keeps a block of output channels in registers and streams that block's pre-packed
      // weights, one contiguous run, over the whole reduction.
      out.split(c, co, ci, static_cast<int>(sc.channels))
          .reorder(ci, x, co, y, n)
          .fuse(co, y, task)
          .fuse(task, n, task)
          .parallel(task)
          .vectorize(ci, vec)
          .unroll(ci);
      conv.compute_at(out, task).vectorize(c, vec).unroll(c).unroll(x);
      conv.update().reorder(c, x, r.z, r.x, r.y, y, n).vectorize(c, vec).unroll(c).unroll(x);
      os << "matrix-vector: " << sc.channels
         << " output channels per task in registers, their weights streamed";
      break;
    }
    case ir::ScheduleKind::Stream: {
      // Matrix-vector shape without a block that fits the registers: stream the weights in
      // their storage order, a block of output channels per task, accumulators in L1.
      const int block = static_cast<int>(std::min<int64_t>(s.out_c, sc.channels));
      const int v = std::min(vec, block);
      out.split(c, co, ci, block)
          .reorder(ci, x, co, y, n)
          .fuse(co, y, task)
          .fuse(task, n, task)
          .parallel(task)
          .vectorize(ci, v);
      // An accumulation must not run twice on an element, so a partial last vector is masked.
      const TailStrategy tail = block % v ? TailStrategy::GuardWithIf : TailStrategy::RoundUp;
      conv.compute_at(out, task).vectorize(c, v, tail);
      conv.update().reorder(c, x, r.z, r.x, r.y, y, n).vectorize(c, v, tail).unroll(x);
      os << "weights streamed in order, " << block << " output channels per task";
      break;
    }
    case ir::ScheduleKind::Depthwise: {
      // Nine multiply-adds per output: a task's accumulation buffer, written by the bias, read
      // back per tap and again by the epilogue, would cost more than the arithmetic. So each
      // register tile (channels x pixels of a row) is computed where the output consumes it,
      // every tap unrolled inside, and leaves the registers only as the epilogue's output.
      const int tile_c = static_cast<int>(sc.channels);
      const int tile_x = static_cast<int>(std::min<int64_t>(sc.pixels, s.out_w));
      const int rows = static_cast<int>(std::min<int64_t>(sc.rows, s.out_h));
      conv.compute_at(out, tile_output(tile_c, tile_x, rows, tile_c))
          .vectorize(c, vec)
          .unroll(c)
          .unroll(x);
      conv.update()
          .reorder(c, x, r.x, r.y)
          .vectorize(c, vec)
          .unroll(c)
          .unroll(x)
          .unroll(r.x)
          .unroll(r.y);
      os << "depthwise, register tile " << tile_c << "c x " << tile_x
         << "px computed where the output reads it, every tap unrolled inside; " << rows
         << " row(s) per task; parallel over channel blocks x row blocks x batch";
      break;
    }
    case ir::ScheduleKind::Tile: {
      const int tile_c = static_cast<int>(sc.channels);
      const int rows = static_cast<int>(std::min<int64_t>(sc.rows, s.image_rows()));
      const int tile_x = static_cast<int>(std::min<int64_t>(sc.pixels, s.out_w));
      const int kc = static_cast<int>(sc.chunk);
      const char* span = s.row_pixels ? " (pixels spanning rows)" : "";
      const int task_c = static_cast<int>(std::max(sc.block_channels, sc.channels));
      const Var tile = tile_output(tile_c, tile_x, rows, task_c);
      if (sc.taps_inside) {
        // The whole reduction inside the register tile: its accumulators are made where the
        // output consumes them and never leave the registers (bias in, epilogue out). In a task
        // buffer they cost three passes over memory per tile (bias, the sums, the epilogue): a
        // 1x1 conv of 24 input channels spent more time there than in its FMAs.
        conv.compute_at(out, tile)
            .store_in(MemoryType::Register)
            .vectorize(c, vec)
            .unroll(c)
            .unroll(x);
        Stage u = conv.update();
        u.reorder(c, x, r.z, r.x, r.y).vectorize(c, vec).unroll(c).unroll(x);
        if (kc <= 4) u.unroll(r.z);
        // The residual the next register tile adds, asked for while this one accumulates: read
        // only by the epilogue, it stalled the tile on memory. A 1x1 56x56 64->256 conv with a
        // residual took 1.37-1.42x the time of the same conv without, in one net at 4 images a
        // pass; with this prefetch 1.31x, and 1.15-1.20x with tasks of 256 channels (C) too (Zen
        // 3, 2 threads, medians of 4 runs; ResNet50's such convs took 1.3-1.5x in the model).
        if (s.epilogue.add)
          out.prefetch(a.residual, tile, tile, 1, PrefetchBoundStrategy::NonFaulting);
        os << "register tile " << tile_c << "c x " << tile_x << "px" << span
           << ", its accumulators in "
           << "registers over all " << kc << " in-channels and taps; " << rows << " row(s)";
        if (task_c > tile_c) os << " x " << task_c << " channels";
        os << " per task";
        if (task_c > tile_c)
          os << ", its " << task_c / tile_c << " tiles of channels at each tile of pixels";
        if (s.epilogue.add) os << ", the next tile's residual prefetched";
        os << "; parallel over channel blocks x row blocks x batch";
        break;
      }
      // Register tile: `channels` (whole vectors) x `pixels` of one row, accumulated over a
      // chunk of input channels; a whole row of tiles is swept per chunk and tap, so the
      // chunk's weights for a tap stay in L1 while they are reused across the row. The partial
      // sums live in a task buffer (in L1) between chunks.
      conv.compute_at(out, task).vectorize(c, vec).unroll(c);
      Stage u = conv.update();
      u.split(x, xo, xi, tile_x, TailStrategy::RoundUp)
          .split(r.z, rzo, rzi, kc)
          .reorder(c, xi, rzi, xo, y, r.x, r.y, rzo, n);
      if (kc % 2 == 0) u.unroll(rzi, 2);
      u.vectorize(c, vec).unroll(c).unroll(xi);
      os << "register tile " << tile_c << "c x " << tile_x << "px" << span
         << "; in-channel chunks of " << kc << ", taps outside a sweep of " << rows
         << " row(s); parallel over channel blocks x row blocks x batch";
      break;
    }
    case ir::ScheduleKind::Winograd:  // schedule_winograd_cpu's (another algorithm)
    case ir::ScheduleKind::None:
    case ir::ScheduleKind::Pool:
    case ir::ScheduleKind::Pointwise:
    case ir::ScheduleKind::GpuTile:
    case ir::ScheduleKind::GpuPointwise:
    case ir::ScheduleKind::Adams2019:
    case ir::ScheduleKind::Mullapudi2016:
    case ir::ScheduleKind::Anderson2021: {
      // No schedule recorded (the tiling pass did not run): vectorised over the output
      // channels, one pixel at a time, parallel over rows; no register tiling.
      const int v = vector_width(s.out_c, t);
      const TailStrategy tail = s.out_c % v ? TailStrategy::GuardWithIf : TailStrategy::RoundUp;
      out.fuse(y, n, task).parallel(task).vectorize(c, v);
      conv.compute_at(out, x).vectorize(c, v, tail);
      conv.update().vectorize(c, v, tail);
      os << "plain: vectorised over channels, one pixel at a time, parallel over rows (no tiling)";
      break;
    }
  }
  for (Func& f : a.stages) {
    // A transpose: in square tiles of one vector (each reads a few cache lines of the stored
    // kernel, not one float per line), tiles of out-channels in parallel. A dense layer's input
    // gradient transposes its whole weight matrix each call.
    const int v = vector_width(s.out_c, t);
    const Var wc = f.args()[0], wi = f.args()[1], wx = f.args()[2], wy = f.args()[3];
    Var wco("wco"), wci("wci"), wio("wio"), wii("wii");
    f.compute_root()
        .tile(wc, wi, wco, wio, wci, wii, v, v, TailStrategy::GuardWithIf)
        .vectorize(wci)
        .reorder(wci, wii, wio, wx, wy, wco)
        .parallel(wco);
    os << "; kernel flipped and transposed once";
  }
  const bool tiled = sc.kind == ir::ScheduleKind::Tile || sc.kind == ir::ScheduleKind::Depthwise;
  if (a.padded_input && a.depthwise && tiled) {
    // A depthwise tile reads the input directly, its taps' bounds checks inline: Halide splits
    // the tile loops at the borders (the boundary condition is marked likely), so only border
    // tiles test. A padded copy, even of just a task's rows, cost as much as the nine
    // multiply-adds (MobileNetV2's 112x112x32 0.089 -> 0.042 ms, 56x56x144/2 0.048 -> 0.024).
    os << "; padding checked inline at the borders";
  } else if (a.padded_input) {
    a.padded.compute_root().parallel(y).vectorize(c, vector_width(s.in_c, t));
    os << "; padding computed once";
  }
  if (s.epilogue.add || s.epilogue.has_activation) os << "; epilogue applied per tile";
  if (a.weight_block) os << "; weights pre-packed in blocks of " << a.weight_block << " channels";
  return os.str();
}

// Winograd: a task is `rows` rows of tiles of one image; in it, the input windows of those rows
// are transformed once (every input channel), then for each block of `channels` output channels
// the (m+2)^2 products are accumulated in register tiles of `channels` x `pixels` tiles over all
// input channels, and transformed back into the outputs with the epilogue. The kernel transform
// runs once per call, before the tasks (or at load).
std::string schedule_winograd_cpu(WinogradAlgorithm& a, const ir::Schedule& sc, const Target& t) {
  const ConvSpec& s = a.spec;
  Func& out = a.out;
  Var c = a.vars[0], x = a.vars[1], y = a.vars[2], n = a.vars[3];
  Var co("co"), ci("ci"), xo("xo"), xi("xi"), yo("yo"), yi("yi"), yt("yt"), yr("yr"), task("task");
  const int vec = static_cast<int>(sc.vector);
  const int tile_c = static_cast<int>(sc.channels);
  const int tile_x = static_cast<int>(std::min<int64_t>(sc.pixels, a.tiles_w));
  const int rows = static_cast<int>(std::min<int64_t>(sc.rows, a.tiles_h));
  // An output whose side is not a multiple of m has a partial last tile: guarded, as shifting it
  // inwards would make the position inside the tile a run-time value.
  const int side = a.m;
  auto tail = [side](int extent) {
    return extent % side ? TailStrategy::GuardWithIf : TailStrategy::RoundUp;
  };
  out.split(y, yo, yi, side, tail(s.out_h))
      .split(x, xo, xi, side, tail(s.out_w))
      .split(c, co, ci, tile_c)
      .split(yo, yt, yr, rows)
      .reorder(ci, xi, yi, xo, yr, co, yt, n)
      .fuse(yt, n, task)
      .parallel(task)
      .vectorize(ci, vec)
      .unroll(ci)
      .unroll(xi)
      .unroll(yi);

  const Var &p = a.p, &tx = a.tx;
  const Var ic = a.input.args()[0];
  a.input.compute_at(out, task)
      .reorder(ic, p)
      .vectorize(ic, vector_width(s.in_c, t), TailStrategy::GuardWithIf)
      .unroll(p);

  Func& m = a.product;
  const Var oc = m.args()[0];
  Var txo("txo"), txi("txi");
  m.compute_at(out, co).vectorize(oc, vec).unroll(oc);
  m.update()
      .split(tx, txo, txi, tile_x, TailStrategy::RoundUp)
      .reorder(oc, txi, a.r.x, txo, p)
      .vectorize(oc, vec)
      .unroll(oc)
      .unroll(txi);

  if (!a.winograd_outputs) {  // else transformed at load, and read as it is
    const Var koc = a.kernel.args()[0], kic = a.kernel.args()[1], kp = a.kernel.args()[2];
    a.kernel.compute_root()
        .reorder(koc, kp, kic)
        .vectorize(koc, vector_width(s.out_c, t), TailStrategy::GuardWithIf)
        .unroll(kp)
        .parallel(kic);
  }
  a.padded.compute_root()
      .parallel(a.padded.args()[2])
      .vectorize(a.padded.args()[0], vector_width(s.in_c, t));

  std::ostringstream os;
  os << "winograd F(" << side << "x" << side << ",3x3): " << rows
     << " tile row(s) of an image per task, windows "
     << "transformed once per task; products in register tiles of " << tile_c << "c x " << tile_x
     << " tiles over all " << s.in_c << " in-channels; kernel "
     << (a.winograd_outputs
             ? "transformed when loaded, in blocks of " + std::to_string(tile_c) + " channels"
             : std::string("transformed once per call"));
  if (s.epilogue.add || s.epilogue.has_activation) os << "; epilogue applied per tile";
  return os.str();
}

std::string schedule_pool_cpu(Algorithm& a, const ir::Schedule& sc, const Target& t) {
  const int v = sc.vector ? static_cast<int>(sc.vector) : vector_width(a.out_dims[0], t);
  Var yn("yn");
  a.out.fuse(a.vars[2], a.vars[3], yn).vectorize(a.vars[0], v);
  parallel_rows(a.out, yn, sc.rows, int64_t{a.out_dims[2]} * a.out_dims[3]);
  return "vectorised over channels (" + std::to_string(v) + " lanes), parallel over " +
         (sc.rows > 1 ? std::to_string(sc.rows) + " rows" : std::string("rows")) + " x batch";
}

std::string schedule_pointwise_cpu(PointwiseAlgorithm& a, const ir::Schedule& sc, const Target& t) {
  const std::vector<Var>& v = a.vars;
  const int rank = static_cast<int>(v.size());
  const int lanes = sc.vector ? static_cast<int>(sc.vector) : vector_width(a.out_dims[0], t);
  // The loop over rows (y x batch, or the batch of a rank-2 tensor) that tasks share, and its
  // length; a task takes at most all of it.
  const int64_t extent = rank == 4 ? int64_t{a.out_dims[2]} * a.out_dims[3] : a.out_dims.back();
  const int64_t rows = std::min<int64_t>(std::max<int64_t>(sc.rows, 1), extent);
  Func& out = a.out;
  auto rows_loop = [&](Func& f) {
    if (rank != 4) return v.back();
    Var yn("yn");
    f.fuse(v[2], v[3], yn);
    return yn;
  };
  const std::string per_task =
      rows > 1 ? std::to_string(rows) + " rows per task" : "parallel over rows";
  switch (a.form) {
    case PointwiseAlgorithm::Map: {
      for (Func& s : a.stages)
        s.compute_root();  // per-channel constants (batchnorm's scale, shift)
      out.vectorize(v[0], lanes);
      if (rank == 4 || rank == 2) parallel_rows(out, rows_loop(out), rows, extent);
      return "vectorised over channels (" + std::to_string(lanes) + " lanes), " + per_task;
    }
    case PointwiseAlgorithm::Concat: {
      const Var outer = rows_loop(out);
      parallel_rows(out, outer, rows, extent);
      for (size_t i = 0; i < a.slices.size(); ++i) {
        Stage u = out.update(static_cast<int>(i));
        if (rank == 4) u.fuse(v[2], v[3], outer);
        parallel_rows(u, outer, rows, extent);
        u.vectorize(a.slices[i].x, ir::vector_lanes_for(a.arg_dims[i][0], lanes));
      }
      return "channel slices written in place, vectorised (" + std::to_string(lanes) + " lanes), " +
             per_task;
    }
    case PointwiseAlgorithm::RowReduction: {
      // Each row's max, exponentials and sum computed where the row is normalised.
      for (Func& s : a.stages) s.compute_at(out, v[1]);
      if (a.stages.size() > 1) a.stages[1].vectorize(v[0], lanes, TailStrategy::GuardWithIf);
      out.vectorize(v[0], lanes, TailStrategy::GuardWithIf);
      if (rank == 4 || rank == 2) parallel_rows(out, rows_loop(out), rows, extent);
      return "one row of channels at a time, vectorised (" + std::to_string(lanes) + " lanes), " +
             per_task;
    }
    case PointwiseAlgorithm::GroupReduction: {
      // The statistics once per image and group (two passes over the input), then the map.
      for (Func& s : a.stages) s.compute_root().parallel(s.args()[1]);
      out.vectorize(v[0], lanes);
      parallel_rows(out, rows_loop(out), rows, extent);
      return "group statistics per image in parallel, then vectorised (" + std::to_string(lanes) +
             " lanes), " + per_task;
    }
    case PointwiseAlgorithm::PixelReduction: {
      Func& total = a.stages[0];
      Var c = total.args()[0];
      total.compute_at(out, v[rank - 1]).vectorize(c, lanes);
      // Guarded: rounding the channels up (the default for an update) would read past the input.
      total.update()
          .reorder(c, a.reduction.x, a.reduction.y)
          .vectorize(c, lanes, TailStrategy::GuardWithIf);
      out.vectorize(v[0], lanes);
      parallel_rows(out, v[rank - 1], rows, a.out_dims.back());
      return "sum or max over pixels vectorised over channels (" + std::to_string(lanes) +
             " lanes), " +
             (rows > 1 ? std::to_string(rows) + " images per task" : "parallel over images");
    }
  }
  return "";
}

// Training's backward ops: stages computed once and vectorised; a Map vectorised over its first
// dim and parallel over its last; a Reduction in register tiles of up to 4 vectors of its first
// dim x as many of its second as the accumulators allow (20 of AVX-512's 32 registers, 12 of
// AVX2's 16, as the conv tiles), the reduction inside the tile, every tile a parallel task. Tiles
// shift inwards at the edges, so no lane computes outside the output (where the gather would read
// outside its inputs).
std::string schedule_gradient_cpu(GradientAlgorithm& a, const ir::Schedule&, const Target& t) {
  const std::vector<Var>& v = a.vars;
  const int rank = static_cast<int>(v.size());
  // Vectors shift inwards at a tail (a pure Func may compute an element twice), never past the
  // edge: a tail guarded by an if still evaluates an inner reduction (the sum of a pooling
  // gradient) for the whole vector, reading past its inputs.
  const int natural = t.natural_vector_size<float>();
  for (size_t k = 0; k < a.stages.size(); ++k) {
    Func& s = a.stages[k];
    s.compute_root()
        .vectorize(s.args()[0], std::min(natural, a.stage_channels[k]), TailStrategy::ShiftInwards)
        .parallel(s.args().back());
  }
  const int lanes = std::min(a.out_dims[0], natural);
  if (a.form == GradientAlgorithm::Map) {
    a.out.vectorize(v[0], lanes, TailStrategy::ShiftInwards);
    if (rank > 1) a.out.parallel(v[rank - 1]);
    return "vectorised (" + std::to_string(lanes) + " lanes), parallel over the last dim";
  }
  const int accumulators = t.has_feature(Target::AVX512) ? 20 : 12;
  Var co("co"), ci("ci"), xo("xo"), xi("xi"), task("task");
  if (a.slices > 0) {
    // partial += inner per strip: the tile loops inside the strip loop, `inner` computed per
    // tile and strip in registers (its whole reduction inside the tile). Tiles divide the
    // output exactly, as an update cannot recompute an element: lanes and vectors that divide
    // the first dim, pixels that divide the second; a third dim (a kernel's width) in the tile
    // too when the accumulators allow (a 1-channel stem's kernel gradient).
    int vl = natural;
    while (vl > 1 && a.out_dims[0] % vl) vl /= 2;
    int vectors = std::min(4, a.out_dims[0] / vl);
    while (vectors > 1 && (a.out_dims[0] / vl) % vectors) --vectors;
    const int tc = vectors * vl;
    int tx = rank > 1 ? std::min(accumulators / vectors, a.out_dims[1]) : 1;
    while (tx > 1 && a.out_dims[1] % tx) --tx;
    const bool third =
        rank >= 3 && tx == a.out_dims[1] && vectors * tx * a.out_dims[2] <= accumulators;
    a.out.vectorize(v[0], lanes, TailStrategy::ShiftInwards);
    Func& p = a.partial;
    p.compute_root().vectorize(v[0], vl).parallel(a.slice);
    Stage u = p.update();
    u.split(v[0], co, ci, tc);
    std::vector<VarOrRVar> order{ci}, outer{co};
    if (rank > 1) {
      u.split(v[1], xo, xi, tx);
      order.push_back(xi), outer.push_back(xo);
    }
    if (third) order.push_back(v[2]);
    for (int d = third ? 3 : 2; d < rank; ++d) outer.push_back(v[d]);
    order.insert(order.end(), outer.begin(), outer.end());
    order.push_back(a.strips.x);
    order.push_back(a.slice);
    u.reorder(order).vectorize(ci, vl).unroll(ci);
    if (rank > 1) u.unroll(xi);
    if (third) u.unroll(v[2]);
    // Few slices (a large output): the tiles in parallel blocks instead, each block sweeping
    // the strips in turn (a parallel loop outside the strips, not one per strip).
    const bool by_slices = a.slices >= 4;
    Var at = co, block("block"), tile("tile");
    if (by_slices) {
      u.parallel(a.slice);
    } else {
      Var tiles_var = co;
      if (outer.size() > 1) {
        u.fuse(co, outer[1], task);
        for (size_t k = 2; k < outer.size(); ++k) u.fuse(task, outer[k], task);
        tiles_var = task;
      }
      int64_t tiles = int64_t{a.out_dims[0]} / tc;
      for (int d = 1; d < rank; ++d) tiles *= d == 1 ? a.out_dims[1] / tx : a.out_dims[d];
      if (third) tiles /= a.out_dims[2];
      const int per_block = static_cast<int>(std::max<int64_t>(1, (tiles + 15) / 16));
      u.split(tiles_var, block, tile, per_block, TailStrategy::GuardWithIf)
          .reorder(tile, a.strips.x, block)
          .parallel(block);
      at = tile;
    }
    a.acc.compute_at(p, at).vectorize(v[0], vl).unroll(v[0]);
    std::vector<VarOrRVar> inner{v[0]};
    if (rank > 1) inner.push_back(v[1]);
    if (third) inner.push_back(v[2]);
    for (int d = 0; d < a.r.dimensions(); ++d) inner.push_back(a.r[d]);
    Stage acc = a.acc.update();
    acc.reorder(inner).vectorize(v[0], vl).unroll(v[0]);
    if (rank > 1) acc.unroll(v[1]), a.acc.unroll(v[1]);
    if (third) acc.unroll(v[2]), a.acc.unroll(v[2]);
    return "partial sums over " + std::to_string(a.slices) + " slices of the batch" +
           (by_slices ? " in parallel" : "") + ", register tiles of " + std::to_string(tc) + " x " +
           std::to_string(tx) + (third ? " x " + std::to_string(a.out_dims[2]) : std::string()) +
           " sweeping each strip" + (by_slices ? "" : ", blocks of tiles in parallel");
  }
  // The other reductions (a strided or grouped conv's input gradient): one task per register
  // tile of the output, the reduction inside; tiles shift inwards at the edges (pure output).
  const int vectors = std::clamp(a.out_dims[0] / lanes, 1, 4);
  const int tc = vectors * lanes;
  const int tx = rank > 1 ? std::clamp(accumulators / vectors, 1, a.out_dims[1]) : 1;
  a.out.split(v[0], co, ci, tc, TailStrategy::ShiftInwards)
      .split(v[1], xo, xi, tx, TailStrategy::ShiftInwards)
      .reorder(ci, xi, co, xo)
      .fuse(co, xo, task);
  for (int d = 2; d < rank; ++d) a.out.fuse(task, v[d], task);
  a.out.parallel(task).vectorize(ci, lanes).unroll(ci).unroll(xi);
  a.acc.compute_at(a.out, task).vectorize(v[0], lanes).unroll(v[0]).unroll(v[1]);
  std::vector<VarOrRVar> order{v[0], v[1]};
  for (int d = 0; d < a.r.dimensions(); ++d) order.push_back(a.r[d]);
  a.acc.update().reorder(order).vectorize(v[0], lanes).unroll(v[0]).unroll(v[1]);
  return "register tiles of " + std::to_string(tc) + " x " + std::to_string(tx) +
         ", the reduction inside, one task per tile";
}

}  // namespace cnnc::codegen
