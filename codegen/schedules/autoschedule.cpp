// Halide's autoschedulers on one kernel: the plugins ship in Halide's wheel beside libHalide
// (libautoschedule_adams2019.so, _mullapudi2016, _anderson2021); each is loaded once, by
// absolute path, and run with fixed seeds so that a kernel's schedule is reproducible.
#include <dlfcn.h>

#include <map>
#include <mutex>
#include <set>

#include "codegen/lower.h"
#include "codegen/schedules/schedules.h"
#include "ir/error.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

void load_autoscheduler(const std::string& plugin) {
  static std::mutex mutex;
  static std::set<std::string> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  if (loaded.count(plugin)) return;
  const std::string path = halide_library_folder() + "/libautoschedule_" + plugin + ".so";
  // A plugin carries its own copy of Halide's runtime (its thread pool for the cost model),
  // under the same symbol names as the runtime library the kernel cache loads globally. Bound
  // to the global scope first, as a plugin loaded plainly is, its thread pool mixed the two
  // copies' queues and locks and could wait forever (Adams2019 under CPU contention: a stack
  // in its do_par_for waiting on the cache runtime's condition). Loaded first with
  // RTLD_DEEPBIND, it binds to its own; Halide's load_plugin then reuses this load.
  dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  try {
    load_plugin(path);
  } catch (const Halide::Error& e) {
    throw Error("cannot load Halide's " + plugin + " autoscheduler from " + path + ": " +
                e.what());
  }
  loaded.insert(plugin);
}

}  // namespace

std::string autoschedule(Func& out, ir::ScheduleKind kind, const Target& target,
                         const ir::Target& facts) {
  // Adams2019 and Mullapudi2016 take the CPU's cores as parallelism, Anderson2021 the GPU's
  // SMs (the H200's 132 where the device is not known at compile time).
  const int cores = std::max(1, facts.cpu.cores);
  const int sms = facts.gpu.sms > 0 ? facts.gpu.sms : 132;
  std::string name, plugin;
  std::map<std::string, std::string> params;
  switch (kind) {
    case ir::ScheduleKind::Adams2019:
      name = "Adams2019", plugin = "adams2019";
      params = {{"parallelism", std::to_string(cores)}, {"random_dropout_seed", "1"}};
      break;
    case ir::ScheduleKind::Mullapudi2016:
      name = "Mullapudi2016", plugin = "mullapudi2016";
      params = {{"parallelism", std::to_string(cores)}};
      if (facts.cpu.l2_bytes > 0)
        params["last_level_cache_size"] = std::to_string(facts.cpu.l2_bytes);
      break;
    case ir::ScheduleKind::Anderson2021:
      name = "Anderson2021", plugin = "anderson2021";
      params = {{"parallelism", std::to_string(sms)}, {"random_dropout_seed", "1"}};
      break;
    default:
      throw InternalError("autoschedule called for a schedule that is not an autoscheduler");
  }
  load_autoscheduler(plugin);
  Pipeline(out).apply_autoscheduler(target, AutoschedulerParams(name, params));
  std::string how = "Halide's " + name + " autoscheduler (";
  for (const auto& [k, v] : params) how += (how.back() == '(' ? "" : ", ") + k + " " + v;
  return how + ")";
}

}  // namespace cnnc::codegen
