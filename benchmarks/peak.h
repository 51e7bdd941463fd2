#pragma once
// Measures this machine's float32 FMA peak, so speed can be quoted as a fraction of it
// (never hard-coded): 12 independent FMA chains per thread, enough to cover the FMA latency,
// 16 floats wide where the CPU has AVX-512 (as Halide's host target then does), else 8.
namespace cnnc::bench {

// Peak GFLOP/s with `threads` threads busy at once (each FMA counts 2 flops); the best of a few
// repetitions of about `seconds` each.
double measure_fma_peak_gflops(int threads, double seconds = 0.1);

// Sustained memory bandwidth in GB/s: the best of 5 streaming reads of 64 MiB per thread.
double measure_memory_bandwidth_gbs(int threads);

}  // namespace cnnc::bench
