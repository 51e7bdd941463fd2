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
  Expr e = t * safe_exp(-z * z + poly);
  return select(z >= 0.f, e, 2.f - e);
}

// log(1 + y) to a few ulps for small y too, where log(1 + y) rounds to 0 (Goldberg's: the
// rounding of 1 + y cancels in log(u) / (u - 1)). Halide has no log1p, and its simplifier
// would fold (1 + y) - 1 to y: strict_float keeps the float arithmetic as written.
Expr log1p_accurate(Expr y) {
  Expr u = 1.f + y;
  return strict_float(select(u == 1.f, y, log(u) * y / (u - 1.f)));
}
// log(1 + exp(x)) without overflow, and without losing the far tail (mish(-20), log_sigmoid(20)).
Expr softplus(Expr x) { return max(x, 0.f) + log1p_accurate(safe_exp(-abs(x))); }
Expr sigmoid(Expr x) { return 1.f / (1.f + safe_exp(-x)); }
constexpr float kGeluC = 0.7978845608f, kGeluK = 0.044715f;  // sqrt(2 / pi), and x^3's weight
// GELU's tanh approximation x (1 + tanh u) / 2, u = c (x + k x^3), is x sigmoid(2u): computed
// so, not with tanh (an OpenCL tanh(-1e9) of -1 + 1 ulp made it -30 instead of -0). This is 2u.
Expr gelu_tanh_2u(Expr x) { return 2.f * kGeluC * (x + kGeluK * x * x * x); }
// Its derivative in s = sigmoid(2u), as 1 - tanh^2 u = 4 s (1 - s). The tails (s 0 or 1) are
// exactly s, where x^2 may overflow and 0 * inf would make a NaN.
Expr gelu_tanh_derivative(Expr x) {
  Expr s = sigmoid(gelu_tanh_2u(x));
  return select(s > 0.f && s < 1.f,
                s + 2.f * kGeluC * x * s * (1.f - s) * (1.f + 3.f * kGeluK * x * x), s);
}

}  // namespace

// Halide's CPU exp reduces its argument with an int32 exponent, so from x ~ 1.49e9 up it wraps
// and returns 0 (Halide 21, x86: EfficientNetV2M's SE gates reached -1.5e9 and swish returned x
// instead of 0). A float's exp is inf from x > 88.73 on, so capping x at 89 changes no other
// value, and a NaN still passes through.
Expr safe_exp(Expr x) { return exp(select(x > 89.f, 89.f, x)); }

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
