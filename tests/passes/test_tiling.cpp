// The tiling pass: golden schedules for layers of the example networks on a fixed machine, the
// IR round trip of a schedule, and the options that change what it records.
#include <doctest/doctest.h>

#include "ir/error.h"
#include "ir/text.h"
#include "passes/choose_tiles.h"

using namespace cnnc;

namespace {

// An AVX-512 machine with a 32 KiB L1 (Zen 4, Skylake-SP).
passes::TilingOptions avx512(int64_t kernel_batch = 0, bool pack = true) {
  passes::TilingOptions o;
  o.target.cpu.isa = "avx512";
  o.target.cpu.vector_lanes = 16;
  o.target.cpu.vector_registers = 32;
  o.target.cpu.l1_bytes = 32 << 10;
  o.kernel_batch = kernel_batch;
  o.pack_weights = pack;
  return o;
}

// The same with a 1 MiB L2 (what decides Winograd).
passes::TilingOptions avx512_l2(int64_t kernel_batch = 0) {
  passes::TilingOptions o = avx512(kernel_batch);
  o.target.cpu.l2_bytes = 1 << 20;
  o.winograd = true;  // as training asks
  return o;
}

// The schedule recorded on the graph's last layer, as the IR writes it.
std::string schedule_of(const std::string& text, const passes::TilingOptions& opts, int64_t batch = 1) {
  ir::Graph g = passes::choose_tiles(ir::parse(text, "t.cnn", batch), opts);
  const std::string line = ir::print_attrs(g.node(g.size() - 1));
  const size_t at = line.find("schedule=");
  return at == std::string::npos ? "" : line.substr(at + 9, line.find(' ', at) - at - 9);
}

}  // namespace

