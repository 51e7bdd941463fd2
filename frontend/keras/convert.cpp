#include "frontend/keras/convert.h"

#include <cmath>
#include <functional>
#include <limits>

#include "ir/error.h"
#include "ir/shape_inference.h"

namespace cnnc::frontend::keras {

using nlohmann::json;

namespace {

class Converter;
using ConvertFn = ir::NodeId (*)(Converter&, const Layer&);

// Reads one layer's config values with messages that name the layer and the key.
class Converter {
 public:
  Converter(const LayerWeights* w, const std::string& source, int64_t batch,
            std::vector<WeightOrigin>* origins)
      : weights_(w), source_(source), origins_(origins) {
    g.source = source;
    g.set_batch(batch);
  }

  ir::Graph g;
  std::map<std::string, ir::NodeId> output_of;  // Keras layer name -> IR node of its output

  [[noreturn]] void fail(const Layer& l, const std::string& msg) const {
    throw Error(source_ + ": layer '" + l.name + "' (" + l.class_name + "): " + msg);
  }

  const json* find(const Layer& l, const char* key) const {
    auto it = l.config.find(key);
    return it == l.config.end() || it->is_null() ? nullptr : &*it;
  }
  int64_t integer(const Layer& l, const char* key, std::optional<int64_t> def = {}) const {
    const json* v = find(l, key);
    if (!v) {
      if (def) return *def;
      fail(l, std::string("config has no '") + key + "'");
    }
    if (!v->is_number_integer()) fail(l, std::string("'") + key + "' must be an integer");
    const int64_t x = v->get<int64_t>();
    if (x < 0 || x > (int64_t{1} << 31)) fail(l, std::string("'") + key + "' is out of range");
    return x;
  }
  double number(const Layer& l, const char* key, double def) const {
    const json* v = find(l, key);
    if (!v) return def;
    if (!v->is_number()) fail(l, std::string("'") + key + "' must be a number");
    return v->get<double>();
  }
  bool boolean(const Layer& l, const char* key, bool def) const {
    const json* v = find(l, key);
    if (!v) return def;
    if (!v->is_boolean()) fail(l, std::string("'") + key + "' must be true or false");
    return v->get<bool>();
  }
  std::string string(const Layer& l, const char* key, const std::string& def) const {
    const json* v = find(l, key);
    if (!v) return def;
    if (!v->is_string()) fail(l, std::string("'") + key + "' must be a string");
    return v->get<std::string>();
  }
  // An int or a pair of ints (kernel_size, strides, dilation_rate, pool_size).
  ir::Pair pair(const Layer& l, const char* key, std::optional<ir::Pair> def = {}) const {
    const json* v = find(l, key);
    if (!v) {
      if (def) return *def;
      fail(l, std::string("config has no '") + key + "'");
    }
    auto in_range = [&](const json& x) {
      if (!x.is_number_integer() || x.get<int64_t>() < 1 || x.get<int64_t>() > (int64_t{1} << 20))
        fail(l, std::string("'") + key + "' must hold positive integers");
      return x.get<int64_t>();
    };
    if (v->is_number_integer()) return {in_range(*v), in_range(*v)};
    if (v->is_array() && v->size() == 2) return {in_range((*v)[0]), in_range((*v)[1])};
    fail(l, std::string("'") + key + "' must be an integer or a pair of integers");
  }
  // ZeroPadding2D / Cropping2D amounts: P, (ph, pw) or ((top, bottom), (left, right)).
  ir::Padding amounts(const Layer& l, const char* key) const {
    const json* v = find(l, key);
    auto amount = [&](const json& x) {
      if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > (int64_t{1} << 20))
        fail(l, std::string("'") + key + "' must hold non-negative integers");
      return x.get<int64_t>();
    };
    if (!v) fail(l, std::string("config has no '") + key + "'");
    if (v->is_number_integer()) {
      const int64_t p = amount(*v);
      return {ir::Padding::Explicit, p, p, p, p};
    }
    if (v->is_array() && v->size() == 2) {
      const json &h = (*v)[0], &w = (*v)[1];
      if (h.is_array() && w.is_array() && h.size() == 2 && w.size() == 2)
        return {ir::Padding::Explicit, amount(h[0]), amount(h[1]), amount(w[0]), amount(w[1])};
      if (!h.is_array() && !w.is_array())
        return {ir::Padding::Explicit, amount(h), amount(h), amount(w), amount(w)};
    }
    fail(l, std::string("'") + key + "' must be P, [ph, pw] or [[top, bottom], [left, right]]");
  }
  ir::Padding padding(const Layer& l) const {
    const std::string p = string(l, "padding", "valid");
    if (p == "valid") return {};
    if (p == "same") return {ir::Padding::Same};
    fail(l, "padding '" + p + "' is not supported; accepted: valid, same");
  }
  void channels_last(const Layer& l) const {
    const std::string f = string(l, "data_format", "channels_last");
    if (f != "channels_last")
      fail(l, "data_format '" + f +
                  "' is not supported; accepted: channels_last (NHWC, Keras' default on CPU)");
  }
  // The channel axis of an op that works on one: -1 or the last axis of its input.
  void last_axis(const Layer& l, ir::NodeId input, const char* key = "axis") const {
    const json* v = find(l, key);
    if (!v) return;
    const json a = v->is_array() && v->size() == 1 ? (*v)[0] : *v;
    const int rank = g.node(input).type.rank();
    if (!a.is_number_integer() || (a.get<int64_t>() != -1 && a.get<int64_t>() != rank - 1))
      fail(l, "only the channel (last) axis is supported; got " + v->dump());
  }

