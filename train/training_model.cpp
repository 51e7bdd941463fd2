#include "train/training_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "codegen/compile.h"
#include "ir/error.h"
#include "passes/pipeline.h"
#include "runtime/thread_pool.h"

namespace cnnc::train {

namespace {

// Keras' BatchNormalization momentum: moving = 0.99 moving + 0.01 batch.
constexpr float kMomentum = 0.99f;

// SplitMix64's output function (Steele, Lea and Flood): consecutive inputs give independent,
// uniformly distributed 64-bit values.
uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The training pipeline: the inference pipeline without the passes that assume inference.
// Dropout and augmentation are live (a mask, a warp); a batchnorm trains on the batch's
// statistics (batch_sums, batchnorm_train), so there is none to fold; a fused padding would leave
// the conv's padded input, which its kernel gradient reads, computed twice; subsampling would
// shrink values the gradients read in full.
const std::set<std::string> kInferenceOnlyPasses = {"remove_identities", "fold_batchnorm",
                                                    "fuse_padding", "subsample_strided_convs"};

codegen::Program compile_graph(ir::Graph g, const ModelOptions& o, bool training) {
  passes::PipelineOptions p;
  p.tiling.target = codegen::describe_target(o.target);
  p.tiling.kernel_batch = o.batch;
  p.tiling.winograd = o.winograd;
  if (training) p.disabled = kInferenceOnlyPasses;
  // The inference program keeps its batchnorms (not folded into the convs), so the trained
  // weights and moving statistics can be copied into it by layer and role.
  if (!training) p.disabled = {"fold_batchnorm"};
  codegen::CompileOptions c;
  c.target = o.target;
  c.micro_batch = o.batch;  // weight gradients sum over the whole batch
  return codegen::compile(passes::optimize(std::move(g), p), c);
}

}  // namespace

ir::AugmentAttrs parse_augment(const std::string& spec) {
  ir::AugmentAttrs a;
  a.value_max = 1;  // the images as cnnc train scales them by default
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t end = std::min(spec.find(',', start), spec.size());
    const std::string item = spec.substr(start, end - start);
    start = end + 1;
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    float value = 0;
    bool number = eq != std::string::npos;
    if (number) {
      try {
        size_t used = 0;
        value = std::stof(item.substr(eq + 1), &used);
        number = used == item.size() - eq - 1;
      } catch (const std::exception&) {
        number = false;
      }
    }
    if (key == "flip" && eq == std::string::npos) {
      a.flip_h = true;
    } else if (key == "flip_v" && eq == std::string::npos) {
      a.flip_v = true;
    } else if ((key == "rotate" || key == "zoom" || key == "translate" || key == "contrast" ||
                key == "brightness" || key == "min" || key == "max") &&
               number) {
      (key == "rotate"       ? a.rotate
       : key == "zoom"       ? a.zoom
       : key == "translate"  ? a.translate
       : key == "contrast"   ? a.contrast
       : key == "brightness" ? a.brightness
       : key == "min"        ? a.value_min
                             : a.value_max) = value;
    } else {
      throw Error("--augment: '" + item +
                  "' is not an augmentation; accepted, comma separated: flip, flip_v, rotate=F "
                  "(a fraction of a turn), zoom=F, translate=F (fractions of the size), "
                  "contrast=F, brightness=F (a fraction of the value range), min=F and max=F "
                  "(the value range brightness and clipping use: 0 and 1 by default, byte "
                  "images scaled by 1/255)");
    }
  }
  return a;
}

