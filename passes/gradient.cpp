#include "passes/gradient.h"

#include <algorithm>
#include <map>

#include "ir/error.h"
#include "ir/shape_inference.h"

namespace cnnc::passes {

namespace {

using ir::Node;
using ir::NodeId;
using ir::OpKind;

// What trains today, for the message that refuses the rest.
constexpr const char* kTrainableOps =
    "conv2d (strided, dilated, grouped, depthwise), dense, batchnorm, layernorm, unitnorm, "
    "maxpool2d, avgpool2d, globalavgpool2d, globalmaxpool2d, relu, leakyrelu, every activation "
    "of the table (relu6, sigmoid, tanh, swish, gelu, hard_silu, ...), softmax, log_softmax, "
    "add, multiply (broadcasting too: squeeze-and-excitation), affine (trainable too: "
    "LayerScale), maximum, minimum, groupnorm, conv2d_transpose (strided, dilated, cropped), "
    "resize (nearest, bilinear), concat, flatten, reshape, transpose, dropout, zeropadding2d, "
    "cropping2d, augment (on the input)";

class Builder {
 public:
  Builder(const ir::Graph& forward, Loss loss) : fwd_(forward) {
    t_.loss = loss;
    t_.graph.name = forward.name;
    t_.graph.source = forward.source;
    t_.graph.set_batch(forward.batch());
  }

  TrainingGraph build() {
    copy_forward();
    const auto outs = fwd_.outputs();
    if (outs.size() != 1)
      throw Error(fwd_.name + ": training needs a model with one output, this one has " +
                  std::to_string(outs.size()));
    const NodeId out = to_new_.at(outs[0]);
    add_loss_gradient(out);
    for (NodeId i = out; i >= 0; --i) backward(i);
    // A weight shared by several layers (a Keras layer called several times): its gradient is
    // the sum of theirs.
    for (size_t k = 0; k < t_.trainables.size(); ++k)
      if (contributions_[k].size() > 1)
        t_.trainables[k].gradient = at(add(fresh(t_.trainables[k].parameter + ".grad_sum"),
                                           OpKind::Add, ir::NoAttrs{}, contributions_[k]))
                                        .name;
    std::vector<NodeId> outputs{t_.graph.find(t_.prediction)};
    for (const auto& p : t_.trainables) outputs.push_back(t_.graph.find(p.gradient));
    for (const auto& b : t_.batch_statistics) outputs.push_back(t_.graph.find(b.sums));
    t_.graph.set_outputs(outputs);
    return std::move(t_);
  }

 private:
  ir::Graph& g() { return t_.graph; }
  const Node& at(NodeId id) { return t_.graph.node(id); }

  [[noreturn]] void refuse(const Node& n, const std::string& why) {
    throw Error(fwd_.where(n) + ": cannot train: " + why);
  }

  NodeId add(const std::string& name, OpKind op, ir::Attrs attrs, std::vector<NodeId> inputs) {
    Node n;
    n.name = name;
    n.op = op;
    n.attrs = std::move(attrs);
    n.inputs = std::move(inputs);
    return g().add(std::move(n));
  }

  // A fresh name from a base: the layer names of the forward graph stay as they were.
  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int k = 2; g().find(name) >= 0; ++k) name = base + "_" + std::to_string(k);
    return name;
  }

