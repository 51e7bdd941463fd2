#pragma once
// The architecture part of a Keras model: its JSON config (Keras 3, or Keras 2's legacy form)
// read into layers and their connections, in a topological order.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ir/types.h"

namespace cnnc::frontend::keras {

// A tensor produced by a layer: (layer name, call index, output index), Keras' keras_history.
struct TensorRef {
  std::string layer;
  int node = 0, tensor = 0;
  // Keras counts a Functional sub-model's built-in node in output_layers and in Keras 2's
  // inbound nodes: there, call j of such a model is node j + 1.
  bool counts_built_in_node = false;
};

// One call of a Keras layer. A layer called several times (a shared layer, or a model used as a
// layer on several inputs) is one Layer per call: the first keeps its name, call j is named
// "NAME/callj"; all read the weights of `weights_of`.
struct Layer {
  std::string class_name, name;
  std::string weights_of;  // the Keras layer whose weights this call uses (empty: `name`)
  int call = 0;
  nlohmann::json config;
  std::vector<TensorRef> inputs;  // of this call
  // Numbers passed beside the tensors (Keras 3 operations on a tensor and a constant, such as
  // MobileNetV3's `x + 3.0`: an Add whose args are [tensor, 3.0]).
  std::vector<double> constants;

  const std::string& weights_name() const { return weights_of.empty() ? name : weights_of; }
};

struct ModelConfig {
  std::string name;
  std::vector<Layer> layers;               // producers before consumers
  std::vector<TensorRef> inputs, outputs;  // models used as layers are inlined in `layers`
};

// Parses model.to_json() output or a .keras config.json. Throws cnnc::Error naming `source`
// and the layer for anything malformed; a model class other than Functional/Model/Sequential is
// refused with a message. Nested models are inlined, shared layers and models expanded per call.
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);

// Weights of each layer in Keras' own order (e.g. kernel, bias), by layer name.
using LayerWeights = std::map<std::string, std::vector<ir::Tensor>>;

}  // namespace cnnc::frontend::keras
