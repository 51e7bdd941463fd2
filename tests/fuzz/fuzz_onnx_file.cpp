// Whole ONNX files on arbitrary bytes: the protobuf parse, the graph walk and every operator's
// checks. An error is the expected outcome; a crash, a sanitizer report or a hang is a finding.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "frontend/load.h"
#include "ir/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = "/tmp/cnnc-fuzz-" + std::to_string(::getpid()) + ".onnx";
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
