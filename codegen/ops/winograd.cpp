// Winograd's minimal filtering F(m x m, 3x3) (Lavin and Gray, 2016), m = 2 or 4, for 3x3
// stride-1 convs: the same result as conv.cpp's direct accumulation up to rounding, with
// (m+2)^2 multiplies for each m x m tile of outputs and pair of channels instead of 9 m^2 (16
// instead of 36; 36 instead of 144). The transforms (codegen/winograd_transforms.h) are sums, so
// their cost is per tile and channel, not per pair of channels; F(4x4)'s larger coefficients
// round a few times more than F(2x2)'s.
#include "codegen/ops/ops.h"
#include "codegen/winograd_transforms.h"
#include "ir/schedule.h"

namespace cnnc::codegen {

using namespace Halide;

std::string winograd_error(const ConvSpec& s) {
  if (s.kh != 3 || s.kw != 3) return "winograd computes 3x3 kernels only";
  if (s.sh != 1 || s.sw != 1 || s.dh != 1 || s.dw != 1)
    return "winograd computes stride-1, undilated convs only";
  if (s.groups != 1) return "winograd computes ungrouped convs only";
  return "";
}

WinogradAlgorithm winograd_algorithm(const ConvSpec& s, int m, int weight_block,
                                     const std::string& name) {
  const WinogradTransforms& w = winograd_transforms(m);
  const int alpha = w.alpha, points = alpha * alpha;
  WinogradAlgorithm l;
  l.spec = s;
  l.m = w.m;
  l.tiles_w = ir::winograd_tiles(s.out_w, w.m);
  l.tiles_h = ir::winograd_tiles(s.out_h, w.m);
  const std::vector<int> in_dims{s.in_c, s.in_w, s.in_h, s.n};
  const std::vector<int> out_dims{s.out_c, s.out_w, s.out_h, s.n};
  ImageParam in = l.add_arg(name + "_in", in_dims);
  ImageParam residual;
  if (s.epilogue.add) residual = l.add_arg(name + "_residual", out_dims);
  // A transposed kernel (an input gradient) arrives as the forward layer's: flipped and with
  // its channels exchanged on the fly, as the kernel transform reads each tap once.
  // A forward conv's kernel can arrive transformed (at load, not per call): U as
  // [out/B][alpha^2][in][B].
  if (weight_block > 0 && !s.transposed) l.winograd_outputs = w.m, l.weight_block = weight_block;
  const std::vector<int> w_dims =
      l.winograd_outputs ? std::vector<int>{weight_block, s.in_c, points, s.out_c / weight_block}
      : s.transposed     ? std::vector<int>{s.in_c, s.out_c, 3, 3}
                         : std::vector<int>{s.out_c, s.in_c, 3, 3};
  ImageParam w_in = l.add_arg(name + "_kernel", w_dims);
  auto tap = [&](Expr oc, Expr ic, int kx, int ky) {
    return s.transposed ? w_in(ic, oc, 2 - kx, 2 - ky) : w_in(oc, ic, kx, ky);
  };
  ImageParam b;
  if (s.bias) b = l.add_arg(name + "_bias", {s.out_c});

  Var c("c"), x("x"), y("y"), n("n");
  l.vars = {c, x, y, n};
  l.p = Var("p"), l.tx = Var("tx"), l.ty = Var("ty");
  const Var &p = l.p, &tx = l.tx, &ty = l.ty;

  // The windows of the last tiles reach two past a rounded-up output: zero outside the
  // padded input, as the direct conv's padding.
  l.padded = Func(name + "_padded");
  Func bounded = BoundaryConditions::constant_exterior(
      in, 0.f, {{Expr(), Expr()}, {0, s.in_w}, {0, s.in_h}, {Expr(), Expr()}});
  l.padded(c, x, y, n) = bounded(c, x - s.pad_left, y - s.pad_top, n);

  // U = G g G': the kernel's 3x3 taps to alpha x alpha, per pair of channels (here, or at load:
  // codegen::winograd_kernel_transform computes the same expressions).
  Var oc("oc"), ic("ic");
  l.kernel = Func(name + "_kernel_transform");
  if (l.winograd_outputs) {
    l.kernel(oc, ic, p) = w_in(oc % weight_block, ic, p, oc / weight_block);
  } else {
    std::vector<Expr> u(points);  // position p = pa + alpha pb
    for (int pb = 0; pb < alpha; ++pb)
      winograd_kernel_row(
          w, [&](int kx, int ky) { return tap(oc, ic, kx, ky); }, pb, u.data() + alpha * pb);
    l.kernel(oc, ic, p) = mux(p, u);
  }

  // V = B' d B: each tile's alpha x alpha input window transformed, per input channel.
  std::vector<Expr> v_rows;
  for (int pb = 0; pb < alpha; ++pb)
    for (int pa = 0; pa < alpha; ++pa) {
      std::vector<Expr> along_x(alpha);
      for (int j = 0; j < alpha; ++j) {
        std::vector<Expr> z(alpha);
        for (int i = 0; i < alpha; ++i) z[i] = l.padded(ic, w.m * tx + i, w.m * ty + j, n);
        along_x[j] = winograd_combine(w.bt + alpha * pa, z.data(), alpha);
      }
      v_rows.push_back(winograd_combine(w.bt + alpha * pb, along_x.data(), alpha));
    }
  l.input = Func(name + "_input_transform");
  l.input(ic, p, tx, ty, n) = mux(p, v_rows);

  // M: alpha^2 independent products of the transformed kernel and windows, over the input
  // channels.
  l.r = RDom(0, s.in_c, "ic");
  l.product = Func(name + "_product");
  l.product(oc, p, tx, ty, n) = 0.f;
  l.product(oc, p, tx, ty, n) += l.kernel(oc, l.r, p) * l.input(l.r, p, tx, ty, n);

  // Y = A' M A, output (x % m, y % m) of tile (x / m, y / m) (the schedule unrolls a tile's
  // outputs, so the positions are constants and the muxes fold away).
  std::vector<Expr> at_x;
  for (int ux = 0; ux < w.m; ++ux) {
    std::vector<Expr> m_y(alpha), at_y;
    for (int pb = 0; pb < alpha; ++pb) {
      std::vector<Expr> prod(alpha);
      for (int pa = 0; pa < alpha; ++pa)
        prod[pa] = l.product(c, pa + alpha * pb, x / w.m, y / w.m, n);
      m_y[pb] = winograd_combine(w.at + alpha * ux, prod.data(), alpha);
    }
    for (int uy = 0; uy < w.m; ++uy)
      at_y.push_back(winograd_combine(w.at + alpha * uy, m_y.data(), alpha));
    at_x.push_back(mux(y % w.m, at_y));
  }
  Expr result = mux(x % w.m, at_x);
  if (s.bias) result += b(c);
  l.epilogue_output(name, s.epilogue, result, residual, out_dims);
  return l;
}

}  // namespace cnnc::codegen
