#include "tools/prepare.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "frontend/load.h"
#include "ir/error.h"
#include "ir/text.h"
#include "passes/choose_tiles.h"
#include "passes/pipeline.h"
#include "runtime/weights.h"
#include "tuner/apply.h"
#include "tuner/database.h"

namespace cnnc::tools {

std::vector<ir::Schedule> tiling_alternatives(const ir::Target& target, const ir::Graph& workload,
                                              const ir::Node& layer) {
  std::vector<ir::Schedule> alternatives;
  for (int m : {2, 4})
    if (ir::Schedule w = passes::winograd_alternative(workload, layer, {target}, m);
        w.kind == ir::ScheduleKind::Winograd)
      alternatives.push_back(w);
  return alternatives;
}

ir::Graph load_with_weights(const std::string& net, int64_t batch, const std::string& weights_path,
                            uint64_t seed) {
  ir::Graph g = frontend::load(net, batch);
  if (weights_path.empty())
    runtime::init_weights(g, seed);
  else
    runtime::load_weights(g, weights_path);
  return g;
}

void add_pass_flags(CLI::App& sub, PassFlags& flags) {
  sub.add_option("--target", flags.target,
                 std::string("what to compile for: ") + ir::kTargetSyntax +
                     " (a GPU target compiles anywhere; running it needs that GPU)");
  sub.add_option("--disable-pass", flags.disabled, "skip this optimisation pass (repeatable)");
  sub.add_option("--print-after", flags.print_after,
                 "print the IR after this pass ('all': after each)");
  sub.add_flag("--print-ir", flags.print_ir,
               "print the IR that reaches codegen (after all passes)");
  sub.add_flag("--time-passes", flags.time_passes, "print each pass's time to stderr");
  sub.add_flag("--no-weight-packing", flags.no_weight_packing,
               "keep conv and dense weights in their stored layout (to measure packing)");
  sub.add_flag("--winograd", flags.winograd,
               "let the tiling pass compute 3x3 stride-1 convs as Winograd F(2x2,3x3) where it "
               "pays (fewer multiplies, a few times a direct conv's rounding; off by default at "
               "inference, on in training; tuned records apply either way)");
  sub.add_flag("--no-memory-reuse", flags.no_memory_reuse,
               "give every activation its own buffer (to measure the memory plan)");
  sub.add_option(
         "--micro-batch", flags.micro_batch,
         "images per pass through the network, a divisor of the batch (0: cnnc chooses, up to 4)")
      ->check(CLI::Range(int64_t{0}, int64_t{4096}));
  sub.add_option(
      "--db", flags.db,
      "the tuning database (default: $CNNC_TUNING_DB, else tuning.db in the cache folder)");
  sub.add_flag("--no-tuning", flags.no_tuning,
               "use the tiling pass's schedules, not the tuning database's");
  sub.add_flag("--explain", flags.explain, "say for each kernel which schedule it runs and why");
  sub.add_option("--autoschedule", flags.autoschedule,
                 "schedule every kernel with this Halide autoscheduler instead (a comparison "
                 "point): adams2019 or mullapudi2016 on a CPU, anderson2021 on a GPU target")
      ->check(CLI::IsMember({"adams2019", "mullapudi2016", "anderson2021"}));
}

int resolve_threads(int threads) {
  return threads > 0 ? threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

codegen::CompileOptions compile_options(const PassFlags& flags) {
  codegen::CompileOptions o;
  o.target = flags.target;
  o.reuse_memory = !flags.no_memory_reuse;
  o.micro_batch = flags.micro_batch;
  return o;
}

ir::Graph optimize(ir::Graph g, const PassFlags& flags, int threads) {
  passes::PipelineOptions opts;
  opts.disabled = {flags.disabled.begin(), flags.disabled.end()};
  // Schedules for this machine, at the batch each kernel will be called with.
  opts.tiling.target = codegen::describe_target(flags.target);
  opts.tiling.kernel_batch =
      codegen::choose_micro_batch(g, flags.micro_batch, opts.tiling.target.family);
  opts.tiling.pack_weights = !flags.no_weight_packing;
  opts.tiling.winograd = flags.winograd;
  const auto names = passes::pass_names();
  if (!flags.print_after.empty() && flags.print_after != "all" &&
      std::find(names.begin(), names.end(), flags.print_after) == names.end())
    throw Error("--print-after: unknown pass '" + flags.print_after +
                "'; use 'all' or one of the passes listed by --help");
  if (!flags.print_after.empty() || flags.time_passes)
    opts.after_pass = [&](const passes::PipelineOptions::PassRun& r) {
      if (flags.time_passes)
        std::fprintf(stderr, "pass %-22s %9.3f ms%s\n", r.pass.c_str(), 1e3 * r.seconds,
                     r.changed ? "" : " (unchanged)");
      if (flags.print_after.empty() || (flags.print_after != "all" && flags.print_after != r.pass))
        return;
      std::printf("# IR after %s%s\n%s", r.pass.c_str(), r.changed ? "" : " (unchanged)",
                  r.changed ? ir::print(r.graph).c_str() : "");
    };
  g = passes::optimize(std::move(g), opts);
  if (!flags.autoschedule.empty()) {
    ir::Schedule sc;
    std::string why;
    internal_assert(parse_schedule(flags.autoschedule, sc, why), why);
    const bool gpu_kind = ir::target_family(sc.kind) == ir::TargetFamily::Gpu;
    if (gpu_kind != (opts.tiling.target.family == ir::Target::Gpu))
      throw Error("--autoschedule " + flags.autoschedule + " schedules for a " +
                  (gpu_kind ? "GPU" : "CPU") + " target, and --target " + flags.target +
                  " is not one; use " + (gpu_kind ? "adams2019 or mullapudi2016" : "anderson2021"));
    for (auto& n : g.nodes())
      if (ir::has_kernel(n.op)) n.schedule = sc;
    if (flags.explain)
      std::printf("# schedules: Halide's %s autoscheduler on every kernel (--autoschedule)\n",
                  flags.autoschedule.c_str());
  } else if (!flags.no_tuning) {
    const auto why = tuner::apply_records(
        g, flags.db.empty() ? tuner::default_database_path() : flags.db, opts.tiling.target,
        resolve_threads(threads), opts.tiling.kernel_batch);
    if (flags.explain)
      for (const auto& e : why)
        std::printf("# schedule of %s: %s, %s\n", e.layer.c_str(), e.schedule.c_str(),
                    e.why.c_str());
  } else if (flags.explain) {
    std::printf("# schedules: the tiling pass's (--no-tuning)\n");
  }
  if (flags.print_ir) std::printf("# IR after all passes\n%s", ir::print(g).c_str());
  return g;
}

codegen::Program build_program(ir::Graph g, const PassFlags& flags, int threads) {
  return codegen::compile(optimize(std::move(g), flags, threads), compile_options(flags));
}

std::vector<ir::Tensor> random_inputs(const ir::Graph& g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<ir::Tensor> inputs;
  for (ir::NodeId id : g.inputs()) {
    ir::Tensor t(g.node(id).type.shape);
    for (auto& v : t.data) v = static_cast<float>(static_cast<double>(rng() >> 11) * 0x1.0p-53);
    inputs.push_back(std::move(t));
  }
  return inputs;
}

namespace {

// Permutes a rank-4 tensor's axes: out[i0][i1][i2][i3] = in at the positions `from` names.
ir::Tensor permute4(const ir::Tensor& t, const int (&from)[4]) {
  const ir::Shape& s = t.shape;
  ir::Tensor r(ir::Shape{s[from[0]], s[from[1]], s[from[2]], s[from[3]]});
  int64_t stride[4] = {s[1] * s[2] * s[3], s[2] * s[3], s[3], 1};
  int64_t i = 0;
  for (int64_t a = 0; a < r.shape[0]; ++a)
    for (int64_t b = 0; b < r.shape[1]; ++b)
      for (int64_t c = 0; c < r.shape[2]; ++c)
        for (int64_t d = 0; d < r.shape[3]; ++d)
          r.data[i++] = t.data[a * stride[from[0]] + b * stride[from[1]] + c * stride[from[2]] +
                               d * stride[from[3]]];
  return r;
}

}  // namespace

ir::Tensor input_from_user(const ir::Graph& g, ir::Tensor t) {
  if (!g.channels_first_io || t.shape.size() != 4) return t;
  return permute4(t, {0, 2, 3, 1});  // NCHW -> NHWC
}

ir::Tensor output_to_user(const ir::Graph& g, ir::Tensor t) {
  if (!g.channels_first_io || t.shape.size() != 4) return t;
  return permute4(t, {0, 3, 1, 2});  // NHWC -> NCHW
}

ir::Shape shape_for_user(const ir::Graph& g, const ir::Shape& s) {
  if (!g.channels_first_io || s.size() != 4) return s;
  return {s[0], s[3], s[1], s[2]};
}

}  // namespace cnnc::tools
