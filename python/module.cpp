// The Python module (import cnnc): a network file or a live Keras model compiled for a target and
// called on numpy arrays. The stages' public functions in the order the command line calls them;
// cnnc::Error becomes cnnc.Error with the same message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <sstream>

#include "codegen/compile.h"
#include "ir/error.h"
#include "ir/text.h"
#include "runtime/executor.h"
#include "tools/prepare.h"
#include "tuner/database.h"
#include "tuner/measure.h"
#include "tuner/tune.h"

namespace py = pybind11;
using namespace cnnc;

namespace {

// A compiled network: its Program running on worker threads.
class Compiled {
 public:
  explicit Compiled(codegen::Program p, int threads) : model_(std::move(p), threads) {}

  // Inputs as numpy arrays (float32, batch first, channels last; channels first for an ONNX model,
  // as ONNX Runtime takes them: the same boundary as the command line's); outputs likewise: one
  // array, or a list where the network has several outputs.
  py::object call(const py::args& args) {
    std::vector<ir::Tensor> inputs;
    for (const auto& a : args) {
      auto x = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
      if (!x) throw Error("an input is not an array of numbers");
      ir::Tensor t;
      t.shape.assign(x.shape(), x.shape() + x.ndim());
      t.data.assign(x.data(), x.data() + x.size());
      inputs.push_back(tools::input_from_user(model_.graph(), std::move(t)));
    }
    std::vector<ir::Tensor> outputs;
    {
      py::gil_scoped_release unlocked;  // kernels run on cnnc's workers
      outputs = model_.run(inputs);
    }
    py::list result;
    for (auto& out : outputs) {
      const ir::Tensor t = tools::output_to_user(model_.graph(), std::move(out));
      py::array_t<float> y(std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()));
      std::copy(t.data.begin(), t.data.end(), y.mutable_data());
      result.append(y);
    }
    return outputs.size() == 1 ? result[0] : py::object(result);
  }

  // One line per kernel: layer, op, output shape, its schedule (the IR's text, then in words).
  std::string summary() const {
    const ir::Graph& g = model_.graph();
    std::ostringstream s;
    s << g.name << ": batch " << g.batch() << ", " << model_.kernels().size() << " kernels for "
      << model_.program().target.describe() << "\n";
    for (const auto& ck : model_.kernels()) {
      const ir::Node& n = g.node(ck.node);
      s << "  " << n.name << " (" << n.info().text << ") "
        << ir::shape_to_string(n.type.shape, true) << ": schedule=" << ir::to_text(n.schedule)
        << ", " << ck.kernel->schedule() << "\n";
    }
    return s.str();
  }

  // Times `runs` runs on the inputs of the last call (after one warm-up run).
  py::dict bench(int runs) {
    std::vector<double> ms;
    {
      py::gil_scoped_release unlocked;
      model_.rerun();
      for (int i = 0; i < std::max(runs, 1); ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        model_.rerun();
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
      }
    }
    std::sort(ms.begin(), ms.end());
    py::dict d;
    d["median_ms"] = ms[ms.size() / 2];
    d["min_ms"] = ms.front();
    d["runs"] = ms.size();
    d["images_per_s"] = static_cast<double>(model_.graph().batch()) / (ms[ms.size() / 2] * 1e-3);
    return d;
  }

  py::list shapes(bool inputs) const {
    const ir::Graph& g = model_.graph();
    py::list l;
    for (ir::NodeId id : inputs ? g.inputs() : g.outputs())
      l.append(py::tuple(py::cast(tools::shape_for_user(g, g.node(id).type.shape))));
    return l;
  }

 private:
  runtime::CompiledModel model_;
};

struct Options {
  int64_t batch = 1;
  std::string target = "host", weights, db;  // db: "" for the default tuning database
  uint64_t seed = 0;
  int threads = 0;
};

