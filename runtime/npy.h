#pragma once
// NumPy .npy files (format 1.0-3.0) in C order, written as float32; read from float32, float64
// or an integer type (uint8 images, int64 labels), converted to float.
#include <string>

#include "ir/types.h"

namespace cnnc::runtime {

ir::Tensor read_npy(const std::string& path);
void write_npy(const std::string& path, const ir::Tensor& t);

}  // namespace cnnc::runtime
