#pragma once
// The reference of the backward ops, and the helpers reference.cpp shares with it
// (reference-internal): naive loops in double, each the
// transpose of its forward op's loop in reference.cpp, so the two are checked against each
// other by finite differences (tests/runtime/test_gradients.cpp).
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/shape_inference.h"

namespace cnnc::runtime::reference {

// "layer 'NAME' (op)", and the reference's error about a layer.
std::string layer(const ir::Node& n);
[[noreturn]] void fail(const ir::Node& n, const std::string& msg);

// The derivative of a table activation (ir/activations.def) at v: its output or its input,
// as the table's grad_from says.
double activation_derivative(ir::OpKind k, double v);

// Each pixel's (row's) mean and 1 / sqrt(var + eps) over its channels (the last axis), the
// variance the population one: layernorm's statistics, for it and its gradients.
struct RowStats {
  std::vector<double> mean, rstd;
};
RowStats row_stats(const ir::Tensor& x, double eps);

// Each image's group statistics (groupnorm): mean and 1 / sqrt(var + eps) over the group's
// channels and all pixels, indexed image * groups + group.
struct GroupStats {
  std::vector<double> mean, rstd;
};
GroupStats group_stats(const ir::Tensor& x, int64_t groups, double eps);

// Where output position o of a resize along one axis reads (TensorFlow's half-pixel centres):
// input positions lo and hi, hi with weight w (lo with 1 - w); nearest: lo == hi.
struct ResizeTap {
  int64_t lo, hi;
  double w;
};
ResizeTap resize_tap(bool nearest, int64_t o, int64_t in_len, int64_t out_len);

// Calls f(i, values) for every element i of an output of shape os, values the inputs' there: an
// input with size 1 in a dimension is read at index 0 there (broadcasting).
template <class F>
void broadcast_each(const ir::Shape& os, const std::vector<const ir::Tensor*>& ins, F f) {
  std::vector<int64_t> idx(os.size());
  std::vector<double> values(ins.size());
  for (size_t i = 0; i < static_cast<size_t>(ir::Tensor::count(os)); ++i) {
    int64_t rest = static_cast<int64_t>(i);  // i as a multi-index, the last axis fastest
    for (size_t d = os.size(); d-- > 0;) {
      idx[d] = rest % os[d];
      rest /= os[d];
    }
    for (size_t k = 0; k < ins.size(); ++k) {
      int64_t offset = 0;
      for (size_t d = 0; d < os.size(); ++d)
        offset = offset * ins[k]->shape[d] + (ins[k]->shape[d] == 1 ? 0 : idx[d]);
      values[k] = ins[k]->data[static_cast<size_t>(offset)];
    }
    f(i, values);
  }
}

// Element (b, y, x, c) of an NHWC tensor.
inline size_t at4(const ir::Shape& s, int64_t b, int64_t y, int64_t x, int64_t c) {
  return static_cast<size_t>(((b * s[1] + y) * s[2] + x) * s[3] + c);
}

// The conv2d loop nest, calling f(input index, kernel index, output index) for every product
// it sums, each output's products in tap order (rows, columns, input channels): the forward
// conv and both of its gradients are this loop with the roles of the three tensors exchanged.
template <class F>
void conv_taps(const ir::Conv2DAttrs& a, const ir::Shape& is, const ir::Shape& os, F f) {
  ir::Node forward;
  forward.op = ir::OpKind::Conv2D;
  forward.attrs = a;
  const auto g = ir::window_geometry(forward, ir::TensorType{is});
  const int64_t ig = is[3] / a.groups, og = a.filters / a.groups;
  for (int64_t b = 0; b < os[0]; ++b)
    for (int64_t y = 0; y < os[1]; ++y)
      for (int64_t x = 0; x < os[2]; ++x)
        for (int64_t o = 0; o < os[3]; ++o)
          for (int64_t i = 0; i < g.kernel.h; ++i) {
            const int64_t iy = y * g.strides.h + i * g.dilation.h - g.pad_top;
            if (iy < 0 || iy >= is[1]) continue;
            for (int64_t j = 0; j < g.kernel.w; ++j) {
              const int64_t ix = x * g.strides.w + j * g.dilation.w - g.pad_left;
              if (ix < 0 || ix >= is[2]) continue;
              for (int64_t c = 0; c < ig; ++c)
                f(at4(is, b, iy, ix, (o / og) * ig + c),
                  static_cast<size_t>(((i * g.kernel.w + j) * ig + c) * a.filters + o),
                  at4(os, b, y, x, o));
            }
          }
}

// The windows of a pooling layer (maxpool2d or avgpool2d) on an input of shape `is`, calling
// f(output index, the window's valid input indices in scan order: rows, then columns).
template <class F>
void pool_windows(const ir::Node& pool, const ir::Shape& is, F f) {
  const auto g = ir::window_geometry(pool, ir::TensorType{is});
  const ir::Shape os{is[0], g.out_h, g.out_w, is[3]};
  std::vector<size_t> window;
  for (int64_t b = 0; b < os[0]; ++b)
    for (int64_t y = 0; y < os[1]; ++y)
      for (int64_t x = 0; x < os[2]; ++x)
        for (int64_t c = 0; c < os[3]; ++c) {
          window.clear();
          for (int64_t i = 0; i < g.kernel.h; ++i) {
            const int64_t iy = y * g.strides.h + i - g.pad_top;
            if (iy < 0 || iy >= is[1]) continue;
            for (int64_t j = 0; j < g.kernel.w; ++j) {
              const int64_t ix = x * g.strides.w + j - g.pad_left;
              if (ix >= 0 && ix < is[2]) window.push_back(at4(is, b, iy, ix, c));
            }
          }
          f(at4(os, b, y, x, c), window);
        }
}

// One backward op on its inputs (ops.def order: conv2d_grad_input <- dy, kernel; ...).
ir::Tensor run_gradient_op(const ir::Node& n, const std::vector<const ir::Tensor*>& inputs);

}  // namespace cnnc::runtime::reference