ir::Graph with_augmentation(const ir::Graph& g, const ir::AugmentAttrs& a) {
  const auto ins = g.inputs();
  if (ins.size() != 1) throw Error(g.name + ": --augment takes a model with one input");
  ir::Graph out;
  out.name = g.name;
  out.source = g.source;
  out.set_batch(g.batch());
  std::vector<ir::NodeId> to_new(static_cast<size_t>(g.size()));
  for (ir::NodeId i = 0; i < g.size(); ++i) {
    ir::Node n = g.node(i);
    for (ir::NodeId& in : n.inputs) in = to_new[static_cast<size_t>(in)];
    to_new[static_cast<size_t>(i)] = out.add(std::move(n));
    if (i == ins[0]) {  // the image, augmented, is what every layer reads
      ir::Node aug;
      aug.name = "augment";
      for (int k = 2; g.find(aug.name) >= 0; ++k) aug.name = "augment_" + std::to_string(k);
      aug.op = ir::OpKind::Augment;
      aug.attrs = a;
      aug.inputs = {to_new[static_cast<size_t>(i)]};
      to_new[static_cast<size_t>(i)] = out.add(std::move(aug));
    }
  }
  std::vector<ir::NodeId> outs;
  for (ir::NodeId o : g.outputs()) outs.push_back(to_new[static_cast<size_t>(o)]);
  out.set_outputs(outs);
  return out;
}

void draw_maps(const ir::AugmentAttrs& a, int64_t width, int64_t height, float* maps,
               int64_t images, std::mt19937_64& rng) {
  if (a.crop.h > 0) {
    // Keras' RandomCrop: one window for the whole batch, at a random place where the image is
    // larger than the crop both ways; the warp shifts it to the corner the crop keeps.
    const passes::CropWindow c = passes::crop_window(a.crop, height, width);
    int64_t top = c.top, left = c.left;
    if (c.random) {
      top = std::uniform_int_distribution<int64_t>(0, height - a.crop.h)(rng);
      left = std::uniform_int_distribution<int64_t>(0, width - a.crop.w)(rng);
    }
    for (int64_t i = 0; i < images; ++i, maps += 6) {
      const float m[6] = {1, 0, static_cast<float>(left), 0, 1, static_cast<float>(top)};
      std::copy(m, m + 6, maps);
    }
    return;
  }
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const double cx = 0.5 * static_cast<double>(width - 1),
               cy = 0.5 * static_cast<double>(height - 1);
  for (int64_t i = 0; i < images; ++i, maps += 6) {
    // From the model's generator, whose state checkpoints keep: a resumed run replays them.
    const double flip_x = a.flip_h && rng() % 2 ? -1 : 1, flip_y = a.flip_v && rng() % 2 ? -1 : 1;
    const double angle = u(rng) * a.rotate * 2 * M_PI, scale = 1 + u(rng) * a.zoom;
    const double tx = u(rng) * a.translate * static_cast<double>(width);
    const double ty = u(rng) * a.translate * static_cast<double>(height);
    // Output pixel p samples the input at centre + scale * R(angle) * flip * (p - centre) + t.
    const double c = std::cos(angle) * scale, s = std::sin(angle) * scale;
    const double m00 = c * flip_x, m01 = -s * flip_y, m10 = s * flip_x, m11 = c * flip_y;
    maps[0] = static_cast<float>(m00);
    maps[1] = static_cast<float>(m01);
    maps[2] = static_cast<float>(cx + tx - m00 * cx - m01 * cy);
    maps[3] = static_cast<float>(m10);
    maps[4] = static_cast<float>(m11);
    maps[5] = static_cast<float>(cy + ty - m10 * cx - m11 * cy);
  }
}

void draw_dropout_mask(float rate, float* mask, size_t n, uint64_t seed) {
  const float keep = 1.f / (1.f - rate);
  const auto threshold = static_cast<uint64_t>(static_cast<double>(rate) * 4294967296.0);
  constexpr size_t kChunk = 1 << 16;  // even: a pair never straddles two tasks
  runtime::parallel_for(static_cast<int>((n + kChunk - 1) / kChunk), [&](int c) {
    const size_t end = std::min(n, (static_cast<size_t>(c) + 1) * kChunk);
    for (size_t i = static_cast<size_t>(c) * kChunk; i < end; i += 2) {
      const uint64_t bits = mix64(seed + i / 2);
      mask[i] = (bits & 0xffffffffu) >= threshold ? keep : 0.f;
      if (i + 1 < n) mask[i + 1] = (bits >> 32) >= threshold ? keep : 0.f;
    }
  });
}

