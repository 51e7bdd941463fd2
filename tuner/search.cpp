#include "tuner/search.h"

#include <algorithm>
#include <vector>

#include "codegen/compile.h"

namespace cnnc::tuner {

namespace {

template <class T>
T pick(std::mt19937_64& rng, const std::vector<T>& v) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}
int64_t between(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, std::max(lo, hi))(rng);
}

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> d;
  for (int64_t i = 1; i <= n; ++i)
    if (n % i == 0) d.push_back(i);
  return d;
}

// The shapes the space is built from (dense: a 1x1 conv over one row of all its input rows).
struct Shape {
  int64_t out_c, out_w, out_h, in_per_group, groups;
};
Shape shape_of(const ir::Graph& g, const ir::Node& n) {
  const ir::TensorType& in = g.node(n.inputs[0]).type;
  if (n.op == ir::OpKind::Dense)
    return {n.type.channels(), in.elements() / in.channels(), 1, in.channels(), 1};
  if (n.op == ir::OpKind::Conv2D) {
    const int64_t groups = n.attr<ir::Conv2DAttrs>().groups;
    return {n.type.shape[3], n.type.shape[2], n.type.shape[1], in.channels() / groups, groups};
  }
  const ir::Shape& s = n.type.shape;
  if (n.op == ir::OpKind::Conv2DTranspose)  // at stride 1: a conv over all input channels
    return {s[3], s[2], s[1], in.channels(), 1};
  return {s.back(), s.size() == 4 ? s[2] : 1, s.size() == 4 ? s[1] : 1, 1, 1};
}

std::vector<int64_t> lane_choices(const ir::Target& t, int64_t channels) {
  std::vector<int64_t> v;
  for (int64_t l = t.cpu.vector_lanes; l >= 1 && v.size() < 3; l /= 2)
    if (l <= std::max<int64_t>(channels, 1)) v.push_back(l);
  return v.empty() ? std::vector<int64_t>{1} : v;
}

// One draw from a GPU kernel's space: gpu_tile's block (C x X x R outputs), thread tile (c x x
// in registers), reduction chunk k, unroll u and shared-memory staging s; gpu_pointwise's block
// and lanes per thread. May not fit (the caller checks).
ir::Schedule draw_gpu(const ir::Graph& g, const ir::Node& n, std::mt19937_64& rng) {
  const Shape s = shape_of(g, n);
  ir::Schedule sc;
  const ir::KernelKind kind = ir::kernel_kind(g, n);
  if (kind == ir::KernelKind::Pool || kind == ir::KernelKind::Pointwise) {
    sc.kind = ir::ScheduleKind::GpuPointwise;
    sc.vector = pick(rng, std::vector<int64_t>{1, 1, 2, 4});
    sc.block_channels =
        std::min<int64_t>(s.out_c, sc.vector * pick(rng, std::vector<int64_t>{8, 16, 32, 64}));
    sc.block_pixels = pick(rng, std::vector<int64_t>{1, 2, 4, 8, 16, 32});
    return sc;
  }
  sc.kind = ir::ScheduleKind::GpuTile;
  const bool depthwise = kind == ir::KernelKind::Depthwise;
  sc.channels = pick(
      rng, depthwise ? std::vector<int64_t>{1, 2, 4} : std::vector<int64_t>{1, 2, 4, 4, 8, 8, 16});
  sc.pixels = pick(rng, std::vector<int64_t>{1, 2, 2, 4, 4, 8});
  sc.block_channels =
      std::min<int64_t>(s.out_c, sc.channels * pick(rng, std::vector<int64_t>{4, 8, 16, 32}));
  sc.channels = std::min(sc.channels, sc.block_channels);
  sc.block_pixels =
      std::min<int64_t>(s.out_w, sc.pixels * pick(rng, std::vector<int64_t>{1, 2, 4, 8}));
  sc.pixels = std::min(sc.pixels, sc.block_pixels);
  sc.block_rows = std::min<int64_t>(s.out_h, pick(rng, std::vector<int64_t>{1, 2, 4, 8}));
  sc.shared = between(rng, 0, 1);
  if (!depthwise) {
    sc.chunk = pick(rng, divisors(s.in_per_group));
    sc.unroll = pick(rng, std::vector<int64_t>{0, 2, 4, 8});
    if (sc.unroll && sc.chunk % sc.unroll) sc.unroll = 0;
  }
  return sc;
}

