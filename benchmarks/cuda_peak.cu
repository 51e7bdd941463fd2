// A CUDA GPU's limits, measured: the fp32 FMA rate (independent FMA chains in every thread of
// enough blocks to fill every SM) and device memory bandwidth (a read + write stream over
// buffers far larger than the L2), so `cnnc bench --target cuda` results read as a fraction of
// this GPU's peak. Prints one line of text and one of JSON; exits 1 where there is no GPU.
//   build/benchmarks/cuda_peak [--runs N]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr int kChains = 8;        // independent FMAs in flight per thread (hides FMA latency)
constexpr int kIterations = 4096;  // per launch: kChains FMAs each

__global__ void fma_chains(float* out, float a, float b) {
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = threadIdx.x + i;
  for (int it = 0; it < kIterations; ++it)
#pragma unroll
    for (int i = 0; i < kChains; ++i) acc[i] = fmaf(acc[i], a, b);
  float sum = 0;
  for (int i = 0; i < kChains; ++i) sum += acc[i];
  if (sum == 1234.5f) out[0] = sum;  // never true for the inputs used; keeps the work alive
}

__global__ void stream_copy(const float4* __restrict__ in, float4* __restrict__ out, size_t n) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x)
    out[i] = in[i];
}

bool ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "cuda_peak: %s: %s\n", what, cudaGetErrorString(e));
  return false;
}

// Median milliseconds of `runs` launches of f, timed with events.
template <class F>
float median_ms(F f, int runs) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<float> ms;
  f();  // warm-up
  for (int r = 0; r < runs; ++r) {
    cudaEventRecord(start);
    f();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 21;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--runs")) runs = std::max(1, std::atoi(argv[i + 1]));
  int devices = 0;
  if (!ok(cudaGetDeviceCount(&devices), "no CUDA GPU can be used") || devices == 0) return 1;
  cudaDeviceProp p{};
  if (!ok(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties")) return 1;

  float* sink = nullptr;
  if (!ok(cudaMalloc(&sink, sizeof(float)), "cudaMalloc")) return 1;
  const int threads = 256, blocks = p.multiProcessorCount * 32;
  const float fma_ms = median_ms([&] { fma_chains<<<blocks, threads>>>(sink, 0.999f, 0.001f); }, runs);
  if (!ok(cudaGetLastError(), "the FMA kernel")) return 1;
  const double fmas = double(blocks) * threads * kIterations * kChains;
  const double gflops = 2 * fmas / (fma_ms * 1e-3) * 1e-9;

  // 1 GiB each way (or a quarter of the memory on a small GPU): far beyond any L2.
  const size_t bytes = std::min<size_t>(size_t{1} << 30, p.totalGlobalMem / 4) / 16 * 16;
  float4 *in = nullptr, *out = nullptr;
  if (!ok(cudaMalloc(&in, bytes), "cudaMalloc") || !ok(cudaMalloc(&out, bytes), "cudaMalloc"))
    return 1;
  cudaMemset(in, 0, bytes);
  const size_t n = bytes / sizeof(float4);
  const float copy_ms =
      median_ms([&] { stream_copy<<<p.multiProcessorCount * 8, 512>>>(in, out, n); }, runs);
  if (!ok(cudaGetLastError(), "the copy kernel")) return 1;
  const double gbs = 2.0 * double(bytes) / (copy_ms * 1e-3) * 1e-9;

  std::printf("%s (sm_%d%d, %d SMs): fp32 FMA peak %.0f GFLOP/s, memory %.0f GB/s (median of %d)\n",
              p.name, p.major, p.minor, p.multiProcessorCount, gflops, gbs, runs);
  std::printf("{\"gpu\": \"%s\", \"capability\": %d, \"sms\": %d, \"fma_peak_gflops\": %.1f, "
              "\"memory_gbs\": %.1f}\n",
              p.name, p.major * 10 + p.minor, p.multiProcessorCount, gflops, gbs);
  cudaFree(in);
  cudaFree(out);
  cudaFree(sink);
  return 0;
}
