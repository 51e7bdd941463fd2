// Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, 2016) for 3x3 stride-1 convs: the
// same result as conv.cpp's direct accumulation up to rounding, with 16 multiplies for each
// 2x2 tile of outputs and pair of channels instead of 36. The transforms are additions (and
// halvings of the kernel), so their cost is per tile and channel, not per pair of channels.
#include "codegen/ops/ops.h"

namespace cnnc::codegen {

using namespace Halide;

namespace {

// B' applied to four inputs z along one axis: row a of the input transform.
Expr input_row(int a, const Expr z[4]) {
  switch (a) {
    case 0:
      return z[0] - z[2];
    case 1:
      return z[1] + z[2];
    case 2:
      return z[2] - z[1];
    default:
      return z[1] - z[3];
  }
}

// G applied to three taps k along one axis: row a of the kernel transform.
Expr kernel_row(int a, const Expr k[3]) {
  switch (a) {
    case 0:
      return k[0];
    case 1:
      return 0.5f * (k[0] + k[1] + k[2]);
    case 2:
      return 0.5f * (k[0] - k[1] + k[2]);
    default:
      return k[2];
  }
}

// A' applied to four products m along one axis: output u of the tile.
Expr output_row(int u, const Expr m[4]) { return u == 0 ? m[0] + m[1] + m[2] : m[1] - m[2] - m[3]; }

}  // namespace

std::string winograd_error(const ConvSpec& s) {
  if (s.kh != 3 || s.kw != 3) return "winograd computes 3x3 kernels only";
  if (s.sh != 1 || s.sw != 1 || s.dh != 1 || s.dw != 1)
    return "winograd computes stride-1, undilated convs only";
  if (s.groups != 1) return "winograd computes ungrouped convs only";
  return "";
}

WinogradAlgorithm winograd_algorithm(const ConvSpec& s, int weight_block, const std::string& name) {
  WinogradAlgorithm l;
  l.spec = s;
  l.tiles_w = (s.out_w + 1) / 2;
  l.tiles_h = (s.out_h + 1) / 2;
  const std::vector<int> in_dims{s.in_c, s.in_w, s.in_h, s.n};
  const std::vector<int> out_dims{s.out_c, s.out_w, s.out_h, s.n};
  ImageParam in = l.add_arg(name + "_in", in_dims);
  ImageParam residual;
  if (s.epilogue.add) residual = l.add_arg(name + "_residual", out_dims);
  // A transposed kernel (an input gradient) arrives as the forward layer's: flipped and with
  // its channels exchanged on the fly, as the kernel transform reads each tap once.
  // A forward conv's kernel can arrive transformed (at load, not per call): U as
  // [out/B][16][in][B].
  l.winograd_weights = weight_block > 0 && !s.transposed;
  if (l.winograd_weights) l.weight_block = weight_block;
  const std::vector<int> w_dims =
      l.winograd_weights ? std::vector<int>{weight_block, s.in_c, 16, s.out_c / weight_block}
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

  // U = G g G': the kernel's 3x3 taps to 4x4, per pair of channels (here, or at load:
  // codegen::winograd_kernel_transform computes the same expressions).
  Var oc("oc"), ic("ic");
  l.kernel = Func(name + "_kernel_transform");
  if (l.winograd_weights) {
    l.kernel(oc, ic, p) = w_in(oc % weight_block, ic, p, oc / weight_block);
  } else {
    std::vector<Expr> u_rows;
    for (int pb = 0; pb < 4; ++pb)
      for (int pa = 0; pa < 4; ++pa) {
        Expr along_y[3];
        for (int kx = 0; kx < 3; ++kx) {
          const Expr k[3] = {tap(oc, ic, kx, 0), tap(oc, ic, kx, 1), tap(oc, ic, kx, 2)};
          along_y[kx] = kernel_row(pb, k);
        }
        u_rows.push_back(kernel_row(pa, along_y));
      }
    l.kernel(oc, ic, p) = mux(p, u_rows);
  }

  // V = B' d B: each tile's 4x4 input window to 4x4, per input channel.
  std::vector<Expr> v_rows;
  for (int pb = 0; pb < 4; ++pb)
    for (int pa = 0; pa < 4; ++pa) {
      Expr along_x[4];
      for (int j = 0; j < 4; ++j) {
        Expr z[4];
        for (int i = 0; i < 4; ++i) z[i] = l.padded(ic, 2 * tx + i, 2 * ty + j, n);
        along_x[j] = input_row(pa, z);
      }
      v_rows.push_back(input_row(pb, along_x));
    }
  l.input = Func(name + "_input_transform");
  l.input(ic, p, tx, ty, n) = mux(p, v_rows);

  // M: 16 independent products of the transformed kernel and windows, over the input channels.
  l.r = RDom(0, s.in_c, "ic");
  l.product = Func(name + "_product");
  l.product(oc, p, tx, ty, n) = 0.f;
  l.product(oc, p, tx, ty, n) += l.kernel(oc, l.r, p) * l.input(l.r, p, tx, ty, n);

  // Y = A' M A, output (x % 2, y % 2) of tile (x / 2, y / 2).
  Expr at_x[2];
  for (int ux = 0; ux < 2; ++ux) {
    Expr m_y[4];
    for (int pb = 0; pb < 4; ++pb) {
      Expr m[4];
      for (int pa = 0; pa < 4; ++pa) m[pa] = l.product(c, pa + 4 * pb, x / 2, y / 2, n);
      m_y[pb] = output_row(ux, m);
    }
    at_x[ux] = select(y % 2 == 0, output_row(0, m_y), output_row(1, m_y));
  }
  Expr result = select(x % 2 == 0, at_x[0], at_x[1]);
  if (s.bias) result += b(c);
  l.epilogue_output(name, s.epilogue, result, residual, out_dims);
  return l;
}

}  // namespace cnnc::codegen
