#include "runtime/npy.h"

#include <cstring>
#include <fstream>
#include <map>
#include <regex>

#include "ir/error.h"
#include "ir/shape_inference.h"

namespace cnnc::runtime {

ir::Tensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
  char magic[8];
  f.read(magic, 8);
  if (!f || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw Error(path + ": not a .npy file");
  if (magic[6] < 1 || magic[6] > 3)
    throw Error(path + ": .npy format version " + std::to_string(int(magic[6])) +
                " is not supported; accepted: 1.0, 2.0, 3.0");
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    uint16_t h16 = 0;
    f.read(reinterpret_cast<char*>(&h16), 2);
    hlen = h16;
  } else {
    f.read(reinterpret_cast<char*>(&hlen), 4);
  }
  if (!f || hlen > (1u << 20)) throw Error(path + ": corrupt .npy header");
  std::string header(hlen, '\0');
  f.read(header.data(), hlen);
  if (!f) throw Error(path + ": truncated .npy header");
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([<>|]?[a-z]\\d+)'")))
    throw Error(path + ": .npy header has no dtype");
  const std::string descr = m[1];
  // Little-endian floats, and integers (images as uint8, labels as int64), converted to float.
  static const std::map<std::string, int64_t> kItem = {{"<f4", 4}, {"<f8", 8}, {"|u1", 1}, {"|i1", 1},
                                                       {"<i4", 4}, {"<i8", 8}, {"<u4", 4}, {"<u8", 8}};
  if (!kItem.count(descr))
    throw Error(path + ": dtype " + descr +
                " is not supported; accepted: float32 (<f4), float64 (<f8), uint8 (|u1), int8, int32, "
                "int64, uint32, uint64 (little-endian)");
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    throw Error(path + ": Fortran-order arrays are not supported; save with np.ascontiguousarray");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw Error(path + ": .npy header has no shape");
  ir::Tensor t;
  const std::string dims = m[1];
  const std::regex digits("-?\\d+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), digits), end; it != end; ++it) {
    const std::string d = it->str();
    if (d[0] == '-') throw Error(path + ": negative dimension " + d + " in the shape");
    if (d.size() > 10) throw Error(path + ": dimension " + d + " is too large");
    t.shape.push_back(std::stoll(d));
  }
  int64_t n = 1;
  for (auto d : t.shape) {
    if (d < 0 || (d > 0 && n > ir::kMaxElements / d)) throw Error(path + ": array is too large");
    n *= d;
  }
  // Compare with what the file holds before allocating: a corrupt header must not make us
  // allocate gigabytes.
  const int64_t item = kItem.at(descr);
  const std::streamoff data_start = f.tellg();
  f.seekg(0, std::ios::end);
  const std::streamoff file_size = f.tellg();
  f.seekg(data_start);
  if (!f || file_size - data_start < n * item)
    throw Error(path + ": truncated: the header promises " + std::to_string(n) + " values (" +
                std::to_string(n * item) + " bytes), the file holds " +
                std::to_string(file_size - data_start) + " bytes of data");
  t.data.resize(static_cast<size_t>(n));
  if (descr == "<f4") {
    f.read(reinterpret_cast<char*>(t.data.data()), n * 4);
  } else {
    std::vector<char> raw(static_cast<size_t>(n * item));
    f.read(raw.data(), n * item);
    auto convert = [&](auto sample) {
      using T = decltype(sample);
      for (int64_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, raw.data() + i * item, sizeof v);
        t.data[static_cast<size_t>(i)] = static_cast<float>(v);
      }
    };
    if (descr == "<f8") convert(double{});
    if (descr == "|u1") convert(uint8_t{});
    if (descr == "|i1") convert(int8_t{});
    if (descr == "<i4") convert(int32_t{});
    if (descr == "<i8") convert(int64_t{});
    if (descr == "<u4") convert(uint32_t{});
    if (descr == "<u8") convert(uint64_t{});
  }
  if (!f) throw Error(path + ": truncated: the header promises " + std::to_string(n) + " values");
  return t;
}

void write_npy(const std::string& path, const ir::Tensor& t) {
  std::string dims;
  for (size_t i = 0; i < t.shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(t.shape[i]);
  if (t.shape.size() == 1) dims += ",";  // a Python 1-tuple
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot write: " + std::strerror(errno));
  const uint16_t hlen = static_cast<uint16_t>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.write(reinterpret_cast<const char*>(&hlen), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size() * 4));
  f.close();  // flushes: a full disk shows here
  if (!f) throw Error(path + ": write failed: " + std::strerror(errno));
}

}  // namespace cnnc::runtime
