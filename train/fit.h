#pragma once
// The training loop: epochs of shuffled batches through a TrainingModel, validation on a held-out
// split each epoch, a progress line, a CSV log, a hook after each epoch (the command line draws
// the curves there), and a checkpoint after every epoch (written atomically and checksummed) that
// --resume continues from.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/dataset.h"
#include "train/training_model.h"

namespace cnnc::train {

struct EpochLog {
  int epoch = 0;
  double loss = 0, accuracy = 0;              // over the epoch's training batches
  double val_loss = -1, val_accuracy = -1;    // -1: no validation split
  double test_loss = -1, test_accuracy = -1;  // -1: no test set each epoch
  double lr = 0, seconds = 0, images_per_second = 0;
};

struct FitOptions {
  int epochs = 1;
  double validation_split = 0;  // the last fraction of the data, held out (Keras' rule)
  double scale = 0;             // pixels x scale (0: 1/255 for byte images, 1 otherwise)
  uint64_t seed = 0;            // shuffling
  int64_t limit = 0;            // train on the first N samples only (0: all)
  int pad = 0;                  // zero pixels around every image (LeNet-5's 32x32 from 28x28)
  std::string checkpoint_dir;   // a checkpoint after every epoch, when set
  bool resume = false;          // continue from checkpoint_dir's checkpoint
  std::string csv;              // the per-epoch log (CSV), when set
  bool progress = true;         // a live progress line (on a terminal)
  // Evaluated after every epoch when set (test_loss, test_accuracy: for time-to-accuracy).
  const runtime::Dataset* test = nullptr;
  // Called with every epoch's log so far, after each epoch (resumed ones included).
  std::function<void(const std::vector<EpochLog>&)> after_epoch;
};

// Trains `model` on `data`; returns every epoch's log (the resumed ones included). Throws
// cnnc::Error on data that does not fit the model (shapes, labels outside the classes) and on a
// checkpoint that is not this model's or fails its checks.
std::vector<EpochLog> fit(TrainingModel& model, const runtime::Dataset& data, const FitOptions& o);

// The loss and accuracy of the model on a whole dataset (inference program, batch by batch).
EpochLog evaluate_dataset(TrainingModel& model, const runtime::Dataset& data, double scale,
                          int pad = 0);

// The checkpoint file in a folder.
std::string checkpoint_path(const std::string& dir);

}  // namespace cnnc::train
