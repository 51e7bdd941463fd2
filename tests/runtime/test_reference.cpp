// The reference implementation, op by op, against numbers worked out by hand.
// Most tests use the 4x4 image X(y, x) = 4y + x + 1:
//    1  2  3  4
//    5  6  7  8
//    9 10 11 12
//   13 14 15 16
// and the 3x3 kernel K, chosen so that a flipped or transposed kernel gives other numbers:
//    1 2 0
//    0 0 0
//    0 0 3
// i.e. out(y, x) = X(y', x') + 2 X(y', x' + 1) + 3 X(y' + 2, x' + 2) at the window's corner (y', x').
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ir/error.h"
#include "ir/text.h"
#include "runtime/reference/reference.h"
#include "tests/util.h"

namespace ir = cnnc::ir;
namespace ref = cnnc::runtime::reference;
using cnnc::test::check_close;

namespace {

ir::Tensor tensor(ir::Shape shape, std::vector<float> data) {
  ir::Tensor t(std::move(shape));
  REQUIRE(t.data.size() == data.size());
  t.data = std::move(data);
  return t;
}

// 1..n in row-major order.
std::vector<float> iota(int n, float start = 1.f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + static_cast<float>(i);
  return v;
}

ir::Tensor image4x4() { return tensor({1, 4, 4, 1}, iota(16)); }
const std::vector<float> kK = {1, 2, 0, 0, 0, 0, 0, 0, 3};  // HWIO [3,3,1,1]

ir::Graph net(const std::string& text, int64_t batch = 1) {
  return ir::parse(text, "test.cnn", batch);
}

void set_weights(ir::Graph& g, const std::string& layer, const std::string& role,
                 std::vector<float> data) {
  const ir::NodeId id = g.find(layer);
  REQUIRE(id >= 0);
  for (auto& p : g.node(id).params)
    if (p.role == role) {
      REQUIRE(static_cast<int64_t>(data.size()) == p.value.elements());
      p.value.data = std::move(data);
      return;
    }
  FAIL("layer " << layer << " has no weights " << role);
}

// Runs one layer of g on the given input tensors.
ir::Tensor apply(const ir::Graph& g, const std::string& layer, std::vector<ir::Tensor> ins) {
  const ir::NodeId id = g.find(layer);
  REQUIRE(id >= 0);
  std::vector<const ir::Tensor*> ptrs;
  for (const auto& t : ins) ptrs.push_back(&t);
  return ref::run_node(g.node(id), ptrs);
}

// One conv layer named c on a 4x4x1 input, weights K and no bias.
ir::Tensor conv4x4(const std::string& attrs) {
  auto g = net("input x shape=4x4x1\nconv2d c filters=1 kernel=3x3 use_bias=false " + attrs);
  set_weights(g, "c", "kernel", kK);
  return apply(g, "c", {image4x4()});
}

}  // namespace

