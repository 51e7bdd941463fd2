#include "passes/choose_tiles.h"

#include <algorithm>
#include <numeric>

#include "ir/schedule.h"

namespace cnnc::passes {

namespace {

// The layer as a convolution: dense is a 1x1 conv over a one-row image of all its input rows.
struct ConvShape {
  int64_t out_c, out_w, out_h, in_per_group, groups, taps;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;  // the window (1x1 for dense)
  bool spans_rows = false;  // a tile's pixels run across rows (ir::tile_spans_rows)
  // The pixels a row of register tiles runs through before a partial tile can end it.
  int64_t tile_run() const { return spans_rows ? out_w * out_h : out_w; }
};

ConvShape conv_shape(const ir::Graph& g, const ir::Node& n, int64_t kernel_batch) {
  const ir::TensorType& in = g.node(n.inputs[0]).type;
  if (n.op == ir::OpKind::Dense || n.op == ir::OpKind::DenseGradInput) {
    const int64_t rows = in.elements() / in.channels() / g.batch() * kernel_batch;
    return {n.type.channels(), rows, 1, in.channels(), 1, 1};
  }
  if (n.op == ir::OpKind::Conv2DTranspose) {  // at stride 1 (input_gradient_is_conv)
    const auto& a = n.attr<ir::Conv2DTransposeAttrs>();
    return {n.type.shape[3],
            n.type.shape[2],
            n.type.shape[1],
            in.channels(),
            1,
            a.kernel.h * a.kernel.w,
            a.kernel.h,
            a.kernel.w,
            1,
            1,
            a.dilation.h,
            a.dilation.w};
  }
  if (n.op == ir::OpKind::Conv2DGradInput) {  // a stride-1 conv of dy (input_gradient_is_conv)
    const auto& a = n.attr<ir::ConvGradAttrs>().conv;
    return {n.type.shape[3], n.type.shape[2], n.type.shape[1], in.channels(), 1,
            a.kernel.h * a.kernel.w, a.kernel.h, a.kernel.w, 1, 1, a.dilation.h, a.dilation.w};
  }
  const auto& a = n.attr<ir::Conv2DAttrs>();
  ConvShape s{n.type.shape[3], n.type.shape[2],
              n.type.shape[1], in.channels() / a.groups,
              a.groups,        a.kernel.h * a.kernel.w,
              a.kernel.h,      a.kernel.w,
              a.strides.h,     a.strides.w,
              a.dilation.h,    a.dilation.w};
  s.spans_rows = ir::tile_spans_rows(g, n);
  return s;
}

int64_t largest_divisor_up_to(int64_t n, int64_t limit) {
  for (int64_t d = std::min(n, limit); d > 1; --d)
    if (n % d == 0) return d;
  return 1;
}

// A GPU conv: a block of up to 64 output channels x 8 pixels x enough rows for ~256 threads,
// each thread 4 channels x 2 pixels in registers (few enough that no GPU spills them); the
// whole reduction per thread, unrolled by 4 where the channels allow; the block's input window
// staged in shared memory when it takes at most a third of the 48 KiB a block may use.
ir::Schedule gpu_conv_schedule(const ConvShape& s, const ir::GpuFacts& gpu) {
  const bool depthwise = s.in_per_group == 1 && s.groups > 1;
  ir::Schedule sc;
  sc.kind = ir::ScheduleKind::GpuTile;
  sc.block_channels = std::min<int64_t>(s.out_c, 64);
  sc.channels = depthwise ? 1 : largest_divisor_up_to(sc.block_channels, 4);
  sc.block_pixels = std::min<int64_t>(s.out_w, 8);
  sc.pixels = largest_divisor_up_to(sc.block_pixels, 2);
  const int64_t per_row = sc.block_channels / sc.channels * (sc.block_pixels / sc.pixels);
  sc.block_rows = std::clamp<int64_t>(256 / per_row, 1, s.out_h);
  if (!depthwise) {
    sc.chunk = s.in_per_group;
    sc.unroll = largest_divisor_up_to(sc.chunk, 4);
    if (sc.unroll == 1) sc.unroll = 0;
  }
  const int64_t window = ((sc.block_pixels - 1) * s.sw + (s.kw - 1) * s.dw + 1) *
                         ((sc.block_rows - 1) * s.sh + (s.kh - 1) * s.dh + 1);
  const int64_t channels = depthwise ? sc.block_channels : s.in_per_group * s.groups;
  if (s.taps > 1 && channels * window * 4 <= gpu.shared_bytes_per_block / 3) sc.shared = 1;
  return sc;
}

// Pooling and pointwise kernels on a GPU: a block of up to 64 channels x enough pixels for
// ~256 threads, a thread per output (coalesced along the channels).
ir::Schedule gpu_pointwise_schedule(const ir::Node& n) {
  ir::Schedule sc;
  sc.kind = ir::ScheduleKind::GpuPointwise;
  sc.vector = 1;
  sc.block_channels = std::min<int64_t>(n.type.channels(), 64);
  sc.block_pixels = std::max<int64_t>(1, 256 / sc.block_channels);
  return sc;
}

// Whether a 3x3 stride-1 conv is better computed as Winograd's F(2x2, 3x3) (codegen/ops/
// winograd.cpp), which does 16 products per 2x2 outputs where the direct conv does 36, but
// reads the whole transformed kernel (16/9 of its size) in every task: it pays when that stays
// in L2 and enough tiles share it. (A forward conv's kernel is now transformed when loaded;
// these readings were taken when every call transformed it, so the rule is cautious: an Intel
// Xeon model 167 (2 MiB L2) then ran 14x14 256->256 in 0.58 ms against the direct 0.73, outside
// this rule; the tuner measures both.) Measured on an Intel
// Xeon (Skylake-SP, AVX-512, 2 threads; ReLU epilogue), Winograd's time / the direct tile's: 56x56
// 64->64 batch 1 0.58-0.71 (kernel 256 KiB transformed), 28x28 128->128 0.80-0.96 (1 MiB, = L2),
// 14x14 256->256 1.0-1.5 (4 MiB), 7x7 512->512 4x (16 MiB); the Fashion-MNIST net's 14x14 32->64
// at 4 and 128 images a call 0.44-0.70, its input gradient (64->32) 0.72-0.75. One machine's
// readings: the tuner measures both kinds on every machine; this is only the untuned choice.
// A row of `row` pixels (or Winograd tiles) in register tiles of `width`: the row rounded up
// to whole tiles (ShiftInwards recomputes the overlap of the last one).
int64_t rounded_row(int64_t row, int64_t width) { return (row + width - 1) / width * width; }

// The tile width for a row: at most `widest` (and the row), or the narrower width, down to 4,
// that wastes least on the row's last, rounded-up tile (the wider on a tie). Depthwise convs
// keep it: each of their FMAs loads its input, and wider tiles measured slower (Zen 3, 2
// threads, ms, 4 -> 6 pixels: 56x56x144 0.142 -> 0.190, 112x112x96/2 0.100 -> 0.162).
int64_t least_waste_width(int64_t row, int64_t widest) {
  int64_t width = std::clamp<int64_t>(widest, 1, row);
  for (int64_t w = width - 1; w >= std::min<int64_t>(width, 4); --w)
    if (rounded_row(row, w) < rounded_row(row, width)) width = w;
  return width;
}

// Accumulators a tile needs to keep a core's FMA units busy through a reduction: two FMAs a
// cycle at four cycles' latency is 8 in flight, and the loads feeding them need slack beyond
// that; 12, as BLIS's Haswell sgemm kernel (6x16) holds. A tile of fewer waits on the latency:
// it takes about as long per reduction step as one of 12.
constexpr int64_t kBusyAccumulators = 12;

// The width for a row of a reduction's register tiles of `vectors` vectors of channels, at most
// `widest`: the fastest, a tile's step costing max(its accumulators, kBusyAccumulators); on a
// tie the one computing fewest pixels. On AVX2 (two vectors, 12 accumulators at 6 pixels) this
// is the widest unless it makes as many tiles as a narrower one; least waste took 4 pixels (8
// accumulators) wherever 4 divided the row. Zen 3, 2 threads, 4 -> 6 pixels, time ratios of
// medians of 9-21 interleaved runs: 3x3 224x224x64 0.74-0.84, 112x112 64->128 0.62-0.92, 56x56x64
// 0.77-0.90; 1x1 56x56 64->256 0.85-0.90, 256->64 0.75-0.83, 28x28 128->512 0.67-0.90, 14x14
// 256->1024 0.83-0.97, DenseNet121's 1x1s over 96-256 channels 0.55-0.97. On AVX-512 (20
// accumulators) every width of 6 or more is busy: least waste.
int64_t busiest_width(int64_t row, int64_t widest, int64_t vectors) {
  auto steps = [&](int64_t w) {
    return (row + w - 1) / w * std::max(w * vectors, kBusyAccumulators);
  };
  int64_t width = std::clamp<int64_t>(widest, 1, row);
  for (int64_t w = width - 1; w >= 1; --w)
    if (steps(w) < steps(width) ||
        (steps(w) == steps(width) && rounded_row(row, w) < rounded_row(row, width)))
      width = w;
  return width;
}

// Whether Winograd F(2x2, 3x3) computes the conv: 3x3, stride 1, undilated, ungrouped (a dense
// layer is a 1x1 conv here, so it never does).
bool winograd_computes(const ConvShape& s) {
  return s.kh == 3 && s.kw == 3 && s.sh == 1 && s.sw == 1 && s.dh == 1 && s.dw == 1 &&
         s.groups == 1;
}

bool winograd_pays(const ConvShape& s, int64_t batch, const ir::CpuFacts& m) {
  if (!winograd_computes(s)) return false;
  const int64_t transformed_bytes = 16 * s.in_per_group * s.out_c * 4;
  const int64_t tiles = batch * ((s.out_w + 1) / 2) * ((s.out_h + 1) / 2);
  // Few input channels (a stem) leave too little reduction to pay for transforming the input.
  return s.in_per_group >= 16 && s.out_c >= 16 && m.l2_bytes > 0 &&
         transformed_bytes <= m.l2_bytes && tiles >= 64;
}

// Winograd's register tile: two vectors of output channels (one if the layer has fewer) x the
// tiles of a row the remaining accumulators hold, the busiest count (busiest_width: its products
// sum all input channels in registers); one row of tiles per task, so the task's transformed
// windows and products stay in L1/L2.
ir::Schedule winograd_schedule(const ConvShape& s, int64_t vector, int64_t accumulators,
                               int64_t m = 2) {
  ir::Schedule sc;
  sc.kind = ir::ScheduleKind::Winograd;
  if (m != 2) sc.outputs = m;
  sc.vector = vector;  // whole vectors only: c must divide the channels (no partial block)
  while (sc.vector > 1 && s.out_c % sc.vector) sc.vector /= 2;
  sc.channels = sc.vector * (s.out_c % (2 * sc.vector) == 0 ? 2 : 1);
  const int64_t vectors = sc.channels / sc.vector;
  sc.pixels = busiest_width(ir::winograd_tiles(s.out_w, m), accumulators / vectors, vectors);
  sc.rows = 1;
  return sc;
}

// A register tile's pixels read the input as separate streams, a pixel's stride apart. Streams a
// multiple of the L1's way size apart (l1_bytes / l1_ways, 4 KiB on x86 so far) share one set:
// a 1x1 conv over 1024 channels (4 KiB a pixel) puts every pixel of its tile in the same set,
// and more of them than the set has ways evict each other's lines before their 16 floats are
// read. The widest tile whose streams fit the ways. Measured on Zen 4 (32 KiB 8-way L1, 2
// threads, ms): 14x14 1024->256 at 14 pixels 0.78-1.05, at 8 or 7 0.52-0.60; over 1040
// channels (no two pixels in one set) 14 pixels 0.50.
int64_t widest_without_set_conflicts(const ConvShape& s, const ir::CpuFacts& m) {
  constexpr int64_t line_bytes = 64;
  const int64_t way_bytes = m.l1_bytes / std::max(1, m.l1_ways);
  const int64_t stride = s.in_per_group * s.groups * s.sw * 4;
  const int64_t sets_visited = way_bytes / std::max(line_bytes, std::gcd(stride, way_bytes));
  return std::max<int64_t>(1, sets_visited * m.l1_ways);
}

// A direct conv's register tile width: at most `widest` pixels (what the registers hold) and
// what the L1's sets hold, the width wasting least on the row's last tile (or the image's, when
// tiles span rows).
int64_t direct_tile_width(const ConvShape& s, const ir::CpuFacts& m, int64_t widest) {
  return least_waste_width(s.tile_run(), std::min(widest, widest_without_set_conflicts(s, m)));
}

// The width of a tile of `vectors` vectors of channels whose whole reduction runs in its
// registers (taps inside, or a 1x1 conv's accumulators kept): the busiest (busiest_width), as
// latency is what bounds it. Not where the accumulators pass through a task buffer between
// chunks, nor for a strided conv: there 6 pixels measured even with or slower than least
// waste's 4 (Zen 3, 2 threads, ms: VGG16's 28x28 3x3s at 256 channels a chunk 14.7 -> 16.6
// and 27.9 -> 34.2; ResNet50's 56x56 1x1/2 convs 0.42-0.45 -> 0.48-0.51 and 1.63-1.91 ->
// 1.73-1.87; its chunked 1x1s and 3x3s 0.85-1.05x), nor for a reduction shorter than 64, where
// the tile's loads and stores weigh more than latency (VGG16's 3x3 on 224x224x3: 1.18-1.48 ->
// 1.41-1.56; MobileNetV2's 1x1s over 16-32 channels 0.95-1.08x).
int64_t busy_tile_width(const ConvShape& s, const ir::CpuFacts& m, int64_t widest,
                        int64_t vectors) {
  if (s.sh > 1 || s.sw > 1 || s.taps * s.in_per_group < 64) return direct_tile_width(s, m, widest);
  return busiest_width(s.tile_run(), std::min(widest, widest_without_set_conflicts(s, m)), vectors);
}

// Accumulators of a register tile: 12 of AVX2's 16 registers, 20 of AVX-512's 32 (best of
// 12..28 on Zen 5 for ResNet50 and a 56x56x64 conv), leaving room for the weight vectors and
// the broadcast input.
int64_t tile_accumulators(const ir::CpuFacts& m) { return m.vector_registers >= 32 ? 20 : 12; }

// A 1x1 conv (or a dense layer over many rows) is a matrix product with a short reduction: its
// tile's accumulators can stay in registers for all input channels, loaded with the bias and
// stored once through the epilogue. Chunked, they pass through a task buffer three times per
// tile (bias, sums, epilogue), which costs as much as the FMAs when the input has few channels.
// The tile then takes all the registers the FMAs leave free: `vectors` of output channels x
// pixels, plus `vectors` registers of weights and one broadcast input. Taken when the tile's
// weights for the whole reduction stay in L1 across a row of tiles, or stream from L2 to a
// tile of at least 12 pixels. Measured (Xeon model 167, 2 threads, ms, chunked -> in registers):
// 56x56 24->144 0.105 -> 0.066, 112x112 16->96 0.234 -> 0.156, 56x56 64->256 0.367 -> 0.307,
// 28x28 512->128 0.307 -> 0.290, 14x14 256->1024 0.310 -> 0.281; not 7x7 512->2048 (7-pixel
// tiles: 0.316 -> 0.349), which stays chunked.
void one_by_one_in_registers(const ConvShape& s, const ir::CpuFacts& m, ir::Schedule& sc) {
  const int64_t lanes = sc.vector;
  // Two vectors of channels, or three where that divides the channels and two does not.
  int64_t vectors = std::clamp<int64_t>(s.out_c / lanes, 1, 2);
  if (s.out_c % (2 * lanes) && s.out_c % (3 * lanes) == 0) vectors = 3;
  const int64_t tile_x =
      busy_tile_width(s, m, (m.vector_registers - 1 - vectors) / vectors, vectors);
  const int64_t weight_bytes = s.in_per_group * vectors * lanes * 4;
  if (!(weight_bytes <= m.l1_bytes / 2 || (tile_x >= 12 && weight_bytes <= m.l2_bytes / 2))) return;
  sc.channels = vectors * lanes;
  sc.pixels = tile_x;
  sc.chunk = s.in_per_group;
  sc.taps_inside = 1;
}

// Output channels per task (C) for a tile whose whole reduction stays in its registers and whose
// epilogue adds a residual: the most tiles of channels whose weights (every input channel and
// tap) take at most half of L2, as each tile of pixels streams them all, while the tasks still
// number four per core. Their tiles computed one after another at each tile of pixels, a
// pixel's residual is read (and its outputs written) as one run, not a cache line every pixel's
// channels apart. 0 (one tile's channels) where no two tiles qualify. Measured on Zen 3 (2
// threads), ResNet50 untuned with and without C in one net (both orders, in-model kernel times):
// at batch 32 (4 images a pass) its residual 1x1s 0.85-0.93x, the model 0.966x; at batch 1
// 0.93-0.95x, the model 0.981x. On every tile in registers, residual or not, batch 1 ran 1.016x:
// no gain without a residual, and the strided 56x56 256->128, in 8 tasks, 1.19x.
int64_t task_channels(const ConvShape& s, const ir::CpuFacts& m, const ir::Schedule& sc,
                      int64_t batch) {
  if (s.out_c % sc.channels) return 0;
  const int64_t tiles = s.out_c / sc.channels;
  const int64_t tile_weights = sc.channels * s.in_per_group * s.taps * 4;
  const int64_t row_tasks = (s.out_h + sc.rows - 1) / sc.rows * batch;
  int64_t best = 1;
  for (int64_t d = 2; d <= tiles; ++d)
    if (tiles % d == 0 && d * tile_weights <= m.l2_bytes / 2 &&
        tiles / d * row_tasks >= 4 * std::max(1, m.cores))
      best = d;
  return best > 1 ? best * sc.channels : 0;
}

}  // namespace

ir::Schedule winograd_alternative(const ir::Graph& g, const ir::Node& n, const TilingOptions& opts,
                                  int m) {
  if (opts.target.family == ir::Target::Gpu || ir::kernel_kind(g, n) != ir::KernelKind::Conv)
    return {};
  const ConvShape s = conv_shape(g, n, opts.kernel_batch > 0 ? opts.kernel_batch : g.batch());
  if (!winograd_computes(s)) return {};
  const ir::CpuFacts& cpu = opts.target.cpu;
  return winograd_schedule(s, ir::vector_lanes_for(s.out_c, cpu.vector_lanes),
                           tile_accumulators(cpu), m);
}

ir::Schedule tile_schedule(const ir::Graph& g, const ir::Node& n, const TilingOptions& opts) {
  const int64_t kernel_batch = opts.kernel_batch > 0 ? opts.kernel_batch : g.batch();
  const ConvShape s = conv_shape(g, n, kernel_batch);
  if (opts.target.family == ir::Target::Gpu) return gpu_conv_schedule(s, opts.target.gpu);
  const ir::CpuFacts& m = opts.target.cpu;
  // An input gradient reads the forward kernel, a graph value: there are no weights to pre-pack;
  // a transposed conv's kernel is flipped by the kernel itself (no packed layout for it).
  const bool pack_weights = opts.pack_weights && n.op != ir::OpKind::Conv2DGradInput &&
                            n.op != ir::OpKind::DenseGradInput &&
                            n.op != ir::OpKind::Conv2DTranspose;
  ir::Schedule sc;
  sc.vector = ir::vector_lanes_for(s.out_c, m.vector_lanes);
  const int64_t accumulators = tile_accumulators(m);
  const bool depthwise = s.in_per_group == 1 && s.groups > 1;

  if (!depthwise && s.out_w < 4) {
    // Matrix-vector shape (a dense layer at batch 1): memory-bound on the weights. Best: as
    // many output channels per task as the accumulators hold for every row, the largest such
    // block (at least 4 vectors) that divides the channels, its weights packed contiguously.
    int64_t block = 0, lanes = sc.vector;
    const int64_t most = std::max<int64_t>(1, accumulators / s.out_w);
    for (int64_t v = most; v >= 4 && !block; --v)
      if (s.out_c % (v * lanes) == 0) block = v * lanes;
    // None at full width (1000 classes): narrower vectors, the smallest block of four that
    // divides (many tasks), so the weights still stream packed and contiguous. In the model,
    // weights cold, the tuner found gemv:v4,c100 for ResNet50's 2048 -> 1000 (0.616 ms as a
    // stream of 64 channels per task, 0.277) and gemv:v8,c40 for MobileNetV2's (0.176 -> 0.122).
    for (int64_t narrow = sc.vector / 2; narrow >= 4 && !block; narrow /= 2)
      for (int64_t v = 4; v <= most && !block; ++v)
        if (s.out_c % (v * narrow) == 0) block = v * narrow, lanes = narrow;
    if (pack_weights && s.groups == 1 && block && s.out_c > block) {
      sc.kind = ir::ScheduleKind::Gemv;
      sc.vector = lanes;
      sc.channels = sc.pack = block;
    } else {
      // No such block: stream the weights in storage order, four vectors of output channels per
      // task (their accumulators fit the registers; the last block overlaps the one before).
      // One task of all channels, as before, left a core idle and its accumulators in L1: as a
      // stream, a 1280 -> 1000 dense at batch 1 0.172 -> 0.071 ms, 2048 -> 1000 0.288 -> 0.168
      // ms alone (Xeon model 167, 2 threads; 4 and 16 vectors per task measured between).
      sc.kind = ir::ScheduleKind::Stream;
      sc.channels = std::min<int64_t>(s.out_c, 4 * sc.vector);
    }
    return sc;
  }

  if (opts.winograd && winograd_pays(s, kernel_batch, m))
    return winograd_schedule(s, sc.vector, accumulators);
  sc.kind = depthwise ? ir::ScheduleKind::Depthwise : ir::ScheduleKind::Tile;
  // Register tile: up to two vectors of output channels x as many pixels of a row as the
  // remaining accumulators allow; of the widths from 4 up, the one wasting least on a row's
  // last, rounded-up tile (the wider on a tie); the busiest where the reduction stays inside.
  sc.channels = sc.vector * std::clamp<int64_t>(s.out_c / sc.vector, 1, 2);
  const int64_t vectors = sc.channels / sc.vector;
  int64_t tile_x = direct_tile_width(s, m, accumulators / vectors);
  bool four_vectors = false;
  // A conv with several taps does better with four vectors x 4 pixels where that wastes no
  // more of the row: each broadcast input feeds four FMAs instead of two. 16 accumulators, as
  // four weight vectors and the broadcasts need the rest of 32 registers (4 x 5 measured slower).
  // Zen 4, 2 threads, % of peak, 2 vectors -> 4: 3x3 on 224x224x64 82 -> 88, 112x112x128 90 ->
  // 93, 56x56x64 88 -> 92, 28x28x512 86-89 -> 92; VGG16's 3-channel 3x3 33 -> 45-50, ResNet50's
  // 7x7/2 stem 66 -> 84. Not for 1x1 convs: 85 -> 83, 94 -> 93, 92 -> 84.
  if (m.vector_registers >= 32 && !depthwise && s.taps > 1 && s.out_c % (4 * sc.vector) == 0 &&
      s.out_w >= 4 && rounded_row(s.out_w, 4) <= rounded_row(s.out_w, tile_x)) {
    sc.channels = 4 * sc.vector;
    tile_x = 4;
    four_vectors = true;
  }
  sc.pixels = tile_x;
  const int64_t tile_bytes = sc.channels * 4;
  // Input channels per reduction chunk: the chunk's weights for one tap (chunk x channels)
  // take at most half of L1, so they stay there while a whole row of tiles reuses them. (A
  // quarter, as before, starves the four-vector tile: 224x224x64 at 64 channels per chunk 88%
  // of peak, at 32 75%; the two-vector tile measured the same at 64 and 128.)
  if (!depthwise) {
    int64_t chunk = std::clamp<int64_t>(m.l1_bytes / 2 / tile_bytes, 1, s.in_per_group);
    while (s.in_per_group % chunk) --chunk;
    sc.chunk = chunk;
    // Few input channels (a stem's 3, a narrow 3x3): a chunk per tap is too short to pay for
    // reloading the accumulators between taps, so the whole reduction runs inside the tile
    // while its weights for every tap (at most two L1s) stream from L1/L2. Measured on Zen 4
    // (2 threads, % of peak, taps outside -> inside): a 3x3/2 stem on 224x224x3 41-46 -> 51-56,
    // 3x3 56x56 16->32 53-80 -> 60-83, 32->64 65-85 -> 86-91; 64->64 no gain.
    if (chunk == s.in_per_group && s.taps > 1 &&
        s.taps * s.in_per_group * tile_bytes <= 2 * m.l1_bytes) {
      sc.taps_inside = 1;
      if (!four_vectors) sc.pixels = busy_tile_width(s, m, accumulators / vectors, vectors);
    }
    if (s.taps == 1) one_by_one_in_registers(s, m, sc);
  }
  // Rows per task: enough pixels to reuse each weight chunk well (accumulators filling half of
  // L1), few enough that they fit in L1; then evened out over the rows. A t1 tile keeps no
  // accumulator buffer; the same bound sizes its task's block of outputs.
  const int64_t pixel_bytes = sc.channels * 4;
  const int64_t max_rows = std::max<int64_t>(1, m.l1_bytes / pixel_bytes / s.out_w);
  int64_t rows =
      std::clamp<int64_t>(m.l1_bytes / 2 / pixel_bytes / s.out_w, 1, std::min(s.out_h, max_rows));
  const int64_t tasks = (s.out_h + rows - 1) / rows;
  sc.rows = (s.out_h + tasks - 1) / tasks;
  if (sc.kind == ir::ScheduleKind::Tile && sc.taps_inside && n.epilogue.add)
    sc.block_channels = task_channels(s, m, sc, kernel_batch);
  // Pre-packed weights stream contiguously per tile; one tile's worth needs no packing.
  if (pack_weights && s.groups == 1 && s.out_c % sc.channels == 0 && s.out_c > sc.channels)
    sc.pack = sc.channels;
  return sc;
}

namespace {
// Pooling and pointwise kernels: vectorised over the output's channels, one row (of pixels, or
// of a rank-2 tensor's batch) per parallel task: they are memory-bound, and a row per task
// spreads any tensor over the cores.
ir::Schedule pointwise_schedule(const ir::Node& n, ir::ScheduleKind kind,
                                const TilingOptions& opts) {
  ir::Schedule sc;
  sc.kind = kind;
  sc.vector = ir::vector_lanes_for(n.type.channels(), opts.target.cpu.vector_lanes);
  sc.rows = 1;
  return sc;
}
}  // namespace

ir::Graph choose_tiles(ir::Graph g, const TilingOptions& opts) {
  const bool gpu = opts.target.family == ir::Target::Gpu;
  for (auto& n : g.nodes()) {
    if (!ir::has_kernel(n.op) || n.schedule.kind != ir::ScheduleKind::None) continue;
    // The backward ops keep codegen's own schedule (no tunable fields yet).
    if (ir::kernel_kind(g, n) == ir::KernelKind::Gradient) continue;
    if (gpu && ir::kernel_kind(g, n) != ir::KernelKind::Conv &&
        ir::kernel_kind(g, n) != ir::KernelKind::Depthwise) {
      n.schedule = gpu_pointwise_schedule(n);
      continue;
    }
    switch (ir::kernel_kind(g, n)) {
      case ir::KernelKind::Conv:
      case ir::KernelKind::Depthwise:
        n.schedule = tile_schedule(g, n, opts);
        break;
      case ir::KernelKind::Pool:
        n.schedule = pointwise_schedule(n, ir::ScheduleKind::Pool, opts);
        break;
      case ir::KernelKind::Pointwise:
        n.schedule = pointwise_schedule(n, ir::ScheduleKind::Pointwise, opts);
        break;
      case ir::KernelKind::Gradient:
        break;
    }
  }
  return g;
}

}  // namespace cnnc::passes
