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
#include "frontend/load.h"
#include "ir/error.h"
#include "passes/pipeline.h"
#include "runtime/executor.h"
#include "runtime/weights.h"

namespace py = pybind11;
using namespace cnnc;

namespace {

// A compiled network: its Program running on worker threads.
class Compiled {
 public:
  explicit Compiled(codegen::Program p, int threads) : model_(std::move(p), threads) {}

  // Inputs as numpy arrays (float32, batch first, channels last); outputs likewise: one array,
  // or a list where the network has several outputs.
  py::object call(const py::args& args) {
    std::vector<ir::Tensor> inputs;
    for (const auto& a : args) {
      auto x = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
      if (!x) throw Error("an input is not an array of numbers");
      ir::Tensor t;
      t.shape.assign(x.shape(), x.shape() + x.ndim());
      t.data.assign(x.data(), x.data() + x.size());
      inputs.push_back(std::move(t));
    }
    std::vector<ir::Tensor> outputs;
    {
      py::gil_scoped_release unlocked;  // kernels run on cnnc's workers
      outputs = model_.run(inputs);
    }
    py::list result;
    for (const auto& t : outputs) {
      py::array_t<float> y(std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()));
      std::copy(t.data.begin(), t.data.end(), y.mutable_data());
      result.append(y);
    }
    return outputs.size() == 1 ? result[0] : py::object(result);
  }

  // One line per kernel: layer, op, output shape, the schedule it runs.
  std::string summary() const {
    const ir::Graph& g = model_.graph();
    std::ostringstream s;
    s << g.name << ": batch " << g.batch() << ", " << model_.kernels().size() << " kernels for "
      << model_.program().target.describe() << "\n";
    for (const auto& ck : model_.kernels()) {
      const ir::Node& n = g.node(ck.node);
      s << "  " << n.name << " (" << n.info().text << ") "
        << ir::shape_to_string(n.type.shape, true) << ": " << ck.kernel->schedule() << "\n";
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
        ms.push_back(std::chrono::duration<double, std::milli>(
                         std::chrono::steady_clock::now() - t0)
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
    for (ir::NodeId id : inputs ? g.inputs() : g.outputs()) l.append(py::tuple(py::cast(g.node(id).type.shape)));
    return l;
  }

 private:
  runtime::CompiledModel model_;
};

// load -> weights -> passes (schedules for the target) -> codegen, as `cnnc run` does.
std::unique_ptr<Compiled> compile(const std::string& path, int64_t batch, const std::string& target,
                                  const std::string& weights, uint64_t seed, int threads) {
  ir::Graph g = frontend::load(path, batch);
  if (weights.empty())
    runtime::init_weights(g, seed);
  else
    runtime::load_weights(g, weights);
  passes::PipelineOptions opts;
  opts.tiling.target = codegen::describe_target(target);
  opts.tiling.kernel_batch = codegen::choose_micro_batch(g, 0, opts.tiling.target.family);
  codegen::CompileOptions c;
  c.target = target;
  codegen::Program p;
  {
    py::gil_scoped_release unlocked;
    p = codegen::compile(passes::optimize(std::move(g), opts), c);
  }
  return std::make_unique<Compiled>(std::move(p), threads);
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
  m.def("compile", &compile, py::arg("path"), py::arg("batch") = 1, py::arg("target") = "host",
        py::arg("weights") = "", py::arg("seed") = 0, py::arg("threads") = 0);
}
