#include "frontend/keras/keras.h"

#include <algorithm>
#include <filesystem>

#include "frontend/keras/convert.h"
#include "frontend/keras/hdf5.h"
#include "frontend/keras/isolated.h"
#include "frontend/keras/model_config.h"
#include "frontend/keras/zip_archive.h"
#include "frontend/load.h"
#include "ir/error.h"

namespace cnnc::frontend::keras {

namespace {

constexpr size_t kMaxConfigBytes = size_t{64} << 20;
constexpr size_t kMaxWeightsBytes = size_t{8} << 30;

bool numeric(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), ::isdigit);
}

// Keras 3 weights: layers/<key>/vars/<0, 1, ...>, the group "vars" naming its layer; a model
// used as a layer holds its own layers/<key>/layers/... (read to any depth, by layer name).
void read_keras3_layers(const Hdf5File& h5, const std::string& group, LayerWeights& w, int depth) {
  if (depth > 8) throw Error(h5.label() + ": nested model weights deeper than 8 levels");
  for (const std::string& key : h5.members(group)) {
    if (h5.is_group(group + "/" + key + "/layers")) read_keras3_layers(h5, group + "/" + key + "/layers", w, depth + 1);
    const std::string vars = group + "/" + key + "/vars";
    if (!h5.is_group(vars)) continue;
    const std::string name = h5.has_attribute(vars, "name") ? h5.string_attribute(vars, "name") : key;
    std::vector<std::string> idx = h5.members(vars);
    for (const auto& i : idx)
      if (!numeric(i)) throw Error(h5.label() + ": unexpected weight '" + vars + "/" + i + "' (expected 0, 1, ...)");
    std::sort(idx.begin(), idx.end(), [](const std::string& a, const std::string& b) { return std::stoi(a) < std::stoi(b); });
    auto& tensors = w[name];
    if (!tensors.empty()) throw Error(h5.label() + ": two weight groups name layer '" + name + "'");
    for (size_t k = 0; k < idx.size(); ++k) {
      if (std::stoul(idx[k]) != k) throw Error(h5.label() + ": weights of '" + name + "' are not numbered 0, 1, ...");
      tensors.push_back(h5.dataset(vars + "/" + idx[k]));
    }
  }
}

LayerWeights read_keras3_weights(const Hdf5File& h5) {
  LayerWeights w;
  if (!h5.is_group("layers"))
    throw Error(h5.label() + ": no 'layers' group; not a Keras 3 weights file");
  read_keras3_layers(h5, "layers", w, 0);
  return w;
}

// Legacy (Keras 2 style) weights: model_weights/<layer>/<weight_names...>, in weight_names order.
// A weight name's second-last component names the layer that owns it ("conv1/kernel:0"), which
// for a model used as a layer is one of its inner layers ("head/head_dense/kernel").
LayerWeights read_legacy_weights(const Hdf5File& h5, const std::string& root) {
  LayerWeights w;
  for (const std::string& layer : h5.string_list_attribute(root, "layer_names")) {
    const std::string group = (root == "/" ? "" : root + "/") + layer;
    if (!h5.is_group(group)) throw Error(h5.label() + ": layer_names lists '" + layer + "' but there is no group for it");
    w[layer];  // a layer without weights is still a layer of the file
    for (const std::string& name : h5.string_list_attribute(group, "weight_names")) {
      const size_t last = name.rfind('/');
      const size_t before = last == std::string::npos || last == 0 ? std::string::npos : name.rfind('/', last - 1);
      const std::string owner = last == std::string::npos ? layer
                                : before == std::string::npos ? name.substr(0, last)
                                                              : name.substr(before + 1, last - before - 1);
      w[owner].push_back(h5.dataset(group + "/" + name));
    }
  }
  return w;
}

LayerWeights read_weights_file(const Hdf5File& h5) {
  if (h5.has_attribute("/", "layer_names")) return read_legacy_weights(h5, "/");
  return read_keras3_weights(h5);
}

// Every layer's weights must be read by some layer of the model: a leftover means the file
// belongs to another model.
void check_all_used(const LayerWeights& w, const ModelConfig& m, const std::string& source) {
  for (const auto& entry : w) {
    const std::string& name = entry.first;
    if (entry.second.empty()) continue;
    const bool known = std::any_of(m.layers.begin(), m.layers.end(), [&](const Layer& l) { return l.name == name; });
    if (!known)
      throw Error(source + ": the weights file holds weights of layer '" + name +
                  "', which the model does not have (weights of another model?)");
  }
}

}  // namespace

ir::Graph load(const std::string& path, int64_t batch) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".keras") {
    ZipArchive zip(path);
    const ModelConfig m = parse_model_config(zip.read("config.json", kMaxConfigBytes), path + ": config.json");
    if (!zip.has("model.weights.h5")) return convert(m, nullptr, path, batch);
    const std::string image = zip.read("model.weights.h5", kMaxWeightsBytes);
    const std::string label = path + ": model.weights.h5";
    const LayerWeights w = read_isolated(label, [&] {
                             return Hdf5Contents{"", read_keras3_weights(Hdf5File::open_image(label, image))};
                           }).weights;
    check_all_used(w, m, path);
    return convert(m, &w, path, batch);
  }
  if (ext == ".h5") {
    const Hdf5Contents c = read_isolated(path, [&] {
      const Hdf5File h5 = Hdf5File::open(path);
      if (!h5.has_attribute("/", "model_config"))
        throw Error(path + ": an HDF5 file without a model_config: a weights file? Give the model (.keras, .h5 from "
                           "model.save) or its architecture .json with NAME.weights.h5 beside it");
      return Hdf5Contents{h5.string_attribute("/", "model_config"),
                          read_legacy_weights(h5, h5.is_group("model_weights") ? "model_weights" : "/")};
    });
    const ModelConfig m = parse_model_config(c.config, path + ": model_config");
    check_all_used(c.weights, m, path);
    return convert(m, &c.weights, path, batch);
  }
  if (ext == ".json") {
    const ModelConfig m = parse_model_config(read_file(path, kMaxConfigBytes), path);
    std::filesystem::path weights = path;
    weights.replace_extension(".weights.h5");
    if (!std::filesystem::exists(weights)) return convert(m, nullptr, path, batch);
    const LayerWeights w = read_isolated(weights.string(), [&] {
                             return Hdf5Contents{"", read_weights_file(Hdf5File::open(weights.string()))};
                           }).weights;
    check_all_used(w, m, weights.string());
    return convert(m, &w, path, batch);
  }
  throw Error(path + ": not a Keras model; accepted: .keras, .h5, .json");
}

}  // namespace cnnc::frontend::keras