  // The forward ops: dropout becomes a product with its mask; each layer with weights is
  // checked to train (BatchNorm would need batch statistics: not built).
  void copy_forward() {
    for (NodeId i = 0; i < fwd_.size(); ++i) {
      Node n = fwd_.node(i);
      if (!(n.epilogue == ir::Epilogue{}))
        refuse(n, "the graph has been optimised (epilogue fused); train the graph as loaded");
      for (NodeId& in : n.inputs) in = to_new_.at(in);
      if (n.op == OpKind::Dropout) {
        const float rate = n.attr<ir::DropoutAttrs>().rate;
        ir::Shape shape(n.type.shape.begin() + 1, n.type.shape.end());
        const NodeId mask = add(fresh(n.name + ".mask"), OpKind::Input, ir::InputAttrs{shape}, {});
        t_.masks.push_back({at(mask).name, rate});
        to_new_[i] = add(n.name, OpKind::Multiply, ir::NoAttrs{}, {n.inputs[0], mask});
        mask_of_[to_new_[i]] = mask;
        continue;
      }
      if (n.op == OpKind::Augment) {
        // A warp through affine maps the trainer draws (the identity when nothing is asked),
        // then a recolor by the contrast and brightness factors it draws; the last one takes
        // the layer's name. A crop: the image shifted by a whole window offset (a warp of
        // integer translations, exact), then its top-left crop.h x crop.w kept.
        const auto& a = n.attr<ir::AugmentAttrs>();
        TrainingGraph::Augmentation aug{"", "", a, at(n.inputs[0]).type.shape};
        NodeId x = n.inputs[0];
        const bool crop = a.crop.h > 0;  // alone in its layer (shape inference)
        const ir::Shape& s = aug.image;
        if (crop && !crop_window(a.crop, s[1], s[2]).fits)
          refuse(n, "a crop of " + std::to_string(a.crop.h) + "x" + std::to_string(a.crop.w) +
                        " from a " + std::to_string(s[1]) + "x" + std::to_string(s[2]) +
                        " image: Keras resizes what it slices there; cnnc trains crops that "
                        "fit inside the image");
        if (crop || a.geometric() || !a.photometric()) {
          const NodeId maps = add(fresh(n.name + ".maps"), OpKind::Input, ir::InputAttrs{{6}}, {});
          aug.maps = at(maps).name;
          const bool last = !crop && !a.photometric();
          x = add(last ? n.name : fresh(n.name + ".warp"), OpKind::Warp, ir::NoAttrs{}, {x, maps});
        }
        if (crop) {
          ir::CropAttrs keep;
          keep.crop.bottom = s[1] - a.crop.h, keep.crop.right = s[2] - a.crop.w;
          x = add(n.name, OpKind::Cropping2D, keep, {x});
        }
        if (a.photometric()) {
          const NodeId factors =
              add(fresh(n.name + ".colors"), OpKind::Input, ir::InputAttrs{{2}}, {});
          aug.colors = at(factors).name;
          x = add(n.name, OpKind::Recolor,
                  ir::RecolorAttrs{a.contrast > 0, a.value_min, a.value_max}, {x, factors});
        }
        t_.augmentations.push_back(aug);
        to_new_[i] = x;
        continue;
      }
      if (n.op == OpKind::BatchNorm) {  // the batch's statistics, its weights under its name
        const NodeId sums =
            add(fresh(n.name + ".sums"), OpKind::BatchSums, ir::NoAttrs{}, {n.inputs[0]});
        t_.batch_statistics.push_back({n.name, at(sums).name});
        Node train = n;
        train.op = OpKind::BatchNormTrain;
        train.inputs = {n.inputs[0], sums};
        to_new_[i] = g().add(std::move(train));
        continue;
      }
      to_new_[i] = g().add(std::move(n));
    }
    const NodeId out = to_new_.at(fwd_.outputs()[0]);
    t_.prediction = at(out).name;
  }

