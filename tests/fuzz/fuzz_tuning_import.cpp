// libFuzzer target: `cnnc db import` reads untrusted JSON lines; any input is a clear
// cnnc::Error or records that pass every check, never a crash, into a fresh in-memory database.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ir/error.h"
#include "tuner/database.h"

namespace cnnc::tuner {
// The fuzz build has no codegen: fixed versions stand in for tuner/versions.cpp.
std::string cnnc_version() { return "fuzz"; }
std::string halide_version() { return "fuzz"; }
}  // namespace cnnc::tuner

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static cnnc::tuner::Database db(":memory:");
  try {
    db.import_lines(std::string(reinterpret_cast<const char*>(data), size), "fuzz.jsonl");
    db.prune();
  } catch (const cnnc::Error&) {
  }
  return 0;
}