void draw_colors(const ir::AugmentAttrs& a, float* factors, int64_t images, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const double range = static_cast<double>(a.value_max) - a.value_min;
  for (int64_t i = 0; i < images; ++i, factors += 2) {
    factors[0] = static_cast<float>(1 + u(rng) * a.contrast);
    factors[1] = static_cast<float>(u(rng) * a.brightness * range);
  }
}

TrainingModel::TrainingModel(const ir::Graph& forward, const ModelOptions& o)
    : o_(o), rng_(o.seed) {
  ir::Graph at_batch = forward;
  at_batch.set_batch(o.batch);
  if (at_batch.inputs().size() != 1)
    throw Error(forward.name + ": training takes a model with one input, this one has " +
                std::to_string(at_batch.inputs().size()));
  graph_ = passes::build_training_graph(at_batch, o.loss);
  training_ = std::make_unique<runtime::CompiledModel>(
      compile_graph(graph_.graph, o, /*training=*/true), o.threads);
  inference_ = std::make_unique<runtime::CompiledModel>(
      compile_graph(at_batch, o, /*training=*/false), o.threads);

  const ir::Graph& g = training_->graph();
  const auto ins = g.inputs();
  augment_inputs_.resize(graph_.augmentations.size());
  for (size_t i = 0; i < ins.size(); ++i) {
    const ir::Node& n = g.node(ins[i]);
    input_shapes_.push_back(n.type.shape);
    if (n.name == graph_.labels) label_input_ = i;
    for (const auto& m : graph_.masks)
      if (m.input == n.name) mask_inputs_.push_back(i);
    for (size_t k = 0; k < graph_.augmentations.size(); ++k) {
      if (graph_.augmentations[k].maps == n.name) augment_inputs_[k].maps = i;
      if (graph_.augmentations[k].colors == n.name) augment_inputs_[k].colors = i;
    }
    if (n.name == forward.node(forward.inputs()[0]).name) data_input_ = i;
  }
  const auto outs = g.outputs();
  for (const auto& t : graph_.trainables) {
    weights_.push_back(training_->weights(t.layer, t.role));
    sizes_.push_back(
        static_cast<size_t>(ir::Tensor::count(g.node(g.find(t.layer)).param(t.role)->value.shape)));
    const auto at = std::find(outs.begin(), outs.end(), g.find(t.gradient));
    internal_assert(at != outs.end(), "the gradient " + t.gradient + " is not an output");
    grad_outputs_.push_back(static_cast<size_t>(at - outs.begin()));
  }
  const auto& shared = at_batch.shared_weights;
  for (const auto& b : graph_.batch_statistics) {
    MovingStatistics m;
    const auto owner = shared.find(b.layer);
    m.shared = owner != shared.end();
    m.layer = m.shared ? owner->second : b.layer;
    const auto at = std::find(outs.begin(), outs.end(), g.find(b.sums));
    internal_assert(at != outs.end(), "the batch sums " + b.sums + " are not an output");
    m.sums_output = static_cast<size_t>(at - outs.begin());
    m.mean = training_->weights(m.layer, "moving_mean");
    m.variance = training_->weights(m.layer, "moving_variance");
    const ir::TensorType& x = g.node(g.node(g.find(b.sums)).inputs[0]).type;
    m.channels = x.channels();
    m.count = x.elements() / x.channels();
    moving_.push_back(m);
  }
  for (const auto& [copy, owner] : shared) {
    if (g.find(copy) < 0) continue;  // a use the loss does not depend on
    for (const ir::Param& p : g.node(g.find(copy)).params) {
      const size_t n = static_cast<size_t>(p.value.elements());
      copies_.push_back(
          {copy, p.role, training_->weights(copy, p.role), training_->weights(owner, p.role), n});
    }
  }
  for (const auto& c : graph_.weight_copies) {
    if (g.find(c.layer) < 0) continue;
    const auto* p = g.node(g.find(c.layer)).param(c.role);
    internal_assert(p != nullptr, "no weights '" + c.role + "' in " + c.layer);
    copies_.push_back({c.layer, c.role, training_->weights(c.layer, c.role),
                       training_->weights(c.from, c.role), static_cast<size_t>(p->value.elements()),
                       /*backward=*/true});
  }
  sync_copies();  // whatever a weights file held for the copies
  if (!copies_.empty()) training_->weights_changed();
  optimizer_ = std::make_unique<Optimizer>(o.optimizer, sizes_);
}