  // The labels input and the first gradient: of the logits (softmax's input) for a
  // cross-entropy, of the output for mean squared error.
  void add_loss_gradient(NodeId out) {
    const Node& o = at(out);
    const ir::Shape& shape = o.type.shape;
    const bool sparse = t_.loss == Loss::SparseCategoricalCrossEntropy;
    if (g().find("labels") >= 0)
      throw Error(fwd_.name + ": a layer is named 'labels', the name of the training labels");
    const ir::Shape label_shape = sparse ? ir::Shape{1} : ir::Shape(shape.begin() + 1, shape.end());
    const NodeId labels = add("labels", OpKind::Input, ir::InputAttrs{label_shape}, {});
    if (t_.loss == Loss::MeanSquaredError) {
      accumulate(out, add(fresh(o.name + ".loss_grad"), OpKind::MeanSquaredErrorGrad, ir::NoAttrs{},
                          {out, labels}));
      return;
    }
    if (o.op != OpKind::Softmax || shape.size() != 2)
      refuse(fwd_.node(fwd_.outputs()[0]),
             "a cross-entropy loss needs the model to end in a softmax over N x C logits "
             "(activation=softmax on the last dense layer); this output is " +
                 std::string(o.info().text) + " " + ir::shape_to_string(shape, true));
    skip_ = out;  // the softmax's gradient is inside softmax_ce_grad
    accumulate(o.inputs[0], add(fresh(o.name + ".loss_grad"), OpKind::SoftmaxCrossEntropyGrad,
                                ir::NoAttrs{}, {out, labels}));
  }

  void accumulate(NodeId value, NodeId grad) { grads_[value].push_back(grad); }

  // Whether a value depends on a weight (else its gradient is never needed).
  bool needs_grad(NodeId id) {
    auto it = needs_.find(id);
    if (it != needs_.end()) return it->second;
    const Node& n = at(id);
    bool need = false;  // a layer with weights to train (not constants: an importer's affine)
    for (const auto& p : n.params) need = need || !p.derived;
    for (NodeId in : n.inputs) need = need || needs_grad(in);
    return needs_[id] = need;
  }

  // The sum of a value's gradients (one add when several layers read it).
  NodeId gradient(NodeId id) {
    auto& parts = grads_[id];
    if (parts.size() == 1) return parts[0];
    return add(fresh(at(id).name + ".grad"), OpKind::Add, ir::NoAttrs{}, parts);
  }

  NodeId parameter(NodeId layer, const std::string& role) {
    const ir::Param* p = at(layer).param(role);
    internal_assert(p != nullptr, "no weights '" + role + "' in " + at(layer).name);
    return add(at(layer).name + "." + role, OpKind::Parameter, ir::ParameterAttrs{p->value.shape},
               {});
  }

  // A weight's gradient: the layer's own, or one more part of the weights it shares.
  void weight_gradient(NodeId layer, const std::string& role, NodeId grad) {
    const std::string owner = owner_of(at(layer).name);
    const auto [it, first] = trainable_of_.emplace(owner + "." + role, t_.trainables.size());
    if (first) {
      t_.trainables.push_back({owner, role, owner + "." + role, at(grad).name});
      contributions_.emplace_back();
    }
    contributions_[it->second].push_back(grad);
  }