  ir::NodeId input(const Layer& l, size_t i = 0) const {
    if (i >= l.inputs.size())
      fail(l, "expects at least " + std::to_string(i + 1) + " input(s), has " +
                  std::to_string(l.inputs.size()));
    return output_of.at(l.inputs[i].layer);
  }
  std::vector<ir::NodeId> inputs(const Layer& l, size_t min) const {
    if (l.inputs.size() < min)
      fail(l, "expects at least " + std::to_string(min) + " inputs, has " +
                  std::to_string(l.inputs.size()));
    std::vector<ir::NodeId> ids;
    for (const auto& r : l.inputs) ids.push_back(output_of.at(r.layer));
    return ids;
  }

  ir::NodeId add(const Layer& l, const std::string& name, ir::OpKind op, ir::Attrs attrs,
                 std::vector<ir::NodeId> ins) {
    ir::Node n;
    n.name = name;
    n.op = op;
    n.attrs = std::move(attrs);
    n.inputs = std::move(ins);
    try {
      return g.add(std::move(n));
    } catch (const Error& e) {
      fail(l, e.what());
    }
  }

  // Appends the layer's activation (config "activation"), if any.
  ir::NodeId activation(const Layer& l, ir::NodeId x, const std::string& name) {
    const json* v = find(l, "activation");
    if (!v) return x;
    std::string a;
    if (v->is_string())
      a = v->get<std::string>();
    else if (v->is_object() && v->contains("config") && (*v)["config"].is_object() &&
             (*v)["config"].contains("name") && (*v)["config"]["name"].is_string())
      a = (*v)["config"]["name"].get<std::string>();  // a serialised activation object
    else
      fail(l, "activation must be a name");
    return apply_activation(l, a, x, name);
  }
  ir::NodeId apply_activation(const Layer& l, const std::string& a, ir::NodeId x,
                              const std::string& name) {
    if (a == "linear" || a.empty()) return x;
    const ir::OpInfo* op = ir::find_activation(a);  // Keras' names, from ir/activations.def
    if (!op)
      fail(l, "activation '" + a + "' is not supported; accepted: " + ir::activation_names());
    return add(l, name, op->kind, ir::default_attrs(op->kind), {x});
  }

  // The layer's weights in Keras order, or nullptr when the model came without weights.
  const std::vector<ir::Tensor>* weights(const Layer& l, size_t expected) const {
    if (!weights_) return nullptr;
    auto it = weights_->find(l.weights_name());
    const size_t have = it == weights_->end() ? 0 : it->second.size();
    if (have != expected)
      fail(l, "the weights file holds " + std::to_string(have) +
                  " weight tensor(s) for this layer, the layer needs " + std::to_string(expected));
    return &it->second;
  }
  // Sets param `role` of node `id` from a Keras tensor. `reshape` accepts another shape with the
  // same element count (Keras' depthwise kernels (kh, kw, C, m) are our (kh, kw, 1, C*m)).
  void set(const Layer& l, ir::NodeId id, const std::string& role, const ir::Tensor& t,
           bool reshape = false) {
    ir::Node& n = g.node(id);
    for (auto& p : n.params) {
      if (p.role != role) continue;
      const bool same = t.shape == p.value.shape || (reshape && t.elements() == p.value.elements());
      if (!same || static_cast<int64_t>(t.data.size()) != p.value.elements())
        fail(l, "weights '" + role + "' have shape " + ir::shape_to_string(t.shape, true) +
                    ", the layer needs " + ir::shape_to_string(p.value.shape, true));
      p.value.data = t.data;
      if (origins_) {
        const std::vector<ir::Tensor>& all = weights_->at(l.weights_name());
        internal_assert(&t >= all.data() && &t < all.data() + all.size(),
                        "keras import: a weight set from outside its layer's tensors");
        origins_->push_back({l.weights_name(), static_cast<size_t>(&t - all.data()), n.name, role});
      }
      return;
    }
    throw InternalError("keras import: no weights '" + role + "' on node " + n.name);
  }
  void set_constant(ir::NodeId id, const std::string& role, const std::vector<float>& values) {
    for (auto& p : g.node(id).params)
      if (p.role == role) {
        p.value.data = values;
        p.derived = true;
      }
  }

