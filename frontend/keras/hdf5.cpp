#include "frontend/keras/hdf5.h"

#include <hdf5.h>
#include <hdf5_hl.h>

#include "ir/error.h"
#include "ir/shape_inference.h"

namespace cnnc::frontend::keras {

namespace {

// HDF5 prints its error stack to stderr by default; we report our own message instead.
void silence_hdf5() {
  static bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// Closes an HDF5 identifier with the right function when it goes out of scope.
struct Id {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Id() {
    if (id >= 0) close(id);
  }
};

std::string read_string(hid_t attr, const std::string& what) {
  Id type{H5Aget_type(attr), H5Tclose};
  if (type.id < 0 || H5Tget_class(type.id) != H5T_STRING) throw Error(what + " is not a string");
  Id space{H5Aget_space(attr), H5Sclose};
  if (H5Sget_simple_extent_npoints(space.id) != 1) throw Error(what + " is not a single string");
  if (H5Tis_variable_str(type.id) > 0) {
    Id mem{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(mem.id, H5T_VARIABLE);
    H5Tset_cset(mem.id, H5Tget_cset(type.id));
    char* s = nullptr;
    if (H5Aread(attr, mem.id, &s) < 0 || !s) throw Error(what + " cannot be read");
    std::string out(s);
    H5free_memory(s);
    return out;
  }
  const size_t n = H5Tget_size(type.id);
  if (n == 0 || n > (size_t{256} << 20)) throw Error(what + " has an unreasonable size");
  std::string out(n, '\0');
  Id mem{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(mem.id, n);
  if (H5Aread(attr, mem.id, out.data()) < 0) throw Error(what + " cannot be read");
  out.resize(out.find('\0') == std::string::npos ? n : out.find('\0'));
  return out;
}

}  // namespace

Hdf5File Hdf5File::open(const std::string& path) {
  silence_hdf5();
  if (H5Fis_hdf5(path.c_str()) <= 0) throw Error(path + ": not an HDF5 file (or unreadable)");
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw Error(path + ": cannot open as HDF5");
  return Hdf5File(path, id);
}

Hdf5File Hdf5File::open_image(const std::string& label, const std::string& image) {
  silence_hdf5();
  if (image.size() < 8 || image.compare(0, 8, "\x89HDF\r\n\x1a\n") != 0)
    throw Error(label + ": not an HDF5 file (no HDF5 signature)");
  hid_t id = H5LTopen_file_image(const_cast<char*>(image.data()), image.size(),
                                 H5LT_FILE_IMAGE_DONT_COPY | H5LT_FILE_IMAGE_DONT_RELEASE);
  if (id < 0) throw Error(label + ": cannot open as HDF5 (corrupt or truncated)");
  return Hdf5File(label, id);
}

Hdf5File::~Hdf5File() {
  if (id_ >= 0) H5Fclose(id_);
}

Hdf5File::Hdf5File(Hdf5File&& o) noexcept : label_(std::move(o.label_)), id_(o.id_) { o.id_ = -1; }

bool Hdf5File::exists(const std::string& path) const {
  if (path.empty() || path == "/") return true;
  // Check each prefix: H5Lexists fails on a missing intermediate group.
  size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    const std::string prefix = path.substr(0, pos);
    if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

bool Hdf5File::is_group(const std::string& path) const {
  if (!exists(path)) return false;
  H5O_info_t info;  // HDF5 1.10 (Debian 12)
  if (H5Oget_info_by_name2(id_, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return false;
  return info.type == H5O_TYPE_GROUP;
}

std::vector<std::string> Hdf5File::members(const std::string& group) const {
  if (!is_group(group)) throw Error(label_ + ": no group '" + group + "'");
  Id g{H5Gopen2(id_, group.c_str(), H5P_DEFAULT), H5Gclose};
  H5G_info_t info;
  if (g.id < 0 || H5Gget_info(g.id, &info) < 0)
    throw Error(label_ + ": cannot list '" + group + "'");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n =
        H5Lget_name_by_idx(g.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0 || n > 4096) throw Error(label_ + ": bad member name in '" + group + "'");
    std::string name(static_cast<size_t>(n) + 1, '\0');
    H5Lget_name_by_idx(g.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<size_t>(n));
    names.push_back(name);
  }
  return names;
}

bool Hdf5File::has_attribute(const std::string& object, const std::string& name) const {
  return exists(object) && H5Aexists_by_name(id_, object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::string Hdf5File::string_attribute(const std::string& object, const std::string& name) const {
  const std::string what = label_ + ": attribute '" + name + "' of '" + object + "'";
  if (!has_attribute(object, name)) throw Error(what + " is missing");
  Id attr{H5Aopen_by_name(id_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  if (attr.id < 0) throw Error(what + " cannot be opened");
  return read_string(attr.id, what);
}

std::vector<std::string> Hdf5File::string_list_attribute(const std::string& object,
                                                         const std::string& name) const {
  const std::string what = label_ + ": attribute '" + name + "' of '" + object + "'";
  if (!has_attribute(object, name)) throw Error(what + " is missing");
  Id attr{H5Aopen_by_name(id_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  Id type{H5Aget_type(attr.id), H5Tclose};
  Id space{H5Aget_space(attr.id), H5Sclose};
  if (attr.id < 0 || type.id < 0 || space.id < 0) throw Error(what + " cannot be read");
  const hssize_t count = H5Sget_simple_extent_npoints(space.id);
  if (count < 0 || count > 1000000) throw Error(what + " has an unreasonable length");
  std::vector<std::string> out;
  if (count == 0) return out;  // h5py writes an empty list as an empty float array
  if (H5Tget_class(type.id) != H5T_STRING) throw Error(what + " is not a list of strings");
  if (H5Tis_variable_str(type.id) > 0) {
    Id mem{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(mem.id, H5T_VARIABLE);
    std::vector<char*> ptrs(static_cast<size_t>(count), nullptr);
    if (H5Aread(attr.id, mem.id, ptrs.data()) < 0) throw Error(what + " cannot be read");
    for (char* p : ptrs) {
      out.emplace_back(p ? p : "");
      H5free_memory(p);
    }
    return out;
  }
  const size_t n = H5Tget_size(type.id);
  if (n == 0 || n * static_cast<size_t>(count) > (size_t{256} << 20))
    throw Error(what + " is too large");
  std::string buf(n * static_cast<size_t>(count), '\0');
  Id mem{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(mem.id, n);
  if (H5Aread(attr.id, mem.id, buf.data()) < 0) throw Error(what + " cannot be read");
  for (hssize_t i = 0; i < count; ++i) {
    std::string s = buf.substr(static_cast<size_t>(i) * n, n);
    out.push_back(s.substr(0, s.find('\0')));
  }
  return out;
}

ir::Tensor Hdf5File::dataset(const std::string& path) const {
  const std::string what = label_ + ": dataset '" + path + "'";
  if (!exists(path) || is_group(path)) throw Error(what + " is missing");
  Id ds{H5Dopen2(id_, path.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) throw Error(what + " cannot be opened");
  Id type{H5Dget_type(ds.id), H5Tclose};
  // Integers too: Normalization keeps its sample count as an int64 scalar.
  if (type.id < 0 || (H5Tget_class(type.id) != H5T_FLOAT && H5Tget_class(type.id) != H5T_INTEGER))
    throw Error(what + " is not numeric; accepted: float or integer weights");
  Id space{H5Dget_space(ds.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  if (rank < 0 || rank > 8) throw Error(what + " has an unsupported rank");
  hsize_t dims[8] = {};
  H5Sget_simple_extent_dims(space.id, dims, nullptr);
  ir::Tensor t;
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] > static_cast<hsize_t>(ir::kMaxElements) ||
        (dims[i] > 0 && n > ir::kMaxElements / static_cast<int64_t>(dims[i])))
      throw Error(what + " is larger than 2^31 - 1 elements");
    n *= static_cast<int64_t>(dims[i]);
    t.shape.push_back(static_cast<int64_t>(dims[i]));
  }
  // The storage must hold what the shape promises: a hostile header can't make us allocate more.
  const hsize_t stored = H5Dget_storage_size(ds.id);
  if (n > 0 && stored == 0) throw Error(what + " has no data");
  t.data.resize(static_cast<size_t>(n));
  if (n > 0 && H5Dread(ds.id, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data.data()) < 0)
    throw Error(what + " cannot be read (corrupt or truncated)");
  return t;
}

void Hdf5File::copy_replacing(const std::string& path,
                              const std::map<std::string, std::vector<float>>& replace) const {
  silence_hdf5();
  Id out{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
  if (out.id < 0) throw Error(path + ": cannot create the file");
  for (const std::string& m : members("/"))
    if (H5Ocopy(id_, m.c_str(), out.id, m.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
      throw Error(label_ + ": cannot copy '" + m + "' to " + path);
  for (const auto& [name, values] : replace) {
    Id d{H5Dopen2(out.id, name.c_str(), H5P_DEFAULT), H5Dclose};
    if (d.id < 0) throw Error(label_ + ": no dataset '" + name + "' to write the weights to");
    Id space{H5Dget_space(d.id), H5Sclose};
    const hssize_t n = H5Sget_simple_extent_npoints(space.id);
    if (n != static_cast<hssize_t>(values.size()))
      throw Error(label_ + ": dataset '" + name + "' holds " + std::to_string(n) +
                  " values, the trained weights " + std::to_string(values.size()));
    if (H5Dwrite(d.id, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0)
      throw Error(path + ": cannot write '" + name + "'");
  }
  if (H5Fflush(out.id, H5F_SCOPE_GLOBAL) < 0) throw Error(path + ": cannot write the file");
}

}  // namespace cnnc::frontend::keras
