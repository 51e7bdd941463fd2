#pragma once
// Helpers shared by the tests: seeded random tensors and magnitude-relative comparison.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "ir/error.h"
#include "ir/types.h"

namespace cnnc::test {

// The message of the cnnc::Error that `f` throws; fails the test if it throws nothing or
// something else.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const cnnc::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("expected cnnc::Error, got another exception: " << std::string(e.what()));
    return {};
  }
  FAIL_CHECK("expected cnnc::Error, nothing was thrown");
  return {};
}

inline std::string source_path(const std::string& rel) {
  return std::string(CNNC_SOURCE_DIR) + "/" + rel;
}

// `file` in this test process's own scratch folder (temp/cnnc-test-SUITE-PID), created on use.
inline std::string scratch_path(const std::string& suite, const std::string& file) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("cnnc-test-" + suite + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / file).string();
}

// The target the compiling tests build for: $CNNC_TEST_TARGET (ctest runs the op and Keras tests
// again with opencl, on PoCL), else the host.
inline std::string test_target() {
  const char* t = std::getenv("CNNC_TEST_TARGET");
  return t && *t ? t : "host";
}

inline ir::Tensor random_tensor(const ir::Shape& shape, std::mt19937& rng, float lo = -1.f,
                                float hi = 1.f) {
  ir::Tensor t(shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (auto& v : t.data) v = d(rng);
  return t;
}

// max |a - b| / max(1, max |b|): an error relative to the magnitude of the expected tensor.
inline double relative_error(const ir::Tensor& a, const ir::Tensor& b) {
  double max_diff = 0, max_mag = 1;
  for (size_t i = 0; i < b.data.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(double(a.data[i]) - double(b.data[i])));
    max_mag = std::max(max_mag, std::abs(double(b.data[i])));
  }
  return max_diff / max_mag;
}

inline void check_close(const ir::Tensor& got, const ir::Tensor& want, double tol = 1e-4) {
  REQUIRE(got.shape == want.shape);
  REQUIRE(got.data.size() == want.data.size());
  CHECK(relative_error(got, want) <= tol);
}

}  // namespace cnnc::test
