// Whole Keras files (.keras zip archives and .h5 HDF5 files) on arbitrary bytes: the first byte
// picks the format, the rest is the file.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "frontend/keras/isolated.h"
#include "frontend/load.h"
#include "ir/error.h"

// HDF5 is read in a child process; one that hangs is killed after 3 s, under tools/fuzz.sh's
// 10 s per input, so a hang of the child is an error (as cnnc reports it) and only a hang of
// this process is a finding.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cnnc::frontend::keras::set_read_timeout(3);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string path = "/tmp/cnnc-fuzz-" + std::to_string(::getpid()) + (data[0] & 1 ? ".h5" : ".keras");
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  try {
    cnnc::frontend::load(path, 1);
  } catch (const cnnc::Error&) {
  }
  return 0;
}
