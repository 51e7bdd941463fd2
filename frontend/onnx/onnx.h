#pragma once
// ONNX models (PyTorch's torch.onnx, tf2onnx, onnx.helper): NCHW graphs converted to the NHWC
// IR at import. 4-D values become NHWC, conv weights OIHW become HWIO, a Gemm after a Flatten of
// a spatial NCHW map gets its weight rows permuted to NHWC order. The model's inputs and 4-D
// outputs are therefore NHWC in cnnc (x.transpose(0, 2, 3, 1) of the ONNX input).
#include <string>

#include "ir/graph.h"

namespace cnnc::frontend::onnx {

// Reads an .onnx file (initializers inline or in external data files beside it) at the batch
// size. Throws cnnc::Error naming the file, the node and its operator, what is wrong and what
// is accepted.
ir::Graph load(const std::string& path, int64_t batch);

// The ONNX operators load() accepts, comma separated.
std::string supported_operators();

}  // namespace cnnc::frontend::onnx
