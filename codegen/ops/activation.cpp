// The activations as Halide expressions: the Halide column of ir/activations.def, and relu; and
// their derivatives (the table's grad_halide column), for training's activation_grad.
#include "codegen/ops/ops.h"
#include "ir/error.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

// erfc(z) with a relative error below 1.2e-7 everywhere (Numerical Recipes' erfcc, a Chebyshev
// fit): relative, not absolute, so GELU's far negative tail (x * erfc(|x| / sqrt 2) / 2, which
// is tiny) keeps its digits. Halide has no erf.
Expr erfc_approx(Expr z) {
  Expr t = 1.f / (1.f + 0.5f * abs(z));
  Expr poly =
      -1.26551223f +
      t * (1.00002368f +
           t * (0.37409196f +
                t * (0.09678418f +
                     t * (-0.18628806f +
                          t * (0.27886807f +
                               t * (-1.13520398f +
                                    t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
  Expr e = t * exp(-z * z + poly);
  return select(z >= 0.f, e, 2.f - e);
}

// log(1 + exp(x)) without overflow.
Expr softplus(Expr x) { return max(x, 0.f) + log(1.f + exp(-abs(x))); }
Expr sigmoid(Expr x) { return 1.f / (1.f + exp(-x)); }
// GELU's tanh approximation, differentiated: t = tanh(u), u = c (x + k x^3).
Expr gelu_tanh_derivative(Expr x) {
  const float c = 0.7978845608f, k = 0.044715f;
  Expr t = tanh(c * (x + k * x * x * x));
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * c * (1.f + 3.f * k * x * x);
}

}  // namespace

Expr activation(ir::OpKind k, Expr x) {
  switch (k) {
    case ir::OpKind::ReLU:
      return max(x, 0.f);  // at its defaults
#define CNNC_ACTIVATION(Name, text, keras_names, reference, halide, grad_from, grad_reference, \
                        grad_halide, doc)                                                      \
  case ir::OpKind::Name:                                                                       \
    return halide;
#include "ir/activations.def"
#undef CNNC_ACTIVATION
    default:
      break;
  }
  throw InternalError(std::string(ir::op_info(k).text) + " is not an epilogue activation");
}

Expr activation_derivative(ir::OpKind k, Expr v) {
  switch (k) {
#define CNNC_ACTIVATION(Name, text, keras_names, reference, halide, grad_from, grad_reference, \
                        grad_halide, doc)                                                      \
  case ir::OpKind::Name:                                                                       \
    return grad_halide;
#include "ir/activations.def"
#undef CNNC_ACTIVATION
    default:
      break;
  }
  throw InternalError(std::string(ir::op_info(k).text) + " is not a table activation");
}

Expr with_activation(const ir::Epilogue& e, Expr x) {
  return e.has_activation ? activation(e.activation, x) : x;
}

}  // namespace cnnc::codegen
