// cnnc compare NET --input x.npy --expect y.npy: compiles and runs NET on a stored input and
// compares with stored outputs (e.g. Keras'), printing one JSON object. Exit 0 when every output
// is within the tolerance, 4 when not. --logits compares what goes into each output's final
// softmax: a deep net with random weights saturates its softmax into a one-hot vector, where a
// relative error says nothing (0, or 1 when two huge logits swap).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "frontend/load.h"
#include "ir/error.h"
#include "ir/shape_inference.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/weights.h"
#include "tools/commands.h"
#include "tools/prepare.h"

namespace cnnc::tools {

namespace {

struct CompareFlags {
  std::string net;
  std::vector<std::string> inputs, expected;
  double tolerance = 1e-4;
  int threads = 0;
  bool logits = false;
  PassFlags passes;
};

int compare(const CompareFlags& o) {
  using Clock = std::chrono::steady_clock;
  std::vector<ir::Tensor> inputs;
  for (const auto& p : o.inputs) inputs.push_back(runtime::read_npy(p));
  const auto t_load = Clock::now();
  ir::Graph g = frontend::load(o.net, inputs.at(0).shape.at(0));
  const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
  runtime::init_weights(g, 0);  // only weights the file did not set (none for a full model)
  if (o.logits) {
    std::vector<ir::NodeId> outs;
    for (ir::NodeId id : g.outputs()) {
      const ir::Node& n = g.node(id);
      if (n.op != ir::OpKind::Softmax)
        throw Error(o.net + ": --logits: output '" + n.name + "' (" + std::string(n.info().text) +
                    ") does not end in a softmax; compare it without --logits");
      outs.push_back(n.inputs.at(0));
    }
    g.set_outputs(outs);
  }
  nlohmann::json r;
  r["model"] = g.name;
  int64_t params = 0, weighted = 0, macs = 0;
  for (const auto& n : g.nodes()) {
    weighted += !n.params.empty();
    macs += ir::macs(n, ir::input_types(g, n));
  }
  params = ir::total_params(g);
  r["params"] = params;
  r["layers_with_weights"] = weighted;
  r["ir_nodes"] = g.size();
  r["weight_mb"] = static_cast<double>(params) * 4 / 1e6;
  r["macs_per_batch"] = macs;
  r["load_seconds"] = load_s;
  runtime::CompiledModel model(build_program(std::move(g), o.passes, o.threads), o.threads);
  r["compile_seconds"] = model.program().compile_seconds;
  r["kernels"] = model.kernels().size();
  const auto t0 = Clock::now();
  for (auto& t : inputs) t = input_from_user(model.graph(), std::move(t));
  std::vector<ir::Tensor> outs = model.run(inputs);
  for (auto& t : outs) t = output_to_user(model.graph(), std::move(t));
  r["run_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (outs.size() != o.expected.size())
    throw Error(o.net + ": has " + std::to_string(outs.size()) + " outputs, " +
                std::to_string(o.expected.size()) + " --expect files given");
  double worst_rel = 0, worst_abs = 0;
  for (size_t i = 0; i < outs.size(); ++i) {
    const ir::Tensor want = runtime::read_npy(o.expected[i]);
    if (want.elements() != outs[i].elements())
      throw Error(o.expected[i] + ": holds " + std::to_string(want.elements()) +
                  " values, output " + std::to_string(i) + " has " +
                  std::to_string(outs[i].elements()) + " (" +
                  ir::shape_to_string(outs[i].shape, true) + ")");
    double max_abs = 0, max_mag = 0;
    for (size_t k = 0; k < want.data.size(); ++k) {
      const double d = std::abs(static_cast<double>(outs[i].data[k]) - want.data[k]);
      max_abs = std::isnan(d) ? INFINITY : std::max(max_abs, d);
      max_mag = std::max(max_mag, std::abs(static_cast<double>(want.data[k])));
    }
    worst_abs = std::max(worst_abs, max_abs);
    worst_rel = std::max(worst_rel, max_mag > 0 ? max_abs / max_mag : max_abs);
  }
  r["max_abs_error"] = worst_abs;
  r["max_rel_error"] = worst_rel;  // max |ours - expected| / max |expected|
  r["tolerance"] = o.tolerance;
  r["pass"] = worst_rel <= o.tolerance;
  std::printf("%s\n", r.dump().c_str());
  return worst_rel <= o.tolerance ? 0 : 4;
}

}  // namespace

Action add_compare(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "compare",
      "Run NET on stored inputs and compare with stored outputs (JSON; exit 4 when they differ)");
  auto o = std::make_shared<CompareFlags>();
  sub->add_option("NET", o->net, "network file (.cnn, .keras, .h5, .json, .onnx)")->required();
  sub->add_option("--input", o->inputs, "input .npy, one per network input in order")->required();
  sub->add_option("--expect", o->expected, "expected output .npy, one per output in order")
      ->required();
  sub->add_option("--tolerance", o->tolerance, "max |ours - expected| / max |expected| accepted");
  sub->add_option("--threads", o->threads, "worker threads (0: one per core)")
      ->check(CLI::Range(0, 256));
  sub->add_flag("--logits", o->logits,
                "compare the values before each output's final softmax (the expected files hold "
                "them)");
  add_pass_flags(*sub, o->passes);
  return [o] { return compare(*o); };
}

}  // namespace cnnc::tools
