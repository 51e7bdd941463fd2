#pragma once
// Reading HDF5 in a child process. Debian's HDF5 1.10 cannot be hardened against hostile files
// (a use-after-free and an endless loop in H5Aread -> H5T__conv_vlen -> H5HG_read were found by
// this project's fuzzer), so every .h5 read runs in a forked child that hands back what it read
// through a pipe, under a time limit and a memory limit; a crash, a hang, an exhausted limit or an
// error there becomes a cnnc::Error naming the file, and this process goes on.
#include <cstdint>
#include <functional>
#include <string>

#include "frontend/keras/model_config.h"

namespace cnnc::frontend::keras {

// What a Keras file's HDF5 part holds: the model config (legacy .h5; else empty) and weights.
struct Hdf5Contents {
  std::string config;
  LayerWeights weights;
};

// Runs `read` in a child process and returns its result. `label` names the file in errors;
// `input_bytes` is the file's size: the child may map kReadMemoryBase + kReadMemoryPerByte x
// input_bytes beyond what this process had mapped (the weights once read, once serialized for
// the pipe, HDF5's buffers); the child is killed after `timeout_s` seconds (0: the process-wide
// limit below).
constexpr uint64_t kReadMemoryBase = uint64_t{1} << 30;
constexpr uint64_t kReadMemoryPerByte = 6;
Hdf5Contents read_isolated(const std::string& label, uint64_t input_bytes,
                           const std::function<Hdf5Contents()>& read, double timeout_s = 0);

// The process-wide limit on one child's read, 120 s unless set (the fuzz harness sets it below
// libFuzzer's per-input limit: a child that hangs is then killed and reported as an error, and
// only a hang of this process itself counts as one).
void set_read_timeout(double seconds);

// For the fuzz harness: `child_done` runs in the child once it has its answer, just before it
// exits; `parent_after` here once the child has ended, however it ended. libFuzzer counts the
// code a run reached in this process's memory, of which a forked child has only a copy: the
// harness hands the child's counts back through these two. Null: nothing is called.
struct ChildHooks {
  void (*child_done)() = nullptr;
  void (*parent_after)() = nullptr;
};
void set_child_hooks(ChildHooks hooks);

}  // namespace cnnc::frontend::keras
