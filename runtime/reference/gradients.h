#pragma once
// The reference of the backward ops, and the helpers reference.cpp shares with it
// (reference-internal): naive loops in double, each the
// transpose of its forward op's loop in reference.cpp, so the two are checked against each
// other by finite differences (tests/runtime/test_gradients.cpp).
#include <string>
#include <vector>

#include "ir/graph.h"

namespace cnnc::runtime::reference {

// "layer 'NAME' (op)", and the reference's error about a layer.
std::string layer(const ir::Node& n);
[[noreturn]] void fail(const ir::Node& n, const std::string& msg);

// Element (b, y, x, c) of an NHWC tensor.
inline size_t at4(const ir::Shape& s, int64_t b, int64_t y, int64_t x, int64_t c) {
  return static_cast<size_t>(((b * s[1] + y) * s[2] + x) * s[3] + c);
}

// One backward op on its inputs (ops.def order: conv2d_grad_input <- dy, kernel; ...).
ir::Tensor run_gradient_op(const ir::Node& n, const std::vector<const ir::Tensor*>& inputs);

}  // namespace cnnc::runtime::reference
