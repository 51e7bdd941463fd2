#include "ir/graph.h"

#include <sstream>

#include "ir/error.h"
#include "ir/shape_inference.h"

namespace cnnc::ir {

int64_t TensorType::elements() const { return Tensor::count(shape); }

std::string shape_to_string(const Shape& s, bool with_batch) {
  std::string out;
  for (size_t i = with_batch ? 0 : 1; i < s.size(); ++i) {
    if (!out.empty()) out += "x";
    out += std::to_string(s[i]);
  }
  return out.empty() ? "scalar" : out;
}

const Param* Node::param(std::string_view role) const {
  for (const auto& p : params)
    if (p.role == role) return &p;
  return nullptr;
}
Param* Node::param(std::string_view role) {
  return const_cast<Param*>(static_cast<const Node&>(*this).param(role));
}

std::pair<std::string, std::string> parameter_owner(const Node& p) {
  const auto dot = p.name.rfind('.');
  internal_assert(p.op == OpKind::Parameter && dot != std::string::npos,
                  "'" + p.name + "' is not a parameter named LAYER.ROLE");
  return {p.name.substr(0, dot), p.name.substr(dot + 1)};
}

const Param& parameter_value(const Graph& g, const Node& p) {
  const auto [layer, role] = parameter_owner(p);
  const NodeId owner = g.find(layer);
  const Param* param = owner >= 0 ? g.node(owner).param(role) : nullptr;
  if (!param || param->value.shape != p.attr<ParameterAttrs>().shape)
    throw Error(g.where(p) + ": no weights '" + role + "' of shape " +
                shape_to_string(p.attr<ParameterAttrs>().shape, true) + " in a layer '" + layer +
                "'");
  return *param;
}

std::vector<TensorType> input_types(const Graph& g, const Node& n) {
  std::vector<TensorType> types;
  for (NodeId i : n.inputs) types.push_back(g.node(i).type);
  return types;
}

std::string Graph::where(const Node& n) const {
  std::string s = source.empty() ? std::string(name) : source;
  if (n.line > 0) s += ":" + std::to_string(n.line);
  return s + ": layer '" + n.name + "' (" + std::string(n.info().text) + ")";
}

NodeId Graph::find(std::string_view nm) const {
  for (int i = 0; i < size(); ++i)
    if (nodes_[i].name == nm) return i;
  return -1;
}

bool arity_ok(const Node& n) {
  const int nin = static_cast<int>(n.inputs.size()) - (n.epilogue.add ? 1 : 0);
  return nin >= n.info().min_inputs && (n.info().max_inputs < 0 || nin <= n.info().max_inputs);
}

NodeId Graph::add(Node n) {
  const OpInfo& info = n.info();
  auto fail = [&](const std::string& msg) { throw Error(where(n) + ": " + msg); };
  if (n.name.empty()) fail("a layer needs a name");
  if (find(n.name) >= 0) fail("the name is already used by an earlier layer; names must be unique");
  if (n.attrs.index() != default_attrs(n.op).index()) fail("attributes of the wrong kind");
  if (!arity_ok(n)) {
    const int nin = static_cast<int>(n.inputs.size());
    if (n.epilogue.add && nin == info.min_inputs)
      fail("epilogue=add needs a second input, the residual to add (<- INPUT, RESIDUAL)");
    std::string want = info.min_inputs == info.max_inputs
                           ? std::to_string(info.min_inputs)
                           : "at least " + std::to_string(info.min_inputs);
    if (n.epilogue.add) want += " and the residual of epilogue=add";
    std::string why = "takes " + want + " input(s), got " + std::to_string(nin);
    if (!n.epilogue.add && nin == info.max_inputs + 1 &&
        epilogue_rule(n.op) == EpilogueRule::AddAndActivation)
      why += "; a second one is the residual of epilogue=add (or add+ACT)";
    fail(why);
  }
  for (NodeId i : n.inputs)
    if (i < 0 || i >= size()) fail("input refers to a layer that is not defined before it");
  Inferred inf;
  try {
    inf = infer(n, input_types(*this, n), batch_);
  } catch (const Error& e) {
    fail(e.what());
  }
  n.type = inf.type;
  // Keep loaded weights whose shapes agree; otherwise (re)declare the shapes, data empty.
  std::vector<Param> params;
  for (const auto& spec : inf.params) {
    const Param* old = n.param(spec.role);
    if (old && old->value.shape == spec.shape) {
      params.push_back(*old);
    } else if (old && !old->value.data.empty()) {
      fail("weights '" + spec.role + "' have shape " + shape_to_string(old->value.shape, true) +
           ", the layer needs " + shape_to_string(spec.shape, true));
    } else {
      Param p{spec.role, {}};
      p.value.shape = spec.shape;
      params.push_back(std::move(p));
    }
  }
  n.params = std::move(params);
  nodes_.push_back(std::move(n));
  return size() - 1;
}

void Graph::set_outputs(std::vector<NodeId> outs) {
  for (NodeId o : outs)
    if (o < 0 || o >= size()) throw Error("output refers to an unknown layer");
  outputs_ = std::move(outs);
}

std::vector<NodeId> Graph::inputs() const {
  std::vector<NodeId> ins;
  for (int i = 0; i < size(); ++i)
    if (nodes_[i].op == OpKind::Input) ins.push_back(i);
  return ins;
}

std::vector<NodeId> Graph::outputs() const {
  if (!outputs_.empty() || nodes_.empty()) return outputs_;
  return {size() - 1};
}

void Graph::set_batch(int64_t batch) {
  if (batch < 1) throw Error("batch size must be >= 1, got " + std::to_string(batch));
  std::vector<Node> old = std::move(nodes_);
  nodes_.clear();
  batch_ = batch;
  for (auto& n : old) add(std::move(n));
}

}  // namespace cnnc::ir