TEST_SUITE("reference: conv2d") {
  TEST_CASE("valid padding: each output is the kernel's dot product with one 3x3 window") {
    // (0,0): 1 + 2*2 + 3*11 = 38; (0,1): 2 + 2*3 + 3*12 = 44; ...
    check_close(conv4x4("padding=valid"), tensor({1, 2, 2, 1}, {38, 44, 62, 68}));
  }

  TEST_CASE("same padding, stride 1: one row/column of zeros on every side") {
    // out(y, x) = X(y-1, x-1) + 2 X(y-1, x) + 3 X(y+1, x+1), zero outside the image.
    check_close(conv4x4("padding=same"), tensor({1, 4, 4, 1}, {18, 21, 24, 0,   //
                                                               32, 38, 44, 11,  //
                                                               52, 62, 68, 23,  //
                                                               18, 29, 32, 35}));
  }

  TEST_CASE("same padding, stride 2: Keras puts the odd padding pixel at the bottom/right") {
    // out = ceil(4/2) = 2, total padding 1: top 0, bottom 1 (left 0, right 1).
    // out(y, x) = X(2y, 2x) + 2 X(2y, 2x+1) + 3 X(2y+2, 2x+2).
    check_close(conv4x4("padding=same strides=2x2"), tensor({1, 2, 2, 1}, {38, 11, 29, 35}));
  }

  TEST_CASE("explicit padding") {
    // padding=1 on all sides is 'same' for a 3x3 kernel at stride 1.
    check_close(conv4x4("padding=1"), conv4x4("padding=same"));
    // top 0, bottom 0, left 1, right 0: out(y, x) = X(y, x-1) + 2 X(y, x) + 3 X(y+2, x+1).
    check_close(conv4x4("padding=0,0,1,0"),
                tensor({1, 2, 3, 1}, {0 + 2 * 1 + 3 * 10, 1 + 2 * 2 + 3 * 11, 2 + 2 * 3 + 3 * 12,
                                      0 + 2 * 5 + 3 * 14, 5 + 2 * 6 + 3 * 15, 6 + 2 * 7 + 3 * 16}));
  }

  TEST_CASE("dilation 2 spreads the taps two pixels apart") {
    // 6x6 image X(y, x) = 6y + x + 1; out(y, x) = X(y, x) + 2 X(y, x+2) + 3 X(y+4, x+4).
    auto g = net("input x shape=6x6x1\nconv2d c filters=1 kernel=3x3 dilation=2x2 use_bias=false");
    set_weights(g, "c", "kernel", kK);
    check_close(apply(g, "c", {tensor({1, 6, 6, 1}, iota(36))}),
                tensor({1, 2, 2, 1}, {1 + 2 * 3 + 3 * 29, 2 + 2 * 4 + 3 * 30,  //
                                      7 + 2 * 9 + 3 * 35, 8 + 2 * 10 + 3 * 36}));
  }

  TEST_CASE("bias is added to every output of its filter") {
    auto g = net("input x shape=4x4x1\nconv2d c filters=1 kernel=3x3");
    set_weights(g, "c", "kernel", kK);
    set_weights(g, "c", "bias", {0.5f});
    check_close(apply(g, "c", {image4x4()}), tensor({1, 2, 2, 1}, {38.5, 44.5, 62.5, 68.5}));
  }

  TEST_CASE("HWIO weights: 1x1 kernel mixes input channels, output channel innermost") {
    // kernel[0][0][c][o]: c0 -> (1, 2), c1 -> (3, 4); bias (10, 20).
    auto g = net("input x shape=1x2x2\nconv2d c filters=2 kernel=1x1");
    set_weights(g, "c", "kernel", {1, 2, 3, 4});
    set_weights(g, "c", "bias", {10, 20});
    // Pixels (1, 2) and (-1, 1): o0 = a + 3b + 10, o1 = 2a + 4b + 20.
    check_close(apply(g, "c", {tensor({1, 1, 2, 2}, {1, 2, -1, 1})}),
                tensor({1, 1, 2, 2}, {17, 30, 12, 22}));
  }

  TEST_CASE("depthwise (groups = channels): each filter sees only its own channel") {
    // Channel 0 is X, channel 1 is all ones; filter 0 is K, filter 1 is all ones.
    auto g = net("input x shape=4x4x2\nconv2d c filters=2 kernel=3x3 groups=2 use_bias=false");
    std::vector<float> w(18);  // [3,3,1,2]
    for (int t = 0; t < 9; ++t) w[t * 2 + 0] = kK[t], w[t * 2 + 1] = 1;
    set_weights(g, "c", "kernel", w);
    std::vector<float> x(32);
    for (int p = 0; p < 16; ++p) x[p * 2 + 0] = static_cast<float>(p + 1), x[p * 2 + 1] = 1;
    check_close(apply(g, "c", {tensor({1, 4, 4, 2}, x)}),
                tensor({1, 2, 2, 2}, {38, 9, 44, 9, 62, 9, 68, 9}));
  }

  TEST_CASE("groups = 2 with two channels per group") {
    // Filter 0 reads channels 0,1 with weights (1, 10); filter 1 reads channels 2,3 with (100, 1000).
    auto g = net("input x shape=1x1x4\nconv2d c filters=2 kernel=1x1 groups=2 use_bias=false");
    set_weights(g, "c", "kernel", {1, 100, 10, 1000});  // [1,1,2,2]: (c, o)
    check_close(apply(g, "c", {tensor({1, 1, 1, 4}, {1, 2, 3, 4})}),
                tensor({1, 1, 1, 2}, {1 + 2 * 10, 3 * 100 + 4 * 1000}));
  }

  TEST_CASE("batch: each sample is convolved on its own") {
    auto g = net("input x shape=4x4x1\nconv2d c filters=1 kernel=3x3 use_bias=false", 2);
    set_weights(g, "c", "kernel", kK);
    std::vector<float> x = iota(16);
    for (int i = 0; i < 16; ++i) x.push_back(-static_cast<float>(i + 1));
    check_close(apply(g, "c", {tensor({2, 4, 4, 1}, x)}),
                tensor({2, 2, 2, 1}, {38, 44, 62, 68, -38, -44, -62, -68}));
  }
}

