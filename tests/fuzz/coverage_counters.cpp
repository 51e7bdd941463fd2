// Compiled without coverage instrumentation (tests/fuzz/CMakeLists.txt): an instrumented file
// declares the section's bounds itself, and a second declaration there broke libFuzzer's view
// of the counters.
#include "tests/fuzz/coverage_counters.h"

extern "C" __attribute__((weak)) uint8_t __start___sancov_cntrs[];
extern "C" __attribute__((weak)) uint8_t __stop___sancov_cntrs[];

CoverageCounters coverage_counters() {
  if (!__start___sancov_cntrs || !__stop___sancov_cntrs) return {};
  return {__start___sancov_cntrs,
          static_cast<size_t>(__stop___sancov_cntrs - __start___sancov_cntrs)};
}