// The command line's flags for these options (tools/prepare.h: the same load, passes and
// tuning-database lookup as `cnnc run`).
tools::PassFlags flags(const Options& o, bool tuning) {
  tools::PassFlags f;
  f.target = o.target;
  f.db = o.db;
  f.no_tuning = !tuning;
  return f;
}

// load -> weights -> passes (schedules for the target), with or without the tuning database's
// best schedules for this hardware.
ir::Graph optimized(const std::string& path, const Options& o, bool tuning) {
  return tools::optimize(tools::load_with_weights(path, o.batch, o.weights, o.seed),
                         flags(o, tuning), o.threads);
}

std::unique_ptr<Compiled> compile(const std::string& path, const Options& o, bool tuning) {
  ir::Graph g = optimized(path, o, tuning);
  codegen::Program p;
  {
    py::gil_scoped_release unlocked;
    p = codegen::compile(std::move(g), tools::compile_options(flags(o, tuning)));
  }
  return std::make_unique<Compiled>(std::move(p), o.threads);
}

// cnnc tune from Python: each workload's schedule searched for `budget_s` seconds in all, the
// records committed to the database that compile() then reads. `worker`: the measuring
// process's command line (python -m cnnc._worker).
py::list tune(const std::string& path, double budget_s, const Options& o,
              const std::vector<std::string>& worker) {
  tuner::TuneOptions t;
  t.target = codegen::describe_target(o.target);
  if (t.target.family == ir::Target::Gpu)
    throw Error("target " + o.target + ": tuning searches CPU schedules only so far");
  ir::Graph g = optimized(path, o, false);
  t.budget_s = budget_s;
  t.db_path = o.db.empty() ? tuner::default_database_path() : o.db;
  t.threads = tools::resolve_threads(o.threads);
  t.micro_batch = codegen::choose_micro_batch(g, 0);
  t.seed = o.seed;
  t.worker = worker;
  t.alternatives = [target = t.target](const ir::Graph& workload, const ir::Node& layer) {
    return tools::tiling_alternatives(target, workload, layer);
  };
  tuner::TuneResult r;
  {
    py::gil_scoped_release unlocked;
    r = tuner::tune(g, t);
  }
  py::list out;
  for (const auto& w : r.workloads) {
    py::dict d;
    d["workload"] = w.key;
    d["layers"] = w.layers;
    d["heuristic"] = w.heuristic;
    d["heuristic_ms"] = w.heuristic_ms;
    d["best"] = w.verified.empty() ? w.best : w.verified;
    d["best_ms"] = w.verified.empty() ? w.best_ms : w.recheck_best_ms;
    d["trials"] = w.trials;
    out.append(d);
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_cnnc, m) {
  m.doc() = "cnnc's compiler and runtime (use the cnnc package: cnnc.compile, cnnc.load)";
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);
  py::class_<Compiled>(m, "Compiled")
      .def("__call__", &Compiled::call)
      .def("summary", &Compiled::summary)
      .def("bench", &Compiled::bench, py::arg("runs") = 20)
      .def_property_readonly("input_shapes", [](const Compiled& c) { return c.shapes(true); })
      .def_property_readonly("output_shapes", [](const Compiled& c) { return c.shapes(false); });
  py::class_<Options>(m, "Options")
      .def(py::init<>())
      .def_readwrite("batch", &Options::batch)
      .def_readwrite("target", &Options::target)
      .def_readwrite("weights", &Options::weights)
      .def_readwrite("db", &Options::db)
      .def_readwrite("seed", &Options::seed)
      .def_readwrite("threads", &Options::threads);
  m.def("compile", &compile, py::arg("path"), py::arg("options"), py::arg("tuning") = true);
  m.def("tune", &tune, py::arg("path"), py::arg("budget_s"), py::arg("options"), py::arg("worker"));
  // The measuring process's loop (python -m cnnc._worker): JSON lines on stdin and stdout.
  m.def("serve_worker", [] {
    py::gil_scoped_release unlocked;
    return tuner::serve_worker();
  });
}