TEST_SUITE("reference: conv2d_transpose") {
  TEST_CASE("each input pixel scatters its kernel-weighted patch, strides apart") {
    // Input (1, 2), kernel (3, 5): stride 2 places the patches side by side, stride 1 overlaps them.
    auto g = net("input x shape=1x2x1\nconv2d_transpose t filters=1 kernel=1x2 strides=1x2 use_bias=false\n"
                 "conv2d_transpose u filters=1 kernel=1x2 use_bias=false <- x");
    set_weights(g, "t", "kernel", {3, 5});
    set_weights(g, "u", "kernel", {3, 5});
    check_close(apply(g, "t", {tensor({1, 1, 2, 1}, {1, 2})}), tensor({1, 1, 4, 1}, {3, 5, 6, 10}));
    check_close(apply(g, "u", {tensor({1, 1, 2, 1}, {1, 2})}), tensor({1, 1, 3, 1}, {3, 11, 10}));
  }

  TEST_CASE("kernel (kh, kw, filters, inputs), a bias per filter") {
    auto g = net("input x shape=1x1x2\nconv2d_transpose t filters=3 kernel=1x1");
    set_weights(g, "t", "kernel", {1, 10, 2, 20, 3, 30});
    set_weights(g, "t", "bias", {0.5f, 0, -1});
    check_close(apply(g, "t", {tensor({1, 1, 1, 2}, {1, 2})}), tensor({1, 1, 1, 3}, {21.5f, 42, 62}));
  }

  TEST_CASE("the adjoint of conv2d: <conv(X), Y> = <X, conv_transpose(Y)>, 'same', stride 2") {
    auto g = net("input x shape=4x4x1\nconv2d c filters=1 kernel=3x3 strides=2 padding=same use_bias=false\n"
                 "input y shape=2x2x1\nconv2d_transpose t filters=1 kernel=3x3 strides=2 padding=same "
                 "use_bias=false <- y");
    set_weights(g, "c", "kernel", kK);
    set_weights(g, "t", "kernel", kK);
    const ir::Tensor y = tensor({1, 2, 2, 1}, {1, -2, 0.5f, 3});
    const ir::Tensor cx = apply(g, "c", {image4x4()}), ty = apply(g, "t", {y});
    REQUIRE(ty.shape == ir::Shape{1, 4, 4, 1});
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < y.data.size(); ++i) lhs += double(cx.data[i]) * y.data[i];
    for (size_t i = 0; i < ty.data.size(); ++i) rhs += double(image4x4().data[i]) * ty.data[i];
    CHECK(lhs == doctest::Approx(rhs));
  }
}

TEST_SUITE("reference: resize, groupnorm, maximum, minimum") {
  TEST_CASE("resize: half-pixel centres, bilinear clamped at the edges, nearest rounding down") {
    auto g = net("input x shape=1x2x1\nresize b size=1x4\nresize n size=1x4 interpolation=nearest <- x\n"
                 "input w shape=1x4x1\nresize d size=1x2 <- w\nresize e size=1x2 interpolation=nearest <- w");
    // Output o samples (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 of (0, 4).
    check_close(apply(g, "b", {tensor({1, 1, 2, 1}, {0, 4})}), tensor({1, 1, 4, 1}, {0, 1, 3, 4}));
    check_close(apply(g, "n", {tensor({1, 1, 2, 1}, {0, 4})}), tensor({1, 1, 4, 1}, {0, 0, 4, 4}));
    // Down by 2: bilinear at 0.5 and 2.5 (the pair means), nearest at floor(1) and floor(3).
    check_close(apply(g, "d", {tensor({1, 1, 4, 1}, {0, 1, 3, 4})}), tensor({1, 1, 2, 1}, {0.5f, 3.5f}));
    check_close(apply(g, "e", {tensor({1, 1, 4, 1}, {0, 1, 3, 4})}), tensor({1, 1, 2, 1}, {1, 4}));
  }

  TEST_CASE("groupnorm: each group over its channels and every pixel, then gamma and beta") {
    // Pixels (1, 3) and (5, 7). One group: mean 4, variance 5. Two: channel 0 (1, 5) mean 3,
    // variance 4; channel 1 (3, 7) mean 5, variance 4.
    auto g = net("input x shape=1x2x2\ngroupnorm one groups=1 epsilon=0.01\ngroupnorm two groups=2 epsilon=0.01 <- x");
    set_weights(g, "two", "gamma", {1, 2});
    set_weights(g, "two", "beta", {0, 10});
    set_weights(g, "one", "gamma", {1, 1});
    set_weights(g, "one", "beta", {0, 0});
    const ir::Tensor x = tensor({1, 1, 2, 2}, {1, 3, 5, 7});
    const float a = 1 / std::sqrt(5.01f), b = 1 / std::sqrt(4.01f);
    check_close(apply(g, "one", {x}), tensor({1, 1, 2, 2}, {-3 * a, -a, a, 3 * a}));
    check_close(apply(g, "two", {x}), tensor({1, 1, 2, 2}, {-2 * b, 10 - 4 * b, 2 * b, 10 + 4 * b}));
  }

  TEST_CASE("unitnorm: each pixel's channels over their L2 norm; all-zero pixels stay zero") {
    auto g = net("input x shape=1x2x2\nunitnorm u");
    // (3, 4) has norm 5; (0, 0) is divided by epsilon, not by 0.
    check_close(apply(g, "u", {tensor({1, 1, 2, 2}, {3, 4, 0, 0})}), tensor({1, 1, 2, 2}, {0.6f, 0.8f, 0, 0}));
  }

  TEST_CASE("transpose: output axis i is input axis perm[i]") {
    auto g = net("input x shape=2x3x1\ntranspose t perm=2x1x3");
    // A 2x3 matrix and its transpose, on the image axes.
    const ir::Tensor m = tensor({1, 2, 3, 1}, {1, 2, 3, 4, 5, 6});
    check_close(apply(g, "t", {m}), tensor({1, 3, 2, 1}, {1, 4, 2, 5, 3, 6}));
    // Channels first: (h, w, c) -> (c, h, w).
    auto h = net("input x shape=1x2x3\ntranspose t perm=3x1x2");
    check_close(apply(h, "t", {tensor({1, 1, 2, 3}, {1, 2, 3, 4, 5, 6})}), tensor({1, 3, 1, 2}, {1, 4, 2, 5, 3, 6}));
  }

  TEST_CASE("maximum and minimum: elementwise over all inputs, broadcasting size 1") {
    auto g = net("input a shape=1x2x2\ninput s shape=1x1x2\nmaximum m <- a, s\nminimum n <- a, s, a");
    const ir::Tensor a = tensor({1, 1, 2, 2}, {1, -2, 3, 4}), s = tensor({1, 1, 1, 2}, {2, 0});
    check_close(apply(g, "m", {a, s}), tensor({1, 1, 2, 2}, {2, 0, 3, 4}));
    check_close(apply(g, "n", {a, s, a}), tensor({1, 1, 2, 2}, {1, -2, 2, 0}));
  }
}

