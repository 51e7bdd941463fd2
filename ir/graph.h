#pragma once
// The graph: nodes in topological order, each with one output tensor. Construction is checked
// (Graph::add infers and validates every layer), and verify() re-checks a whole graph.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ir/ops.h"
#include "ir/schedule.h"
#include "ir/types.h"

namespace cnnc::ir {

using NodeId = int;

// A layer's weights, by role: kernel, bias, gamma, beta, moving_mean, moving_variance.
// The shape is fixed by shape inference; data stays empty until weights are initialised or loaded.
struct Param {
  std::string role;
  Tensor value;
  // Computed by an importer from a layer's config (e.g. BatchNorm's gamma when Keras' scale is
  // off), not a weight of the source model: left out of parameter counts.
  bool derived = false;
};

struct Node {
  std::string name;
  OpKind op = OpKind::Input;
  Attrs attrs;
  std::vector<NodeId> inputs;
  TensorType type;
  std::vector<Param> params;
  // Written by the passes (and by hand in the text form), after the attributes: what fused into
  // the kernel (epilogue=add+relu; ops.h epilogue_rule) and how it is computed (schedule=...).
  // The epilogue is part of what a kernel computes; the schedule only of how.
  Epilogue epilogue;
  Schedule schedule;
  int line = 0;  // where it was declared in its source file (0: built in code)
  // Layers the passes merged into this one, in order (folded batchnorm, fused add, ...): shown
  // by `cnnc compile --dump-graph`; not part of the textual IR.
  std::vector<std::string> absorbed;

  template <class A>
  const A& attr() const {
    return std::get<A>(attrs);
  }
  const Param* param(std::string_view role) const;
  Param* param(std::string_view role);
  const OpInfo& info() const { return op_info(op); }
};

class Graph {
 public:
  std::string name = "network";
  std::string source;  // file the graph was read from, for messages
  // Weights of the source model that an importer folded into derived ones (Keras
  // Normalization's mean, variance and count): counted in total_params.
  int64_t folded_params = 0;
  // The source format is channels-first (ONNX): its inputs and rank-4 outputs are N x C x H x W
  // where the IR's are NHWC. The command line converts .npy files at that boundary.
  bool channels_first_io = false;
  // Layers that are copies of another's weights, by name: copy -> original. An importer makes
  // one layer per call of a layer called several times (Keras' shared layers); the copies' weights
  // are counted once in total_params.
  std::map<std::string, std::string> shared_weights;

  // Appends a layer after checking its name, inputs and shapes; returns its id. Throws
  // cnnc::Error naming file:line, the layer and what would be accepted.
  NodeId add(Node n);
  void set_outputs(std::vector<NodeId> outs);

  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Node>& nodes() { return nodes_; }
  const Node& node(NodeId id) const { return nodes_.at(id); }
  Node& node(NodeId id) { return nodes_.at(id); }
  int size() const { return static_cast<int>(nodes_.size()); }
  std::vector<NodeId> inputs() const;
  // The graph's outputs; the last layer when none were set.
  std::vector<NodeId> outputs() const;
  NodeId find(std::string_view name) const;  // -1 when absent

  int64_t batch() const { return batch_; }
  // Changes the batch size and re-infers every type (weights keep their shapes).
  void set_batch(int64_t batch);

  // "file:12: layer 'c1' (conv2d)" — the prefix of every message about a layer.
  std::string where(const Node& n) const;

 private:
  std::vector<Node> nodes_;
  std::vector<NodeId> outputs_;
  int64_t batch_ = 1;
};

// Whether a node has as many inputs as its op takes (plus an epilogue's residual).
bool arity_ok(const Node& n);

// The layer and role a `parameter` node stands for: "conv1.kernel" -> (conv1, kernel).
std::pair<std::string, std::string> parameter_owner(const Node& parameter);
// The weights a `parameter` node stands for, in its graph; throws naming it when they are missing.
const Param& parameter_value(const Graph& g, const Node& parameter);

// Input types of a node, in order.
std::vector<TensorType> input_types(const Graph& g, const Node& n);

}  // namespace cnnc::ir