 private:
  const LayerWeights* weights_;
  std::string source_;
  std::vector<WeightOrigin>* origins_;
};

ir::Conv2DAttrs conv_attrs(Converter& c, const Layer& l) {
  c.channels_last(l);
  ir::Conv2DAttrs a;
  a.kernel = c.pair(l, "kernel_size");
  a.strides = c.pair(l, "strides", ir::Pair{1, 1});
  a.dilation = c.pair(l, "dilation_rate", ir::Pair{1, 1});
  a.padding = c.padding(l);
  a.round = ir::Rounding::Floor;  // Keras drops a partial window
  return a;
}

ir::NodeId input_layer(Converter& c, const Layer& l) {
  const json* shape = c.find(l, "batch_shape");
  if (!shape) shape = c.find(l, "batch_input_shape");
  if (!shape || !shape->is_array() || (shape->size() != 4 && shape->size() != 2))
    c.fail(l, "needs batch_shape [batch, H, W, C] or [batch, C]");
  ir::InputAttrs a;
  for (size_t i = 1; i < shape->size(); ++i) {
    const json& d = (*shape)[i];
    if (!d.is_number_integer() || d.get<int64_t>() < 1)
      c.fail(l, "input dimension " + std::to_string(i) + " is " + d.dump() +
                    "; cnnc compiles fixed shapes: build the model with a concrete input_shape");
    a.shape.push_back(d.get<int64_t>());
  }
  return c.add(l, l.name, ir::OpKind::Input, a, {});
}

// A layer with a kernel and an optional bias (Conv2D, DepthwiseConv2D, Dense), then its
// activation. `reshape_kernel`: Keras' depthwise kernel (kh, kw, C, m) is our (kh, kw, 1, C*m).
ir::NodeId kernel_layer(Converter& c, const Layer& l, ir::OpKind op, ir::Attrs attrs, ir::NodeId x,
                        bool use_bias, bool reshape_kernel = false) {
  const ir::NodeId id = c.add(l, l.name, op, std::move(attrs), {x});
  if (const auto* w = c.weights(l, use_bias ? 2 : 1)) {
    c.set(l, id, "kernel", (*w)[0], reshape_kernel);
    if (use_bias) c.set(l, id, "bias", (*w)[1]);
  }
  return c.activation(l, id, l.name + ".act");
}

ir::NodeId conv2d(Converter& c, const Layer& l) {
  ir::Conv2DAttrs a = conv_attrs(c, l);
  a.filters = c.integer(l, "filters");
  a.groups = c.integer(l, "groups", 1);
  a.use_bias = c.boolean(l, "use_bias", true);
  return kernel_layer(c, l, ir::OpKind::Conv2D, a, c.input(l), a.use_bias);
}

ir::NodeId depthwise_conv2d(Converter& c, const Layer& l) {
  ir::Conv2DAttrs a = conv_attrs(c, l);
  const ir::NodeId x = c.input(l);
  const int64_t channels = c.g.node(x).type.channels();
  a.groups = channels;
  a.filters = channels * c.integer(l, "depth_multiplier", 1);
  a.use_bias = c.boolean(l, "use_bias", true);
  return kernel_layer(c, l, ir::OpKind::Conv2D, a, x, a.use_bias, /*reshape_kernel=*/true);
}

ir::NodeId separable_conv2d(Converter& c, const Layer& l) {
  ir::Conv2DAttrs dw = conv_attrs(c, l);
  const ir::NodeId x = c.input(l);
  const int64_t channels = c.g.node(x).type.channels();
  dw.groups = channels;
  dw.filters = channels * c.integer(l, "depth_multiplier", 1);
  dw.use_bias = false;
  ir::Conv2DAttrs pw;
  pw.filters = c.integer(l, "filters");
  pw.kernel = {1, 1};
  pw.use_bias = c.boolean(l, "use_bias", true);
  const ir::NodeId d = c.add(l, l.name + ".depthwise", ir::OpKind::Conv2D, dw, {x});
  const ir::NodeId p = c.add(l, l.name, ir::OpKind::Conv2D, pw, {d});
  if (const auto* w = c.weights(l, pw.use_bias ? 3 : 2)) {
    c.set(l, d, "kernel", (*w)[0], /*reshape=*/true);
    c.set(l, p, "kernel", (*w)[1]);
    if (pw.use_bias) c.set(l, p, "bias", (*w)[2]);
  }
  return c.activation(l, p, l.name + ".act");
}

// Keras' Conv2DTranspose: output_padding None keeps Keras' default sizes (valid: in * stride +
// max(kernel - stride, 0); same: in * stride); given, Keras asks TensorFlow for the size
// (in - 1) * stride + kernel - 2 * pad + output_padding (pad = kernel / 2 for same, else 0),
// which TensorFlow reaches by cropping the full output like the conv whose gradient this is
// (the odd row at the bottom), or by extending it: explicit amounts here.
ir::NodeId conv2d_transpose(Converter& c, const Layer& l) {
  c.channels_last(l);
  ir::Conv2DTransposeAttrs a;
  a.filters = c.integer(l, "filters");
  a.kernel = c.pair(l, "kernel_size");
  a.strides = c.pair(l, "strides", ir::Pair{1, 1});
  a.dilation = c.pair(l, "dilation_rate", ir::Pair{1, 1});
  a.padding = c.padding(l);
  a.use_bias = c.boolean(l, "use_bias", true);
  const ir::NodeId x = c.input(l);
  const json* op = c.find(l, "output_padding");
  if (op && !op->is_null()) {
    const ir::Shape& s = c.g.node(x).type.shape;
    if (s.size() != 4) c.fail(l, "needs an image input (H, W, C)");
    auto pad = [&](const json& v) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (int64_t{1} << 20))
        c.fail(l, "'output_padding' must hold non-negative integers");
      return v.get<int64_t>();
    };
    const ir::Pair given = op->is_array() && op->size() == 2
                               ? ir::Pair{pad((*op)[0]), pad((*op)[1])}
                               : ir::Pair{pad(*op), pad(*op)};
    const bool same = a.padding.mode == ir::Padding::Same;
    // Per axis: Keras' size, TensorFlow's crop of the full output, what extends past it.
    auto axis = [&](int64_t in, int64_t k, int64_t st, int64_t d, int64_t extra, int64_t& before,
                    int64_t& after) {
      const int64_t eff = (k - 1) * d + 1, full = (in - 1) * st + eff;
      const int64_t want = full - 2 * (same ? eff / 2 : 0) + extra;
      const int64_t crop = std::max<int64_t>(full - want, 0);
      before = crop / 2, after = crop - crop / 2;
      return want - (full - crop);
    };
    a.padding = {ir::Padding::Explicit};
    a.output_padding.h =
        axis(s[1], a.kernel.h, a.strides.h, a.dilation.h, given.h, a.padding.top, a.padding.bottom);
    a.output_padding.w =
        axis(s[2], a.kernel.w, a.strides.w, a.dilation.w, given.w, a.padding.left, a.padding.right);
  }
  return kernel_layer(c, l, ir::OpKind::Conv2DTranspose, a, x, a.use_bias);
}

