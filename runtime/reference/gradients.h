#pragma once
// The reference of the backward ops (reference-internal): naive loops in double, each the
// transpose of its forward op's loop in reference.cpp, so the two are checked against each
// other by finite differences (tests/runtime/test_gradients.cpp).
#include <vector>

#include "ir/graph.h"

namespace cnnc::runtime::reference {

// One backward op on its inputs (ops.def order: conv2d_grad_input <- dy, kernel; ...).
ir::Tensor run_gradient_op(const ir::Node& n, const std::vector<const ir::Tensor*>& inputs);

}  // namespace cnnc::runtime::reference