void TrainingModel::sync_copies() {
  for (const Copy& c : copies_) std::memcpy(c.data, c.from, c.size * sizeof(float));
}

std::vector<TrainingModel::Slot> TrainingModel::slots() {
  std::vector<Slot> s;
  for (size_t k = 0; k < weights_.size(); ++k)
    s.push_back({graph_.trainables[k].parameter, weights_[k], sizes_[k]});
  for (const auto& m : moving_) {
    if (m.shared) continue;
    s.push_back({m.layer + ".moving_mean", m.mean, static_cast<size_t>(m.channels)});
    s.push_back({m.layer + ".moving_variance", m.variance, static_cast<size_t>(m.channels)});
  }
  const auto state = optimizer_->state();
  for (size_t k = 0; k < state.size(); ++k)
    s.push_back({graph_.trainables[k / 2].parameter + (k % 2 ? ".v" : ".m"), state[k]->data(),
                 state[k]->size()});
  return s;
}

void TrainingModel::state_changed() {
  sync_copies();
  training_->weights_changed();
  inference_stale_ = true;
}

StepResult TrainingModel::score(const ir::Tensor& p, const ir::Tensor& labels, int64_t rows) const {
  StepResult r;
  const int64_t c = p.elements() / p.shape[0], n = rows > 0 ? rows : p.shape[0];
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p.data.data() + i * c;
    const int64_t top = std::max_element(row, row + c) - row;
    switch (o_.loss) {
      case passes::Loss::SparseCategoricalCrossEntropy: {
        const auto label = static_cast<int64_t>(labels.data[i]);
        r.loss -= std::log(std::clamp<double>(row[label], 1e-7, 1.0));  // Keras' epsilon
        r.correct += top == label;
        break;
      }
      case passes::Loss::CategoricalCrossEntropy: {
        const float* t = labels.data.data() + i * c;
        for (int64_t k = 0; k < c; ++k)
          r.loss -= t[k] * std::log(std::clamp<double>(row[k], 1e-7, 1.0));
        r.correct += top == std::max_element(t, t + c) - t;
        break;
      }
      case passes::Loss::MeanSquaredError:
        for (int64_t k = 0; k < c; ++k) {
          const double d = double(row[k]) - labels.data[i * c + k];
          r.loss += d * d / static_cast<double>(c);
        }
        break;
    }
  }
  r.loss /= static_cast<double>(n);
  return r;
}

