#pragma once
// What `run` and `bench` share: a network loaded at a batch size, with its weights.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "codegen/compile.h"
#include "ir/graph.h"

namespace cnnc::tools {

// The tiling pass's alternatives of a layer the tuner measures before its search
// (tuner::TuneOptions::alternatives): a 3x3 stride-1 conv's Winograd F(2x2, 3x3) and F(4x4, 3x3)
// schedules.
std::vector<ir::Schedule> tiling_alternatives(const ir::Target& target, const ir::Graph& workload,
                                              const ir::Node& layer);

// Loads NET at the batch size; weights from `weights_path` if given, else initialised from seed.
ir::Graph load_with_weights(const std::string& net, int64_t batch, const std::string& weights_path,
                            uint64_t seed);

// The options every compiling subcommand takes: --target, --disable-pass, --print-after, ...
struct PassFlags {
  std::vector<std::string> disabled;
  std::string print_after;  // a pass name, or "all"
  bool print_ir = false;    // the final IR
  bool time_passes = false;
  bool no_weight_packing = false, no_memory_reuse = false, winograd = false;
  int64_t micro_batch = 0;
  std::string target = "host";
  std::string db;        // the tuning database (default: tuner::default_database_path())
  bool no_tuning = false;  // the tiling pass's schedules even where the database has better
  bool explain = false;  // say for each kernel which schedule it runs and why
  std::string autoschedule;  // every kernel scheduled by this Halide autoscheduler instead
};
void add_pass_flags(CLI::App& sub, PassFlags& flags);
// passes::optimize with the flags, for their target, then the tuning database's best schedules
// for this hardware (threads: the run's worker threads, 0 for one per core); IR printed to
// stdout after the passes asked for, and with --explain each kernel's schedule and why.
ir::Graph optimize(ir::Graph g, const PassFlags& flags, int threads = 0);
// Codegen options from the flags.
codegen::CompileOptions compile_options(const PassFlags& flags);
// The one compile path of every subcommand: the passes, then codegen, for the flags' target.
codegen::Program build_program(ir::Graph g, const PassFlags& flags, int threads = 0);
// The thread count a run uses: `threads`, or one per core.
int resolve_threads(int threads);

// Deterministic inputs in [0, 1) for every graph input (like a normalised image).
std::vector<ir::Tensor> random_inputs(const ir::Graph& g, uint64_t seed);

// A model's tensors at the command line's boundary: for a channels-first source (ONNX) a rank-4
// .npy is N x C x H x W, which these convert to and from the IR's NHWC; otherwise unchanged.
ir::Tensor input_from_user(const ir::Graph& g, ir::Tensor t);
ir::Tensor output_to_user(const ir::Graph& g, ir::Tensor t);
// An input's or output's shape as the user gives or gets it (N x C x H x W for such a source).
ir::Shape shape_for_user(const ir::Graph& g, const ir::Shape& s);

}  // namespace cnnc::tools
