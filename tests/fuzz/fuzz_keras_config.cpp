// The Keras model config reader and the layer converters on arbitrary JSON text.
#include <cstdint>
#include <string>

#include "frontend/keras/convert.h"
#include "frontend/keras/model_config.h"
#include "ir/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto m = cnnc::frontend::keras::parse_model_config(text, "fuzz.json");
    cnnc::frontend::keras::convert(m, nullptr, "fuzz.json", 1);
  } catch (const cnnc::Error&) {
  }
  return 0;
}