TEST_CASE("choose_tiles: register tiles, chunks and rows from the shapes, registers and L1") {
  // ResNet50's 3x3 on 56x56: 4 vectors x 4 pixels (4 divides 56: no rounded-up last tile),
  // 64-channel chunks (a tap's chunk of weights is 16 KiB, half of L1), 1 row (the 56 pixels'
  // accumulators take 14 KiB).
  CHECK(schedule_of("input x shape=56x56x64\nconv2d c filters=64 kernel=3x3 padding=same\n", avx512()) ==
        "tile:v16,c64,x4,k64,r1");
  // Its 3x3 on 14x14 keeps 2 vectors x 7 pixels: 4 pixels would round the row up to 16.
  CHECK(schedule_of("input x shape=14x14x256\nconv2d c filters=256 kernel=3x3 padding=same\n", avx512()) ==
        "tile:v16,c32,x7,k128,r7,p32");
  // A 1x1 conv keeps 2 vectors (the four-vector tile measured slower there) and, its tile's
  // weights for all 64 input channels (8 KiB) fitting half of L1, the whole reduction in
  // registers (t1): 2 vectors x 14 pixels, all the registers the FMAs leave.
  CHECK(schedule_of("input x shape=56x56x64\nconv2d c filters=256 kernel=1x1\n", avx512()) ==
        "tile:v16,c32,x14,k64,r2,t1,p32");
  // 144 channels are 3 vectors, not a multiple of 2: 3 vectors x 9 pixels, narrowed to 8 that
  // divide the row.
  CHECK(schedule_of("input x shape=56x56x24\nconv2d c filters=144 kernel=1x1\n", avx512()) ==
        "tile:v16,c48,x8,k24,r1,t1,p48");
  // A 7-pixel row whose tile weights (64 KiB) exceed half of L1: chunked, the sums in a buffer.
  CHECK(schedule_of("input x shape=7x7x512\nconv2d c filters=2048 kernel=1x1\n", avx512()) ==
        "tile:v16,c32,x7,k128,r7,p32");
  // Over 1024 input channels a pixel is 4 KiB, the L1's way size: every pixel of a tile reads
  // from one set, so a tile takes at most as many pixels as the set has ways (8 by default), 7
  // on a 14-pixel row; over 1040 channels the pixels spread over the sets and keep 14 (in
  // registers, the weights streaming from L2). The same for a stride-2 conv over 512 channels
  // (pixels two apart: 4 KiB). On a 12x12 image, 8 ways allow 8 pixels (chunked; the 1x1's
  // tiles span rows, so 8 divides its 144 pixels), 12 ways 12, in registers.
  CHECK(schedule_of("input x shape=14x14x1024\nconv2d c filters=256 kernel=1x1\n", avx512()) ==
        "tile:v16,c32,x7,k128,r7,p32");
  CHECK(schedule_of("input x shape=14x14x1040\nconv2d c filters=256 kernel=1x1\n", avx512_l2()) ==
        "tile:v16,c32,x14,k1040,r7,t1,p32");
  CHECK(schedule_of(
            "input x shape=28x28x512\nconv2d c filters=256 kernel=1x1 strides=2 round=floor\n",
            avx512()) == "tile:v16,c32,x7,k128,r7,p32");
  CHECK(schedule_of("input x shape=12x12x1024\nconv2d c filters=256 kernel=1x1\n", avx512_l2()) ==
        "tile:v16,c32,x8,k128,r6,p32");
  passes::TilingOptions twelve_ways = avx512_l2();
  twelve_ways.target.cpu.l1_bytes = 48 << 10;
  twelve_ways.target.cpu.l1_ways = 12;
  CHECK(schedule_of("input x shape=12x12x1024\nconv2d c filters=256 kernel=1x1\n", twelve_ways) ==
        "tile:v16,c32,x12,k1024,r12,t1,p32");
  // ResNet50's stem, 3 input channels: every tap inside the tile (t1), 36.8 KiB of its weights.
  CHECK(schedule_of("input x shape=224x224x3\nconv2d c filters=64 kernel=7x7 strides=2 padding=same\n", avx512()) ==
        "tile:v16,c64,x4,k3,r1,t1");
  // A depthwise conv gets its own kind: no chunk, never packed.
  CHECK(schedule_of("input x shape=112x112x32\nconv2d c filters=32 kernel=3x3 padding=same groups=32\n", avx512()) ==
        "depthwise:v16,c32,x8,r1");
  // Pooling and pointwise kernels: vectorised over their channels, a row per task.
  CHECK(schedule_of("input x shape=112x112x64\nmaxpool2d p pool=3x3 strides=2x2 padding=same\n", avx512()) ==
        "pool:v16,r1");
  CHECK(schedule_of("input x shape=7x7x8\nbatchnorm b\n", avx512()) == "pointwise:v8,r1");
  CHECK(schedule_of("input x shape=1000\nsoftmax s\n", avx512()) == "pointwise:v16,r1");
  // Fewer channels than a vector: the vector narrows to them.
  CHECK(schedule_of("input x shape=8x8x3\nconv2d c filters=6 kernel=3x3\n", avx512()) == "tile:v4,c4,x6,k3,r6,t1");
  // On AVX2 (8 lanes, 16 registers) the same layer gets 12 accumulators: 2 vectors x 6 pixels,
  // though 6 does not divide the row (10 tiles compute 60 pixels of 56; 14 of 4 pixels, 8
  // accumulators, would wait on the FMAs' latency); 4 rows, as 16-channel tiles take half the L1
  // bytes; and its tile's weights for all taps (36 KiB) are few enough to keep every tap inside.
  passes::TilingOptions avx2 = avx512();
  avx2.target.cpu.vector_lanes = 8;
  avx2.target.cpu.vector_registers = 16;
  CHECK(schedule_of("input x shape=56x56x64\nconv2d c filters=64 kernel=3x3 padding=same\n",
                    avx2) == "tile:v8,c16,x6,k64,r4,t1,p16");
  // A 1x1 conv's tiles span the image's rows. Its reduction in registers (14x14 256->1024):
  // the count of tiles over the whole image decides, 33 of 6 pixels. Chunked (7x7 512->2048,
  // accumulators through a task buffer): the least waste on the image, 5 (50 for 49 pixels).
  CHECK(schedule_of("input x shape=14x14x256\nconv2d c filters=1024 kernel=1x1\n", avx2) ==
        "tile:v8,c16,x6,k256,r14,t1,p16");
  CHECK(schedule_of("input x shape=7x7x512\nconv2d c filters=2048 kernel=1x1\n", avx2) ==
        "tile:v8,c16,x5,k256,r7,p16");
  // Strided, it keeps the least waste too (a 28-pixel row: 4).
  CHECK(schedule_of(
            "input x shape=56x56x256\nconv2d c filters=128 kernel=1x1 strides=2 round=floor\n",
            avx2) == "tile:v8,c16,x4,k256,r7,t1,p16");
  // With a residual to add, a tile in registers takes several tiles' channels per task (C),
  // computed in turn at each tile of pixels: as many as keep their weights in half of L2 and
  // four tasks per core. 56x56 64->256: all 256 channels (64 KiB of weights; 14 tasks of 4
  // rows). 14x14 256->1024, one task of all 14 rows: 16 tiles (256 KiB, half of 512 KiB)
  // leave 4 tasks, for one core; for two, 8 tasks of 8 tiles; a 128 KiB L2 holds 4 tiles'.
  // Without a residual, or chunked, a task keeps one tile's channels.
  avx2.target.cpu.l2_bytes = 512 << 10;
  const std::string residual_56 =
      "input x shape=56x56x64\ninput s shape=56x56x256\nconv2d c filters=256 kernel=1x1 "
      "epilogue=add <- x, s\n";
  CHECK(schedule_of(residual_56, avx2) == "tile:v8,c16,x6,k64,r4,t1,p16,C256");
  const std::string residual_14 =
      "input x shape=14x14x256\ninput s shape=14x14x1024\nconv2d c filters=1024 kernel=1x1 "
      "epilogue=add <- x, s\n";
  CHECK(schedule_of(residual_14, avx2) == "tile:v8,c16,x6,k256,r14,t1,p16,C256");
  avx2.target.cpu.cores = 2;
  CHECK(schedule_of(residual_14, avx2) == "tile:v8,c16,x6,k256,r14,t1,p16,C128");
  avx2.target.cpu.l2_bytes = 128 << 10;
  CHECK(schedule_of(residual_14, avx2) == "tile:v8,c16,x6,k256,r14,t1,p16,C64");
  CHECK(schedule_of("input x shape=56x56x64\nconv2d c filters=256 kernel=1x1\n", avx2) ==
        "tile:v8,c16,x6,k64,r4,t1,p16");
  CHECK(schedule_of("input x shape=7x7x512\ninput s shape=7x7x2048\nconv2d c filters=2048 "
                    "kernel=1x1 epilogue=add <- x, s\n",
                    avx2) == "tile:v8,c16,x5,k256,r7,p16");
  avx2.target.cpu.l2_bytes = 0;
  avx2.target.cpu.cores = 1;
  // A depthwise conv loads an input per FMA: it keeps the least wasteful width (4 on 56).
  CHECK(schedule_of(
            "input x shape=56x56x144\nconv2d c filters=144 kernel=3x3 padding=same groups=144\n",
            avx2) == "depthwise:v8,c16,x4,r4");
}

