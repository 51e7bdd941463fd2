// cnnc evaluate NET --data fashion-mnist|DIR|X.npy,Y.npy: the model's loss and accuracy on a
// labelled image set, compiled as for `run` and run batch by batch (the last batch padded).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "ir/error.h"
#include "runtime/dataset.h"
#include "runtime/executor.h"
#include "tools/commands.h"
#include "tools/prepare.h"

namespace cnnc::tools {

namespace {

struct EvaluateOptions {
  std::string net, weights, data, split = "test";
  int64_t batch = 100, limit = 0;
  double scale = 0;  // 0: 1/255 for byte images, 1 otherwise
  uint64_t seed = 0;
  int threads = 0;
  PassFlags passes;
};

int evaluate(const EvaluateOptions& o) {
  runtime::Dataset ds = runtime::load_dataset(o.data, o.split);
  const ir::Shape& s = ds.images.shape;
  const int64_t n = o.limit > 0 ? std::min(o.limit, s[0]) : s[0];
  const int64_t batch = std::min(o.batch, n);
  const double scale = o.scale > 0 ? o.scale : ds.from_uint8 ? 1.0 / 255 : 1.0;

  ir::Graph g = load_with_weights(o.net, batch, o.weights, o.seed);
  if (g.inputs().size() != 1) throw Error(o.net + ": evaluate takes a model with one input");
  const ir::Shape want = g.node(g.inputs()[0]).type.shape;
  if (want.size() != 4 || want[1] != s[1] || want[2] != s[2] || want[3] != s[3])
    throw Error(o.net + ": the network takes images of " + ir::shape_to_string(want, false) +
                (want.size() == 4 ? "" : " (not images)") + ", the data (" + ds.source + ") holds " +
                ir::shape_to_string(s, false) + "; accepted: a network whose input fits the data");
  runtime::CompiledModel model(build_program(std::move(g), o.passes, o.threads), o.threads);
  const auto& out_shape = model.graph().node(model.graph().outputs()[0]).type.shape;
  const int64_t classes = out_shape.back();
  if (out_shape.size() != 2) throw Error(o.net + ": evaluate needs a classifier (an N x classes output)");
  for (int64_t i = 0; i < n; ++i)
    if (ds.labels[i] >= classes)
      throw Error(ds.source + ": label " + std::to_string(i) + " is " + std::to_string(ds.labels[i]) +
                  ", but the network has " + std::to_string(classes) + " classes (0 to " +
                  std::to_string(classes - 1) + ")");

  const int64_t per_image = s[1] * s[2] * s[3];
  double loss = 0;
  int64_t correct = 0;
  bool probabilities = true;  // rows that sum to 1 are probabilities; otherwise logits
  ir::Tensor x(want);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t m = std::min(batch, n - start);
    std::fill(x.data.begin(), x.data.end(), 0.f);
    for (int64_t i = 0; i < m * per_image; ++i)
      x.data[i] = static_cast<float>(ds.images.data[start * per_image + i] * scale);
    const ir::Tensor y = model.run({x}).at(0);
    for (int64_t i = 0; i < m; ++i) {
      const float* row = y.data.data() + i * classes;
      double sum = 0, top = row[0];
      for (int64_t k = 0; k < classes; ++k) sum += row[k], top = std::max<double>(top, row[k]);
      const bool is_prob = std::abs(sum - 1) < 1e-3 && *std::min_element(row, row + classes) >= 0;
      probabilities = probabilities && is_prob;
      const int64_t label = ds.labels[start + i];
      if (is_prob) {
        loss -= std::log(std::clamp<double>(row[label], 1e-7, 1.0));  // Keras' epsilon
      } else {  // log-softmax of logits
        double z = 0;
        for (int64_t k = 0; k < classes; ++k) z += std::exp(row[k] - top);
        loss -= row[label] - top - std::log(z);
      }
      correct += std::max_element(row, row + classes) - row == label;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s on %lld images of %s (%s split, pixels x %.6g)\n", model.graph().name.c_str(),
              static_cast<long long>(n), o.data.c_str(), o.split.c_str(), scale);
  std::printf("  loss:      %.6f (sparse categorical cross-entropy of the %s)\n", loss / static_cast<double>(n),
              probabilities ? "output probabilities" : "output logits, softmax applied");
  std::printf("  accuracy:  %.4f (%lld of %lld)\n", static_cast<double>(correct) / static_cast<double>(n),
              static_cast<long long>(correct), static_cast<long long>(n));
  std::printf("  speed:     %.0f images/s (batch %lld, %.2f s)\n", static_cast<double>(n) / seconds,
              static_cast<long long>(batch), seconds);
  return 0;
}

}  // namespace

Action add_evaluate(CLI::App& app) {
  auto* sub = app.add_subcommand("evaluate", "Loss and accuracy of a classifier on a labelled image set");
  auto o = std::make_shared<EvaluateOptions>();
  sub->add_option("NET", o->net, "network file (.cnn, .keras, .h5, .json, .onnx)")->required();
  sub->add_option("--data", o->data,
                  "fashion-mnist (Debian's dataset-fashion-mnist), a folder of IDX files, a folder of "
                  "CIFAR-10 binary batches (or one .bin), or X.npy,Y.npy")
      ->required();
  sub->add_option("--split", o->split, "train or test (IDX data)");
  sub->add_option("--weights", o->weights, "weights file (.cnnw); a Keras or ONNX model brings its own");
  sub->add_option("--seed", o->seed, "seed for weights the model does not bring (Glorot-uniform)");
  sub->add_option("--batch", o->batch, "images per run")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option("--limit", o->limit, "evaluate the first N images only")->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_option("--scale", o->scale, "pixel scale (default 1/255 for byte images, 1 for float data)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--threads", o->threads, "worker threads (0: one per core)")->check(CLI::Range(0, 256));
  add_pass_flags(*sub, o->passes);
  return [o] { return evaluate(*o); };
}

}  // namespace cnnc::tools
