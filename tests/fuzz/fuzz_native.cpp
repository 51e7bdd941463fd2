// The native format's parser on arbitrary bytes: a cnnc::Error or a graph that prints, parses
// back and prints identically. Anything else (a crash, a hang, another exception) is a bug.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ir/error.h"
#include "ir/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const cnnc::ir::Graph g = cnnc::ir::parse(text, "fuzz.cnn");
    const std::string printed = cnnc::ir::print(g);
    if (cnnc::ir::print(cnnc::ir::parse(printed, "printed.cnn")) != printed) std::abort();
  } catch (const cnnc::Error&) {
  }
  return 0;
}
