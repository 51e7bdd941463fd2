#include "runtime/dataset.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>

#include "ir/error.h"
#include "runtime/npy.h"

namespace cnnc::runtime {

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxFileBytes = size_t{4} << 30;

// A whole file, gunzipped when it is gzip (zlib reads plain files through the same call).
std::string read_maybe_gzip(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": no such file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::string data;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) {
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxFileBytes) {
      gzclose(f);
      throw Error(path + ": larger than 4 GiB uncompressed; not a dataset file this reader takes");
    }
  }
  int err = 0;
  const std::string why = n < 0 ? gzerror(f, &err) : "";
  gzclose(f);
  if (n < 0) throw Error(path + ": corrupt gzip data (" + why + ")");
  return data;
}

uint32_t big_endian(const std::string& d, size_t at) {
  return uint32_t(uint8_t(d[at])) << 24 | uint32_t(uint8_t(d[at + 1])) << 16 |
         uint32_t(uint8_t(d[at + 2])) << 8 | uint32_t(uint8_t(d[at + 3]));
}

// An IDX file of unsigned bytes with `rank` dimensions: its dims and a view of its data.
std::vector<int64_t> idx_header(const std::string& d, const std::string& path, uint32_t magic,
                                int rank) {
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (d.size() < 4 || big_endian(d, 0) != magic) {
    const uint32_t got = d.size() >= 4 ? big_endian(d, 0) : 0;
    throw Error(path + ": not an IDX " + (rank == 1 ? "label" : "image") + " file: magic number " +
                std::to_string(got) + ", expected " + std::to_string(magic) + " (unsigned bytes, " +
                std::to_string(rank) + " dimensions)");
  }
  if (d.size() < header) throw Error(path + ": truncated IDX header");
  std::vector<int64_t> dims;
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    dims.push_back(big_endian(d, 4 + 4 * static_cast<size_t>(i)));
    if (dims.back() == 0 || dims.back() > (int64_t{1} << 31))
      throw Error(path + ": IDX dimension " + std::to_string(dims.back()));
    n *= dims.back();
    if (n > (int64_t{1} << 33)) throw Error(path + ": IDX array too large");
  }
  if (d.size() - header != static_cast<size_t>(n))
    throw Error(path + ": the header promises " + std::to_string(n) +
                " bytes of data, the file holds " + std::to_string(d.size() - header) +
                (d.size() - header < static_cast<size_t>(n) ? " (truncated)" : ""));
  return dims;
}

void check_labels(Dataset& ds, const std::string& path) {
  for (size_t i = 0; i < ds.labels.size(); ++i)
    if (ds.labels[i] < 0)
      throw Error(path + ": label " + std::to_string(i) + " is " + std::to_string(ds.labels[i]) +
                  "; labels are class indices 0, 1, ...");
}

}  // namespace

Dataset read_idx(const std::string& images_path, const std::string& labels_path) {
  const std::string img = read_maybe_gzip(images_path), lab = read_maybe_gzip(labels_path);
  const std::vector<int64_t> d = idx_header(img, images_path, 2051, 3);
  const std::vector<int64_t> l = idx_header(lab, labels_path, 2049, 1);
  if (d[0] != l[0])
    throw Error(labels_path + ": holds " + std::to_string(l[0]) + " labels, " + images_path +
                " holds " + std::to_string(d[0]) + " images; they must be equal");
  Dataset ds;
  ds.source = images_path;
  ds.from_uint8 = true;
  ds.images = ir::Tensor(ir::Shape{d[0], d[1], d[2], 1});
  for (size_t i = 0; i < ds.images.data.size(); ++i)
    ds.images.data[i] = float(uint8_t(img[16 + i]));
  ds.labels.resize(static_cast<size_t>(l[0]));
  for (size_t i = 0; i < ds.labels.size(); ++i) ds.labels[i] = uint8_t(lab[8 + i]);
  return ds;
}

Dataset read_cifar10(const std::vector<std::string>& batch_paths) {
  constexpr size_t kSide = 32, kPlane = kSide * kSide, kRecord = 1 + 3 * kPlane;
  std::vector<std::string> files;
  size_t records = 0;
  for (const std::string& path : batch_paths) {
    files.push_back(read_maybe_gzip(path));
    const std::string& d = files.back();
    if (d.empty() || d.size() % kRecord != 0)
      throw Error(path + ": " + std::to_string(d.size()) +
                  " bytes, not a whole number of CIFAR-10 " +
                  "records (3,073 bytes each: a label byte and a 32x32x3 image)");
    records += d.size() / kRecord;
  }
  if (files.empty()) throw Error("CIFAR-10: no batch files");
  Dataset ds;
  ds.source = batch_paths.front();
  ds.from_uint8 = true;
  ds.images = ir::Tensor(ir::Shape{static_cast<int64_t>(records), kSide, kSide, 3});
  ds.labels.reserve(records);
  float* out = ds.images.data.data();
  for (size_t f = 0; f < files.size(); ++f) {
    const std::string& d = files[f];
    for (size_t at = 0; at < d.size(); at += kRecord) {
      const uint8_t label = uint8_t(d[at]);
      if (label > 9)
        throw Error(batch_paths[f] + ": record " + std::to_string(at / kRecord) + " has label " +
                    std::to_string(label) + "; CIFAR-10's labels are 0..9 (CIFAR-100's two-byte " +
                    "records are not this format)");
      ds.labels.push_back(label);
      // Planes (R, G, B) of row-major pixels to interleaved H x W x C.
      for (size_t p = 0; p < kPlane; ++p)
        for (size_t c = 0; c < 3; ++c) *out++ = float(uint8_t(d[at + 1 + c * kPlane + p]));
    }
  }
  return ds;
}

