// A node to a Halide pipeline: its algorithm (codegen/ops/) with its schedule applied
// (codegen/schedules/), after checking that the schedule fits the layer.
#include "codegen/lower.h"

#include <dlfcn.h>

#include "codegen/schedules/schedules.h"
#include "ir/error.h"
#include "ir/text.h"

namespace cnnc::codegen {

using namespace Halide;

std::string halide_library_folder() {
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void*>(&Halide::load_plugin), &info) || !info.dli_fname)
    return "";
  const std::string path = info.dli_fname;
  return path.substr(0, path.rfind('/'));
}

Target halide_target(const ir::Target& t) {
  return t.halide == "host" ? get_host_target() : Target(t.halide);
}

namespace {

// The algorithm with the schedule its kind asks for: an autoscheduler's, the GPU's or the CPU's.
template <class A>
Lowered scheduled(A a, const ir::Schedule& sc, const Target& t, const ir::Target& facts,
                  std::string (*gpu)(A&, const ir::Schedule&),
                  std::string (*cpu)(A&, const ir::Schedule&, const Target&)) {
  std::string how = ir::is_autoscheduler(sc.kind) ? autoschedule(a.out, sc.kind, t, facts)
                    : t.has_gpu_feature()         ? gpu(a, sc)
                                                  : cpu(a, sc, t);
  return {a.out,          a.args,         a.arg_dims,        a.out_dims,
          std::move(how), a.weight_block, a.winograd_outputs};
}

Lowered lower_as(const ir::Graph& g, const ir::Node& n, const ir::Schedule& sc, const Target& t,
                 const ir::Target& facts) {
  const bool gpu = t.has_gpu_feature();
  if (const std::string why =
          schedule_error(g, n, sc, gpu ? ir::TargetFamily::Gpu : ir::TargetFamily::Cpu);
      !why.empty())
    throw Error(g.where(n) + ": cannot apply its schedule: " + why +
                " (schedule=" + ir::to_text(sc) +
                "); leave it out (schedule=none) to let the tiling pass choose one");
  switch (ir::kernel_kind(g, n)) {
    case ir::KernelKind::Conv:
    case ir::KernelKind::Depthwise:
      if (sc.kind == ir::ScheduleKind::Winograd) {
        // The kernel transformed once at load, in the blocks of output channels a task reads.
        WinogradAlgorithm a = winograd_algorithm(conv_spec(g, n), ir::winograd_outputs(sc),
                                                 static_cast<int>(sc.channels), "conv");
        std::string how = schedule_winograd_cpu(a, sc, t);
        return {a.out,          a.args,         a.arg_dims,        a.out_dims,
                std::move(how), a.weight_block, a.winograd_outputs};
      }
      return scheduled(conv_algorithm(conv_spec(g, n, sc), static_cast<int>(sc.pack),
                                      n.op == ir::OpKind::Dense ? "dense" : "conv"),
                       sc, t, facts, schedule_conv_gpu, schedule_conv_cpu);
    case ir::KernelKind::Pool:
      return scheduled(pool_algorithm(g, n), sc, t, facts, schedule_pool_gpu, schedule_pool_cpu);
    case ir::KernelKind::Pointwise:
      return scheduled(pointwise_algorithm(g, n), sc, t, facts, schedule_pointwise_gpu,
                       schedule_pointwise_cpu);
    case ir::KernelKind::Gradient:
      return scheduled(gradient_algorithm(g, n), sc, t, facts, schedule_gradient_gpu,
                       schedule_gradient_cpu);
  }
  throw InternalError("unknown kernel kind");
}

// Whether a CPU pipeline runs on zero-filled arguments of its fixed shapes: an autoscheduler may
// compute an intermediate stage past an input's fixed bounds (Adams2019 on ResNet50's 3-channel
// stem: channels -14..2), and Halide then fails every call of the kernel.
bool runs_on_zeros(Lowered& l, const Target& t) {
  bool ok = true;
  try {
    for (size_t i = 0; i < l.args.size(); ++i) {
      Buffer<float> b(l.arg_dims[i]);
      b.fill(0.f);
      l.args[i].set(b);
    }
    Buffer<float> out(l.out_dims);
    l.out.realize(out, t);
  } catch (const Halide::Error&) {
    ok = false;
  }
  for (auto& p : l.args) p.reset();
  return ok;
}

// An autoscheduler's failure on one kernel leaves that kernel to codegen's default schedule for
// the target, and the schedule's description says why.
Lowered fall_back(const ir::Graph& g, const ir::Node& n, const Target& t, const ir::Target& facts,
                  const std::string& why) {
  Lowered l = lower_as(g, n, ir::Schedule{}, t, facts);
  l.schedule = std::string(ir::schedule_kind_name(n.schedule.kind)) + " " + why +
               "; codegen's default: " + l.schedule;
  return l;
}

}  // namespace

// An autoscheduler that finds no schedule for a kernel (Anderson2021 on a softmax: "zero
// parallel tilings"), or one whose CPU schedule fails on the kernel's own shapes, leaves it to
// codegen's default schedule.
Lowered lower(const ir::Graph& g, const ir::Node& n, const Target& t, const ir::Target& facts) {
  if (!ir::is_autoscheduler(n.schedule.kind)) return lower_as(g, n, n.schedule, t, facts);
  Lowered l;
  try {
    l = lower_as(g, n, n.schedule, t, facts);
  } catch (const Halide::Error& e) {
    std::string why = e.what();
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    why = why.substr(why.find_first_not_of(" :", why.rfind("Error") == 0 ? 6 : 0));
    return fall_back(g, n, t, facts, "found no schedule (" + why + ")");
  }
  // A GPU pipeline is not probed: compiling for a GPU needs no device, running does.
  if (!t.has_gpu_feature() && !runs_on_zeros(l, t))
    return fall_back(g, n, t, facts, "gave a schedule that fails on this kernel's shapes");
  return l;
}

}  // namespace cnnc::codegen