TEST_SUITE("reference: dense") {
  TEST_CASE("rank 2: x W + b, weights (in, units)") {
    auto g = net("input x shape=3\ndense d units=2", 2);
    set_weights(g, "d", "kernel", {1, 2, 3, 4, 5, 6});  // rows are inputs
    set_weights(g, "d", "bias", {0.5, -1});
    // (1,2,3): (1+6+15+0.5, 2+8+18-1); (-1,0,1): (-1+5+0.5, -2+6-1).
    check_close(apply(g, "d", {tensor({2, 3}, {1, 2, 3, -1, 0, 1})}),
                tensor({2, 2}, {22.5, 27, 4.5, 3}));
  }

  TEST_CASE("rank 4: applied to every pixel's channels") {
    auto g = net("input x shape=1x2x3\ndense d units=2 use_bias=false");
    set_weights(g, "d", "kernel", {1, 2, 3, 4, 5, 6});
    check_close(apply(g, "d", {tensor({1, 1, 2, 3}, {1, 2, 3, -1, 0, 1})}),
                tensor({1, 1, 2, 2}, {22, 28, 4, 4}));
  }
}

TEST_SUITE("reference: pooling") {
  TEST_CASE("maxpool 2x2: the largest of each window") {
    auto g = net("input x shape=4x4x1\nmaxpool2d p pool=2x2");
    check_close(apply(g, "p", {image4x4()}), tensor({1, 2, 2, 1}, {6, 8, 14, 16}));
  }

  TEST_CASE("maxpool with stride 1: windows overlap") {
    auto g = net("input x shape=3x3x1\nmaxpool2d p pool=2x2 strides=1x1");
    check_close(apply(g, "p", {tensor({1, 3, 3, 1}, iota(9))}),
                tensor({1, 2, 2, 1}, {5, 6, 8, 9}));
  }

  TEST_CASE("maxpool 'same': padding never wins, even over negative values") {
    // 3x3 image -1..-9, out 2x2, padding bottom/right only. Windows: {-1,-2,-4,-5}, {-3,-6},
    // {-7,-8}, {-9}. Counting padding as 0 would give 0 for the last three.
    auto g = net("input x shape=3x3x1\nmaxpool2d p pool=2x2 padding=same");
    std::vector<float> x(9);
    for (int i = 0; i < 9; ++i) x[static_cast<size_t>(i)] = -(i + 1.f);
    check_close(apply(g, "p", {tensor({1, 3, 3, 1}, x)}),
                tensor({1, 2, 2, 1}, {-1, -3, -7, -9}));
  }

  TEST_CASE("maxpool round=floor drops the partial last window") {
    auto g = net("input x shape=5x5x1\nmaxpool2d p pool=2x2 round=floor");
    check_close(apply(g, "p", {tensor({1, 5, 5, 1}, iota(25))}),
                tensor({1, 2, 2, 1}, {7, 9, 17, 19}));
  }

  TEST_CASE("maxpool works per channel") {
    auto g = net("input x shape=2x2x2\nmaxpool2d p pool=2x2");
    check_close(apply(g, "p", {tensor({1, 2, 2, 2}, {1, 8, 4, 5, 3, 6, 2, 7})}),
                tensor({1, 1, 1, 2}, {4, 8}));
  }

  TEST_CASE("avgpool 2x2: the mean of each window") {
    auto g = net("input x shape=4x4x1\navgpool2d p pool=2x2");
    check_close(apply(g, "p", {image4x4()}), tensor({1, 2, 2, 1}, {3.5, 5.5, 11.5, 13.5}));
  }

  TEST_CASE("avgpool 'same': the mean of the valid elements only (Keras)") {
    // 3x3 image 1..9: windows {1,2,4,5}, {3,6}, {7,8}, {9}.
    auto g = net("input x shape=3x3x1\navgpool2d p pool=2x2 padding=same");
    check_close(apply(g, "p", {tensor({1, 3, 3, 1}, iota(9))}),
                tensor({1, 2, 2, 1}, {3, 4.5, 7.5, 9}));
  }

  TEST_CASE("global average pool: the mean over H and W, per sample and channel") {
    // Sample 0: channel 0 = 1,2,3,4, channel 1 = 10,20,30,40. Sample 1: 5..8 and 0,0,0,-4.
    const auto x = tensor({2, 2, 2, 2}, {1, 10, 2, 20, 3, 30, 4, 40, 5, 0, 6, 0, 7, 0, 8, -4});
    auto g = net("input x shape=2x2x2\nglobalavgpool2d p", 2);
    check_close(apply(g, "p", {x}), tensor({2, 2}, {2.5, 25, 6.5, -1}));
    auto k = net("input x shape=2x2x2\nglobalavgpool2d p keepdims=true", 2);
    check_close(apply(k, "p", {x}), tensor({2, 1, 1, 2}, {2.5, 25, 6.5, -1}));
  }

  TEST_CASE("global max pool: the largest over H and W, also when all are negative") {
    // Sample 0: channel 0 = 1,2,3,4, channel 1 = 10,20,30,40. Sample 1: 5..8 and -5,-1,-3,-4.
    const auto x = tensor({2, 2, 2, 2}, {1, 10, 2, 20, 3, 30, 4, 40, 5, -5, 6, -1, 7, -3, 8, -4});
    auto g = net("input x shape=2x2x2\nglobalmaxpool2d p", 2);
    check_close(apply(g, "p", {x}), tensor({2, 2}, {4, 40, 8, -1}));
    auto k = net("input x shape=2x2x2\nglobalmaxpool2d p keepdims=true", 2);
    check_close(apply(k, "p", {x}), tensor({2, 1, 1, 2}, {4, 40, 8, -1}));
  }
}