  // A transposed conv is the input gradient of the conv2d C that maps its output back to its
  // input (the same kernel, Keras' (kh, kw, filters, in) being C's HWIO; C's padding the crop).
  // So its kernel gradient is C's with dy in the input's place and x in dy's, and dx = C(dy): a
  // forward conv2d holding a copy of the kernel, which the trainer refreshes after each step
  // (TrainingGraph::weight_copies). Output rows past the full transposed output (valid padding
  // with a stride above the kernel, output_padding) hold only the bias: their dy is cropped.
  void conv2d_transpose(NodeId id, NodeId dy) {
    const Node n = at(id);
    const auto& ta = n.attr<ir::Conv2DTransposeAttrs>();
    const NodeId x = n.inputs[0];
    const ir::Shape xs = at(x).type.shape, ys = n.type.shape;
    const auto geo = ir::transposed_geometry(ta, xs[1], xs[2]);
    // Per axis, how far the full output reaches past the cropped one (C's padding after it),
    // negative where the output is the longer.
    auto beyond = [](int64_t in, int64_t k, int64_t s, int64_t d, int64_t crop, int64_t out) {
      return (in - 1) * s + (k - 1) * d + 1 - crop - out;
    };
    const int64_t bottom =
        beyond(xs[1], ta.kernel.h, ta.strides.h, ta.dilation.h, geo.crop_top, ys[1]);
    const int64_t right =
        beyond(xs[2], ta.kernel.w, ta.strides.w, ta.dilation.w, geo.crop_left, ys[2]);
    NodeId cropped = dy;
    if (bottom < 0 || right < 0)
      cropped = add(fresh(n.name + ".dy_cropped"), OpKind::Cropping2D,
                    ir::CropAttrs{{ir::Padding::Explicit, 0, std::max<int64_t>(-bottom, 0), 0,
                                   std::max<int64_t>(-right, 0)}},
                    {dy});
    ir::Conv2DAttrs c;
    c.filters = xs[3];
    c.kernel = ta.kernel;
    c.strides = ta.strides;
    c.dilation = ta.dilation;
    c.padding = ir::Padding{ir::Padding::Explicit, geo.crop_top, std::max<int64_t>(bottom, 0),
                            geo.crop_left, std::max<int64_t>(right, 0)};
    c.use_bias = false;
    const ir::Shape g_shape(at(cropped).type.shape.begin() + 1, at(cropped).type.shape.end());
    weight_gradient(id, "kernel",
                    add(fresh(n.name + ".kernel_grad"), OpKind::Conv2DGradKernel,
                        ir::ConvGradAttrs{c, g_shape}, {cropped, x}));
    if (ta.use_bias)
      weight_gradient(id, "bias",
                      add(fresh(n.name + ".bias_grad"), OpKind::BiasGrad, ir::NoAttrs{}, {dy}));
    if (!needs_grad(x)) return;
    const NodeId dx = add(fresh(n.name + ".grad_in"), OpKind::Conv2D, c, {cropped});
    ir::Param* kernel = g().node(dx).param("kernel");
    kernel->value = n.param("kernel")->value;
    kernel->derived = true;  // not a weight of its own
    t_.weight_copies.push_back({at(dx).name, "kernel", owner_of(n.name)});
    accumulate(x, dx);
  }

  // The gradient of input k of a broadcasting op (multiply, maximum, minimum), summed over the
  // dimensions that input was broadcast along (a squeeze-and-excitation gate's over the pixels).
  void broadcast_gradient(const Node& n, size_t k, NodeId grad) {
    const ir::Shape s = at(n.inputs[k]).type.shape;
    if (s != n.type.shape)
      grad = add(fresh(n.name + ".grad_in"), OpKind::SumToShape,
                 ir::ReshapeAttrs{ir::Shape(s.begin() + 1, s.end())}, {grad});
    accumulate(n.inputs[k], grad);
  }

  // The layer whose weights a layer uses: itself, or the one it shares them with.
  std::string owner_of(const std::string& layer) const {
    const auto shared = fwd_.shared_weights.find(layer);
    return shared == fwd_.shared_weights.end() ? layer : shared->second;
  }

