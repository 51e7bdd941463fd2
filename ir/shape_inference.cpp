#include "ir/shape_inference.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "ir/error.h"

namespace cnnc::ir {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw Error(msg); }

void expect_rank(const TensorType& t, int rank, const char* what) {
  if (t.rank() != rank)
    fail(std::string(what) + " needs a rank-" + std::to_string(rank) + " input (" +
         (rank == 4 ? "HxWxC" : "C") + "), got " + shape_to_string(t.shape) +
         (rank == 4 ? "; put it before flatten/dense, or reshape the input" : ""));
}

std::string fmt_ratio(int64_t num, int64_t den) {
  std::ostringstream os;
  os.precision(3);
  os << static_cast<double>(num) / static_cast<double>(den) + 1.0;
  return os.str();
}

// One spatial axis of a sliding window: resolves the padding and checks that the windows tile
// the input, proposing sizes that do when they don't.
struct Axis {
  int64_t out, pad_before, pad_after;
};
Axis window_axis(const char* axis, int64_t in, int64_t k, int64_t s, int64_t d, Padding::Mode mode,
                 int64_t pad_before, int64_t pad_after, Rounding round) {
  if (k < 1 || s < 1 || d < 1)
    fail(std::string(axis) + ": kernel, stride and dilation must be >= 1");
  // Bounded so that the arithmetic below cannot overflow (values come from untrusted files).
  if (k > kMaxElements || s > kMaxElements || d > kMaxElements || pad_before > kMaxElements ||
      pad_after > kMaxElements)
    fail(std::string(axis) + ": kernel, stride, dilation and padding must be at most 2^31 - 1");
  const int64_t eff = (k - 1) * d + 1;
  if (mode == Padding::Valid) pad_before = pad_after = 0;
  if (mode == Padding::Same) {
    const int64_t out = (in + s - 1) / s;
    const int64_t total = std::max<int64_t>((out - 1) * s + eff - in, 0);
    pad_before = total / 2;  // Keras: the odd pixel goes to the bottom/right
    pad_after = total - pad_before;
    return {out, pad_before, pad_after};
  }
  if (pad_before < 0 || pad_after < 0) fail(std::string(axis) + ": padding must be >= 0");
  const int64_t span = in + pad_before + pad_after - eff;
  if (span < 0)
    fail(std::string(axis) + ": the window (" + std::to_string(eff) + ") is larger than the " +
         "padded input (" + std::to_string(in + pad_before + pad_after) +
         "); use a smaller kernel, padding=same, or a larger input");
  if (span % s != 0 && round == Rounding::Exact) {
    const int64_t pads = pad_before + pad_after;
    std::ostringstream os;
    os << axis << ": (N - F + P) / S + 1 = (" << in << " - " << eff << " + " << pads << ")/" << s
       << " + 1 = " << fmt_ratio(span, s) << " is not an integer. Sizes that work: input " << axis
       << " " << in - span % s << " or " << in + (s - span % s) << "; or stride";
    for (int64_t c = 1; c <= std::min<int64_t>(span, 16); ++c)
      if (span % c == 0) os << " " << c;
    os << "; or " << pads + (s - span % s) << " padding in all; or padding=same; "
       << "or round=floor to drop the partial window (Keras' behaviour)";
    fail(os.str());
  }
  return {span / s + 1, pad_before, pad_after};
}

Shape with_channels(Shape s, int64_t c) {
  s.back() = c;
  return s;
}

int64_t checked_elements(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) {
    if (d <= 0) fail("every dimension must be positive, got " + shape_to_string(s, true));
    if (n > kMaxElements / d)
      fail("tensor " + shape_to_string(s, true) + " has more than 2^31 - 1 elements");
    n *= d;
  }
  return n;
}

ParamSpec glorot(const char* role, Shape shape, int64_t fan_in, int64_t fan_out) {
  return {role, std::move(shape), Init::GlorotUniform, fan_in, fan_out};
}

}  // namespace

WindowGeometry window_geometry(const Node& n, const TensorType& input) {
  Pair kernel, strides, dilation{1, 1};
  Padding pad;
  Rounding round;
  if (n.op == OpKind::Conv2D || n.op == OpKind::Conv2DGradInput ||
      n.op == OpKind::Conv2DGradKernel) {
    const auto& a = n.op == OpKind::Conv2D ? n.attr<Conv2DAttrs>() : n.attr<ConvGradAttrs>().conv;
    kernel = a.kernel, strides = a.strides, dilation = a.dilation, pad = a.padding, round = a.round;
  } else {
    const auto& a = n.attr<Pool2DAttrs>();
    kernel = a.pool, strides = a.effective_strides(), pad = a.padding, round = a.round;
  }
  const int64_t h = input.shape[1], w = input.shape[2];
  Axis y = window_axis("height", h, kernel.h, strides.h, dilation.h, pad.mode, pad.top, pad.bottom,
                       round);
  Axis x = window_axis("width", w, kernel.w, strides.w, dilation.w, pad.mode, pad.left, pad.right,
                       round);
  return {h,           w,      y.out,   x.out,   y.pad_before, y.pad_after, x.pad_before,
          x.pad_after, kernel, strides, dilation};
}

