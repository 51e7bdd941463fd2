#pragma once
// Labelled image sets for evaluation (and, with the training issue, for training): IDX file
// pairs (MNIST, Fashion-MNIST; gzip-compressed or not), CIFAR-10's binary batches and .npy pairs
// (x: N x H x W x C or N x H x W, float or uint8; y: N integer labels). Every reader checks what it
// reads against the file and names the file and what is wrong.
#include <string>
#include <vector>

#include "ir/types.h"

namespace cnnc::runtime {

struct Dataset {
  ir::Tensor images;            // N x H x W x C, as stored (uint8 sources keep 0..255)
  std::vector<int64_t> labels;  // N class indices
  bool from_uint8 = false;      // the images were bytes (0..255)
  std::string source;           // for messages
};

// Where Debian's dataset-fashion-mnist puts its files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// An IDX image file (magic 2051: N x H x W bytes) and its IDX label file (magic 2049: N bytes).
Dataset read_idx(const std::string& images_path, const std::string& labels_path);
// CIFAR-10's binary batch files (data_batch_1.bin ... test_batch.bin), read in order: records of
// a label byte (0..9) and a 32x32 image as three 1024-byte planes (red, green, blue).
Dataset read_cifar10(const std::vector<std::string>& batch_paths);
// x.npy and y.npy.
Dataset read_npy_pair(const std::string& x_path, const std::string& y_path);

// What --data names: "fashion-mnist" (Debian's package; split "train" or "test"), a folder with
// an IDX pair (train-images-idx3-ubyte[.gz] ... or t10k-...), a folder of CIFAR-10 binary batches
// (cifar-10-batches-bin: data_batch_1..5.bin to train, test_batch.bin to test), one such .bin
// file, or "X.npy,Y.npy".
Dataset load_dataset(const std::string& spec, const std::string& split);

}  // namespace cnnc::runtime