  void backward(NodeId id) {
    if (id == skip_ || grads_.find(id) == grads_.end() || !needs_grad(id)) return;
    const Node n = at(id);  // a copy: adding nodes moves the graph's storage
    const NodeId dy = gradient(id);
    const std::string& name = n.name;
    auto to_input = [&](size_t k, OpKind op, ir::Attrs attrs, std::vector<NodeId> inputs) {
      if (needs_grad(n.inputs[k]))
        accumulate(n.inputs[k], add(fresh(name + ".grad_in"), op, std::move(attrs), inputs));
    };
    switch (n.op) {
      case OpKind::Conv2D: {
        const NodeId x = n.inputs[0];
        const ir::Shape in(at(x).type.shape.begin() + 1, at(x).type.shape.end());
        const ir::ConvGradAttrs a{n.attr<ir::Conv2DAttrs>(), in};
        weight_gradient(id, "kernel",
                        add(fresh(name + ".kernel_grad"), OpKind::Conv2DGradKernel, a, {x, dy}));
        if (a.conv.use_bias)
          weight_gradient(id, "bias",
                          add(fresh(name + ".bias_grad"), OpKind::BiasGrad, ir::NoAttrs{}, {dy}));
        if (needs_grad(x)) to_input(0, OpKind::Conv2DGradInput, a, {dy, parameter(id, "kernel")});
        return;
      }
      case OpKind::Dense: {
        const NodeId x = n.inputs[0];
        weight_gradient(
            id, "kernel",
            add(fresh(name + ".kernel_grad"), OpKind::DenseGradKernel, ir::NoAttrs{}, {x, dy}));
        if (n.attr<ir::DenseAttrs>().use_bias)
          weight_gradient(id, "bias",
                          add(fresh(name + ".bias_grad"), OpKind::BiasGrad, ir::NoAttrs{}, {dy}));
        if (needs_grad(x))
          to_input(0, OpKind::DenseGradInput, ir::NoAttrs{}, {dy, parameter(id, "kernel")});
        return;
      }
      case OpKind::BatchNormTrain: {
        // dbeta = the sum of dy, dgamma = the sum of dy xhat; dx from both (batch statistics).
        const NodeId x = n.inputs[0], sums = n.inputs[1];
        const NodeId dbeta = add(fresh(name + ".beta_grad"), OpKind::BiasGrad, ir::NoAttrs{}, {dy});
        const NodeId dgamma =
            add(fresh(name + ".gamma_grad"), OpKind::BatchNormGammaGrad, n.attrs, {x, sums, dy});
        // A gamma or beta the source model does not have (Keras' scale or center off) is a
        // constant: not trained.
        if (!n.param("gamma")->derived) weight_gradient(id, "gamma", dgamma);
        if (!n.param("beta")->derived) weight_gradient(id, "beta", dbeta);
        if (needs_grad(x))
          to_input(0, OpKind::BatchNormGrad, n.attrs,
                   {x, sums, dy, dgamma, dbeta, parameter(id, "gamma")});
        return;
      }
      case OpKind::MaxPool2D:
        return to_input(0, OpKind::MaxPool2DGrad, n.attrs, {n.inputs[0], dy});
      case OpKind::AvgPool2D:
        return to_input(0, OpKind::AvgPool2DGrad, n.attrs, {n.inputs[0], dy});
      case OpKind::GlobalAvgPool2D:
        return to_input(0, OpKind::GlobalAvgPool2DGrad, n.attrs, {n.inputs[0], dy});
      case OpKind::GlobalMaxPool2D:
        return to_input(0, OpKind::GlobalMaxPool2DGrad, n.attrs, {n.inputs[0], dy});
      case OpKind::UnitNorm:
        return to_input(0, OpKind::UnitNormGrad, n.attrs, {n.inputs[0], dy});
      case OpKind::Resize: {
        // The forward's weights transposed; when both axes change, one axis at a time (each
        // pixel's gather then spans one window of outputs, not the product of two).
        const ir::Shape& xs = at(n.inputs[0]).type.shape;
        const ir::Shape& ys = n.type.shape;
        auto attrs = n.attr<ir::ResizeAttrs>();
        if (!needs_grad(n.inputs[0])) return;
        NodeId rows = dy;
        if (xs[1] != ys[1] && xs[2] != ys[2]) {
          attrs.size = {xs[1], ys[2]};  // the rows first: H'xW' -> HxW'
          rows = add(fresh(name + ".grad_rows"), OpKind::ResizeGrad, attrs, {dy});
        }
        attrs.size = {xs[1], xs[2]};
        return accumulate(n.inputs[0],
                          add(fresh(name + ".grad_in"), OpKind::ResizeGrad, attrs, {rows}));
      }
      case OpKind::Conv2DTranspose:
        return conv2d_transpose(id, dy);
      case OpKind::ReLU: {
        const auto& a = n.attr<ir::ReLUAttrs>();
        ir::ReLUAttrs relu6;
        relu6.max_value = 6.f;
        ir::ActivationGradAttrs ga{OpKind::ReLU};
        if (a == relu6)
          ga.of = OpKind::ReLU6;
        else if (a.threshold == 0 && a.max_value == ir::ReLUAttrs{}.max_value &&
                 a.negative_slope > 0)
          ga = {OpKind::LeakyReLU, a.negative_slope};
        else if (!(a == ir::ReLUAttrs{}))
          refuse(n, "relu with a threshold or a max_value other than 6 has no gradient here yet");
        return to_input(0, OpKind::ActivationGrad, ga, {id, dy});
      }
      case OpKind::LeakyReLU:
        return to_input(
            0, OpKind::ActivationGrad,
            ir::ActivationGradAttrs{OpKind::LeakyReLU, n.attr<ir::LeakyReLUAttrs>().alpha},
            {id, dy});
      case OpKind::Add:
        for (NodeId in : n.inputs)
          if (needs_grad(in)) accumulate(in, dy);
        return;
      case OpKind::Multiply: {
        if (auto m = mask_of_.find(id); m != mask_of_.end())
          return to_input(0, OpKind::Multiply, ir::NoAttrs{}, {dy, m->second});
        // Input k's gradient: dy times the other inputs, summed over the dimensions input k
        // was broadcast along (a squeeze-and-excitation gate's over the pixels).
        for (size_t k = 0; k < n.inputs.size(); ++k) {
          if (!needs_grad(n.inputs[k])) continue;
          std::vector<NodeId> factors{dy};
          for (size_t j = 0; j < n.inputs.size(); ++j)
            if (j != k) factors.push_back(n.inputs[j]);
          broadcast_gradient(
              n, k, add(fresh(name + ".grad_in"), OpKind::Multiply, ir::NoAttrs{}, factors));
        }
        return;
      }
      case OpKind::Maximum:
      case OpKind::Minimum:
        // Input k's gradient: dy where it is the first input to hold the extremum.
        for (size_t k = 0; k < n.inputs.size(); ++k) {
          if (!needs_grad(n.inputs[k])) continue;
          std::vector<NodeId> inputs{dy};
          inputs.insert(inputs.end(), n.inputs.begin(), n.inputs.end());
          broadcast_gradient(
              n, k,
              add(fresh(name + ".grad_in"), OpKind::ExtremumGrad,
                  ir::ExtremumGradAttrs{static_cast<int64_t>(k), n.op == OpKind::Minimum}, inputs));
        }
        return;
      case OpKind::LayerNorm:
      case OpKind::GroupNorm: {
        // dgamma = the sum of dy xhat, dbeta = the sum of dy; dx through the statistics of the
        // pixel (layernorm) or of the image's group (groupnorm).
        const bool layer = n.op == OpKind::LayerNorm;
        const NodeId x = n.inputs[0];
        if (!n.param("gamma")->derived)
          weight_gradient(id, "gamma",
                          add(fresh(name + ".gamma_grad"),
                              layer ? OpKind::LayerNormGammaGrad : OpKind::GroupNormGammaGrad,
                              n.attrs, {x, dy}));
        if (!n.param("beta")->derived)
          weight_gradient(id, "beta",
                          add(fresh(name + ".beta_grad"), OpKind::BiasGrad, ir::NoAttrs{}, {dy}));
        if (needs_grad(x))
          to_input(0, layer ? OpKind::LayerNormGrad : OpKind::GroupNormGrad, n.attrs,
                   {x, dy, parameter(id, "gamma")});
        return;
      }
      case OpKind::Affine: {
        // A trainable scale or shift (LayerScale's scale): dscale = the sum of dy x, dshift = the
        // sum of dy.
        const NodeId x = n.inputs[0];
        const bool scale_trains = !n.param("scale")->derived;
        if (scale_trains) {
          const NodeId dyx = add(fresh(name + ".dy_x"), OpKind::Multiply, ir::NoAttrs{}, {dy, x});
          weight_gradient(id, "scale",
                          add(fresh(name + ".scale_grad"), OpKind::BiasGrad, ir::NoAttrs{}, {dyx}));
        }
        if (!n.param("shift")->derived)
          weight_gradient(id, "shift",
                          add(fresh(name + ".shift_grad"), OpKind::BiasGrad, ir::NoAttrs{}, {dy}));
        if (!needs_grad(x)) return;
        // dx = dy * scale: the scale's current value, or a constant one (Rescaling,
        // Normalization, a Keras x * k + b) as the constants of an affine.
        if (scale_trains)
          return to_input(0, OpKind::ChannelScale, ir::NoAttrs{}, {dy, parameter(id, "scale")});
        const NodeId dx = add(fresh(name + ".grad_in"), OpKind::Affine, ir::AffineAttrs{}, {dy});
        ir::Node& a = g().node(dx);
        a.param("scale")->value.data = n.param("scale")->value.data;
        a.param("shift")->value.data.assign(n.param("shift")->value.data.size(), 0.f);
        for (auto& p : a.params) p.derived = true;
        return accumulate(x, dx);
      }
      case OpKind::Flatten:
      case OpKind::Reshape: {
        const ir::Shape& s = at(n.inputs[0]).type.shape;
        return to_input(0, OpKind::Reshape, ir::ReshapeAttrs{ir::Shape(s.begin() + 1, s.end())},
                        {dy});
      }
      case OpKind::ZeroPadding2D:
        return to_input(0, OpKind::Cropping2D, ir::CropAttrs{n.attr<ir::PadAttrs>().pad}, {dy});
      case OpKind::Cropping2D:
        return to_input(0, OpKind::ZeroPadding2D, ir::PadAttrs{n.attr<ir::CropAttrs>().crop}, {dy});
      case OpKind::Transpose: {
        // dy put back in the input's order: the inverse permutation.
        const ir::Shape& perm = n.attr<ir::TransposeAttrs>().perm;
        ir::Shape inverse(perm.size());
        for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i] - 1] = static_cast<int64_t>(i) + 1;
        return to_input(0, OpKind::Transpose, ir::TransposeAttrs{inverse}, {dy});
      }
      case OpKind::Concat: {
        // Each input's gradient is its channels of dy.
        int64_t begin = 0;
        for (size_t k = 0; k < n.inputs.size(); ++k) {
          const int64_t c = at(n.inputs[k]).type.channels();
          to_input(k, OpKind::ChannelSlice, ir::ChannelSliceAttrs{begin, c}, {dy});
          begin += c;
        }
        return;
      }
      case OpKind::Input:
      case OpKind::Parameter:
        return;
      case OpKind::Warp:
      case OpKind::Recolor:
        refuse(n,
               "augmentation after a layer with weights has no gradient yet (augment the "
               "input, before any conv2d or dense)");
      case OpKind::Softmax:  // not the last layer with a cross-entropy (that one is skipped)
      case OpKind::LogSoftmax:
        return to_input(0, OpKind::SoftmaxGrad, ir::ActivationGradAttrs{n.op}, {id, dy});
      case OpKind::Dropout:    // became a multiply in copy_forward
      case OpKind::Augment:    // became a warp and a recolor
      case OpKind::BatchNorm:  // became batch_sums and batchnorm_train
      case OpKind::BatchSums:
      case OpKind::BatchNormGammaGrad:
      case OpKind::BatchNormGrad:
      case OpKind::LayerNormGrad:
      case OpKind::LayerNormGammaGrad:
      case OpKind::ChannelScale:
      case OpKind::UnitNormGrad:
      case OpKind::GroupNormGrad:
      case OpKind::GroupNormGammaGrad:
      case OpKind::ResizeGrad:
      case OpKind::GlobalMaxPool2DGrad:
      case OpKind::ExtremumGrad:
      case OpKind::SoftmaxGrad:
      case OpKind::ChannelSlice:
      case OpKind::Conv2DGradInput:
      case OpKind::Conv2DGradKernel:
      case OpKind::DenseGradInput:
      case OpKind::DenseGradKernel:
      case OpKind::BiasGrad:
      case OpKind::MaxPool2DGrad:
      case OpKind::AvgPool2DGrad:
      case OpKind::GlobalAvgPool2DGrad:
      case OpKind::ActivationGrad:
      case OpKind::SoftmaxCrossEntropyGrad:
      case OpKind::MeanSquaredErrorGrad:
      case OpKind::SumToShape:
        break;
#define CNNC_ACTIVATION(Name, text, keras_names, reference, halide, grad_from, grad_reference, \
                        grad_halide, doc)                                                      \
  case OpKind::Name:
