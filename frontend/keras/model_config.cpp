#include "frontend/keras/model_config.h"

#include <algorithm>
#include <optional>
#include <set>

#include "ir/error.h"

namespace cnnc::frontend::keras {

using nlohmann::json;

namespace {

constexpr size_t kMaxLayers = 100000;

[[noreturn]] void fail(const std::string& source, const std::string& msg) {
  throw Error(source + ": " + msg);
}

TensorRef ref_from_history(const json& h, const std::string& where, bool counts_built_in_node) {
  if (!h.is_array() || h.size() < 3 || !h[0].is_string() || !h[1].is_number_integer() ||
      !h[2].is_number_integer())
    throw Error(where + ": a layer reference must be [name, node_index, tensor_index]");
  return {h[0].get<std::string>(), h[1].get<int>(), h[2].get<int>(), counts_built_in_node};
}

// Keras 3: {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, tensor]}}
// anywhere inside "args"; Keras 2: [[name, node, tensor, kwargs], ...].
void collect_keras3(const json& v, std::vector<TensorRef>& out, const std::string& where,
                    int depth = 0) {
  if (depth > 16) throw Error(where + ": inbound_nodes are nested too deeply");
  if (v.is_object()) {
    if (v.value("class_name", "") == "__keras_tensor__") {
      if (!v.contains("config") || !v["config"].contains("keras_history"))
        throw Error(where + ": a __keras_tensor__ without keras_history");
      out.push_back(ref_from_history(v["config"]["keras_history"], where, false));
      return;
    }
    for (const auto& [k, item] : v.items()) collect_keras3(item, out, where, depth + 1);
  } else if (v.is_array()) {
    for (const auto& item : v) collect_keras3(item, out, where, depth + 1);
  }
}

// What one call of a layer reads: tensors, and numbers beside them (Keras 3 operations on a
// tensor and a constant, such as `x + 3.0`).
struct Call {
  std::vector<TensorRef> inputs;
  std::vector<double> constants;
};

// Every call of a layer, in Keras' order (a reference's node index counts these).
std::vector<Call> inbound(const json& layer, const std::string& where) {
  std::vector<Call> calls;
  if (!layer.contains("inbound_nodes")) return calls;
  const json& nodes = layer["inbound_nodes"];
  if (!nodes.is_array()) throw Error(where + ": inbound_nodes must be a list");
  if (nodes.size() > 1024) throw Error(where + ": called more than 1024 times");
  for (const json& node : nodes) {
    Call c;
    if (node.is_object()) {  // Keras 3
      collect_keras3(node.contains("args") ? node["args"] : json::array(), c.inputs, where);
      if (node.contains("args") && node["args"].is_array())
        for (const auto& a : node["args"])
          if (a.is_number()) c.constants.push_back(a.get<double>());
    } else if (node.is_array()) {  // Keras 2
      for (const auto& h : node) c.inputs.push_back(ref_from_history(h, where, true));
    } else {
      throw Error(where + ": unrecognised inbound_nodes entry");
    }
    calls.push_back(std::move(c));
  }
  return calls;
}

std::string call_name(const std::string& layer, int call) {
  return call == 0 ? layer : layer + "/call" + std::to_string(call);
}

std::vector<TensorRef> endpoints(const json& v, const std::string& where) {
  std::vector<TensorRef> refs;
  if (!v.is_array()) throw Error(where + " must be a list");
  // A single [name, 0, 0] (Keras 3, one input) or a list of them.
  if (v.size() == 3 && v[0].is_string()) {
    refs.push_back(ref_from_history(v, where, true));
    return refs;
  }
  for (const auto& item : v) refs.push_back(ref_from_history(item, where, true));
  return refs;
}

bool is_model_class(const std::string& cls) {
  return cls == "Functional" || cls == "Sequential" || cls == "Model";
}

// Replaces each model-as-layer by its layers: the inner model's inputs become what the
// model-as-layer read, and a reference to the model-as-layer's output becomes its inner
// output. `nested` holds the inner configs by the outer layer's name.
void inline_nested(ModelConfig& m, std::map<std::string, ModelConfig>& nested,
                   const std::string& source) {
  if (nested.empty()) return;
  std::map<std::pair<std::string, int>, TensorRef> alias;  // (layer, tensor) -> what it is
  std::set<std::string> names;
  for (const Layer& l : m.layers)
    if (!nested.count(l.name)) names.insert(l.name);
  std::vector<Layer> flat;
  for (Layer& l : m.layers) {
    auto it = nested.find(l.name);
    if (it == nested.end()) {
      flat.push_back(std::move(l));
      continue;
    }
    ModelConfig& inner = it->second;
    const std::string where = source + ": nested model '" + l.name + "'";
    if (l.inputs.size() != inner.inputs.size())
      fail(where, "is called with " + std::to_string(l.inputs.size()) + " input(s) and has " +
                      std::to_string(inner.inputs.size()));
    // The inner inputs under names of this model-as-layer's own, so that they cannot be
    // confused with an outer layer of the same name.
    std::map<std::string, std::string> inner_input;
    for (size_t k = 0; k < inner.inputs.size(); ++k) {
      const std::string key = l.name + "/" + inner.inputs[k].layer;
      inner_input[inner.inputs[k].layer] = key;
      alias[{key, 0}] = l.inputs[k];
    }
    // Call j > 0 of a shared model: its layers under names of their own (NAME/callj), reading
    // the weights of the first call's.
    std::set<std::string> inner_names;
    for (const Layer& il : inner.layers) inner_names.insert(il.name);
    auto rename = [&](TensorRef& r) {
      if (l.call > 0 && inner_names.count(r.layer) && !inner_input.count(r.layer))
        r.layer = call_name(r.layer, l.call);
    };
    for (TensorRef& r : inner.outputs) rename(r);
    for (size_t k = 0; k < inner.outputs.size(); ++k)
      alias[{l.name, static_cast<int>(k)}] = inner.outputs[k];
    for (Layer& il : inner.layers) {
      if (il.class_name == "InputLayer") continue;
      for (TensorRef& r : il.inputs) rename(r);
      if (l.call > 0) {
        il.weights_of = il.weights_name();
        il.name = call_name(il.name, l.call);
      }
      for (TensorRef& r : il.inputs)
        if (auto in = inner_input.find(r.layer); in != inner_input.end()) r.layer = in->second;
      if (!names.insert(il.name).second)
        fail(where, "its layer '" + il.name +
                        "' has the name of another layer of the model; names must be unique");
      flat.push_back(std::move(il));
    }
  }
  auto resolve = [&](TensorRef& r) {
    for (int hops = 0; hops < 64; ++hops) {
      auto a = alias.find({r.layer, r.tensor});
      if (a == alias.end()) return;
      r = a->second;
    }
    fail(source, "nested models refer to each other in a cycle");
  };
  for (Layer& l : flat)
    for (TensorRef& r : l.inputs) resolve(r);
  for (TensorRef& r : m.outputs) resolve(r);
  m.layers = std::move(flat);
}

// A model's config; depth > 0 for a model used as a layer, whose Sequential form needs no
// input shape (its input is what the outer model gives it).
ModelConfig parse_model(const json& root, const std::string& source, int depth) {
  if (depth > 8) fail(source, "models are nested more than 8 deep");
  if (!root.is_object() || !root.contains("class_name") || !root.contains("config") ||
      !root["class_name"].is_string() || !root["config"].is_object())
    fail(source,
         "the model config has no class_name/config (expected the output of model.to_json())");
  const std::string cls = root["class_name"].get<std::string>();
  const json& cfg = root["config"];
  ModelConfig m;
  m.name =
      cfg.contains("name") && cfg["name"].is_string() ? cfg["name"].get<std::string>() : "model";
  if (!cfg.contains("layers") || !cfg["layers"].is_array())
    fail(source, "the model config lists no layers");
  if (cfg["layers"].size() > kMaxLayers)
    fail(source, "more than " + std::to_string(kMaxLayers) + " layers");
  const bool sequential = cls == "Sequential";
  if (!sequential && cls != "Functional" && cls != "Model")
    fail(source,
         "model class '" + cls + "' is not supported; accepted: Functional, Model, Sequential");

  std::set<std::string> names;
  std::map<std::string, ModelConfig> nested;
  size_t expanded = 0;                  // layers, each call of a shared one counted
  std::map<std::string, int> calls_of;  // how many times each layer is called
  std::set<std::string> functional;     // layers that are Functional models
  for (const auto& l : cfg["layers"]) {
    if (!l.is_object() || !l.contains("class_name") || !l["class_name"].is_string())
      fail(source, "a layer entry without class_name");
    Layer layer;
    layer.class_name = l["class_name"].get<std::string>();
    layer.config = l.contains("config") && l["config"].is_object() ? l["config"] : json::object();
    if (l.contains("name") && l["name"].is_string())
      layer.name = l["name"].get<std::string>();
    else if (layer.config.contains("name") && layer.config["name"].is_string())
      layer.name = layer.config["name"].get<std::string>();
    else
      fail(source, "a " + layer.class_name + " layer has no name");
    const std::string where = source + ": layer '" + layer.name + "' (" + layer.class_name + ")";
    if (!names.insert(layer.name).second) throw Error(where + ": the name is used twice");
    const std::vector<Call> calls = sequential ? std::vector<Call>{} : inbound(l, where);
    calls_of[layer.name] = static_cast<int>(calls.size());
    std::optional<ModelConfig> inner;
    if (is_model_class(layer.class_name)) inner = parse_model(l, where, depth + 1);
    if (layer.class_name == "Functional" || layer.class_name == "Model")
      functional.insert(layer.name);
    for (size_t j = 0; j < std::max<size_t>(1, calls.size()); ++j) {
      // Each call is a copy (of a whole inner model for a model-as-layer): bounded, so that a
      // hostile config cannot multiply itself.
      expanded += inner ? inner->layers.size() : 1;
      if (expanded > kMaxLayers)
        fail(source, "more than " + std::to_string(kMaxLayers) +
                         " layers once the calls of shared layers and models are counted");
      Layer call = layer;
      call.call = static_cast<int>(j);
      if (j > 0) {
        call.weights_of = layer.name;
        call.name = call_name(layer.name, call.call);
        if (!names.insert(call.name).second)
          throw Error(where + ": the name " + call.name + " is used twice");
      }
      if (j < calls.size()) call.inputs = calls[j].inputs, call.constants = calls[j].constants;
      if (inner) nested[call.name] = *inner;
      m.layers.push_back(std::move(call));
    }
  }
  // A reference to call j of a layer is a reference to its j-th copy.
  auto to_call = [&](TensorRef& r, const std::string& reader) {
    auto it = calls_of.find(r.layer);
    if (it == calls_of.end()) return;  // an unknown layer: named below
    if (r.counts_built_in_node && functional.count(r.layer) && r.node > 0) --r.node;
    if (r.node < 0 || r.node >= std::max(1, it->second))
      fail(source, reader + " reads call " + std::to_string(r.node) + " of '" + r.layer +
                       "', which is called " + std::to_string(it->second) + " time(s)");
    r.layer = call_name(r.layer, r.node);
    r.node = 0;
  };

  if (sequential) {
    // A chain: each layer reads the previous; the input comes from an InputLayer or batch_shape.
    if (m.layers.empty()) fail(source, "a Sequential model without layers");
    if (m.layers[0].class_name != "InputLayer") {
      Layer in;
      in.class_name = "InputLayer";
      in.name = m.name + "_input";
      const json& first = m.layers[0].config;
      for (const char* key : {"batch_shape", "batch_input_shape"})
        if (first.contains(key)) in.config["batch_shape"] = first[key];
      if (!in.config.contains("batch_shape") && depth == 0)
        fail(source, "the Sequential model's first layer declares no input shape (batch_shape)");
      m.layers.insert(m.layers.begin(), in);
    }
    for (size_t i = 1; i < m.layers.size(); ++i)
      m.layers[i].inputs = {{m.layers[i - 1].name, 0, 0}};
    m.inputs = {{m.layers.front().name, 0, 0}};
    m.outputs = {{m.layers.back().name, 0, 0}};
    inline_nested(m, nested, source);
    return m;
  }

  if (!cfg.contains("input_layers") || !cfg.contains("output_layers"))
    fail(source, "the functional model config has no input_layers/output_layers");
  m.inputs = endpoints(cfg["input_layers"], source + ": input_layers");
  m.outputs = endpoints(cfg["output_layers"], source + ": output_layers");
  for (Layer& l : m.layers)
    for (TensorRef& r : l.inputs) to_call(r, "layer '" + l.name + "'");
  for (TensorRef& r : m.outputs) to_call(r, "output_layers");
  inline_nested(m, nested, source);

  // Order producers before consumers (Kahn's algorithm); a reference to an unknown layer or a
  // cycle is an error.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < m.layers.size(); ++i) index[m.layers[i].name] = i;
  std::vector<int> pending(m.layers.size(), 0);
  std::vector<std::vector<size_t>> users(m.layers.size());
  for (size_t i = 0; i < m.layers.size(); ++i)
    for (const auto& r : m.layers[i].inputs) {
      auto it = index.find(r.layer);
      if (it == index.end())
        fail(source, "layer '" + m.layers[i].name + "' reads '" + r.layer +
                         "', which is not a layer of the model");
      if (r.tensor != 0)
        fail(source, "layer '" + m.layers[i].name + "' reads output " + std::to_string(r.tensor) +
                         " of '" + r.layer + "'; cnnc imports layers with one output");
      users[it->second].push_back(i);
      ++pending[i];
    }
  std::vector<size_t> ready, order;
  for (size_t i = 0; i < m.layers.size(); ++i)
    if (pending[i] == 0) ready.push_back(i);
  while (!ready.empty()) {
    const size_t i = ready.front();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t u : users[i])
      if (--pending[u] == 0) ready.push_back(u);
  }
  if (order.size() != m.layers.size()) fail(source, "the layers' connections form a cycle");
  std::vector<Layer> sorted;
  for (size_t i : order) sorted.push_back(std::move(m.layers[i]));
  m.layers = std::move(sorted);
  for (const auto& r : m.outputs)
    if (!index.count(r.layer))
      fail(source, "output_layers names '" + r.layer + "', which is not a layer");
  for (const auto& r : m.inputs)
    if (!index.count(r.layer))
      fail(source, "input_layers names '" + r.layer + "', which is not a layer");
  return m;
}

}  // namespace

ModelConfig parse_model_config(const std::string& text, const std::string& source) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    fail(source, std::string("the model config is not valid JSON: ") + e.what());
  }
  return parse_model(root, source, 0);
}

}  // namespace cnnc::frontend::keras