namespace {

// One axis of a transposed conv; out and crop as TransposedGeometry's.
std::pair<int64_t, int64_t> transposed_axis(const char* axis, int64_t in, int64_t k, int64_t s,
                                            int64_t d, const Padding& p, bool first,
                                            int64_t output_padding) {
  if (k < 1 || s < 1 || d < 1)
    fail(std::string(axis) + ": kernel, stride and dilation must be >= 1");
  if (k > kMaxElements || s > kMaxElements || d > kMaxElements)
    fail(std::string(axis) + ": kernel, stride and dilation must be at most 2^31 - 1");
  if (s > 1 && d > 1)
    fail(std::string(axis) + ": stride " + std::to_string(s) + " and dilation " +
         std::to_string(d) + ": a transposed conv takes one of them above 1, not both (as Keras)");
  if (output_padding < 0 || output_padding >= std::max(s, d))
    fail(std::string(axis) + ": output_padding " + std::to_string(output_padding) +
         " must be >= 0 and smaller than the stride (" + std::to_string(s) + ") or dilation");
  const int64_t eff = (k - 1) * d + 1, full = (in - 1) * s + eff;
  int64_t crop = 0, out = full;
  if (p.mode == Padding::Valid) {
    out = full + std::max<int64_t>(s - eff, 0);
  } else if (p.mode == Padding::Same) {
    crop = std::max<int64_t>(eff - s, 0) / 2;
    out = in * s;
  } else {
    const int64_t before = first ? p.top : p.left, after = first ? p.bottom : p.right;
    if (before < 0 || after < 0 || before >= full || after >= full - before)
      fail(std::string(axis) + ": cropping " + std::to_string(before) + " and " +
           std::to_string(after) + " leaves nothing of the full output (" + std::to_string(full) +
           ")");
    crop = before;
    out = full - before - after;
  }
  return {out + output_padding, crop};
}

// The epilogue fits the op's fusion pattern (epilogue_rule), and its residual input (the last
// one) has the layer's own output type.
void check_epilogue(const Node& n, const TensorType& residual, const TensorType& out) {
  const Epilogue& e = n.epilogue;
  const EpilogueRule rule = epilogue_rule(n.op);
  if (e.add && rule != EpilogueRule::AddAndActivation)
    fail(std::string("epilogue=add: ") +
         (rule == EpilogueRule::Activation ? "this op applies an activation only (epilogue=ACT)"
                                           : "this op takes no epilogue") +
         "; add is for conv2d, dense and pooling");
  if (e.has_activation && rule == EpilogueRule::None)
    fail(
        "this op takes no epilogue; epilogues are for conv2d, dense, pooling, batchnorm, affine, "
        "add and multiply");
  if (e.has_activation && !is_epilogue_activation(e.activation))
    fail("epilogue: '" + std::string(op_info(e.activation).text) +
         "' is not an activation an epilogue applies");
  if (e.add && residual != out)
    fail("the residual input has shape " + shape_to_string(residual.shape, true) +
         ", the layer's output is " + shape_to_string(out.shape, true));
}

void same_shape(const TensorType& a, const TensorType& b) {
  if (a != b)
    fail("the two inputs must have one shape, got " + shape_to_string(a.shape, true) + " and " +
         shape_to_string(b.shape, true));
}

// conv2d_grad_input <- dy, kernel: the forward input's type; conv2d_grad_kernel <- x, dy: the
// kernel's. Both check dy against the forward conv's output.
TensorType infer_conv_grad(const Node& n, const std::vector<TensorType>& in, int64_t batch) {
  const auto& a = n.attr<ConvGradAttrs>();
  if (a.input.size() != 3) fail("input= must be the forward input's HxWxC");
  const bool wrt_input = n.op == OpKind::Conv2DGradInput;
  const TensorType& dy = in[wrt_input ? 0 : 1];
  const TensorType x{{dy.shape.empty() ? batch : dy.shape[0], a.input[0], a.input[1], a.input[2]}};
  if (!wrt_input && in[0] != x)
    fail("x " + shape_to_string(in[0].shape, true) +
         " is not input=" + shape_to_string(a.input, true) + " at this batch");
  Node forward;
  forward.op = OpKind::Conv2D;
  forward.attrs = a.conv;
  const TensorType out{{x.shape[0], window_geometry(forward, x).out_h,
                        window_geometry(forward, x).out_w, a.conv.filters}};
  if (dy != out)
    fail("dy " + shape_to_string(dy.shape, true) + " is not the forward output's shape " +
         shape_to_string(out.shape, true));
  const Shape kernel{a.conv.kernel.h, a.conv.kernel.w,
                     x.shape[3] / std::max<int64_t>(1, a.conv.groups), a.conv.filters};
  if (a.conv.groups < 1 || x.shape[3] % a.conv.groups || a.conv.filters % a.conv.groups)
    fail("groups=" + std::to_string(a.conv.groups) + " must divide the channels");
  if (wrt_input && in[1].shape != kernel)
    fail("the kernel must be " + shape_to_string(kernel, true) + ", got " +
         shape_to_string(in[1].shape, true));
  return wrt_input ? x : TensorType{kernel};
}

}  // namespace