ir::NodeId dense(Converter& c, const Layer& l) {
  ir::DenseAttrs a;
  a.units = c.integer(l, "units");
  a.use_bias = c.boolean(l, "use_bias", true);
  return kernel_layer(c, l, ir::OpKind::Dense, a, c.input(l), a.use_bias);
}

// A normalisation layer (BatchNormalization, LayerNormalization) on the channel axis, with
// Keras' optional gamma and beta: left out of the weights without scale / center, where they
// are 1 and 0. `statistics` are the weights after them (BatchNorm's moving mean and variance).
ir::NodeId normalization(Converter& c, const Layer& l, ir::OpKind op, ir::Attrs attrs,
                         const std::vector<const char*>& statistics) {
  const ir::NodeId x = c.input(l);
  c.last_axis(l, x);
  const bool scale = c.boolean(l, "scale", true), center = c.boolean(l, "center", true);
  const ir::NodeId id = c.add(l, l.name, op, std::move(attrs), {x});
  const size_t channels = static_cast<size_t>(c.g.node(x).type.channels());
  if (!scale) c.set_constant(id, "gamma", std::vector<float>(channels, 1.f));
  if (!center) c.set_constant(id, "beta", std::vector<float>(channels, 0.f));
  if (const auto* w = c.weights(l, scale + center + statistics.size())) {
    size_t k = 0;
    if (scale) c.set(l, id, "gamma", (*w)[k++]);
    if (center) c.set(l, id, "beta", (*w)[k++]);
    for (const char* role : statistics) c.set(l, id, role, (*w)[k++]);
  }
  return id;
}

ir::NodeId batch_norm(Converter& c, const Layer& l) {
  ir::BatchNormAttrs a;
  a.epsilon = static_cast<float>(c.number(l, "epsilon", 1e-3));
  return normalization(c, l, ir::OpKind::BatchNorm, a, {"moving_mean", "moving_variance"});
}

ir::NodeId layer_norm(Converter& c, const Layer& l) {
  if (c.boolean(l, "rms_scaling", false))
    c.fail(l, "rms_scaling=True is not supported; accepted: rms_scaling=False");
  ir::LayerNormAttrs a;
  a.epsilon = static_cast<float>(c.number(l, "epsilon", 1e-3));
  return normalization(c, l, ir::OpKind::LayerNorm, a, {});
}

ir::NodeId group_norm(Converter& c, const Layer& l) {
  ir::GroupNormAttrs a;
  a.groups = c.integer(l, "groups", 32);
  a.epsilon = static_cast<float>(c.number(l, "epsilon", 1e-3));
  return normalization(c, l, ir::OpKind::GroupNorm, a, {});
}

// UnitNormalization: x / max(||x||, 1e-12) over the channel axis (Keras' fixed epsilon).
ir::NodeId unit_norm(Converter& c, const Layer& l) {
  const ir::NodeId x = c.input(l);
  c.last_axis(l, x);
  return c.add(l, l.name, ir::OpKind::UnitNorm, ir::UnitNormAttrs{}, {x});
}

// keras.applications' LayerScale (ConvNeXt): x times a learned per-channel gamma, an affine
// map whose shift is 0.
ir::NodeId layer_scale(Converter& c, const Layer& l) {
  const ir::NodeId x = c.input(l);
  const ir::NodeId id = c.add(l, l.name, ir::OpKind::Affine, ir::AffineAttrs{}, {x});
  const size_t channels = static_cast<size_t>(c.g.node(x).type.channels());
  c.set_constant(id, "shift", std::vector<float>(channels, 0.f));
  if (const auto* w = c.weights(l, 1)) c.set(l, id, "scale", (*w)[0]);
  return id;
}

ir::NodeId activation_layer(Converter& c, const Layer& l) {
  // 'linear' is no node: the layer's name then denotes its input.
  return c.apply_activation(l, c.string(l, "activation", "linear"), c.input(l), l.name);
}

ir::NodeId relu_layer(Converter& c, const Layer& l) {
  ir::ReLUAttrs a;
  a.max_value =
      static_cast<float>(c.number(l, "max_value", std::numeric_limits<double>::infinity()));
  a.negative_slope = static_cast<float>(c.number(l, "negative_slope", 0));
  a.threshold = static_cast<float>(c.number(l, "threshold", 0));
  return c.add(l, l.name, ir::OpKind::ReLU, a, {c.input(l)});
}

ir::NodeId leaky_relu(Converter& c, const Layer& l) {
  ir::LeakyReLUAttrs a;
  a.alpha = static_cast<float>(c.number(l, "negative_slope", c.number(l, "alpha", 0.3)));
  return c.add(l, l.name, ir::OpKind::LeakyReLU, a, {c.input(l)});
}

ir::NodeId softmax_layer(Converter& c, const Layer& l) {
  const ir::NodeId x = c.input(l);
  c.last_axis(l, x);
  return c.add(l, l.name, ir::OpKind::Softmax, ir::NoAttrs{}, {x});
}

ir::NodeId affine(Converter& c, const Layer& l, const std::string& name, ir::NodeId x,
                  std::vector<float> scale, std::vector<float> shift);

