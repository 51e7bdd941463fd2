#include "frontend/keras/zip_archive.h"

#include <zip.h>

#include "ir/error.h"

namespace cnnc::frontend::keras {

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
  int err = 0;
  zip_ = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!zip_) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    std::string msg = zip_error_strerror(&ze);
    zip_error_fini(&ze);
    throw Error(path + ": not a readable .keras archive (zip: " + msg + ")");
  }
}

ZipArchive::~ZipArchive() {
  if (zip_) zip_discard(zip_);
}

std::vector<std::string> ZipArchive::names() const {
  std::vector<std::string> out;
  const zip_int64_t n = zip_get_num_entries(zip_, 0);
  for (zip_int64_t i = 0; i < n; ++i)
    if (const char* name = zip_get_name(zip_, static_cast<zip_uint64_t>(i), 0))
      out.emplace_back(name);
  return out;
}

bool ZipArchive::has(const std::string& name) const {
  return zip_name_locate(zip_, name.c_str(), 0) >= 0;
}

std::string ZipArchive::read(const std::string& name, size_t max_bytes) const {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat(zip_, name.c_str(), 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
    throw Error(path_ + ": the archive has no '" + name + "'");
  if (st.size > max_bytes)
    throw Error(path_ + ": '" + name + "' declares " + std::to_string(st.size) +
                " bytes, more than the " + std::to_string(max_bytes) + " accepted");
  zip_file_t* f = zip_fopen(zip_, name.c_str(), 0);
  if (!f) throw Error(path_ + ": cannot open '" + name + "' in the archive");
  std::string data(static_cast<size_t>(st.size), '\0');
  const zip_int64_t got = zip_fread(f, data.data(), st.size);
  zip_fclose(f);
  // libzip checks the CRC at the end of the member: a short or corrupt read fails here.
  if (got < 0 || static_cast<zip_uint64_t>(got) != st.size)
    throw Error(path_ + ": '" + name + "' is truncated or corrupt");
  return data;
}

namespace {

std::string zip_message(zip_t* z) { return zip_error_strerror(zip_get_error(z)); }

}  // namespace

void ZipArchive::copy_replacing(const std::string& path, const std::string& name,
                                const std::string& bytes) const {
  int err = 0;
  zip_t* out = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!out) throw Error(path + ": cannot create the archive");
  auto fail = [&](const std::string& what) {
    const std::string msg = path + ": " + what + " (zip: " + zip_message(out) + ")";
    zip_discard(out);
    throw Error(msg);
  };
  auto add = [&](const std::string& member, zip_source_t* src) {
    if (!src) fail("cannot read '" + member + "'");
    if (zip_file_add(out, member.c_str(), src, ZIP_FL_ENC_UTF_8) < 0) {
      zip_source_free(src);
      fail("cannot add '" + member + "'");
    }
  };
  const zip_int64_t n = zip_get_num_entries(zip_, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    const char* member = zip_get_name(zip_, static_cast<zip_uint64_t>(i), 0);
    if (!member) fail(path_ + " has an entry without a name");
    if (member != name)
      add(member, zip_source_zip(out, zip_, static_cast<zip_uint64_t>(i), 0, 0, -1));
  }
  add(name, zip_source_buffer(out, bytes.data(), bytes.size(), 0));
  if (zip_close(out) < 0) fail("cannot write the archive");
}

}  // namespace cnnc::frontend::keras