// One draw from the kind's space; may not fit (the caller checks).
ir::Schedule draw(const ir::Graph& g, const ir::Node& n, const ir::Target& t,
                  std::mt19937_64& rng) {
  if (t.family == ir::Target::Gpu) return draw_gpu(g, n, rng);
  const Shape s = shape_of(g, n);
  ir::Schedule sc;
  const ir::KernelKind kind = ir::kernel_kind(g, n);
  const int64_t regs = t.cpu.vector_registers - 4;  // weights and the broadcast input
  if (kind == ir::KernelKind::Pool || kind == ir::KernelKind::Pointwise) {
    sc.kind = kind == ir::KernelKind::Pool ? ir::ScheduleKind::Pool : ir::ScheduleKind::Pointwise;
    sc.vector = pick(rng, std::vector<int64_t>{4, 8, 16, 32, 64});
    sc.rows = pick(rng, std::vector<int64_t>{1, 1, 2, 4, 8, 16});
    return sc;
  }
  sc.vector = pick(rng, lane_choices(t, s.out_c));
  if (kind == ir::KernelKind::Depthwise) {
    sc.kind = ir::ScheduleKind::Depthwise;
    // Up to 12 vectors of channels: a tile of all of a pixel's channels reads whole cache lines
    // of the input (MobileNetV2's 144 or 192), which matters when it comes from L3 in the model
    // (Mullapudi2016's schedule, a pixel's channels at a time, won its stride-2 depthwise
    // convs in context over 1-4 vectors).
    sc.channels = sc.vector * between(rng, 1, std::min<int64_t>(12, s.out_c / sc.vector));
    sc.pixels = between(rng, 1, std::min<int64_t>(s.out_w, regs / (sc.channels / sc.vector)));
    sc.rows = between(rng, 1, s.out_h);
    return sc;
  }
  // Winograd F(2x2, 3x3) or F(4x4, 3x3), one draw in four (the fit check refuses it where it
  // cannot compute the conv: only 3x3 stride-1 convs; a dense layer never).
  if (n.op != ir::OpKind::Dense && between(rng, 0, 3) == 0) {
    sc.kind = ir::ScheduleKind::Winograd;
    sc.outputs = pick(rng, std::vector<int64_t>{0, 4});  // 0: m = 2, the field's default
    const int64_t m = ir::winograd_outputs(sc);
    sc.channels = sc.vector * between(rng, 1, std::min<int64_t>(4, s.out_c / sc.vector));
    const int64_t tiles_w = ir::winograd_tiles(s.out_w, m),
                  tiles_h = ir::winograd_tiles(s.out_h, m);
    sc.pixels = between(rng, 1, std::min<int64_t>(tiles_w, regs / (sc.channels / sc.vector)));
    sc.rows = between(rng, 1, std::min<int64_t>(tiles_h, 8));
    return sc;
  }
  const bool matrix_vector = s.out_w <= 16;
  const int form = matrix_vector ? static_cast<int>(between(rng, 0, 2)) : 0;
  if (form == 1 && s.groups == 1) {
    sc.kind = ir::ScheduleKind::Gemv;
    sc.channels = sc.pack =
        sc.vector * between(rng, 1, std::max<int64_t>(1, regs / std::max<int64_t>(1, s.out_w)));
    return sc;
  }
  if (form == 2) {
    sc.kind = ir::ScheduleKind::Stream;
    sc.channels = between(rng, 1, std::min<int64_t>(s.out_c, 2048));
    return sc;
  }
  sc.kind = ir::ScheduleKind::Tile;
  sc.channels = sc.vector * between(rng, 1, std::min<int64_t>(4, s.out_c / sc.vector));
  const int64_t run = ir::tile_spans_rows(g, n) ? s.out_w * s.out_h : s.out_w;
  sc.pixels = between(rng, 1, std::min<int64_t>(run, regs / (sc.channels / sc.vector)));
  sc.chunk = pick(rng, divisors(s.in_per_group));
  sc.rows = between(rng, 1, std::min<int64_t>(s.out_h, 64));
  sc.taps_inside = sc.chunk == s.in_per_group ? between(rng, 0, 1) : 0;
  if (s.groups == 1 && s.out_c % sc.channels == 0 && between(rng, 0, 1)) sc.pack = sc.channels;
  // With t1, half the draws give a task several tiles of channels (C), computed in turn at
  // each tile of pixels.
  if (sc.taps_inside && s.out_c % sc.channels == 0 && between(rng, 0, 1))
    if (const int64_t tiles = pick(rng, divisors(s.out_c / sc.channels)); tiles > 1)
      sc.block_channels = sc.channels * tiles;
  return sc;
}

bool fits(const ir::Graph& g, const ir::Node& n, const ir::Schedule& s, const ir::Target& t) {
  ir::Node probe = n;
  probe.schedule = s;
  return codegen::schedule_problem(g, probe, t).empty();
}

}  // namespace

ir::Schedule random_schedule(const ir::Graph& g, const ir::Node& n, const ir::Target& t,
                             std::mt19937_64& rng) {
  for (int i = 0; i < 200; ++i)
    if (ir::Schedule s = draw(g, n, t, rng); fits(g, n, s, t)) return s;
  return n.schedule;
}

ir::Schedule mutate(const ir::Schedule& base, const ir::Graph& g, const ir::Node& n,
                    const ir::Target& t, std::mt19937_64& rng) {
  for (int i = 0; i < 200; ++i) {
    // A fresh draw supplies the new value of one field (or, one time in eight, a new kind).
    const ir::Schedule fresh = draw(g, n, t, rng);
    ir::Schedule s = base;
    if (fresh.kind != base.kind || between(rng, 0, 7) == 0) {
      s = fresh;
    } else {
      using F = int64_t ir::Schedule::*;
      const std::vector<F> cpu = {
          &ir::Schedule::vector, &ir::Schedule::channels,       &ir::Schedule::pixels,
          &ir::Schedule::chunk,  &ir::Schedule::rows,           &ir::Schedule::taps_inside,
          &ir::Schedule::pack,   &ir::Schedule::block_channels, &ir::Schedule::outputs};
      const std::vector<F> gpu = {
          &ir::Schedule::vector,     &ir::Schedule::channels,       &ir::Schedule::pixels,
          &ir::Schedule::chunk,      &ir::Schedule::block_channels, &ir::Schedule::block_pixels,
          &ir::Schedule::block_rows, &ir::Schedule::shared,         &ir::Schedule::unroll};
      const F f = pick(rng, t.family == ir::Target::Gpu ? gpu : cpu);
      s.*f = fresh.*f;
      if (f == &ir::Schedule::channels && s.pack) s.pack = s.channels;  // packing follows the tile
    }
    if (!(s == base) && fits(g, n, s, t)) return s;
  }
  return random_schedule(g, n, t, rng);
}

}  // namespace cnnc::tuner
