#include "frontend/keras/keras.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "frontend/keras/convert.h"
#include "frontend/keras/hdf5.h"
#include "frontend/keras/isolated.h"
#include "frontend/keras/model_config.h"
#include "frontend/keras/zip_archive.h"
#include "frontend/load.h"
#include "ir/atomic_file.h"
#include "ir/error.h"

namespace cnnc::frontend::keras {

namespace {

constexpr size_t kMaxConfigBytes = size_t{64} << 20;
constexpr size_t kMaxWeightsBytes = size_t{8} << 30;

bool numeric(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), ::isdigit);
}

// Keras 3 weights: layers/<key>/vars/<0, 1, ...>, the group "vars" naming its layer; a model
// used as a layer holds its own layers/<key>/layers/... (walked to any depth). Returns each
// layer's name with its vars group.
void keras3_vars_groups(const Hdf5File& h5, const std::string& group,
                        std::vector<std::pair<std::string, std::string>>& out, int depth) {
  if (depth > 8) throw Error(h5.label() + ": nested model weights deeper than 8 levels");
  for (const std::string& key : h5.members(group)) {
    if (h5.is_group(group + "/" + key + "/layers"))
      keras3_vars_groups(h5, group + "/" + key + "/layers", out, depth + 1);
    const std::string vars = group + "/" + key + "/vars";
    if (!h5.is_group(vars)) continue;
    out.emplace_back(h5.has_attribute(vars, "name") ? h5.string_attribute(vars, "name") : key,
                     vars);
  }
}

std::vector<std::pair<std::string, std::string>> keras3_vars_groups(const Hdf5File& h5) {
  if (!h5.is_group("layers"))
    throw Error(h5.label() + ": no 'layers' group; not a Keras 3 weights file");
  std::vector<std::pair<std::string, std::string>> out;
  keras3_vars_groups(h5, "layers", out, 0);
  return out;
}

LayerWeights read_keras3_weights(const Hdf5File& h5) {
  LayerWeights w;
  for (const auto& [name, vars] : keras3_vars_groups(h5)) {
    std::vector<std::string> idx = h5.members(vars);
    for (const auto& i : idx)
      if (!numeric(i))
        throw Error(h5.label() + ": unexpected weight '" + vars + "/" + i +
                    "' (expected 0, 1, ...)");
    std::sort(idx.begin(), idx.end(), [](const std::string& a, const std::string& b) {
      return std::stoi(a) < std::stoi(b);
    });
    auto& tensors = w[name];
    if (!tensors.empty()) throw Error(h5.label() + ": two weight groups name layer '" + name + "'");
    for (size_t k = 0; k < idx.size(); ++k) {
      if (std::stoul(idx[k]) != k)
        throw Error(h5.label() + ": weights of '" + name + "' are not numbered 0, 1, ...");
      tensors.push_back(h5.dataset(vars + "/" + idx[k]));
    }
  }
  return w;
}

// Legacy (Keras 2 style) weights: model_weights/<layer>/<weight_names...>, in weight_names order.
// A weight name's second-last component names the layer that owns it ("conv1/kernel:0"), which
// for a model used as a layer is one of its inner layers ("head/head_dense/kernel").
LayerWeights read_legacy_weights(const Hdf5File& h5, const std::string& root) {
  LayerWeights w;
  for (const std::string& layer : h5.string_list_attribute(root, "layer_names")) {
    const std::string group = (root == "/" ? "" : root + "/") + layer;
    if (!h5.is_group(group))
      throw Error(h5.label() + ": layer_names lists '" + layer + "' but there is no group for it");
    w[layer];  // a layer without weights is still a layer of the file
    for (const std::string& name : h5.string_list_attribute(group, "weight_names")) {
      const size_t last = name.rfind('/');
      const size_t before =
          last == std::string::npos || last == 0 ? std::string::npos : name.rfind('/', last - 1);
      const std::string owner = last == std::string::npos ? layer
                                : before == std::string::npos
                                    ? name.substr(0, last)
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
    const bool known = std::any_of(m.layers.begin(), m.layers.end(),
                                   [&](const Layer& l) { return l.weights_name() == name; });
    if (!known)
      throw Error(source + ": the weights file holds weights of layer '" + name +
                  "', which the model does not have (weights of another model?)");
  }
}

std::filesystem::path weights_beside(const std::string& json_path) {
  std::filesystem::path weights = json_path;
  return weights.replace_extension(".weights.h5");
}

// A file's size for the HDF5 reader's memory limit (0 when unknown: the open fails there).
uint64_t file_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  const uintmax_t n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code ec;
  return std::filesystem::equivalent(a, b, ec);
}

}  // namespace

