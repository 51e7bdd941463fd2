#pragma once
// What frontend::load says about a file it refuses ("(no error)" when it loads): the frontend
// tests' check that a bad model yields a clear error, not a crash.
#include <string>

#include "frontend/load.h"
#include "ir/error.h"

namespace cnnc::test {

inline std::string load_error(const std::string& path) {
  try {
    frontend::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace cnnc::test