// A Keras 3 operation on one tensor and a number (`x + 3.0`, `x * (1 / 6)`, `x - 1`):
// an affine map; -1 (no node) when the layer is not a tensor and a number.
ir::NodeId scalar_op(Converter& c, const Layer& l, char op) {
  if (l.inputs.size() != 1 || l.constants.size() != 1) return -1;
  const ir::NodeId x = c.input(l);
  const size_t ch = static_cast<size_t>(c.g.node(x).type.channels());
  const float k = static_cast<float>(l.constants[0]);
  float scale = 1, shift = 0;
  if (op == '+') shift = k;
  if (op == '*') scale = k;
  if (op == '-') shift = -k;  // Keras builds `x - k` only: `k - x` needs k as a tensor
  return affine(c, l, l.name, x, std::vector<float>(ch, scale), std::vector<float>(ch, shift));
}

ir::NodeId add_layer(Converter& c, const Layer& l) {
  if (const ir::NodeId id = scalar_op(c, l, '+'); id >= 0) return id;
  return c.add(l, l.name, ir::OpKind::Add, ir::NoAttrs{}, c.inputs(l, 2));
}
ir::NodeId multiply_layer(Converter& c, const Layer& l) {
  if (const ir::NodeId id = scalar_op(c, l, '*'); id >= 0) return id;
  return c.add(l, l.name, ir::OpKind::Multiply, ir::NoAttrs{}, c.inputs(l, 2));
}
ir::NodeId maximum_layer(Converter& c, const Layer& l) {
  return c.add(l, l.name, ir::OpKind::Maximum, ir::NoAttrs{}, c.inputs(l, 2));
}
ir::NodeId minimum_layer(Converter& c, const Layer& l) {
  return c.add(l, l.name, ir::OpKind::Minimum, ir::NoAttrs{}, c.inputs(l, 2));
}
// Subtract of two tensors: a + (-1) b; of a tensor and a number: an affine map.
ir::NodeId subtract_layer(Converter& c, const Layer& l) {
  if (const ir::NodeId id = scalar_op(c, l, '-'); id >= 0) return id;
  const auto ins = c.inputs(l, 2);
  if (ins.size() != 2) c.fail(l, "subtracts 2 inputs, has " + std::to_string(ins.size()));
  const size_t ch = static_cast<size_t>(c.g.node(ins[1]).type.channels());
  const ir::NodeId negated = affine(c, l, l.name + ".negate", ins[1], std::vector<float>(ch, -1.f),
                                    std::vector<float>(ch, 0.f));
  return c.add(l, l.name, ir::OpKind::Add, ir::NoAttrs{}, {ins[0], negated});
}
// Average of n tensors: their sum times 1/n.
ir::NodeId average_layer(Converter& c, const Layer& l) {
  const auto ins = c.inputs(l, 2);
  const ir::NodeId sum = c.add(l, l.name + ".sum", ir::OpKind::Add, ir::NoAttrs{}, ins);
  const size_t ch = static_cast<size_t>(c.g.node(sum).type.channels());
  return affine(c, l, l.name, sum, std::vector<float>(ch, 1.f / static_cast<float>(ins.size())),
                std::vector<float>(ch, 0.f));
}
ir::NodeId concatenate(Converter& c, const Layer& l) {
  const auto ins = c.inputs(l, 1);
  c.last_axis(l, ins[0]);
  if (ins.size() == 1) return ins[0];
  return c.add(l, l.name, ir::OpKind::Concat, ir::NoAttrs{}, ins);
}

ir::NodeId zero_padding(Converter& c, const Layer& l) {
  c.channels_last(l);
  ir::PadAttrs a;
  a.pad = c.amounts(l, "padding");
  return c.add(l, l.name, ir::OpKind::ZeroPadding2D, a, {c.input(l)});
}
ir::NodeId cropping(Converter& c, const Layer& l) {
  c.channels_last(l);
  ir::CropAttrs a;
  a.crop = c.amounts(l, "cropping");
  return c.add(l, l.name, ir::OpKind::Cropping2D, a, {c.input(l)});
}

// Keras' CenterCrop: the central height x width (Keras rounds the top/left margin down).
ir::NodeId center_crop(Converter& c, const Layer& l) {
  c.channels_last(l);
  const ir::NodeId x = c.input(l);
  const ir::Shape s = c.g.node(x).type.shape;  // a copy: add() may move the nodes
  if (s.size() != 4) c.fail(l, "needs an image input (H, W, C)");
  const int64_t h = c.integer(l, "height"), w = c.integer(l, "width");
  if (h > s[1] || w > s[2] || h < 1 || w < 1)
    c.fail(l, "crops " + std::to_string(s[1]) + "x" + std::to_string(s[2]) + " to " +
                  std::to_string(h) + "x" + std::to_string(w) +
                  "; accepted: a crop no larger than the input (Keras resizes a smaller "
                  "input first, which cnnc does not)");
  ir::CropAttrs a;
  a.crop = {ir::Padding::Explicit, (s[1] - h) / 2, s[1] - h - (s[1] - h) / 2, (s[2] - w) / 2,
            s[2] - w - (s[2] - w) / 2};
  return c.add(l, l.name, ir::OpKind::Cropping2D, a, {x});
}

// The interpolations resize computes; Keras' others (bicubic, area, lanczos) are refused.
ir::Interpolation interpolation(Converter& c, const Layer& l, const char* def) {
  const std::string i = c.string(l, "interpolation", def);
  if (i == "nearest") return ir::Interpolation::Nearest;
  if (i == "bilinear") return ir::Interpolation::Bilinear;
  c.fail(l, "interpolation '" + i + "' is not supported; accepted: nearest, bilinear");
}