TEST_SUITE("reference: normalisation and activations") {
  TEST_CASE("batchnorm: gamma (x - mean) / sqrt(var + eps) + beta, per channel") {
    // eps = 1. Channel 0: 2 (x - 1) / sqrt(3 + 1) + 0.5 = x - 0.5.
    //          Channel 1: 1 (x + 2) / sqrt(0 + 1) - 1 = x + 1.
    auto g = net("input x shape=1x2x2\nbatchnorm b epsilon=1");
    set_weights(g, "b", "gamma", {2, 1});
    set_weights(g, "b", "beta", {0.5, -1});
    set_weights(g, "b", "moving_mean", {1, -2});
    set_weights(g, "b", "moving_variance", {3, 0});
    check_close(apply(g, "b", {tensor({1, 1, 2, 2}, {3, 5, -1, -2})}),
                tensor({1, 1, 2, 2}, {2.5, 6, -1.5, -1}));
  }

  TEST_CASE("batchnorm with the default epsilon 1e-3") {
    auto g = net("input x shape=1\nbatchnorm b");
    set_weights(g, "b", "gamma", {1});
    set_weights(g, "b", "beta", {0});
    set_weights(g, "b", "moving_mean", {0});
    set_weights(g, "b", "moving_variance", {1});
    check_close(apply(g, "b", {tensor({1, 1}, {2})}),
                tensor({1, 1}, {static_cast<float>(2 / std::sqrt(1.001))}), 1e-6);
  }

  // Runs a one-layer network `op` on a vector of values.
  auto activation = [](const std::string& op, std::vector<float> x) {
    const int n = static_cast<int>(x.size());
    auto g = net("input x shape=" + std::to_string(n) + "\n" + op);
    return apply(g, g.node(1).name, {tensor({1, n}, std::move(x))});
  };

  TEST_CASE("relu") {
    check_close(activation("relu a", {-2, -0.5, 0, 3}), tensor({1, 4}, {0, 0, 0, 3}));
  }

  TEST_CASE("relu with Keras' max_value, negative_slope and threshold") {
    // max_value=6 is relu6.
    check_close(activation("relu a max_value=6", {-1, 3, 6, 7.5}), tensor({1, 4}, {0, 3, 6, 6}));
    // threshold 2: below it 0, from it the identity.
    check_close(activation("relu a threshold=2", {1, 1.9f, 2, 3}), tensor({1, 4}, {0, 0, 2, 3}));
    // All three: -1 -> 0.1 * (-1 - 1) = -0.2; 0.5 -> 0.1 * (0.5 - 1) = -0.05; 1 and 3 pass;
    // 4 and 10 -> max_value 4.
    check_close(activation("relu a max_value=4 negative_slope=0.1 threshold=1", {-1, 0.5, 1, 3, 4, 10}),
                tensor({1, 6}, {-0.2f, -0.05f, 1, 3, 4, 4}), 1e-6);
    // negative_slope alone is a leaky relu.
    check_close(activation("relu a negative_slope=0.5", {-4, 2}), tensor({1, 2}, {-2, 2}));
  }

  TEST_CASE("relu6") {
    check_close(activation("relu6 a", {-1, 3, 6, 7.5}), tensor({1, 4}, {0, 3, 6, 6}));
  }

  TEST_CASE("leakyrelu: slope alpha below zero, 0.3 by default") {
    check_close(activation("leakyrelu a", {-2, 0, 4}), tensor({1, 3}, {-0.6f, 0, 4}), 1e-6);
    check_close(activation("leakyrelu a alpha=0.1", {-5, 1}), tensor({1, 2}, {-0.5f, 1}), 1e-6);
  }

  TEST_CASE("sigmoid") {
    const float ln3 = std::log(3.f);
    check_close(activation("sigmoid a", {0, ln3, -ln3, 20}),
                tensor({1, 4}, {0.5, 0.75, 0.25, 1}), 1e-6);
  }

  TEST_CASE("tanh") {
    const float ln2 = std::log(2.f);  // tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 0.6
    check_close(activation("tanh a", {0, ln2, -ln2, 0.5493061443f}),
                tensor({1, 4}, {0, 0.6f, -0.6f, 0.5f}), 1e-6);
  }

  TEST_CASE("swish: x * sigmoid(x)") {
    // sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4; far below zero the product vanishes.
    const float ln3 = std::log(3.f);
    check_close(activation("swish a", {0, ln3, -ln3, 30, -100}),
                tensor({1, 5}, {0, 0.75f * ln3, -0.25f * ln3, 30, 0}), 1e-6);
  }

  TEST_CASE("hardsigmoid: relu6(x + 3) / 6") {
    check_close(activation("hardsigmoid a", {-4, -3, 0, 1.5, 3, 5}), tensor({1, 6}, {0, 0, 0.5, 0.75, 1, 1}),
                1e-6);
  }

  // Keras 3's other activations (ir/activations.def), against values computed independently
  // (Python's math module, double precision).
  TEST_CASE("gelu, exact and tanh-approximated, and its far tail") {
    check_close(activation("gelu a", {0, 1, -1, 3}),
                tensor({1, 4}, {0, 0.8413447460685429f, -0.15865525393145707f, 2.99595030590511f}), 1e-6);
    // x Phi(x) at -5 is -1.43e-6: an absolute error of erf's size would lose it entirely.
    check_close(activation("gelu a", {-5}), tensor({1, 1}, {-1.4332578593959731e-06f}), 1e-12);
    check_close(activation("gelu_tanh a", {1, -1}), tensor({1, 2}, {0.8411919906082768f, -0.15880800939172324f}),
                1e-6);
  }

  TEST_CASE("hard_silu, mish, elu, selu, softplus, softsign, exponential") {
    check_close(activation("hard_silu a", {-4, -3, 0, 1.5, 3, 5}), tensor({1, 6}, {0, 0, 0, 1.125f, 3, 5}), 1e-6);
    check_close(activation("mish a", {0, 1, -1}), tensor({1, 3}, {0, 0.8650983882673103f, -0.30340146137410895f}),
                1e-6);
    check_close(activation("elu a", {-1, 0, 2}), tensor({1, 3}, {-0.6321205588285577f, 0, 2}), 1e-6);
    check_close(activation("selu a", {1, -1}), tensor({1, 2}, {1.0507009873554805f, -1.1113307378125625f}), 1e-6);
    // Far from zero softplus neither overflows (100) nor loses its tail (-20).
    check_close(activation("softplus a", {0, 100}), tensor({1, 2}, {0.6931471805599453f, 100}), 1e-6);
    check_close(activation("softplus a", {-20}), tensor({1, 1}, {2.061153620314381e-09f}), 1e-15);
    check_close(activation("softsign a", {3, -1, 0}), tensor({1, 3}, {0.75f, -0.5f, 0}), 1e-6);
    check_close(activation("exponential a", {0, 1}), tensor({1, 2}, {1, 2.718281828459045f}), 1e-6);
    check_close(activation("log_sigmoid a", {0, 2, -30}), tensor({1, 3}, {-0.6931471805599453f, -0.12692801104297252f, -30}),
                1e-6);
  }

  TEST_CASE("log_softmax: x - max - log(sum(exp(x - max))) over the channels") {
    check_close(activation("log_softmax a", {1, 2, 3}),
                tensor({1, 3}, {-2.4076059644443806f, -1.4076059644443804f, -0.4076059644443804f}), 1e-6);
    // From the maximum: no overflow at 1000.
    check_close(activation("log_softmax a", {1000, 1000}), tensor({1, 2}, {-0.6931471805599453f, -0.6931471805599453f}),
                1e-6);
  }

  TEST_CASE("affine: x * scale + shift per channel") {
    // Channel 0: 2x + 1; channel 1: -x + 0.5.
    auto g = net("input x shape=1x2x2\naffine a");
    set_weights(g, "a", "scale", {2, -1});
    set_weights(g, "a", "shift", {1, 0.5});
    check_close(apply(g, "a", {tensor({1, 1, 2, 2}, {3, 5, -1, -2})}), tensor({1, 1, 2, 2}, {7, -4.5, -1, 2.5}));
  }

  TEST_CASE("dropout is the identity at inference") {
    check_close(activation("dropout a rate=0.5", {-1, 2, 3}), tensor({1, 3}, {-1, 2, 3}));
  }

  TEST_CASE("softmax over the last axis, stable for large values") {
    // exp(0), exp(ln 2), exp(ln 3) = 1, 2, 3: 1/6, 1/3, 1/2. A row of 1000s must not overflow.
    auto g = net("input x shape=3\nsoftmax s", 2);
    check_close(apply(g, "s", {tensor({2, 3}, {0, std::log(2.f), std::log(3.f), 1000, 1000, 1000})}),
                tensor({2, 3}, {1.f / 6, 1.f / 3, 0.5f, 1.f / 3, 1.f / 3, 1.f / 3}), 1e-6);
  }

  TEST_CASE("softmax rows sum to 1 and keep the order of their inputs") {
    std::mt19937 rng(7);
    auto g = net("input x shape=2x3x5\nsoftmax s", 2);
    const auto x = cnnc::test::random_tensor({2, 2, 3, 5}, rng, -4, 4);
    const auto y = apply(g, "s", {x});
    REQUIRE(y.shape == x.shape);
    for (int r = 0; r < 12; ++r) {
      double sum = 0;
      for (int c = 0; c < 5; ++c) {
        const size_t i = static_cast<size_t>(r * 5 + c);
        CHECK(y.data[i] > 0);
        sum += y.data[i];
        if (c > 0) CHECK((y.data[i] > y.data[i - 1]) == (x.data[i] > x.data[i - 1]));
      }
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-6));
    }
  }
}

