#include "runtime/weights.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "ir/atomic_file.h"
#include "ir/error.h"
#include "ir/shape_inference.h"

namespace cnnc::runtime {

namespace {

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

constexpr char kMagic[8] = {'C', 'N', 'N', 'C', 'W', 'T', 'S', '1'};

}  // namespace

void init_weights(ir::Graph& g, uint64_t seed) {
  for (auto& n : g.nodes()) {
    const auto specs = ir::infer(n, ir::input_types(g, n), g.batch()).params;
    for (size_t k = 0; k < n.params.size(); ++k) {
      ir::Tensor& t = n.params[k].value;
      if (static_cast<int64_t>(t.data.size()) == t.elements())
        continue;  // already set (e.g. from a model file)
      t.data.assign(static_cast<size_t>(t.elements()), 0.f);
      const auto& spec = specs.at(k);
      if (spec.init == ir::Init::Ones) std::fill(t.data.begin(), t.data.end(), 1.f);
      if (spec.init != ir::Init::GlorotUniform) continue;
      // Our own uniform mapping (not std::uniform_real_distribution) keeps values identical
      // across standard libraries.
      std::mt19937_64 rng(seed ^ fnv1a(n.name + "/" + spec.role));
      const double limit = std::sqrt(6.0 / static_cast<double>(spec.fan_in + spec.fan_out));
      for (auto& v : t.data) {
        const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // [0, 1)
        v = static_cast<float>((2 * u - 1) * limit);
      }
    }
  }
  // A layer sharing another's weights (a Keras layer called several times) has the same ones.
  for (const auto& [copy, owner] : g.shared_weights) {
    const ir::NodeId c = g.find(copy), o = g.find(owner);
    if (c < 0 || o < 0) continue;
    for (ir::Param& p : g.node(c).params)
      if (const ir::Param* from = g.node(o).param(p.role)) p.value.data = from->value.data;
  }
}

void save_weights(const ir::Graph& g, const std::string& path) {
  nlohmann::json header;
  header["network"] = g.name;
  uint64_t offset = 0;
  for (const auto& n : g.nodes())
    for (const auto& p : n.params) {
      if (static_cast<int64_t>(p.value.data.size()) != p.value.elements())
        throw Error(g.where(n) + ": weights '" + p.role + "' are not set; nothing to save");
      header["layers"][n.name][p.role] = {{"shape", p.value.shape}, {"offset", offset}};
      offset += p.value.data.size() * sizeof(float);
    }
  const std::string text = header.dump();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw Error(path + ": cannot write " + tmp + ": " + std::strerror(errno));
    const uint64_t len = text.size();
    f.write(kMagic, sizeof kMagic);
    f.write(reinterpret_cast<const char*>(&len), sizeof len);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& n : g.nodes())
      for (const auto& p : n.params)
        f.write(reinterpret_cast<const char*>(p.value.data.data()),
                static_cast<std::streamsize>(p.value.data.size() * sizeof(float)));
    f.close();  // flushes: a full disk shows here, before the rename
    if (!f) {
      const std::string why = std::strerror(errno);
      std::remove(tmp.c_str());
      throw Error(path + ": write failed (" + why + "); the file was not changed");
    }
  }
  ir::replace_file(tmp, path);  // an interrupted save never leaves a half-written file
}

void load_weights(ir::Graph& g, const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open weights file: " + std::strerror(errno));
  f.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  char magic[8] = {};
  uint64_t len = 0;
  f.read(magic, sizeof magic);
  f.read(reinterpret_cast<char*>(&len), sizeof len);
  if (!f || std::memcmp(magic, kMagic, sizeof magic) != 0)
    throw Error(
        path +
        ": not a cnnc weights file (expected the CNNCWTS1 header of `cnnc run --save-weights`)");
  const uint64_t data_start = 16 + len;
  if (len > size - 16) throw Error(path + ": truncated header");
  std::string text(len, '\0');
  f.read(text.data(), static_cast<std::streamsize>(len));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": corrupt header: " + e.what());
  }
  // Validate everything first, then read: a bad file leaves the graph's weights untouched.
  struct Slot {
    ir::Tensor* dst;
    uint64_t offset;
  };
  std::vector<Slot> slots;
  for (auto& n : g.nodes())
    for (auto& p : n.params) {
      const std::string what = path + ": layer '" + n.name + "' weights '" + p.role + "'";
      if (!header.contains("layers") || !header["layers"].contains(n.name) ||
          !header["layers"][n.name].contains(p.role)) {
        std::string hint;
        if (header.is_object() && header.contains("network") && header["network"].is_string() &&
            header["network"].get<std::string>() != g.name)
          hint = " (the file holds the weights of network '" +
                 header["network"].get<std::string>() + "', not '" + g.name + "')";
        throw Error(what + " are missing from the file" + hint);
      }
      const auto& e = header["layers"][n.name][p.role];
      ir::Shape shape;
      uint64_t offset = 0;
      try {
        shape = e.at("shape").get<ir::Shape>();
        offset = e.at("offset").get<uint64_t>();
      } catch (const nlohmann::json::exception&) {
        throw Error(what + ": malformed entry (needs shape and offset)");
      }
      if (shape != p.value.shape)
        throw Error(what + " have shape " + ir::shape_to_string(shape, true) +
                    ", the layer needs " + ir::shape_to_string(p.value.shape, true));
      const uint64_t bytes = static_cast<uint64_t>(p.value.elements()) * sizeof(float);
      if (offset > size || bytes > size - data_start || offset > size - data_start - bytes)
        throw Error(what + ": the file is truncated");
      slots.push_back({&p.value, offset});
    }
  for (const auto& s : slots) {
    s.dst->data.resize(static_cast<size_t>(s.dst->elements()));
    f.seekg(static_cast<std::streamoff>(data_start + s.offset));
    f.read(reinterpret_cast<char*>(s.dst->data.data()),
           static_cast<std::streamsize>(s.dst->data.size() * sizeof(float)));
    if (!f) throw Error(path + ": read failed");
  }
}

}  // namespace cnnc::runtime