// UpSampling2D: each image size times (rows, columns); nearest repeats pixels.
ir::NodeId up_sampling(Converter& c, const Layer& l) {
  c.channels_last(l);
  const ir::NodeId x = c.input(l);
  const ir::Shape& s = c.g.node(x).type.shape;
  if (s.size() != 4) c.fail(l, "needs an image input (H, W, C)");
  ir::ResizeAttrs a;
  const ir::Pair f = c.pair(l, "size", ir::Pair{2, 2});
  a.size = {s[1] * f.h, s[2] * f.w};
  a.interpolation = interpolation(c, l, "nearest");
  return c.add(l, l.name, ir::OpKind::Resize, a, {x});
}

// Resizing to height x width; Keras' aspect-ratio options (a crop or a pad first) are refused.
ir::NodeId resizing(Converter& c, const Layer& l) {
  c.channels_last(l);
  for (const char* key : {"crop_to_aspect_ratio", "pad_to_aspect_ratio"})
    if (c.boolean(l, key, false))
      c.fail(l, std::string(key) +
                    "=True is not supported; accepted: False (put a CenterCrop or "
                    "ZeroPadding2D before the Resizing)");
  const ir::NodeId x = c.input(l);
  if (c.g.node(x).type.rank() != 4) c.fail(l, "needs an image input (H, W, C)");
  ir::ResizeAttrs a;
  a.size = {c.integer(l, "height"), c.integer(l, "width")};
  a.interpolation = interpolation(c, l, "bilinear");
  return c.add(l, l.name, ir::OpKind::Resize, a, {x});
}

// Layers that are the identity at inference (augmentation, noise, regularisation): their output
// is their input; no node is added.
ir::NodeId inference_identity(Converter& c, const Layer& l) { return c.input(l); }

ir::NodeId pooling(Converter& c, const Layer& l, ir::OpKind op) {
  c.channels_last(l);
  ir::Pool2DAttrs a;
  a.pool = c.pair(l, "pool_size", ir::Pair{2, 2});
  a.strides = c.pair(l, "strides", a.pool);
  a.padding = c.padding(l);
  a.round = ir::Rounding::Floor;
  return c.add(l, l.name, op, a, {c.input(l)});
}
ir::NodeId max_pool(Converter& c, const Layer& l) { return pooling(c, l, ir::OpKind::MaxPool2D); }
ir::NodeId avg_pool(Converter& c, const Layer& l) { return pooling(c, l, ir::OpKind::AvgPool2D); }

ir::NodeId global_pool(Converter& c, const Layer& l, ir::OpKind op) {
  c.channels_last(l);
  ir::GlobalPoolAttrs a;
  a.keepdims = c.boolean(l, "keepdims", false);
  return c.add(l, l.name, op, a, {c.input(l)});
}
ir::NodeId global_avg(Converter& c, const Layer& l) {
  return global_pool(c, l, ir::OpKind::GlobalAvgPool2D);
}
ir::NodeId global_max(Converter& c, const Layer& l) {
  return global_pool(c, l, ir::OpKind::GlobalMaxPool2D);
}

// Keras' augmentation layers: an augment layer (identity at inference, random when training).
// A factor is a number or a [lower, upper] pair; cnnc draws symmetric ranges, so a pair is
// taken as its larger magnitude (RandomContrast's [0, 0.2]: factors in [0.8, 1.2]), and a zoom
// or shift of height and width as one for both.
double factor(Converter& c, const Layer& l, const char* key) {
  const auto it = l.config.find(key);
  if (it == l.config.end() || it->is_null()) return 0;
  if (it->is_array() && it->size() == 2 && (*it)[0].is_number() && (*it)[1].is_number())
    return std::max(std::abs((*it)[0].get<double>()), std::abs((*it)[1].get<double>()));
  return std::abs(c.number(l, key, 0));
}
ir::NodeId augment(Converter& c, const Layer& l) {
  ir::AugmentAttrs a;
  if (l.class_name == "RandomFlip") {
    const std::string mode = c.string(l, "mode", "horizontal_and_vertical");
    a.flip_h = mode.find("horizontal") != std::string::npos;
    a.flip_v = mode.find("vertical") != std::string::npos;
  } else if (l.class_name == "RandomRotation") {
    a.rotate = static_cast<float>(factor(c, l, "factor"));
  } else if (l.class_name == "RandomContrast" || l.class_name == "RandomBrightness") {
    (l.class_name == "RandomContrast" ? a.contrast : a.brightness) =
        static_cast<float>(factor(c, l, "factor"));
    if (const json* r = c.find(l, "value_range")) {
      if (!r->is_array() || r->size() != 2 || !(*r)[0].is_number() || !(*r)[1].is_number() ||
          !((*r)[0].get<double>() < (*r)[1].get<double>()))
        c.fail(l, "value_range " + r->dump() + " must be [low, high] with low < high");
      a.value_min = (*r)[0].get<float>();
      a.value_max = (*r)[1].get<float>();
    }
  } else if (l.class_name == "RandomCrop") {
    c.channels_last(l);
    a.crop = {c.integer(l, "height"), c.integer(l, "width")};
    if (a.crop.h <= 0 || a.crop.w <= 0) c.fail(l, "height and width must be positive");
  } else if (l.class_name == "RandomZoom") {
    a.zoom =
        static_cast<float>(std::max(factor(c, l, "height_factor"), factor(c, l, "width_factor")));
  } else {  // RandomTranslation
    a.translate =
        static_cast<float>(std::max(factor(c, l, "height_factor"), factor(c, l, "width_factor")));
  }
  return c.add(l, l.name, ir::OpKind::Augment, a, {c.input(l)});
}

