// cnnc train NET --data fashion-mnist|DIR|X.npy,Y.npy: trains the network's weights (the
// training graph compiled as one program: forward, loss gradient, backward kernels; the
// optimiser between steps), with validation, a log, curves and checkpoints; then the test split's
// loss and accuracy, and the weights saved.
#include <cstdio>
#include <filesystem>

#include "frontend/keras/keras.h"
#include "ir/error.h"
#include "runtime/dataset.h"
#include "runtime/weights.h"
#include "tools/chart.h"
#include "tools/commands.h"
#include "tools/prepare.h"
#include "train/fit.h"

namespace cnnc::tools {

namespace {

// Loss and accuracy against the epoch: training, validation and test where measured.
void write_curves(const std::string& path, const std::string& name,
                  const std::vector<train::EpochLog>& logs) {
  Panel loss{"loss", "epoch", "loss", {}, true},
      accuracy{"accuracy", "epoch", "accuracy", {}, true};
  auto add = [&](const char* label, uint32_t rgb, auto loss_of, auto accuracy_of) {
    Series l{label, {}, rgb}, a{label, {}, rgb};
    for (const auto& e : logs)
      if (loss_of(e) >= 0) {
        l.points.emplace_back(e.epoch, loss_of(e));
        a.points.emplace_back(e.epoch, accuracy_of(e));
      }
    loss.series.push_back(l);
    accuracy.series.push_back(a);
  };
  using E = const train::EpochLog&;
  add(
      "training", 0x1f77b4, [](E e) { return e.loss; }, [](E e) { return e.accuracy; });
  add(
      "validation", 0xff7f0e, [](E e) { return e.val_loss; }, [](E e) { return e.val_accuracy; });
  add(
      "test", 0x2ca02c, [](E e) { return e.test_loss; }, [](E e) { return e.test_accuracy; });
  write_chart(path, name + ": training curves", {loss, accuracy});
}

struct TrainFlags {
  std::string net, data, weights, save, curves, loss = "sparse_categorical_crossentropy";
  std::string optimizer = "adam", lr_schedule = "constant", target = "host", augment;
  train::FitOptions fit;
  train::OptimizerOptions opt;
  int64_t batch = 32;
  uint64_t seed = 0;
  int threads = 0;
  bool test = true, test_each_epoch = false, profile = false, winograd = true;
};

int run_train(TrainFlags& o) {
  o.opt.kind = train::parse_optimizer(o.optimizer);
  o.opt.schedule = train::parse_lr_schedule(o.lr_schedule);
  // A Keras output is checked now, not after the training.
  const bool keras_out = o.save.ends_with(".keras") || o.save.ends_with(".h5");
  if (keras_out) frontend::keras::check_weights_target(o.net, o.save);
  runtime::Dataset data = runtime::load_dataset(o.data, "train");
  ir::Graph g = load_with_weights(o.net, o.batch, o.weights, o.seed);
  if (!o.augment.empty()) g = train::with_augmentation(g, train::parse_augment(o.augment));
  train::ModelOptions mo;
  mo.loss = passes::parse_loss(o.loss);
  mo.optimizer = o.opt;
  mo.target = o.target;
  mo.threads = resolve_threads(o.threads);
  mo.batch = o.batch;
  mo.seed = o.seed;
  mo.winograd = o.winograd;
  train::TrainingModel model(g, mo);
  o.fit.seed = o.seed;
  if (!o.curves.empty())
    o.fit.after_epoch = [&](const std::vector<train::EpochLog>& logs) {
      write_curves(o.curves, std::filesystem::path(o.net).filename().string(), logs);
    };
  // The test split of a dataset folder (Fashion-MNIST's t10k files, CIFAR-10's test_batch.bin).
  const bool has_test =
      o.test && (o.data == "fashion-mnist" || std::filesystem::is_directory(o.data));
  runtime::Dataset test;
  if (has_test) test = runtime::load_dataset(o.data, "test");
  if (has_test && o.test_each_epoch) o.fit.test = &test;
  const auto logs = train::fit(model, data, o.fit);
  if (o.profile) {
    double total = 0;
    const auto times = model.profile(9);
    for (const auto& k : times) total += k.ms;
    std::printf("one training step, per kernel (median of 9, %.3f ms in all):\n", total);
    for (const auto& k : times)
      std::printf("  %-28s %-20s %8.3f ms %5.1f%%  %s\n", k.layer.c_str(), k.op.c_str(), k.ms,
                  100 * k.ms / total, k.schedule.c_str());
  }
  model.copy_weights_to(g);
  if (keras_out) {
    frontend::keras::save_weights(o.net, g, o.save);
    std::printf("weights saved to %s\n", o.save.c_str());
  } else if (!o.save.empty()) {
    runtime::save_weights(g, o.save);
    std::printf("weights saved to %s\n", o.save.c_str());
  }
  double seconds = 0;
  for (const auto& e : logs) seconds += e.seconds;
  if (!logs.empty())
    std::printf("trained %zu epoch(s) in %.1f s: loss %.4f, accuracy %.4f\n", logs.size(), seconds,
                logs.back().loss, logs.back().accuracy);
  if (has_test) {
    const train::EpochLog t = train::evaluate_dataset(model, test, o.fit.scale, o.fit.pad);
    std::printf("test: loss %.4f, accuracy %.4f (%zu images)\n", t.loss, t.accuracy,
                test.labels.size());
  }
  return 0;
}

}  // namespace

Action add_train(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "Train a network's weights on a labelled image set");
  auto o = std::make_shared<TrainFlags>();
  sub->add_option("NET", o->net, "network file (.cnn, .keras, .h5, .json, .onnx)")->required();
  sub->add_option("--data", o->data,
                  "fashion-mnist (Debian's dataset-fashion-mnist), a folder of IDX files, a "
                  "folder of CIFAR-10 binary batches (or one .bin), or X.npy,Y.npy")
      ->required();
  sub->add_option("--epochs", o->fit.epochs, "passes over the training data")
      ->check(CLI::Range(1, 100000));
  sub->add_option("--batch", o->batch, "samples per step")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option("--optimizer", o->optimizer, "sgd, adam or adamw");
  sub->add_option("--lr", o->opt.lr, "learning rate")->check(CLI::PositiveNumber);
  sub->add_option("--momentum", o->opt.momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0));
  sub->add_flag("--nesterov", o->opt.nesterov, "SGD with Nesterov momentum");
  sub->add_option("--weight-decay", o->opt.weight_decay,
                  "decoupled weight decay (AdamW's default 0.004)")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--clip-norm", o->opt.clip_norm, "clip gradients to this global L2 norm")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--lr-schedule", o->lr_schedule,
                  "constant, step (x gamma every N epochs), cosine");
  sub->add_option("--lr-step-epochs", o->opt.step_epochs, "the step schedule's period")
      ->check(CLI::Range(1, 100000));
  sub->add_option("--lr-gamma", o->opt.gamma, "the step schedule's factor")
      ->check(CLI::PositiveNumber);
  sub->add_option("--augment", o->augment,
                  "random augmentation of the training images, e.g. flip,rotate=0.1,zoom=0.1 "
                  "(also flip_v, translate=F, contrast=F, brightness=F; min=F,max=F: the value "
                  "range, 0 and 1 by default)");
  sub->add_option("--loss", o->loss, "sparse_categorical_crossentropy (labels are class indices)");
  sub->add_option("--validation-split", o->fit.validation_split,
                  "the last fraction of the data held out for validation each epoch")
      ->check(CLI::Range(0.0, 0.9));
  sub->add_option("--scale", o->fit.scale, "pixel scale (default 1/255 for byte images)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--pad", o->fit.pad,
                  "zero pixels around each image (2: LeNet-5's 32x32 from 28x28 images)")
      ->check(CLI::Range(0, 64));
  sub->add_option("--limit", o->fit.limit, "train on the first N samples only")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_option("--weights", o->weights, "start from these weights (.cnnw)");
  sub->add_option("--seed", o->seed, "seed of the initial weights, shuffling and dropout");
  sub->add_option("--save", o->save,
                  "write the trained weights: NAME.cnnw, or for a Keras model NAME.weights.h5 "
                  "(Keras' load_weights) or a whole NAME.keras");
  sub->add_option("--checkpoint", o->fit.checkpoint_dir,
                  "a checkpoint in this folder after every epoch (atomic, checksummed)");
  sub->add_flag("--resume", o->fit.resume, "continue from --checkpoint's last checkpoint");
  sub->add_option("--log", o->fit.csv, "per-epoch log (CSV)");
  sub->add_option("--curves", o->curves,
                  "loss and accuracy curves, redrawn after each epoch (PNG; SVG if NAME.svg)");
  sub->add_flag("--profile", o->profile, "after training, time each kernel of a training step");
  sub->add_flag("--test-each-epoch", o->test_each_epoch,
                "evaluate the test split after every epoch too (the log's test columns)");
  sub->add_flag("!--no-test", o->test, "skip the test split's evaluation at the end");
  sub->add_flag("!--no-progress", o->fit.progress, "no live progress line");
  sub->add_flag(
      "!--no-winograd", o->winograd,
      "compute 3x3 convs and their input gradients directly, never as Winograd F(2x2,3x3) "
      "(to measure it)");
  sub->add_option("--target", o->target,
                  "host, a CPU target string, opencl or cuda[:sm_XX] (the backward kernels' GPU "
                  "schedules are plain: a thread per element)");
  sub->add_option("--threads", o->threads, "worker threads (0: one per core)")
      ->check(CLI::Range(0, 256));
  return [o] { return run_train(*o); };
}

}  // namespace cnnc::tools
