#pragma once
// NumPy .npy files (format 1.0-3.0), float32 in C order; float64 is converted on reading.
#include <string>

#include "ir/types.h"

namespace cnnc::runtime {

ir::Tensor read_npy(const std::string& path);
void write_npy(const std::string& path, const ir::Tensor& t);

}  // namespace cnnc::runtime