ir::NodeId dropout(Converter& c, const Layer& l) {
  ir::DropoutAttrs a;
  a.rate = static_cast<float>(c.number(l, "rate", 0.5));
  return c.add(l, l.name, ir::OpKind::Dropout, a, {c.input(l)});
}
ir::NodeId flatten(Converter& c, const Layer& l) {
  c.channels_last(l);
  return c.add(l, l.name, ir::OpKind::Flatten, ir::NoAttrs{}, {c.input(l)});
}
// Permute(dims): the axes after the batch in a new order, numbered from 1 as in the IR's
// transpose; identity orders add no node.
ir::NodeId permute(Converter& c, const Layer& l) {
  const json* d = c.find(l, "dims");
  if (!d || !d->is_array()) c.fail(l, "needs dims, a list of the axes' new order (from 1)");
  const ir::NodeId x = c.input(l);
  ir::TransposeAttrs a;
  bool identity = true;
  for (const auto& v : *d) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 8)
      c.fail(l, "dims " + d->dump() + " must be axis numbers from 1 (the batch is axis 0)");
    a.perm.push_back(v.get<int64_t>());
    identity = identity && a.perm.back() == static_cast<int64_t>(a.perm.size());
  }
  if (identity && a.perm.size() + 1 == c.g.node(x).type.shape.size()) return x;
  return c.add(l, l.name, ir::OpKind::Transpose, a, {x});
}

ir::NodeId reshape(Converter& c, const Layer& l) {
  const json* t = c.find(l, "target_shape");
  if (!t || !t->is_array()) c.fail(l, "needs target_shape, a list of sizes");
  const ir::NodeId x = c.input(l);
  ir::ReshapeAttrs a;
  int inferred = -1;  // one -1 takes what the other sizes leave, as in Keras
  int64_t known = 1;
  for (const auto& d : *t) {
    if (d.is_number_integer() && d.get<int64_t>() == -1 && inferred < 0) {
      inferred = static_cast<int>(a.shape.size());
      a.shape.push_back(1);
      continue;
    }
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > ir::kMaxElements)
      c.fail(l, "target_shape " + t->dump() + " must be positive sizes and at most one -1");
    a.shape.push_back(d.get<int64_t>());
    known *= d.get<int64_t>();
    if (known > ir::kMaxElements) c.fail(l, "target_shape " + t->dump() + " is too large");
  }
  if (inferred >= 0) {
    const ir::TensorType& in = c.g.node(x).type;
    const int64_t per_item = in.elements() / in.shape[0];
    if (per_item % known != 0)
      c.fail(l, "target_shape " + t->dump() + " does not divide the input's " +
                    std::to_string(per_item) + " values");
    a.shape[static_cast<size_t>(inferred)] = per_item / known;
  }
  return c.add(l, l.name, ir::OpKind::Reshape, a, {x});
}

// A per-channel x * scale + shift from values in the config (a number or a list per channel).
std::vector<float> per_channel(Converter& c, const Layer& l, const char* key, double def,
                               size_t channels) {
  const json* v = c.find(l, key);
  if (!v) return std::vector<float>(channels, static_cast<float>(def));
  if (v->is_number()) return std::vector<float>(channels, v->get<float>());
  if (v->is_array() && v->size() == channels) {
    std::vector<float> out;
    for (const auto& x : *v) {
      if (!x.is_number()) c.fail(l, std::string("'") + key + "' must hold numbers");
      out.push_back(x.get<float>());
    }
    return out;
  }
  c.fail(l, std::string("'") + key + "' must be a number or one number per channel (" +
                std::to_string(channels) + ")");
}

ir::NodeId affine(Converter& c, const Layer& l, const std::string& name, ir::NodeId x,
                  std::vector<float> scale, std::vector<float> shift) {
  const ir::NodeId id = c.add(l, name, ir::OpKind::Affine, ir::AffineAttrs{}, {x});
  c.set_constant(id, "scale", scale);
  c.set_constant(id, "shift", shift);
  return id;
}

ir::NodeId rescaling(Converter& c, const Layer& l) {
  const ir::NodeId x = c.input(l);
  const size_t ch = static_cast<size_t>(c.g.node(x).type.channels());
  return affine(c, l, l.name, x, per_channel(c, l, "scale", 1.0, ch),
                per_channel(c, l, "offset", 0.0, ch));
}

// Keras: (x - mean) / max(sqrt(variance), epsilon) with epsilon 1e-7; invert undoes it.
ir::NodeId normalization(Converter& c, const Layer& l) {
  const ir::NodeId x = c.input(l);
  c.last_axis(l, x);
  const bool invert = c.boolean(l, "invert", false);  // x * max(sqrt(var), eps) + mean
  const size_t ch = static_cast<size_t>(c.g.node(x).type.channels());
  std::vector<float> mean(ch, 0.f), var(ch, 1.f);
  if (c.find(l, "mean") && c.find(l, "variance")) {
    mean = per_channel(c, l, "mean", 0, ch);
    var = per_channel(c, l, "variance", 1, ch);
  } else if (const auto* w = c.weights(l, 3)) {  // mean, variance, count
    for (int k : {0, 1})
      if (static_cast<size_t>((*w)[k].elements()) != ch)
        c.fail(l, "weights mean/variance must hold one value per channel (" + std::to_string(ch) +
                      ")");
    mean = (*w)[0].data;
    var = (*w)[1].data;
    c.g.folded_params += (*w)[0].elements() + (*w)[1].elements() + (*w)[2].elements();
  }
  std::vector<float> scale(ch), shift(ch);
  for (size_t i = 0; i < ch; ++i) {
    const double sd = std::max(std::sqrt(static_cast<double>(var[i])), 1e-7);
    scale[i] = static_cast<float>(invert ? sd : 1.0 / sd);
    shift[i] = static_cast<float>(invert ? static_cast<double>(mean[i])
                                         : -static_cast<double>(mean[i]) / sd);
  }
  return affine(c, l, l.name, x, scale, shift);
}

