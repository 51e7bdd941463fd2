#pragma once
// The device a graph is compiled for, as plain data: what the passes and the tuner need to know
// of it. codegen::describe_target fills it (from Halide's target and the OS), so passes and the
// IR stay free of Halide. Its name is part of every kernel cache key and tuning record.
#include <cstdint>
#include <string>

namespace cnnc::ir {

struct CpuFacts {
  std::string arch = "x86-64";  // x86-64, arm-64
  std::string isa;              // the vector extension kernels use: avx512, avx2, sse41, neon
  std::string model;            // "AMD EPYC ... (family 25, model 17)": what the OS says
  int vector_lanes = 8;         // f32 lanes per vector register (8: AVX2, 16: AVX-512)
  int vector_registers = 16;    // architectural vector registers (16: AVX2, 32: AVX-512)
  int64_t l1_bytes = 32 << 10;  // data caches, per core (L3: shared)
  int l1_ways = 8;  // the L1's associativity: addresses l1_bytes / l1_ways apart share a set
  int64_t l2_bytes = 0, l3_bytes = 0;
  int cores = 1;
};

// What GPU schedules are sized by. Compiling needs no GPU, so these are the limits every GPU of
// the API honours (CUDA since sm_30; OpenCL devices, PoCL's included), not one device's readings.
struct GpuFacts {
  enum Api { Cuda, OpenCL } api = Cuda;
  std::string name;
  int capability = 0;  // CUDA: the compute capability x 10 kernels are compiled for (86: sm_86)
  int requested_capability = 0;  // CUDA: what --target asked for (90 for cuda:sm_90)
  int sms = 0;                   // streaming multiprocessors (0: unknown until run)
  int64_t shared_bytes_per_block = 48 << 10;
  int registers_per_block = 65536;
  int max_threads_per_block = 1024;
};

struct Target {
  enum Family { Cpu, Gpu } family = Cpu;
  std::string name = "host";  // as the user wrote it: host, a CPU Halide target, opencl, cuda:sm_86
  std::string halide;         // the Halide target string kernels compile for
  CpuFacts cpu;               // the CPU (the host's, for a GPU target)
  GpuFacts gpu;               // for a GPU target

  // One line for messages and reports: "host (x86-64 avx512, 16 lanes, 32 registers, L1 32 KiB)".
  std::string describe() const;
};

// f32 lanes per vector for `channels` outputs: the machine's `lanes`, or the largest power of
// two not above the channels (so a narrow layer is not all tail).
inline int vector_lanes_for(int64_t channels, int lanes) {
  int v = lanes;
  while (v > 1 && v > channels) v /= 2;
  return v;
}

// The --target values: host (this CPU), a CPU Halide target string, opencl, cuda[:sm_XX].
constexpr const char* kTargetSyntax =
    "host, a CPU target string (x86-64-linux-avx2-fma: arch-bits-os-features), "
    "opencl, or cuda[:sm_XX]";

}  // namespace cnnc::ir
