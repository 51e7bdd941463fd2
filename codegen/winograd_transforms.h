#pragma once
// Winograd's minimal filtering F(m x m, 3x3) (Lavin and Gray, 2016) for m = 2 or 4: the matrices
// that take a tile's (m+2) x (m+2) input window to the transformed domain (B'), a 3x3 kernel to
// it (G), and the (m+2)^2 products there back to m x m outputs (A'), with the interpolation
// points 0, 1, -1 (and 2, -2 for m = 4). Plain numbers, so that the kernels' Halide expressions
// (codegen/ops/winograd.cpp) and the kernel transform at load (program.h) apply the same sums in
// the same order: the same floats.
#include <utility>

namespace cnnc::codegen {

struct WinogradTransforms {
  int m = 2;                  // outputs per tile side
  int alpha = 4;              // window side, m + 2: alpha^2 products per tile
  const float* bt = nullptr;  // B', alpha x alpha, row-major
  const float* g = nullptr;   // G, alpha x 3: row a is g_scale[a] times these integers
  const float* g_scale = nullptr;
  const float* at = nullptr;  // A', m x alpha
};

inline const WinogradTransforms& winograd_transforms(int m) {
  static constexpr float bt2[] = {1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 1, 0, 0, 1, 0, -1};
  static constexpr float g2[] = {1, 0, 0, 1, 1, 1, 1, -1, 1, 0, 0, 1};
  static constexpr float g2_scale[] = {1, 0.5f, 0.5f, 1};
  static constexpr float at2[] = {1, 1, 1, 0, 0, 1, -1, -1};
  static constexpr float bt4[] = {4, 0,  -5, 0,  1, 0,  //
                                  0, -4, -4, 1,  1, 0,  //
                                  0, 4,  -4, -1, 1, 0,  //
                                  0, -2, -1, 2,  1, 0,  //
                                  0, 2,  -1, -2, 1, 0,  //
                                  0, 4,  0,  -5, 0, 1};
  static constexpr float g4[] = {1, 0, 0, 1, 1, 1, 1, -1, 1, 1, 2, 4, 1, -2, 4, 0, 0, 1};
  static constexpr float g4_scale[] = {0.25f, -1.f / 6, -1.f / 6, 1.f / 24, 1.f / 24, 1};
  static constexpr float at4[] = {1, 1, 1,  1, 1,  0,  //
                                  0, 1, -1, 2, -2, 0,  //
                                  0, 1, 1,  4, 4,  0,  //
                                  0, 1, -1, 8, -8, 1};
  static const WinogradTransforms f2{2, 4, bt2, g2, g2_scale, at2};
  static const WinogradTransforms f4{4, 6, bt4, g4, g4_scale, at4};
  return m == 4 ? f4 : f2;
}

// scale * sum of c[j] * v[j] over the nonzero coefficients, left to right, the +-1 ones as
// additions and subtractions: for floats and for Halide Exprs alike.
template <class T>
T winograd_combine(const float* c, const T* v, int n, float scale = 1) {
  T sum{};
  bool first = true;
  for (int j = 0; j < n; ++j) {
    if (c[j] == 0) continue;
    const T term = c[j] == 1 ? v[j] : c[j] == -1 ? -v[j] : v[j] * c[j];
    if (first)
      sum = term;
    else if (c[j] == -1)
      sum = sum - v[j];
    else
      sum = sum + term;
    first = false;
  }
  return scale == 1 ? sum : scale * sum;
}

// Row pb of U = G g G' for one pair of channels: u[pa] for pa < alpha, from tap(kx, ky) (a
// float or an Expr). Both the kernels' expressions and the transform at load call this, so their
// floats agree.
template <class Tap, class T = decltype(std::declval<Tap>()(0, 0))>
void winograd_kernel_row(const WinogradTransforms& w, const Tap& tap, int pb, T* u) {
  T along_y[3];
  for (int kx = 0; kx < 3; ++kx) {
    const T k[3] = {tap(kx, 0), tap(kx, 1), tap(kx, 2)};
    along_y[kx] = winograd_combine(w.g + 3 * pb, k, 3, w.g_scale[pb]);
  }
  for (int pa = 0; pa < w.alpha; ++pa)
    u[pa] = winograd_combine(w.g + 3 * pa, along_y, 3, w.g_scale[pa]);
}

}  // namespace cnnc::codegen