// InceptionResNetV2's residual scaling: inputs[0] + inputs[1] * scale.
ir::NodeId custom_scale(Converter& c, const Layer& l) {
  const auto ins = c.inputs(l, 2);
  if (ins.size() != 2) c.fail(l, "expects two inputs (the shortcut and the branch)");
  const size_t ch = static_cast<size_t>(c.g.node(ins[1]).type.channels());
  const float s = static_cast<float>(c.number(l, "scale", 1.0));
  const ir::NodeId scaled = affine(c, l, l.name + ".scale", ins[1], std::vector<float>(ch, s),
                                   std::vector<float>(ch, 0.f));
  return c.add(l, l.name, ir::OpKind::Add, ir::NoAttrs{}, {ins[0], scaled});
}

ir::NodeId lambda(Converter& c, const Layer& l) {
  c.fail(l,
         "Lambda layers hold Python code, which cnnc never runs; rebuild the model with built-in "
         "layers");
}

const std::map<std::string, ConvertFn>& converters() {
  static const std::map<std::string, ConvertFn> table = {
      {"InputLayer", input_layer},
      {"Conv2D", conv2d},
      {"Conv2DTranspose", conv2d_transpose},
      {"DepthwiseConv2D", depthwise_conv2d},
      {"SeparableConv2D", separable_conv2d},
      {"Dense", dense},
      {"BatchNormalization", batch_norm},
      {"LayerNormalization", layer_norm},
      {"GroupNormalization", group_norm},
      {"UnitNormalization", unit_norm},
      {"LayerScale", layer_scale},
      {"Activation", activation_layer},
      {"ReLU", relu_layer},
      {"LeakyReLU", leaky_relu},
      {"Softmax", softmax_layer},
      {"Add", add_layer},
      {"Multiply", multiply_layer},
      {"Subtract", subtract_layer},
      {"Maximum", maximum_layer},
      {"Minimum", minimum_layer},
      {"Average", average_layer},
      {"Concatenate", concatenate},
      {"ZeroPadding2D", zero_padding},
      {"Cropping2D", cropping},
      {"MaxPooling2D", max_pool},
      {"AveragePooling2D", avg_pool},
      {"GlobalAveragePooling2D", global_avg},
      {"GlobalMaxPooling2D", global_max},
      {"Dropout", dropout},
      {"Flatten", flatten},
      {"Reshape", reshape},
      {"Permute", permute},
      {"Rescaling", rescaling},
      {"Normalization", normalization},
      {"CustomScaleLayer", custom_scale},
      {"Lambda", lambda},
      {"CenterCrop", center_crop},
      {"Resizing", resizing},
      {"UpSampling2D", up_sampling},
      {"RandomFlip", augment},
      {"RandomRotation", augment},
      {"RandomZoom", augment},
      {"RandomTranslation", augment},
      {"RandomContrast", augment},
      {"RandomBrightness", augment},
      {"RandomCrop", augment},  // Keras 3 passes images through unchanged at inference
      {"GaussianNoise", inference_identity},
      {"GaussianDropout", inference_identity},
      {"AlphaDropout", inference_identity},
      {"SpatialDropout2D", inference_identity},
      {"ActivityRegularization", inference_identity},
      {"Identity", inference_identity},
  };
  return table;
}

}  // namespace

std::string supported_layers() {
  std::string s;
  for (const auto& [name, fn] : converters())
    if (name != "Lambda") s += (s.empty() ? "" : ", ") + name;
  return s;
}

ir::Graph convert(const ModelConfig& m, const LayerWeights* weights, const std::string& source,
                  int64_t batch, std::vector<WeightOrigin>* origins) {
  Converter c(weights, source, batch, origins);
  c.g.name = m.name;
  for (const Layer& l : m.layers) {
    auto it = converters().find(l.class_name);
    if (it == converters().end())
      c.fail(l, "layer class '" + l.class_name +
                    "' is not supported; accepted: " + supported_layers());
    if (l.class_name != "InputLayer" && l.inputs.empty()) c.fail(l, "has no inputs");
    const int first = c.g.size();
    c.output_of[l.name] = it->second(c, l);
    // A later call of a shared layer: its nodes hold copies of the first call's weights.
    if (l.weights_name() != l.name)
      for (int id = first; id < c.g.size(); ++id) {
        const ir::Node& n = c.g.node(id);
        if (!n.params.empty() && n.name.rfind(l.name, 0) == 0)
          c.g.shared_weights[n.name] = l.weights_name() + n.name.substr(l.name.size());
      }
  }
  std::vector<ir::NodeId> outs;
  for (const auto& r : m.outputs) outs.push_back(c.output_of.at(r.layer));
  c.g.set_outputs(outs);
  // Graph inputs are Input nodes in graph order; Keras' input_layers order must agree.
  const auto ins = c.g.inputs();
  for (size_t i = 0; i < m.inputs.size() && i < ins.size(); ++i)
    if (c.g.node(ins[i]).name != m.inputs[i].layer)
      throw Error(source +
                  ": the model's inputs are declared in another order than its layers; cnnc takes "
                  "them in layer order");
  return std::move(c.g);
}

}  // namespace cnnc::frontend::keras