TEST_CASE("choose_tiles: Winograd for 3x3 stride-1 convs whose transformed kernel fits L2") {
  passes::TilingOptions o = avx512_l2();
  const std::string c56 = "input x shape=56x56x64\nconv2d c filters=64 kernel=3x3 padding=same\n";
  // 28 tiles a row: 2 vectors x 7 tiles (7 divides 28), a row of tiles per task.
  CHECK(schedule_of(c56, o) == "winograd:v16,c32,x7,r1");
  // The transformed kernel (16 x 256 x 256 floats, 4 MiB) does not fit L2: the direct tile.
  CHECK(schedule_of("input x shape=14x14x256\nconv2d c filters=256 kernel=3x3 padding=same\n", o) ==
        "tile:v16,c32,x7,k128,r7,p32");
  // Too few tiles per call to pay for transforming the kernel (7x7 at batch 1: 16 tiles); at
  // batch 4 a call has 64.
  const std::string c7 = "input x shape=7x7x64\nconv2d c filters=64 kernel=3x3 padding=same\n";
  CHECK(schedule_of(c7, o).rfind("tile:", 0) == 0);
  CHECK(schedule_of(c7, avx512_l2(4), 4) == "winograd:v16,c32,x4,r1");
  // Not for a stride, a dilation, groups, a 1-channel input or another kernel size.
  for (const char* layer : {"conv2d c filters=64 kernel=3x3 strides=2 padding=same",
                            "conv2d c filters=64 kernel=3x3 dilation=2 padding=same",
                            "conv2d c filters=64 kernel=3x3 groups=2 padding=same",
                            "conv2d c filters=64 kernel=5x5 padding=same"}) {
    CAPTURE(layer);
    CHECK(
        schedule_of(std::string("input x shape=56x56x64\n") + layer + "\n", o).rfind("tile:", 0) ==
        0);
  }
  CHECK(schedule_of("input x shape=56x56x1\nconv2d c filters=64 kernel=3x3 padding=same\n", o)
            .rfind("tile:", 0) == 0);
  // 20 channels: whole vectors that divide them (4 lanes; 20 is not 2 x 8), 14 tiles of the 28.
  CHECK(schedule_of("input x shape=56x56x64\nconv2d c filters=20 kernel=3x3 padding=same\n", o) ==
        "winograd:v4,c4,x14,r1");
  // Without an L2 size, or without Winograd asked (inference's default): the direct tile.
  passes::TilingOptions no_l2 = avx512();
  no_l2.winograd = true;
  CHECK(schedule_of(c56, no_l2) == "tile:v16,c64,x4,k64,r1");
  o.winograd = false;
  CHECK(schedule_of(c56, o) == "tile:v16,c64,x4,k64,r1");
  CHECK(passes::TilingOptions{}.winograd == false);
}

