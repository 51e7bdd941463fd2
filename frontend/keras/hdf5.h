#pragma once
// A small view of an HDF5 file (the HDF5 C library underneath): groups, string attributes and
// float datasets, and a copy with some datasets replaced (trained weights written back). Every
// failure is a cnnc::Error naming the file and the path.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/types.h"

namespace cnnc::frontend::keras {

class Hdf5File {
 public:
  // Opens a file on disk, or an in-memory image (kept alive by the caller) named `label`.
  static Hdf5File open(const std::string& path);
  static Hdf5File open_image(const std::string& label, const std::string& image);
  ~Hdf5File();
  Hdf5File(Hdf5File&&) noexcept;
  Hdf5File& operator=(Hdf5File&&) = delete;

  bool exists(const std::string& path) const;  // a group or dataset
  bool is_group(const std::string& path) const;
  std::vector<std::string> members(const std::string& group) const;  // in creation order when known
  bool has_attribute(const std::string& object, const std::string& name) const;
  std::string string_attribute(const std::string& object, const std::string& name) const;
  std::vector<std::string> string_list_attribute(const std::string& object,
                                                 const std::string& name) const;
  // A float dataset, converted to float32, with its shape; refuses more than kMaxElements.
  ir::Tensor dataset(const std::string& path) const;

  // Writes a copy of this file to `path`: every member of the root group (groups, datasets and
  // their attributes, as they are), then the datasets named in `replace` given new values, which
  // must hold as many elements as the dataset (converted to its stored type by HDF5).
  void copy_replacing(const std::string& path,
                      const std::map<std::string, std::vector<float>>& replace) const;

  const std::string& label() const { return label_; }

 private:
  Hdf5File(std::string label, int64_t id) : label_(std::move(label)), id_(id) {}
  std::string label_;
  int64_t id_ = -1;
};

}  // namespace cnnc::frontend::keras
