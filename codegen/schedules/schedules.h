#pragma once
// Applying a Schedule (ir/schedule.h) to an algorithm (codegen/ops/), per target family
// (codegen-internal; includes Halide). Schedules come from the tiling pass, the tuner or a
// user's IR text, so they are checked against the layer first, not trusted.
#include <string>

#include "codegen/ops/ops.h"
#include "ir/schedule.h"
#include "ir/target.h"

namespace cnnc::codegen {

// Why `sc` cannot be applied to this kernel on a `family` target, or "" when it can.
std::string schedule_error(const ir::Graph& g, const ir::Node& n, const ir::Schedule& sc,
                           ir::TargetFamily family);

// The CPU schedules; each returns what it did, in words (for `--emit schedule` and profiles).
std::string schedule_conv_cpu(ConvAlgorithm& a, const ir::Schedule& sc, const Halide::Target& t);
std::string schedule_winograd_cpu(WinogradAlgorithm& a, const ir::Schedule& sc,
                                  const Halide::Target& t);
std::string schedule_pool_cpu(Algorithm& a, const ir::Schedule& sc, const Halide::Target& t);
std::string schedule_gradient_cpu(GradientAlgorithm& a, const ir::Schedule& sc,
                                  const Halide::Target& t);
std::string schedule_pointwise_cpu(PointwiseAlgorithm& a, const ir::Schedule& sc,
                                   const Halide::Target& t);

// The GPU schedules (CUDA and OpenCL alike): thread blocks over output tiles, each thread a
// few outputs in registers. A kernel whose schedule is `none` gets GPU defaults, since a GPU
// kernel left unscheduled would run on the host.
// Why a GPU schedule cannot apply to a conv (depthwise or not) or to a pooling/pointwise kernel
// with `channels` outputs, or "" (schedule_error's GPU half).
std::string gpu_schedule_error(const ConvSpec& s, bool depthwise, const ir::Schedule& sc);
std::string gpu_pointwise_error(const ir::Schedule& sc, int64_t channels);
std::string schedule_conv_gpu(ConvAlgorithm& a, const ir::Schedule& sc);
std::string schedule_pool_gpu(Algorithm& a, const ir::Schedule& sc);
std::string schedule_pointwise_gpu(PointwiseAlgorithm& a, const ir::Schedule& sc);
std::string schedule_gradient_gpu(GradientAlgorithm& a, const ir::Schedule& sc);

// Schedules `out` (an algorithm's output, unscheduled) by one of Halide's autoschedulers
// (ir::is_autoscheduler(kind)) for the target; returns what ran, with its parameters.
std::string autoschedule(Halide::Func& out, ir::ScheduleKind kind, const Halide::Target& target,
                         const ir::Target& facts);

}  // namespace cnnc::codegen
