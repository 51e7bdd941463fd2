#pragma once
// What the tiling pass needs to know of the machine a graph is compiled for, as plain numbers:
// codegen::describe_target fills it from the Halide target (and the host's caches), so passes
// stay free of Halide.
#include <cstdint>

namespace cnnc::ir {

struct MachineInfo {
  int vector_lanes = 8;        // f32 lanes per vector register (8: AVX2, 16: AVX-512)
  int vector_registers = 16;   // architectural vector registers (16: AVX2, 32: AVX-512)
  int64_t l1_bytes = 32 << 10; // L1 data cache per core
};

// f32 lanes per vector for `channels` outputs: the machine's `lanes`, or the largest power of
// two not above the channels (so a narrow layer is not all tail).
inline int vector_lanes_for(int64_t channels, int lanes) {
  int v = lanes;
  while (v > 1 && v > channels) v /= 2;
  return v;
}

}  // namespace cnnc::ir