TransposedGeometry transposed_geometry(const Conv2DTransposeAttrs& a, int64_t in_h, int64_t in_w) {
  const auto [out_h, crop_top] = transposed_axis("height", in_h, a.kernel.h, a.strides.h,
                                                 a.dilation.h, a.padding, true, a.output_padding.h);
  const auto [out_w, crop_left] = transposed_axis(
      "width", in_w, a.kernel.w, a.strides.w, a.dilation.w, a.padding, false, a.output_padding.w);
  return {out_h, out_w, crop_top, crop_left};
}

namespace {

Inferred infer_op(const Node& n, const std::vector<TensorType>& in, int64_t batch) {
  Inferred r;
  const Shape x = in.empty() ? Shape{} : in[0].shape;
  switch (n.op) {
    case OpKind::Input: {
      const auto& s = n.attr<InputAttrs>().shape;
      if (s.size() != 3 && s.size() != 1)
        fail("shape must be HxWxC (an image) or C (a vector), got " + shape_to_string(s, true));
      r.type.shape = {batch};
      r.type.shape.insert(r.type.shape.end(), s.begin(), s.end());
      break;
    }
    case OpKind::Conv2D: {
      const auto& a = n.attr<Conv2DAttrs>();
      expect_rank(in[0], 4, "conv2d");
      const int64_t cin = x[3];
      if (a.filters < 1) fail("filters must be >= 1");
      if (a.groups < 1 || cin % a.groups != 0 || a.filters % a.groups != 0)
        fail("groups=" + std::to_string(a.groups) + " must divide both the input channels (" +
             std::to_string(cin) + ") and filters (" + std::to_string(a.filters) + ")");
      const auto g = window_geometry(n, in[0]);
      r.type.shape = {x[0], g.out_h, g.out_w, a.filters};
      const int64_t ig = cin / a.groups, rf = a.kernel.h * a.kernel.w;
      r.params.push_back(glorot("kernel", {a.kernel.h, a.kernel.w, ig, a.filters}, rf * ig,
                                rf * a.filters / a.groups));
      if (a.use_bias) r.params.push_back({"bias", {a.filters}, Init::Zeros});
      break;
    }
    case OpKind::Conv2DTranspose: {
      const auto& a = n.attr<Conv2DTransposeAttrs>();
      expect_rank(in[0], 4, "conv2d_transpose");
      if (a.filters < 1) fail("filters must be >= 1");
      const auto g = transposed_geometry(a, x[1], x[2]);
      r.type.shape = {x[0], g.out_h, g.out_w, a.filters};
      const int64_t rf = a.kernel.h * a.kernel.w;
      // Keras' fans for its (kh, kw, filters, in) kernel: receptive field times the last two.
      r.params.push_back(
          glorot("kernel", {a.kernel.h, a.kernel.w, a.filters, x[3]}, rf * a.filters, rf * x[3]));
      if (a.use_bias) r.params.push_back({"bias", {a.filters}, Init::Zeros});
      break;
    }
    case OpKind::Dense: {
      const auto& a = n.attr<DenseAttrs>();
      if (a.units < 1) fail("units must be >= 1");
      if (in[0].rank() != 2 && in[0].rank() != 4)
        fail("dense needs a rank-2 or rank-4 input, got " + shape_to_string(x, true));
      r.type.shape = with_channels(x, a.units);
      r.params.push_back(glorot("kernel", {x.back(), a.units}, x.back(), a.units));
      if (a.use_bias) r.params.push_back({"bias", {a.units}, Init::Zeros});
      break;
    }
    case OpKind::MaxPool2D:
    case OpKind::AvgPool2D: {
      expect_rank(in[0], 4, n.op == OpKind::MaxPool2D ? "maxpool2d" : "avgpool2d");
      if (const Pair& st = n.attr<Pool2DAttrs>().strides; (st.h == 0) != (st.w == 0))
        fail("strides " + std::to_string(st.h) + "x" + std::to_string(st.w) +
             ": give both (e.g. strides=2x2), or leave strides out to use the pool size");
      const auto g = window_geometry(n, in[0]);
      if (g.pad_top >= g.kernel.h || g.pad_bottom >= g.kernel.h || g.pad_left >= g.kernel.w ||
          g.pad_right >= g.kernel.w)
        fail("padding must be smaller than the pool window, or a window would see only padding");
      r.type.shape = {x[0], g.out_h, g.out_w, x[3]};
      break;
    }
    case OpKind::GlobalAvgPool2D:
    case OpKind::GlobalMaxPool2D:
      expect_rank(in[0], 4, std::string(n.info().text).c_str());
      r.type.shape =
          n.attr<GlobalPoolAttrs>().keepdims ? Shape{x[0], 1, 1, x[3]} : Shape{x[0], x[3]};
      break;
    case OpKind::BatchNorm:
      r.type = in[0];
      for (std::string_view role : {"gamma", "beta", "moving_mean", "moving_variance"})
        r.params.push_back(
            {std::string(role),
             {x.back()},
             role == "gamma" || role == "moving_variance" ? Init::Ones : Init::Zeros});
      if (!(n.attr<BatchNormAttrs>().epsilon > 0)) fail("epsilon must be > 0");
      break;
    case OpKind::LayerNorm:
      r.type = in[0];
      r.params.push_back({"gamma", {x.back()}, Init::Ones});
      r.params.push_back({"beta", {x.back()}, Init::Zeros});
      if (!(n.attr<LayerNormAttrs>().epsilon > 0)) fail("epsilon must be > 0");
      break;
    case OpKind::UnitNorm:
      if (!(n.attr<UnitNormAttrs>().epsilon > 0)) fail("epsilon must be > 0");
      r.type = in[0];
      break;
    case OpKind::GroupNorm: {
      expect_rank(in[0], 4, "groupnorm");
      const auto& a = n.attr<GroupNormAttrs>();
      if (a.groups < 1 || x[3] % a.groups)
        fail("groups=" + std::to_string(a.groups) + " must divide the " + std::to_string(x[3]) +
             " channels");
      if (!(a.epsilon > 0)) fail("epsilon must be > 0");
      r.type = in[0];
      r.params.push_back({"gamma", {x[3]}, Init::Ones});
      r.params.push_back({"beta", {x[3]}, Init::Zeros});
      break;
    }
    case OpKind::Affine:
      r.type = in[0];
      r.params.push_back({"scale", {x.back()}, Init::Ones});
      r.params.push_back({"shift", {x.back()}, Init::Zeros});
      break;
    case OpKind::Multiply:
    case OpKind::Maximum:
    case OpKind::Minimum: {
      // numpy broadcasting within one rank: every pair of inputs agrees in each dimension or
      // has 1 there (checking pairs lets the message name the two inputs that disagree).
      r.type.shape = x;
      for (size_t i = 1; i < in.size(); ++i) {
        const Shape& s = in[i].shape;
        for (size_t j = 0; j < i; ++j) {
          const Shape& t = in[j].shape;
          bool ok = s.size() == t.size();
          for (size_t d = 0; ok && d < s.size(); ++d) ok = s[d] == t[d] || s[d] == 1 || t[d] == 1;
          if (!ok) {
            const bool batch = s.size() == t.size() && s[0] != t[0];  // only code can build these
            fail("input " + std::to_string(j + 1) + " is " + shape_to_string(t, batch) +
                 ", input " + std::to_string(i + 1) + " is " + shape_to_string(s, batch) +
                 ": inputs must have one rank and, in each dimension, equal sizes or 1 "
                 "(e.g. 1x1xC times HxWxC scales the channels)");
          }
        }
        for (size_t d = 0; d < s.size(); ++d) r.type.shape[d] = std::max(r.type.shape[d], s[d]);
      }
      break;
    }
    case OpKind::Add:
      for (size_t i = 1; i < in.size(); ++i)
        if (in[i].shape != x)
          fail("all inputs must have one shape: input 1 is " + shape_to_string(x) + ", input " +
               std::to_string(i + 1) + " is " + shape_to_string(in[i].shape));
      r.type = in[0];
      break;
    case OpKind::Concat: {
      int64_t c = 0;
      for (size_t i = 0; i < in.size(); ++i) {
        const Shape& s = in[i].shape;
        if (s.size() != x.size() || !std::equal(s.begin(), s.end() - 1, x.begin()))
          fail("inputs must match in all but the channel axis: input 1 is " + shape_to_string(x) +
               ", input " + std::to_string(i + 1) + " is " + shape_to_string(s));
        c += s.back();
      }
      r.type.shape = with_channels(x, c);
      break;
    }
    case OpKind::Flatten:
      r.type.shape = {x[0], Tensor::count(x) / x[0]};
      break;
    case OpKind::Reshape: {
      const Shape& s = n.attr<ReshapeAttrs>().shape;
      if (s.size() != 3 && s.size() != 1)
        fail("shape must be HxWxC or C (without the batch), got " +
             (s.empty() ? std::string("nothing") : shape_to_string(s, true)));
      r.type.shape = {x[0]};
      r.type.shape.insert(r.type.shape.end(), s.begin(), s.end());
      // Checked first so that the products below cannot overflow.
      const int64_t want = checked_elements(r.type.shape) / x[0], have = Tensor::count(x) / x[0];
      if (want != have)
        fail("shape=" + shape_to_string(s, true) + " has " + std::to_string(want) +
             " elements, the input " + shape_to_string(x) + " has " + std::to_string(have) +
             "; the element count must not change (e.g. shape=" + std::to_string(have) + ")");
      break;
    }
    case OpKind::ChannelSlice: {
      const auto& a = n.attr<ChannelSliceAttrs>();
      if (a.begin < 0 || a.size < 1 || a.begin >= x.back() || a.size > x.back() - a.begin)
        fail("begin=" + std::to_string(a.begin) + " size=" + std::to_string(a.size) +
             " is not a slice of the input's " + std::to_string(x.back()) +
             " channels; accepted: begin >= 0, size >= 1, begin + size <= " +
             std::to_string(x.back()));
      r.type.shape = with_channels(x, a.size);
      break;
    }
    case OpKind::Transpose: {
      // A permutation of 1 .. 3: each axis after the batch once.
      expect_rank(in[0], 4, "transpose");
      const Shape& perm = n.attr<TransposeAttrs>().perm;
      const size_t axes = x.size() - 1;
      std::vector<bool> seen(axes + 1, false);
      bool ok = perm.size() == axes;
      for (int64_t p : perm) {
        ok = ok && p >= 1 && p <= static_cast<int64_t>(axes) && !seen[p];
        if (ok) seen[p] = true;
      }
      std::string identity;
      for (size_t i = 1; i <= axes; ++i) identity += (i > 1 ? "x" : "") + std::to_string(i);
      if (!ok)
        fail("perm=" + shape_to_string(perm, true) + " is not an order of the input " +
             shape_to_string(x) + "'s " + std::to_string(axes) +
             " axes after the batch: each of 1.." + std::to_string(axes) +
             " once (the input's own order is perm=" + identity + ")");
      r.type.shape = {x[0]};
      for (int64_t p : perm) r.type.shape.push_back(x[p]);
      break;
    }
    case OpKind::Cropping2D: {
      expect_rank(in[0], 4, "cropping2d");
      const auto& p = n.attr<CropAttrs>().crop;
      if (p.mode != Padding::Explicit || p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0)
        fail("crop must be explicit non-negative amounts: crop=P or crop=top,bottom,left,right");
      // Compared one by one, so that huge amounts cannot overflow the sums.
      if (p.top >= x[1] || p.bottom >= x[1] - p.top || p.left >= x[2] || p.right >= x[2] - p.left)
        fail("crop=" + std::to_string(p.top) + "," + std::to_string(p.bottom) + "," +
             std::to_string(p.left) + "," + std::to_string(p.right) + " leaves nothing of the " +
             shape_to_string(x) + " input; crop at most " + std::to_string(x[1] - 1) +
             " rows (top + bottom) and " + std::to_string(x[2] - 1) + " columns (left + right)");
      r.type.shape = {x[0], x[1] - p.top - p.bottom, x[2] - p.left - p.right, x[3]};
      break;
    }
    case OpKind::Resize:
    case OpKind::ResizeGrad: {  // the gradient: dy back to the forward input's size
      const bool grad = n.op == OpKind::ResizeGrad;
      expect_rank(in[0], 4, grad ? "resize's gradient" : "resize");
      const Pair& size = n.attr<ResizeAttrs>().size;
      if (size.h < 1 || size.w < 1 || size.h > kMaxElements || size.w > kMaxElements)
        fail("size=" + std::to_string(size.h) + "x" + std::to_string(size.w) +
             " must be positive (the " + (grad ? "forward input" : "output") +
             "'s height x width)");
      r.type.shape = {x[0], size.h, size.w, x[3]};
      break;
    }
    case OpKind::ZeroPadding2D: {
      expect_rank(in[0], 4, "zeropadding2d");
      const auto& p = n.attr<PadAttrs>().pad;
      if (p.mode != Padding::Explicit || p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0)
        fail("pad must be explicit non-negative amounts: pad=P or pad=top,bottom,left,right");
      if (p.top > kMaxElements || p.bottom > kMaxElements || p.left > kMaxElements ||
          p.right > kMaxElements)
        fail("pad amounts must be at most 2^31 - 1");
      r.type.shape = {x[0], x[1] + p.top + p.bottom, x[2] + p.left + p.right, x[3]};
      break;
    }
    case OpKind::ReLU: {
      const auto& a = n.attr<ReLUAttrs>();
      // Keras' own limits; NaN fails every comparison. threshold above max_value is refused
      // because Keras clips before it subtracts the slope term there, which the formula
      // max_value / x / slope * (x - threshold) does not say.
      if (!(a.max_value >= 0) || !(a.negative_slope >= 0) || !(a.threshold >= 0) ||
          std::isinf(a.negative_slope) || std::isinf(a.threshold))
        fail(
            "max_value, negative_slope and threshold must be >= 0 (max_value may be inf, "
            "the default; the others finite)");
      if (a.threshold > a.max_value) fail("threshold must not exceed max_value");
      r.type = in[0];
      break;
    }
    case OpKind::LeakyReLU:
    case OpKind::Softmax:
    case OpKind::LogSoftmax:
#define CNNC_ACTIVATION(Name, text, keras_names, reference, halide, grad_from, grad_reference, \
                        grad_halide, doc)                                                      \
  case OpKind::Name:
#include "ir/activations.def"
#undef CNNC_ACTIVATION
      r.type = in[0];
      break;
    case OpKind::Dropout: {
      const float rate = n.attr<DropoutAttrs>().rate;
      if (!(rate >= 0 && rate < 1)) fail("rate must be in [0, 1)");
      r.type = in[0];
      break;
    }
    case OpKind::Augment: {
      const auto& a = n.attr<AugmentAttrs>();
      expect_rank(in[0], 4, "augment");
      if (!(a.rotate >= 0 && a.rotate <= 0.5f) || !(a.zoom >= 0 && a.zoom < 1) ||
          !(a.translate >= 0 && a.translate <= 1) || !(a.contrast >= 0 && a.contrast <= 1) ||
          !(a.brightness >= 0 && a.brightness <= 1))
        fail(
            "rotate must be in [0, 0.5] (a fraction of a turn), zoom in [0, 1), translate in "
            "[0, 1] (a fraction of the size), contrast and brightness in [0, 1]");
      if (!(a.value_min < a.value_max))
        fail("value_min must be below value_max (the range of the image's values)");
      if (a.crop.h < 0 || a.crop.w < 0 || (a.crop.h == 0) != (a.crop.w == 0))
        fail("crop must be HxW, both positive (0x0: no crop), got " + std::to_string(a.crop.h) +
             "x" + std::to_string(a.crop.w));
      if (a.crop.h > 0 && (a.geometric() || a.photometric()))
        fail("a crop takes an augment layer of its own (as Keras' RandomCrop is one)");
      r.type = in[0];  // the identity at inference, even with a crop (as Keras 3)
      break;
    }
    case OpKind::BatchSums:
      if (in[0].rank() != 4 && in[0].rank() != 2)
        fail("batch_sums needs a rank-4 or rank-2 input, got " + shape_to_string(x, true));
      r.type.shape = {2, x.back()};
      break;
    case OpKind::BatchNormTrain:
    case OpKind::BatchNormGammaGrad:
    case OpKind::BatchNormGrad: {
      if (in[1].shape != Shape{2, x.back()})
        fail("the second input must be the batch_sums of x (2 x " + std::to_string(x.back()) +
             "), got " + shape_to_string(in[1].shape, true));
      if (n.op != OpKind::BatchNormTrain) same_shape(in[0], in[2]);
      if (n.op == OpKind::BatchNormGrad)
        for (size_t k = 3; k < 6; ++k)
          if (in[k].shape != Shape{x.back()})
            fail("inputs 4 to 6 must be the gamma and beta gradients and gamma (" +
                 std::to_string(x.back()) + " each), got " + shape_to_string(in[k].shape, true));
      if (!(n.attr<BatchNormAttrs>().epsilon > 0)) fail("epsilon must be > 0");
      r.type = n.op == OpKind::BatchNormGammaGrad ? TensorType{{x.back()}} : in[0];
      if (n.op == OpKind::BatchNormTrain)  // the batchnorm's weights, under the layer's name
        for (std::string_view role : {"gamma", "beta", "moving_mean", "moving_variance"})
          r.params.push_back(
              {std::string(role),
               {x.back()},
               role == "gamma" || role == "moving_variance" ? Init::Ones : Init::Zeros});
      break;
    }
    case OpKind::LayerNormGrad:
    case OpKind::LayerNormGammaGrad:
      same_shape(in[0], in[1]);
      if (n.op == OpKind::LayerNormGrad && in[2].shape != Shape{x.back()})
        fail("the third input must be the layer's gamma (" + std::to_string(x.back()) + "), got " +
             shape_to_string(in[2].shape, true));
      if (!(n.attr<LayerNormAttrs>().epsilon > 0)) fail("epsilon must be > 0");
      r.type = n.op == OpKind::LayerNormGammaGrad ? TensorType{{x.back()}} : in[0];
      break;
    case OpKind::GroupNormGrad:
    case OpKind::GroupNormGammaGrad: {
      expect_rank(in[0], 4, "groupnorm's gradient");
      same_shape(in[0], in[1]);
      const auto& a = n.attr<GroupNormAttrs>();
      if (a.groups < 1 || x[3] % a.groups)
        fail("groups=" + std::to_string(a.groups) + " must divide the " + std::to_string(x[3]) +
             " channels");
      if (!(a.epsilon > 0)) fail("epsilon must be > 0");
      if (n.op == OpKind::GroupNormGrad && in[2].shape != Shape{x[3]})
        fail("the third input must be the layer's gamma (" + std::to_string(x[3]) + "), got " +
             shape_to_string(in[2].shape, true));
      r.type = n.op == OpKind::GroupNormGammaGrad ? TensorType{{x[3]}} : in[0];
      break;
    }
    case OpKind::SoftmaxGrad: {
      const OpKind of = n.attr<ActivationGradAttrs>().of;
      if (of != OpKind::Softmax && of != OpKind::LogSoftmax)
        fail("of=" + std::string(op_info(of).text) + "; accepted: softmax, log_softmax");
      same_shape(in[0], in[1]);
      r.type = in[0];
      break;
    }
    case OpKind::UnitNormGrad:
      same_shape(in[0], in[1]);
      if (!(n.attr<UnitNormAttrs>().epsilon > 0)) fail("epsilon must be > 0");
      r.type = in[0];
      break;
    case OpKind::ChannelScale:
      if (in[1].shape != Shape{x.back()})
        fail("the scale must hold one value per channel (" + std::to_string(x.back()) + "), got " +
             shape_to_string(in[1].shape, true));
      r.type = in[0];
      break;
    case OpKind::ExtremumGrad: {
      const auto index = n.attr<ExtremumGradAttrs>().index;
      if (index < 0 || index >= static_cast<int64_t>(in.size()) - 1)
        fail("index=" + std::to_string(index) + " must name one of the " +
             std::to_string(in.size() - 1) + " forward inputs after dy (from 0)");
      for (size_t k = 1; k < in.size(); ++k)
        if (in[k].rank() != in[0].rank())
          fail("the forward inputs must have dy's rank (" + std::to_string(in[0].rank()) + ")");
      r.type = in[0];
      break;
    }
    case OpKind::Recolor:
      expect_rank(in[0], 4, "recolor");
      if (in[1].shape != Shape{x[0], 2})
        fail("the factors must be N x 2 (contrast and brightness per image), got " +
             shape_to_string(in[1].shape, true));
      if (!(n.attr<RecolorAttrs>().value_min < n.attr<RecolorAttrs>().value_max))
        fail("value_min must be below value_max");
      r.type = in[0];
      break;
    case OpKind::Warp:
      expect_rank(in[0], 4, "warp");
      if (in[1].shape != Shape{x[0], 6})
        fail("the maps must be N x 6 (a b c d e f per image), got " +
             shape_to_string(in[1].shape, true));
      r.type = in[0];
      break;
    case OpKind::Parameter:
      r.type.shape = n.attr<ParameterAttrs>().shape;
      if (r.type.shape.empty()) fail("shape must have at least one dimension");
      break;
    case OpKind::Conv2DGradInput:
    case OpKind::Conv2DGradKernel:
      r.type = infer_conv_grad(n, in, batch);
      break;
    case OpKind::DenseGradInput:
    case OpKind::DenseGradKernel: {
      const bool wrt_input = n.op == OpKind::DenseGradInput;
      const TensorType& dy = in[wrt_input ? 0 : 1];
      const TensorType& other = in[wrt_input ? 1 : 0];
      if (wrt_input) {
        if (other.rank() != 2 || other.shape[1] != dy.channels())
          fail("the kernel must be (in, " + std::to_string(dy.channels()) + "), got " +
               shape_to_string(other.shape, true));
        r.type.shape = with_channels(dy.shape, other.shape[0]);
      } else {
        if (other.elements() / other.channels() != dy.elements() / dy.channels())
          fail("x " + shape_to_string(other.shape, true) + " and dy " +
               shape_to_string(dy.shape, true) + " have different numbers of rows");
        r.type.shape = {other.channels(), dy.channels()};
      }
      break;
    }
    case OpKind::BiasGrad:
      r.type.shape = {x.back()};
      break;
    case OpKind::MaxPool2DGrad:
    case OpKind::AvgPool2DGrad:
    case OpKind::GlobalAvgPool2DGrad:
    case OpKind::GlobalMaxPool2DGrad: {
      Node forward = n;
      forward.op = n.op == OpKind::MaxPool2DGrad         ? OpKind::MaxPool2D
                   : n.op == OpKind::AvgPool2DGrad       ? OpKind::AvgPool2D
                   : n.op == OpKind::GlobalMaxPool2DGrad ? OpKind::GlobalMaxPool2D
                                                         : OpKind::GlobalAvgPool2D;
      if (infer_op(forward, {in[0]}, batch).type != in[1])
        fail("dy " + shape_to_string(in[1].shape, true) + " is not the forward output's shape " +
             shape_to_string(infer_op(forward, {in[0]}, batch).type.shape, true));
      r.type = in[0];
      break;
    }
    case OpKind::ActivationGrad: {
      const OpKind of = n.attr<ActivationGradAttrs>().of;
      if (!has_activation_grad(of))
        fail("of=" + std::string(op_info(of).text) +
             " is not an activation; accepted: relu, leakyrelu and the activation table's");
      same_shape(in[0], in[1]);
      r.type = in[0];
      break;
    }
    case OpKind::SoftmaxCrossEntropyGrad:
      if (in[0].rank() != 2)
        fail("the probabilities must be N x C, got " + shape_to_string(x, true));
      if (in[1].shape != Shape{x[0], 1} && in[1].shape != x)
        fail("labels must be N x 1 class indices or N x C probabilities (" +
             shape_to_string(x, true) + "), got " + shape_to_string(in[1].shape, true));
      r.type = in[0];
      break;
    case OpKind::MeanSquaredErrorGrad:
      same_shape(in[0], in[1]);
      r.type = in[0];
      break;
    case OpKind::SumToShape: {
      const Shape& s = n.attr<ReshapeAttrs>().shape;
      r.type.shape = {x[0]};
      r.type.shape.insert(r.type.shape.end(), s.begin(), s.end());
      bool ok = r.type.shape.size() == x.size();
      for (size_t d = 0; ok && d < x.size(); ++d)
        ok = r.type.shape[d] == x[d] || r.type.shape[d] == 1;
      if (!ok)
        fail("shape=" + shape_to_string(s, true) + " is not " + shape_to_string(x) +
             " with some dimensions 1");
      break;
    }
  }
  checked_elements(r.type.shape);
  for (const auto& p : r.params) checked_elements(p.shape);
  return r;
}

}  // namespace

