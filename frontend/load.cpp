#include "frontend/load.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "frontend/keras/keras.h"
#include "frontend/native/native.h"
#include "frontend/onnx/onnx.h"
#include "ir/error.h"

namespace cnnc::frontend {

std::string read_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(path + ": no such file");
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::string data;
  char buf[65536];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    data.append(buf, static_cast<size_t>(f.gcount()));
    if (data.size() > max_bytes)
      throw Error(path + ": larger than " + std::to_string(max_bytes >> 20) + " MiB; not a network description");
  }
  return data;
}

ir::Graph load(const std::string& path, int64_t batch) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a network file (.cnn)");
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".cnn") return native::load(path, batch);
  if (ext == ".keras" || ext == ".h5" || ext == ".json") {
    if (!std::filesystem::exists(path)) throw Error(path + ": no such file");
    return keras::load(path, batch);
  }
  if (ext == ".onnx") return onnx::load(path, batch);
  throw Error(path + ": unknown format '" + ext +
              "'; accepted: .cnn (docs/format.md), .keras, .h5, .json (Keras), .onnx");
}

}  // namespace cnnc::frontend