#include "ir/activations.def"
#undef CNNC_ACTIVATION
        // From the output the forward op computed, or from its input (ir/activations.def).
        return to_input(0, OpKind::ActivationGrad, ir::ActivationGradAttrs{n.op},
                        {ir::activation_grad_from_output(n.op) ? id : n.inputs[0], dy});
    }
    refuse(n, std::string(n.info().text) + " has no gradient yet; the ops that train are " +
                  kTrainableOps);
  }

  const ir::Graph& fwd_;
  TrainingGraph t_;
  std::map<NodeId, NodeId> to_new_;              // forward node -> training graph node
  std::map<NodeId, std::vector<NodeId>> grads_;  // value -> the gradients flowing into it
  std::map<NodeId, bool> needs_;
  std::map<NodeId, NodeId> mask_of_;                // dropout's multiply -> its mask input
  std::map<std::string, size_t> trainable_of_;      // LAYER.ROLE -> its index in trainables
  std::vector<std::vector<NodeId>> contributions_;  // per trainable: its gradient's parts
  NodeId skip_ = -1;
};

}  // namespace

Loss parse_loss(const std::string& name) {
  if (name == "sparse_categorical_crossentropy" || name == "sparse_ce")
    return Loss::SparseCategoricalCrossEntropy;
  if (name == "categorical_crossentropy" || name == "ce") return Loss::CategoricalCrossEntropy;
  if (name == "mean_squared_error" || name == "mse") return Loss::MeanSquaredError;
  throw Error("unknown loss '" + name +
              "'; accepted: sparse_categorical_crossentropy (sparse_ce), categorical_crossentropy "
              "(ce), mean_squared_error (mse)");
}

std::string loss_name(Loss l) {
  switch (l) {
    case Loss::SparseCategoricalCrossEntropy:
      return "sparse_categorical_crossentropy";
    case Loss::CategoricalCrossEntropy:
      return "categorical_crossentropy";
    case Loss::MeanSquaredError:
      return "mean_squared_error";
  }
  return "?";
}

CropWindow crop_window(ir::Pair crop, int64_t h, int64_t w) {
  CropWindow c;
  if (h > crop.h && w > crop.w) {
    c.random = true;
    return c;
  }
  // Keras' box of the crop's aspect ratio, centred (integer division, as its int(float(...))).
  const int64_t box_h = std::max<int64_t>(std::min(h, w * crop.h / crop.w), 1);
  const int64_t box_w = std::max<int64_t>(std::min(w, h * crop.w / crop.h), 1);
  c.top = (h - box_h) / 2, c.left = (w - box_w) / 2;
  c.fits = c.top + crop.h <= h && c.left + crop.w <= w;
  return c;
}

TrainingGraph build_training_graph(const ir::Graph& forward, Loss loss) {
  return Builder(forward, loss).build();
}

}  // namespace cnnc::passes
