// Whole Keras files on arbitrary bytes: built twice, as fuzz_keras_file (.keras zip archives) and
// fuzz_h5_file (legacy .h5 HDF5 files), by CNNC_FUZZ_EXTENSION.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "frontend/keras/isolated.h"
#include "frontend/load.h"
#include "ir/error.h"

#include "tests/fuzz/coverage_counters.h"

namespace {

// HDF5 is read in a forked child (frontend/keras/isolated.cpp), whose counters are a copy of this
// process's: without handing them back, libFuzzer would never see the code that reads HDF5 (our
// readers of weights and attributes) and could not steer mutations into it. The child copies its
// counters into a shared page; this process keeps, per counter, the larger of the two (the child
// started from this process's counts) and clears the page, so a child that died without
// copying adds nothing.
uint8_t* g_child_counters = nullptr;

void copy_child_counters() {
  const CoverageCounters c = coverage_counters();
  std::memcpy(g_child_counters, c.begin, c.count);
}

void merge_child_counters() {
  const CoverageCounters c = coverage_counters();
  for (size_t i = 0; i < c.count; ++i) c.begin[i] = std::max(c.begin[i], g_child_counters[i]);
  std::memset(g_child_counters, 0, c.count);
}

}  // namespace

// The child is stopped after 0.05 s (cnnc: 120 s): every fixture reads in under 30 ms under the
// sanitizers, while ~5% of mutated .h5 files send HDF5 1.10 into an endless loop (H5Aread ->
// H5T__conv_vlen -> H5HG_read), so the limit sets the fuzzer's speed. A hung child is an error,
// as cnnc reports it; only a hang of this process (libFuzzer's -timeout) or a crash of it is a
// finding.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cnnc::frontend::keras::set_read_timeout(0.05);
  if (coverage_counters().count > 0) {
    void* page = mmap(nullptr, coverage_counters().count, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page != MAP_FAILED) {
      g_child_counters = static_cast<uint8_t*>(page);
      cnnc::frontend::keras::set_child_hooks({copy_child_counters, merge_child_counters});
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      "/tmp/cnnc-fuzz-" + std::to_string(::getpid()) + std::string(CNNC_FUZZ_EXTENSION);
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    cnnc::frontend::load(path, 1);
  } catch (const cnnc::Error&) {
  }
  return 0;
}