Dataset read_npy_pair(const std::string& x_path, const std::string& y_path) {
  Dataset ds;
  ds.source = x_path;
  ds.images = read_npy(x_path);
  ir::Shape& s = ds.images.shape;
  if (s.size() == 3) s.push_back(1);  // N x H x W: one channel
  if (s.size() != 4)
    throw Error(x_path + ": images have shape " + ir::shape_to_string(s, true) +
                "; accepted: N x H x W x C or N x H x W");
  const ir::Tensor y = read_npy(y_path);
  if (y.shape.size() != 1 && !(y.shape.size() == 2 && y.shape[1] == 1))
    throw Error(y_path + ": labels have shape " + ir::shape_to_string(y.shape, true) +
                "; accepted: N class indices (N or N x 1)");
  if (y.shape[0] != s[0])
    throw Error(y_path + ": holds " + std::to_string(y.shape[0]) + " labels, " + x_path +
                " holds " + std::to_string(s[0]) + " images; they must be equal");
  ds.labels.reserve(y.data.size());
  for (size_t i = 0; i < y.data.size(); ++i) {
    if (y.data[i] != static_cast<float>(static_cast<int64_t>(y.data[i])))
      throw Error(y_path + ": label " + std::to_string(i) + " is " + std::to_string(y.data[i]) +
                  ", not a class index (an integer)");
    ds.labels.push_back(static_cast<int64_t>(y.data[i]));
  }
  check_labels(ds, y_path);
  bool bytes = true;  // integers in 0..255 are taken as uint8 pixels
  for (float v : ds.images.data)
    if (v < 0 || v > 255 || v != static_cast<float>(static_cast<int>(v))) {
      bytes = false;
      break;
    }
  ds.from_uint8 = bytes && !ds.images.data.empty();
  return ds;
}

Dataset load_dataset(const std::string& spec, const std::string& split) {
  if (split != "train" && split != "test")
    throw Error("--split " + split + ": accepted: train, test");
  if (const size_t comma = spec.find(','); comma != std::string::npos)
    return read_npy_pair(spec.substr(0, comma), spec.substr(comma + 1));
  std::string dir = spec;
  if (spec == "fashion-mnist") {
    dir = kFashionMnistDir;
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      throw Error(
          "--data fashion-mnist: " + dir +
          " is missing; Debian's dataset-fashion-mnist package installs it (setup.sh does)");
  }
  std::error_code ec;
  if (fs::path(spec).extension() == ".bin" && fs::is_regular_file(spec, ec))
    return read_cifar10({spec});
  if (!fs::is_directory(dir, ec))
    throw Error("--data " + spec +
                ": not a folder of IDX files or CIFAR-10 batches; accepted: "
                "fashion-mnist, a folder with train-/t10k-images-idx3-ubyte[.gz] and "
                "-labels-idx1-ubyte[.gz], a folder with CIFAR-10's data_batch_N.bin and "
                "test_batch.bin, one such .bin, or X.npy,Y.npy");
  if (fs::exists(fs::path(dir) / "data_batch_1.bin", ec) ||
      fs::exists(fs::path(dir) / "test_batch.bin", ec)) {
    std::vector<std::string> batches;
    if (split == "test") {
      batches.push_back((fs::path(dir) / "test_batch.bin").string());
    } else {
      for (int i = 1; i <= 5; ++i) {
        const fs::path batch = fs::path(dir) / ("data_batch_" + std::to_string(i) + ".bin");
        if (fs::exists(batch, ec)) batches.push_back(batch.string());
      }
      if (batches.empty())
        throw Error("--data " + spec + ": no data_batch_1.bin ... data_batch_5.bin to train on");
    }
    return read_cifar10(batches);
  }
  const std::string prefix = split == "train" ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    for (const char* ext : {"", ".gz"})
      if (fs::exists(fs::path(dir) / (stem + ext), ec))
        return (fs::path(dir) / (stem + ext)).string();
    throw Error("--data " + spec + ": " + (fs::path(dir) / stem).string() + "[.gz] is missing");
  };
  const std::string images =
      find(prefix + "-images-idx3-ubyte");  // named first when both are missing
  return read_idx(images, find(prefix + "-labels-idx1-ubyte"));
}

}  // namespace cnnc::runtime