Inferred infer(const Node& n, const std::vector<TensorType>& all_inputs, int64_t batch) {
  // An epilogue's residual comes last; the op itself sees the inputs before it.
  if (n.epilogue.add && all_inputs.size() < 2)
    fail("epilogue=add needs a second input, the residual to add");
  const std::vector<TensorType> in(all_inputs.begin(), all_inputs.end() - (n.epilogue.add ? 1 : 0));
  Inferred r = infer_op(n, in, batch);
  // (an input layer has no inputs: its "residual" is never read, as it takes no epilogue)
  check_epilogue(n, all_inputs.empty() ? r.type : all_inputs.back(), r.type);
  return r;
}

int64_t macs(const Node& n, const std::vector<TensorType>& in) {
  switch (n.op) {
    case OpKind::Conv2D: {
      const auto& a = n.attr<Conv2DAttrs>();
      return n.type.elements() * a.kernel.h * a.kernel.w * (in[0].channels() / a.groups);
    }
    case OpKind::Dense:
      return n.type.elements() * in[0].channels();
    case OpKind::Conv2DTranspose: {
      const auto& a = n.attr<Conv2DTransposeAttrs>();
      return in[0].elements() * a.kernel.h * a.kernel.w * a.filters;
    }
    default:
      return 0;
  }
}

int64_t param_count(const Node& n) {
  int64_t c = 0;
  for (const auto& p : n.params)
    if (!p.derived) c += p.value.elements();
  return c;
}

int64_t total_params(const Graph& g) {
  int64_t c = g.folded_params;
  for (const auto& n : g.nodes())
    if (!g.shared_weights.count(n.name)) c += param_count(n);
  return c;
}

}  // namespace cnnc::ir