ir::Graph load(const std::string& path, int64_t batch, std::vector<WeightOrigin>* origins) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".keras") {
    ZipArchive zip(path);
    const ModelConfig m =
        parse_model_config(zip.read("config.json", kMaxConfigBytes), path + ": config.json");
    if (!zip.has("model.weights.h5")) return convert(m, nullptr, path, batch);
    const std::string image = zip.read("model.weights.h5", kMaxWeightsBytes);
    const std::string label = path + ": model.weights.h5";
    const LayerWeights w =
        read_isolated(label, image.size(), [&] {
          return Hdf5Contents{"", read_keras3_weights(Hdf5File::open_image(label, image))};
        }).weights;
    check_all_used(w, m, path);
    return convert(m, &w, path, batch, origins);
  }
  if (ext == ".h5") {
    const Hdf5Contents c = read_isolated(path, file_bytes(path), [&] {
      const Hdf5File h5 = Hdf5File::open(path);
      if (!h5.has_attribute("/", "model_config"))
        throw Error(path +
                    ": an HDF5 file without a model_config: a weights file? Give the model "
                    "(.keras, .h5 from model.save) or its architecture .json with "
                    "NAME.weights.h5 beside it");
      return Hdf5Contents{
          h5.string_attribute("/", "model_config"),
          read_legacy_weights(h5, h5.is_group("model_weights") ? "model_weights" : "/")};
    });
    const ModelConfig m = parse_model_config(c.config, path + ": model_config");
    check_all_used(c.weights, m, path);
    return convert(m, &c.weights, path, batch, origins);
  }
  if (ext == ".json") {
    const ModelConfig m = parse_model_config(read_file(path, kMaxConfigBytes), path);
    const std::filesystem::path weights = weights_beside(path);
    if (!std::filesystem::exists(weights)) return convert(m, nullptr, path, batch);
    const LayerWeights w =
        read_isolated(weights.string(), file_bytes(weights), [&] {
          return Hdf5Contents{"", read_weights_file(Hdf5File::open(weights.string()))};
        }).weights;
    check_all_used(w, m, weights.string());
    return convert(m, &w, path, batch, origins);
  }
  throw Error(path + ": not a Keras model; accepted: .keras, .h5, .json");
}

void check_weights_target(const std::string& source, const std::string& out) {
  const bool to_keras = out.ends_with(".keras");
  if (!to_keras && !out.ends_with(".weights.h5"))
    throw Error(out +
                ": Keras weights are written as NAME.weights.h5 (for Keras' "
                "model.load_weights) or as a whole model NAME.keras (cnnc's own: .cnnw)");
  const std::string ext = std::filesystem::path(source).extension().string();
  if (ext != ".keras" && ext != ".json")
    throw Error(source +
                ": trained weights are written in the layout of the model's Keras 3 "
                "weights file, which a " +
                ext +
                " model does not have; accepted: a .keras "
                "model, or a .json with NAME.weights.h5 beside it (Keras can re-save a "
                "legacy .h5 model as .keras)");
  if (to_keras && ext != ".keras")
    throw Error(out + ": a .keras is written from a .keras model; for " + source +
                " write NAME.weights.h5");
  const std::filesystem::path weights =
      ext == ".json" ? weights_beside(source) : std::filesystem::path(source);
  if (same_file(source, out) || same_file(weights, out))
    throw Error(out +
                ": is the file the model was loaded from; write the trained weights to "
                "another file");
  if (ext == ".keras" && !ZipArchive(source).has("model.weights.h5"))
    throw Error(source +
                ": holds no weights (model.weights.h5), whose layout the trained "
                "weights would take");
  if (ext == ".json" && !std::filesystem::exists(weights))
    throw Error(source + ": has no " + weights.filename().string() +
                " beside it, whose layout the trained weights would take");
}

void save_weights(const std::string& source, const ir::Graph& trained, const std::string& out) {
  check_weights_target(source, out);
  std::vector<WeightOrigin> origins;
  load(source, trained.batch(), &origins);
  // The graph's values, by Keras layer and variable index.
  std::map<std::string, std::map<size_t, std::vector<float>>> values;
  for (const WeightOrigin& o : origins) {
    const ir::NodeId id = trained.find(o.node);
    const ir::Param* p = id < 0 ? nullptr : trained.node(id).param(o.role);
    if (!p || static_cast<int64_t>(p->value.data.size()) != p->value.elements())
      throw Error(out + ": the network has no weights '" + o.role + "' of layer '" + o.node +
                  "', which " + source + " has: was the network loaded from another model?");
    values[o.keras_layer][o.index] = p->value.data;
  }
  const bool from_keras = std::filesystem::path(source).extension() == ".keras";
  const std::string weights =
      from_keras ? source + ": model.weights.h5" : weights_beside(source).string();
  const std::string image =
      from_keras ? ZipArchive(source).read("model.weights.h5", kMaxWeightsBytes) : "";
  const std::string tmp = out + ".tmp";
  try {
    // HDF5 runs in a child process here too: the source file is the user's.
    read_isolated(weights, from_keras ? image.size() : file_bytes(weights), [&] {
      const Hdf5File h5 =
          from_keras ? Hdf5File::open_image(weights, image) : Hdf5File::open(weights);
      std::map<std::string, std::vector<float>> replace;
      std::set<std::string> found;
      for (const auto& [layer, vars] : keras3_vars_groups(h5)) {
        auto it = values.find(layer);
        if (it == values.end()) continue;
        found.insert(layer);
        for (const auto& [index, data] : it->second)
          replace[vars + "/" + std::to_string(index)] = data;
      }
      for (const auto& entry : values)
        if (!found.count(entry.first))
          throw Error(weights + ": has no weights of layer '" + entry.first + "'");
      h5.copy_replacing(tmp, replace);
      return Hdf5Contents{};
    });
    if (out.ends_with(".keras")) {
      const std::string bytes = read_file(tmp, kMaxWeightsBytes);
      std::remove(tmp.c_str());
      ZipArchive(source).copy_replacing(out, "model.weights.h5", bytes);
    } else {
      ir::replace_file(tmp, out);
    }
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

}  // namespace cnnc::frontend::keras