StepResult TrainingModel::step(const ir::Tensor& x, const ir::Tensor& labels, double lr) {
  // Inputs written and outputs read where the program keeps them: a step copies nothing else.
  runtime::CompiledModel& p = *training_;
  std::copy(x.data.begin(), x.data.end(), p.input_data(data_input_));
  std::copy(labels.data.begin(), labels.data.end(), p.input_data(label_input_));
  // Dropout: one draw of the model's generator per mask and step (a resumed run replays them).
  for (size_t k = 0; k < graph_.masks.size(); ++k)
    draw_dropout_mask(graph_.masks[k].rate, p.input_data(mask_inputs_[k]),
                      static_cast<size_t>(ir::Tensor::count(input_shapes_[mask_inputs_[k]])),
                      rng_());
  for (size_t k = 0; k < graph_.augmentations.size(); ++k) {
    const auto& a = graph_.augmentations[k];
    const AugmentInputs& at = augment_inputs_[k];
    if (at.maps != AugmentInputs::kNone)
      draw_maps(a.attrs, a.image[2], a.image[1], p.input_data(at.maps), a.image[0], rng_);
    if (at.colors != AugmentInputs::kNone)
      draw_colors(a.attrs, p.input_data(at.colors), a.image[0], rng_);
  }
  p.run_in_place();
  ir::Tensor prediction(p.graph().node(p.graph().outputs()[0]).type.shape);
  const float* y = p.output_data(0);
  std::copy(y, y + prediction.elements(), prediction.data.begin());
  std::vector<const float*> grads;
  for (size_t k = 0; k < weights_.size(); ++k) grads.push_back(p.output_data(grad_outputs_[k]));
  optimizer_->update(weights_, grads, lr);
  // Each batchnorm's moving statistics follow the batch's (biased) mean and variance, as Keras'.
  for (const auto& m : moving_) {
    const float* sums = p.output_data(m.sums_output);
    const auto count = static_cast<double>(m.count);
    for (int64_t c = 0; c < m.channels; ++c) {
      const double mean = sums[c] / count, var = sums[m.channels + c] / count - mean * mean;
      m.mean[c] = kMomentum * m.mean[c] + (1 - kMomentum) * static_cast<float>(mean);
      m.variance[c] = kMomentum * m.variance[c] + (1 - kMomentum) * static_cast<float>(var);
    }
  }
  sync_copies();
  p.weights_changed();
  inference_stale_ = true;
  return score(prediction, labels, 0);
}

std::vector<TrainingModel::KernelTime> TrainingModel::profile(int repeats) {
  std::vector<std::vector<double>> runs;
  for (int r = 0; r < repeats; ++r) {
    std::vector<double> t;
    training_->rerun_profiled(t);
    runs.push_back(t);
  }
  std::vector<KernelTime> out;
  const auto& kernels = training_->kernels();
  for (size_t k = 0; k < kernels.size(); ++k) {
    std::vector<double> t;
    for (const auto& r : runs) t.push_back(r[k]);
    std::nth_element(t.begin(), t.begin() + static_cast<long>(t.size() / 2), t.end());
    const ir::Node& n = training_->graph().node(kernels[k].node);
    out.push_back(
        {n.name, std::string(n.info().text), kernels[k].kernel->schedule(), t[t.size() / 2]});
  }
  return out;
}

std::vector<TrainingModel::Weights> TrainingModel::layer_weights() {
  std::vector<Weights> w;
  for (size_t k = 0; k < weights_.size(); ++k)
    w.push_back({graph_.trainables[k].layer, graph_.trainables[k].role, weights_[k], sizes_[k]});
  for (const auto& m : moving_) {
    if (m.shared) continue;
    w.push_back({m.layer, "moving_mean", m.mean, static_cast<size_t>(m.channels)});
    w.push_back({m.layer, "moving_variance", m.variance, static_cast<size_t>(m.channels)});
  }
  for (const Copy& c : copies_)
    if (!c.backward) w.push_back({c.layer, c.role, c.from, c.size});
  return w;
}

void TrainingModel::sync_inference() {
  if (!inference_stale_) return;
  for (const auto& w : layer_weights())
    std::memcpy(inference_->weights(w.layer, w.role), w.data, w.size * sizeof(float));
  inference_->weights_changed();
  inference_stale_ = false;
}

StepResult TrainingModel::evaluate(const ir::Tensor& x, const ir::Tensor& labels, int64_t rows) {
  sync_inference();
  return score(inference_->run({x}).at(0), labels, rows);
}

void TrainingModel::copy_weights_to(ir::Graph& g) {
  for (const auto& w : layer_weights()) {
    const ir::NodeId id = g.find(w.layer);
    ir::Param* p = id >= 0 ? g.node(id).param(w.role) : nullptr;
    if (!p || static_cast<size_t>(p->value.elements()) != w.size)
      throw Error(g.name + ": no weights '" + w.role + "' of " + std::to_string(w.size) +
                  " values in a layer '" + w.layer + "'");
    p->value.data.assign(w.data, w.data + w.size);
  }
}

}  // namespace cnnc::train
