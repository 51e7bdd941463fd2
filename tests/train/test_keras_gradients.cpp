// Whole-network gradients against Keras': each fixture (tools/gradient_fixtures.py) holds a
// Keras model, a batch, its labels and every weight's gradient of the mean sparse categorical
// cross-entropy as tf.GradientTape computed it. cnnc's training graph, through the reference and
// compiled, must give the same gradients.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "frontend/load.h"
#include "ir/error.h"
#include "passes/gradient.h"
#include "runtime/npy.h"
#include "runtime/reference/reference.h"
#include "tests/util.h"
#include "train/training_model.h"

using namespace cnnc;

namespace {

// Max |a - b| over max |b| (at least 1e-6).
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 1e-6, worst = 0;
  for (float v : b) scale = std::max(scale, double(std::abs(v)));
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - b[i]) / scale);
  return worst;
}

}  // namespace

TEST_CASE("whole-network gradients match Keras' GradientTape") {
  for (const char* name :
       {"lenet_like", "strided_depthwise", "residual", "batchnorm_net", "dense_block",
        "shared_tower", "mbconv", "convnext_block", "encoder_decoder", "merge_layers"}) {
    CAPTURE(name);
    const std::string base = test::source_path("tests/fixtures/gradients/") + name;
    const ir::Tensor x = runtime::read_npy(base + ".x.npy");
    const ir::Tensor y = runtime::read_npy(base + ".y.npy");
    const ir::Graph forward = frontend::load(base + ".keras", x.shape[0]);
    const auto t =
        passes::build_training_graph(forward, passes::Loss::SparseCategoricalCrossEntropy);
    // The reference: inputs in graph order (the data, then the labels).
    std::vector<ir::Tensor> inputs;
    for (ir::NodeId id : t.graph.inputs())
      inputs.push_back(t.graph.node(id).name == t.labels ? y : x);
    const auto ref = runtime::reference::run(t.graph, inputs);
    // Compiled, on the test target.
    train::ModelOptions o;
    o.batch = x.shape[0];
    o.target = test::test_target();
    train::TrainingModel model(forward, o);
    auto& program = const_cast<runtime::CompiledModel&>(model.program());
    std::vector<ir::Tensor> program_inputs;
    for (ir::NodeId id : program.graph().inputs())
      program_inputs.push_back(program.graph().node(id).name == t.labels ? y : x);
    const auto compiled = program.run(program_inputs);
    REQUIRE(t.trainables.size() == model.training_graph().trainables.size());
    for (size_t k = 0; k < t.trainables.size(); ++k) {
      const auto& tr = t.trainables[k];
      CAPTURE(tr.parameter);
      const ir::Tensor want =
          runtime::read_npy(base + ".grad." + tr.layer + "." + tr.role + ".npy");
      REQUIRE(ref[k + 1].elements() == want.elements());
      CHECK(relative_error(ref[k + 1].data, want.data) < 1e-4);
      const auto& c = model.training_graph().trainables[k];
      REQUIRE(c.parameter == tr.parameter);
      CHECK(relative_error(compiled[k + 1].data, want.data) < 1e-4);
    }
  }
}

TEST_CASE("a shared tower trains as one: after a step its copies hold the weights they share") {
  const std::string base = test::source_path("tests/fixtures/gradients/shared_tower");
  const ir::Tensor x = runtime::read_npy(base + ".x.npy");
  const ir::Tensor y = runtime::read_npy(base + ".y.npy");
  ir::Graph g = frontend::load(base + ".keras", x.shape[0]);
  REQUIRE(g.shared_weights.count("t_conv/call1"));
  const std::vector<float> before = g.node(g.find("t_conv")).param("kernel")->value.data;
  const std::vector<float> mean_before = g.node(g.find("t_bn")).param("moving_mean")->value.data;
  train::ModelOptions o;
  o.batch = x.shape[0];
  o.target = test::test_target();
  train::TrainingModel model(g, o);
  model.step(x, y, 0.01);
  model.copy_weights_to(g);
  const ir::Node& conv = g.node(g.find("t_conv"));
  CHECK(conv.param("kernel")->value.data != before);
  for (const char* role : {"kernel", "bias"})
    CHECK(g.node(g.find("t_conv/call1")).param(role)->value.data == conv.param(role)->value.data);
  // Both calls moved the one set of BatchNorm statistics, and the copy holds them.
  const ir::Node& bn = g.node(g.find("t_bn"));
  CHECK(bn.param("moving_mean")->value.data != mean_before);
  for (const char* role : {"gamma", "beta", "moving_mean", "moving_variance"})
    CHECK(g.node(g.find("t_bn/call1")).param(role)->value.data == bn.param(role)->value.data);
  // The checkpoint slots name each weight once.
  std::set<std::string> names;
  for (const auto& s : model.slots()) CHECK(names.insert(s.name).second);
}
