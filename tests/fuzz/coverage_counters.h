#pragma once
// libFuzzer's coverage counters: clang's inline 8-bit counters, one section of the fuzz binary.
#include <cstddef>
#include <cstdint>

struct CoverageCounters {
  uint8_t* begin = nullptr;
  size_t count = 0;
};
CoverageCounters coverage_counters();
