#pragma once
// Reading members of a zip archive (a .keras file) with libzip, with size limits; writing a copy
// with one member replaced (a .keras with trained weights).
#include <string>
#include <vector>

struct zip;  // libzip's archive handle

namespace cnnc::frontend::keras {

class ZipArchive {
 public:
  explicit ZipArchive(const std::string& path);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  std::vector<std::string> names() const;
  bool has(const std::string& name) const;
  // The member's bytes; refuses members whose declared size exceeds max_bytes.
  std::string read(const std::string& name, size_t max_bytes) const;
  // Writes a copy of the archive to `path` with member `name` holding `bytes` instead (added
  // when absent). libzip writes a temporary file and renames it: `path` is whole or untouched.
  void copy_replacing(const std::string& path, const std::string& name,
                      const std::string& bytes) const;

 private:
  std::string path_;
  ::zip* zip_ = nullptr;
};

}  // namespace cnnc::frontend::keras
