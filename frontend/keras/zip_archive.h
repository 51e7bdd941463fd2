#pragma once
// Reading members of a zip archive (a .keras file) with libzip, with size limits.
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

 private:
  std::string path_;
  ::zip* zip_ = nullptr;
};

}  // namespace cnnc::frontend::keras