TEST_SUITE("reference: structure") {
  TEST_CASE("add: the elementwise sum of all inputs") {
    auto g = net("input a shape=2\ninput b shape=2\ninput c shape=2\nadd s <- a, b, c");
    check_close(apply(g, "s", {tensor({1, 2}, {1, 2}), tensor({1, 2}, {10, 20}),
                               tensor({1, 2}, {100, -200})}),
                tensor({1, 2}, {111, -178}));
  }

  TEST_CASE("multiply: the elementwise product of all inputs") {
    auto g = net("input a shape=2\ninput b shape=2\ninput c shape=2\nmultiply m <- a, b, c");
    check_close(apply(g, "m", {tensor({1, 2}, {1, 2}), tensor({1, 2}, {10, 20}), tensor({1, 2}, {3, -0.5})}),
                tensor({1, 2}, {30, -20}));
  }

  TEST_CASE("multiply broadcasts dimensions of size 1: squeeze-and-excitation scales channels") {
    // 1x2x2 pixels (1, 2) and (3, 4), scaled per channel by (10, -1).
    auto g = net("input x shape=1x2x2\ninput s shape=1x1x2\nmultiply m <- x, s");
    check_close(apply(g, "m", {tensor({1, 1, 2, 2}, {1, 2, 3, 4}), tensor({1, 1, 1, 2}, {10, -1})}),
                tensor({1, 1, 2, 2}, {10, -2, 30, -4}));
    // A column times a row is their outer product: 2x1x1 (1, 2) and 1x3x1 (1, 10, 100).
    auto o = net("input c shape=2x1x1\ninput r shape=1x3x1\nmultiply m <- c, r");
    check_close(apply(o, "m", {tensor({1, 2, 1, 1}, {1, 2}), tensor({1, 1, 3, 1}, {1, 10, 100})}),
                tensor({1, 2, 3, 1}, {1, 10, 100, 2, 20, 200}));
    // A batch of 1 broadcasts over a batch of 2.
    auto b = net("input x shape=1x1x2\ninput s shape=1x1x2\nmultiply m <- x, s", 2);
    check_close(apply(b, "m", {tensor({2, 1, 1, 2}, {1, 2, 3, 4}), tensor({1, 1, 1, 2}, {2, 3})}),
                tensor({2, 1, 1, 2}, {2, 6, 6, 12}));
  }

  TEST_CASE("concat: along the channel axis, inputs in the order written") {
    auto g = net("input a shape=1x2x2\ninput b shape=1x2x1\nconcat k <- b, a");
    check_close(apply(g, "k", {tensor({1, 1, 2, 1}, {10, 20}), tensor({1, 1, 2, 2}, {1, 2, 3, 4})}),
                tensor({1, 1, 2, 3}, {10, 1, 2, 20, 3, 4}));
  }

  TEST_CASE("zeropadding2d: pad=top,bottom,left,right rows and columns of zeros") {
    auto g = net("input x shape=2x2x1\nzeropadding2d z pad=1,0,2,0");
    check_close(apply(g, "z", {tensor({1, 2, 2, 1}, {1, 2, 3, 4})}),
                tensor({1, 3, 4, 1}, {0, 0, 0, 0,  //
                                      0, 0, 1, 2,  //
                                      0, 0, 3, 4}));
  }

  TEST_CASE("zeropadding2d keeps the channels of a pixel together") {
    auto g = net("input x shape=1x1x2\nzeropadding2d z pad=0,0,1,1");
    check_close(apply(g, "z", {tensor({1, 1, 1, 2}, {5, 6})}),
                tensor({1, 1, 3, 2}, {0, 0, 5, 6, 0, 0}));
  }

  TEST_CASE("cropping2d: crop=top,bottom,left,right rows and columns removed") {
    // X without row 0 and columns 2, 3.
    auto g = net("input x shape=4x4x1\ncropping2d c crop=1,0,0,2");
    check_close(apply(g, "c", {image4x4()}), tensor({1, 3, 2, 1}, {5, 6, 9, 10, 13, 14}));
    auto all = net("input x shape=4x4x1\ncropping2d c crop=1");
    check_close(apply(all, "c", {image4x4()}), tensor({1, 2, 2, 1}, {6, 7, 10, 11}));
  }

  TEST_CASE("cropping2d keeps the channels of a pixel together") {
    auto g = net("input x shape=1x3x2\ncropping2d c crop=0,0,1,1");
    check_close(apply(g, "c", {tensor({1, 1, 3, 2}, {1, 2, 3, 4, 5, 6})}), tensor({1, 1, 1, 2}, {3, 4}));
  }

  TEST_CASE("reshape: the same row-major data in another shape") {
    auto g = net("input x shape=1x2x4\nreshape r shape=2x2x2", 2);
    check_close(apply(g, "r", {tensor({2, 1, 2, 4}, iota(16))}), tensor({2, 2, 2, 2}, iota(16)));
    auto v = net("input x shape=6\nreshape r shape=1x1x6");
    check_close(apply(v, "r", {tensor({1, 6}, iota(6))}), tensor({1, 1, 1, 6}, iota(6)));
    auto f = net("input x shape=2x2x3\nreshape r shape=12");
    check_close(apply(f, "r", {tensor({1, 2, 2, 3}, iota(12))}), tensor({1, 12}, iota(12)));
  }

  TEST_CASE("flatten: the same row-major data as N x (H*W*C)") {
    auto g = net("input x shape=2x2x2\nflatten f");
    check_close(apply(g, "f", {tensor({1, 2, 2, 2}, iota(8))}), tensor({1, 8}, iota(8)));
  }

  TEST_CASE("an input layer is not run") {
    auto g = net("input x shape=2\nrelu r");
    const auto x = tensor({1, 2}, {1, 2});
    CHECK_THROWS_AS(ref::run_node(g.node(0), {&x}), cnnc::Error);
  }

  TEST_CASE("run_node rejects inputs that do not fit the layer") {
    auto g = net("input x shape=4x4x1\nmaxpool2d p pool=2x2");
    CHECK_THROWS_AS(apply(g, "p", {tensor({1, 4, 4, 2}, iota(32))}), cnnc::Error);
    CHECK_THROWS_AS(apply(g, "p", {}), cnnc::Error);
  }
}

