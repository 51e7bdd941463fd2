#pragma once
// How a kernel is computed, as plain data: proposed by the tiling pass (passes/choose_tiles),
// searched by the tuner, stored in the tuning database, editable by hand in the IR text
// (`schedule=tile:v16,c32,x8,k64,r2,p32`), checked and applied by codegen. A schedule changes
// how a kernel runs, never what it computes. One kind per kernel kind and target family.
#include <cstdint>
#include <string>
#include <string_view>

namespace cnnc::ir {

class Graph;
struct Node;

// What a kernel is, for scheduling: conv2d and dense (a 1x1 conv over a row of pixels) are
// Conv; a conv2d with one input channel per group is Depthwise; max/avg pooling is Pool;
// everything else with a kernel (activations, normalisations, add, concat, padding, softmax,
// global pooling) is Pointwise: one output element from a few inputs, or a reduction over one
// axis. The backward ops of training graphs are Gradient (codegen's own schedule for now: not
// tuned).
// Gradient: the gathers of training's backward ops, and a strided conv2d_transpose (the same
// computation as a strided conv's input gradient).
enum class KernelKind { Conv, Depthwise, Pool, Pointwise, Gradient };
const char* kernel_kind_name(KernelKind k);

enum class ScheduleKind {
  None,  // codegen's plain schedule, no tiling (the tiling pass did not run)
  // CPU
  Tile,       // conv/dense: register tile of channels x pixels, reduction in chunks
  Gemv,       // conv/dense of matrix-vector shape: channels per task in registers, packed weights
  Stream,     // conv/dense of matrix-vector shape: weights streamed in storage order
  Depthwise,  // depthwise conv: register tile of channels x pixels, padded per task
  Winograd,   // 3x3 stride-1 conv as Winograd F(m x m, 3x3): (m+2)^2 products per m x m outputs
  Pool,       // pooling: vectorised over channels, rows per task
  Pointwise,  // every other kernel: vectorised over channels, rows per task
  // GPU (CUDA, OpenCL)
  GpuTile,       // conv/dense/depthwise: thread blocks over output tiles, shared-memory staging
  GpuPointwise,  // every other kernel: thread blocks over channels x pixels
  // One of Halide's autoschedulers chooses the kernel's schedule (any kernel kind): a
  // comparison point for cnnc's schedules and a seed for the tuner.
  Adams2019,      // CPU: beam search with a learned cost model
  Mullapudi2016,  // CPU: tiling and fusion from a locality model
  Anderson2021,   // GPU: Adams2019's search for GPU schedules
};
// Whether a kind is one of Halide's autoschedulers (no fields; codegen runs the autoscheduler).
bool is_autoscheduler(ScheduleKind k);

enum class TargetFamily { Cpu, Gpu };

struct Schedule {
  ScheduleKind kind = ScheduleKind::None;
  // CPU fields (0: not set). Letters are the text form.
  int64_t vector = 0;       // v: f32 lanes per vector
  int64_t channels = 0;     // c: output channels per register tile (per task for gemv/stream)
  int64_t pixels = 0;       // x: pixels of a row per register tile
  int64_t chunk = 0;        // k: input channels per reduction chunk
  int64_t rows = 0;         // r: output rows per parallel task (rows x batch for pointwise)
  int64_t taps_inside = 0;  // t: 1 = every tap inside the register tile
  int64_t pack = 0;         // p: output channels per block of pre-packed weights
  int64_t outputs = 0;      // m: Winograd's outputs per tile side, 2 (F(2x2, 3x3); 0 too) or 4
  // GPU fields: a thread block computes block_channels x block_pixels outputs of one row
  // (x block_rows rows), each thread `channels` x `pixels` of them in registers, reducing over
  // `chunk` input channels per step; shared: 1 stages the block's input window in shared memory.
  // A CPU `tile` with t1 takes C too: output channels per task, its C/c register tiles computed
  // one after another at each tile of pixels (0: c, one tile's channels per task).
  int64_t block_channels = 0;  // C
  int64_t block_pixels = 0;    // X
  int64_t block_rows = 0;      // R
  int64_t shared = 0;          // s
  int64_t unroll = 0;          // u: reduction unroll factor
  bool operator==(const Schedule&) const = default;
};

// Winograd's m: outputs per tile side (2 where the field is not set).
inline int winograd_outputs(const Schedule& s) {
  return s.outputs ? static_cast<int>(s.outputs) : 2;
}
// Winograd tiles along a side of `extent` outputs, m per tile (the last one partial).
inline int64_t winograd_tiles(int64_t extent, int64_t m) { return (extent + m - 1) / m; }

// The text form: "none", or KIND:FIELDS with the fields that are set as a letter and a number
// (tile:v16,c32,x8,k64,r2,p32).
std::string to_text(const Schedule& s);
// Parses the text form; false (and `why`) when it is not one. Checks syntax and the fields a
// kind takes, not whether the schedule fits a layer (schedule_error does that).
bool parse_schedule(std::string_view text, Schedule& s, std::string& why);
// What the text form accepts, for messages.
std::string schedule_syntax();

const char* schedule_kind_name(ScheduleKind k);
TargetFamily target_family(ScheduleKind k);
// Whether a schedule kind can apply to a kernel kind (None applies to all).
bool schedule_fits(ScheduleKind s, KernelKind k);

// Whether a node computes an input gradient that is itself a convolution of dy with the forward
// kernel flipped and transposed, so the conv kernels and their schedules apply: dense_grad_input
// always; conv2d_grad_input when the forward conv had stride 1, no groups, and padding no wider
// than its dilated kernel; conv2d_transpose (the same computation with weights of its own) at
// stride 1 with a crop no wider than its dilated kernel.
bool input_gradient_is_conv(const Graph& g, const Node& n);

// Whether a CPU `tile` schedule's register tiles run on across the rows of the image: a 1x1,
// stride-1 conv without padding reads only its own pixel of the input, so codegen sees its H x W
// pixels as one row of H*W (the same bytes), and no row ends in a partial tile (a 7-pixel row in
// 4-pixel tiles computed 8). `x` is then pixels per tile anywhere in the image, `r` still rows
// of the image per task. Elsewhere a tile's pixels lie in one row.
bool tile_spans_rows(const Graph& g, const Node& n);

// The kernel kind of a node that has a kernel (ir::has_kernel).
KernelKind kernel_kind(const Graph& g, const Node& n);

}  // namespace cnnc::ir