TEST_CASE("winograd_alternative: the Winograd schedule of any 3x3 stride-1 conv, for the tuner") {
  auto alternative = [](const std::string& text) {
    const ir::Graph g = ir::parse(text, "t.cnn");
    return ir::to_text(passes::winograd_alternative(g, g.node(g.size() - 1), avx512()));
  };
  // Beyond the tiling pass's L2 rule (a 4 MiB transformed kernel), and without an L2 size or
  // Winograd asked: the tuner measures it anyway.
  CHECK(alternative("input x shape=14x14x256\nconv2d c filters=256 kernel=3x3 padding=same\n") ==
        "winograd:v16,c32,x7,r1");
  CHECK(alternative("input x shape=56x56x64\nconv2d c filters=64 kernel=3x3 padding=same\n") ==
        "winograd:v16,c32,x7,r1");
  // None for a stride, groups, another kernel size, a dense layer or a pooling.
  for (const char* layer :
       {"conv2d c filters=64 kernel=3x3 strides=2 padding=same",
        "conv2d c filters=64 kernel=3x3 groups=2 padding=same", "conv2d c filters=64 kernel=1x1",
        "flatten f\ndense d units=10", "maxpool2d p pool=2"}) {
    CAPTURE(layer);
    CHECK(alternative(std::string("input x shape=16x16x64\n") + layer + "\n") == "none");
  }
}

TEST_CASE("choose_tiles: dense layers by their rows per kernel call") {
  // One row: matrix-vector, 256 channels per task in registers, weights packed by that block.
  CHECK(schedule_of("input x shape=512\ndense d units=4096\n", avx512()) == "gemv:v16,c256,p256");
  // No block of 4+ full vectors divides 1000 classes: half-width vectors, 5 per task, packed.
  CHECK(schedule_of("input x shape=2048\ndense d units=1000\n", avx512()) == "gemv:v8,c40,p40");
  // Nor of 4+ 4-lane vectors 1001: the weights stream in their stored order, four vectors of
  // channels per task.
  CHECK(schedule_of("input x shape=2048\ndense d units=1001\n", avx512()) == "stream:v16,c64");
  // Batch 32 run 4 images per call: a register tile over 4 rows.
  CHECK(schedule_of("input x shape=2048\ndense d units=1000\n", avx512(4), 32) == "tile:v16,c32,x4,k128,r1");
  // Without weight packing: no p, and no matrix-vector schedule (it needs the packed blocks).
  CHECK(schedule_of("input x shape=512\ndense d units=4096\n", avx512(0, false)) == "stream:v16,c64");
}

TEST_CASE("choose_tiles keeps a recorded schedule; schedules round-trip and bad ones are explained") {
  const std::string text = "input x shape=8x8x16\nconv2d c filters=32 kernel=3x3 schedule=tile:v8,c16,x4,k8,r2\n";
  CHECK(schedule_of(text, avx512()) == "tile:v8,c16,x4,k8,r2");
  const std::string printed = ir::print(ir::parse(text, "t.cnn"));
  CHECK(ir::print(ir::parse(printed, "t.cnn")) == printed);
  const std::pair<const char*, const char*> bad_ones[] = {
      {"tile:v8,v8", "field 'v' is given twice"},
      {"tile:q4", "'q4' is not a letter and a positive number"},
      {"tile:v0", "'v0' is not a letter and a positive number"},
      {"none:v8", "none takes no fields"},
      {"pool:v8,k4", "pool takes the fields vr, not 'k'"},
      {"adams2019:v8", "adams2019 takes no fields"},
      {"blocked", "unknown schedule kind 'blocked'"}};
  for (const auto& [bad, reason] : bad_ones) {
    CAPTURE(bad);
    const std::string net = "input x shape=8x8x16\nconv2d c filters=32 kernel=3x3 schedule=" + std::string(bad) + "\n";
    const std::string why = "attribute 'schedule': '" + std::string(bad) + "': " + reason +
                            "; accepted: none, an autoscheduler (adams2019, mullapudi2016, anderson2021), or KIND:FIELDS";
    CHECK_THROWS_WITH_AS(ir::parse(net, "t.cnn"), doctest::Contains(why.c_str()), Error);
  }
  // A view has no kernel, so no schedule.
  CHECK_THROWS_WITH_AS(ir::parse("input x shape=8x8x16\nflatten f schedule=pointwise:v8,r1\n", "t.cnn"),
                       doctest::Contains("unknown attribute 'schedule'"), Error);
}