TEST_SUITE("reference: whole graphs") {
  const char* kSmall =
      "network small\n"
      "input x shape=4x4x1\n"
      "conv2d c filters=1 kernel=3x3 activation=relu\n"
      "avgpool2d p pool=2x2\n"
      "flatten f\n"
      "dense d units=1\n";

  ir::Graph small_with_weights() {
    auto g = net(kSmall);
    set_weights(g, "c", "kernel", kK);
    set_weights(g, "c", "bias", {-50});
    set_weights(g, "d", "kernel", {2});
    set_weights(g, "d", "bias", {1});
    return g;
  }

  TEST_CASE("conv + relu + avgpool + flatten + dense") {
    // conv: 38, 44, 62, 68 - 50 = -12, -6, 12, 18; relu: 0, 0, 12, 18; mean 7.5; 2 * 7.5 + 1 = 16.
    const auto g = small_with_weights();
    const auto out = ref::run(g, {image4x4()});
    REQUIRE(out.size() == 1);
    check_close(out[0], tensor({1, 1}, {16}));
  }

  TEST_CASE("several outputs come back in the order of the output statement") {
    auto g = net(
        "input x shape=2\n"
        "relu r\n"
        "sigmoid s <- x\n"
        "add a <- r, s\n"
        "output a, r\n");
    const auto out = ref::run(g, {tensor({1, 2}, {-1, 0})});
    REQUIRE(out.size() == 2);
    const float s = static_cast<float>(1 / (1 + std::exp(1.0)));
    check_close(out[0], tensor({1, 2}, {s, 0.5f}), 1e-6);
    check_close(out[1], tensor({1, 2}, {0, 0}));
  }

  TEST_CASE("the input shape must match the input layer (batch included)") {
    const auto g = small_with_weights();
    CHECK_THROWS_WITH_AS(ref::run(g, {tensor({1, 4, 4, 2}, iota(32))}),
                         doctest::Contains("expected 1x4x4x1"), cnnc::Error);
    CHECK_THROWS_AS(ref::run(g, {tensor({2, 4, 4, 1}, iota(32))}), cnnc::Error);
    CHECK_THROWS_WITH_AS(ref::run(g, {}), doctest::Contains("takes 1 input(s), got 0"),
                         cnnc::Error);
  }

  TEST_CASE("unset weights are an error naming the layer") {
    auto g = net(kSmall);
    set_weights(g, "c", "kernel", kK);
    set_weights(g, "c", "bias", {0});
    CHECK_THROWS_WITH_AS(ref::run(g, {image4x4()}), doctest::Contains("layer 'd' (dense)"),
                         cnnc::Error);
  }
}
