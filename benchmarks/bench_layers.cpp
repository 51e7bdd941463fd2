// The layer shapes that dominate ResNet50, VGG16 and MobileNetV2, each timed with cnnc's kernel
// and with oneDNN's (what TensorFlow runs on CPUs) in the same binary, on the same input,
// weights and thread count. Counters: GFLOP/s and % of the FMA peak measured at start-up.
// Before timing, each shape's two outputs are compared; a mismatch skips the shape with an error.
//
// Fairness: both sides get their weights pre-packed outside the timed loop (cnnc packs at load;
// oneDNN's weights are reordered once into the layout its primitive chose, format_tag::any).
// cnnc reads and writes NHWC; oneDNN's source and destination are in its own chosen layout, so
// its time excludes any reorder from or to NHWC.
//
//   build/benchmarks/bench_layers [--benchmark_format=json --benchmark_out=layers.json]
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <thread>

#include "benchmarks/peak.h"
#include "ir/shape_inference.h"
#include "ir/text.h"
#include "runtime/executor.h"

namespace {

using namespace cnnc;

struct Shape {
  const char* name;
  int h, w, c;             // input (batch from the registration)
  int filters, k, stride;  // filters = 0: depthwise (one filter per channel)
  bool same;               // padding 'same' (else valid)
  bool dense;              // a dense layer of c inputs, filters outputs
};

const Shape kShapes[] = {
    {"resnet50_stem_7x7s2_224x224x3", 224, 224, 3, 64, 7, 2, true, false},
    {"resnet50_3x3_56x56x64", 56, 56, 64, 64, 3, 1, true, false},
    {"resnet50_1x1_56x56x64_to_256", 56, 56, 64, 256, 1, 1, true, false},
    {"resnet50_1x1s2_56x56x256_to_512", 56, 56, 256, 512, 1, 2, false, false},
    {"resnet50_3x3_14x14x256", 14, 14, 256, 256, 3, 1, true, false},
    {"resnet50_1x1_7x7x512_to_2048", 7, 7, 512, 2048, 1, 1, true, false},
    {"vgg16_3x3_224x224x64", 224, 224, 64, 64, 3, 1, true, false},
    {"vgg16_3x3_28x28x512", 28, 28, 512, 512, 3, 1, true, false},
    {"vgg16_3x3_14x14x512", 14, 14, 512, 512, 3, 1, true, false},
    {"mobilenetv2_dw3x3s2_112x112x96", 112, 112, 96, 0, 3, 2, true, false},
    {"mobilenetv2_dw3x3_56x56x144", 56, 56, 144, 0, 3, 1, true, false},
    {"mobilenetv2_1x1_56x56x24_to_144", 56, 56, 24, 144, 1, 1, true, false},
    {"mobilenetv2_1x1_56x56x144_to_24", 56, 56, 144, 24, 1, 1, true, false},
    {"dense_2048_to_1000", 1, 1, 2048, 1000, 1, 1, false, true},
    {"dense_25088_to_4096", 1, 1, 25088, 4096, 1, 1, false, true},
};

int threads() { return static_cast<int>(std::thread::hardware_concurrency()); }

double peak_gflops() {
  static const double peak = bench::measure_fma_peak_gflops(threads());
  return peak;
}

// One layer as cnnc's IR, weights and a random input from a fixed seed.
struct Layer {
  ir::Graph graph;
  ir::Tensor input;
  int64_t macs = 0;
};

Layer make_layer(const Shape& s, int batch) {
  std::string text;
  if (s.dense) {
    text = "input x shape=" + std::to_string(s.c) + "\ndense d units=" + std::to_string(s.filters) + "\n";
  } else {
    const int filters = s.filters ? s.filters : s.c;
    text = "input x shape=" + std::to_string(s.h) + "x" + std::to_string(s.w) + "x" + std::to_string(s.c) +
           "\nconv2d c filters=" + std::to_string(filters) + " kernel=" + std::to_string(s.k) + "x" + std::to_string(s.k) +
           " strides=" + std::to_string(s.stride) + "x" + std::to_string(s.stride) +
           " padding=" + (s.same ? "same" : "valid") + (s.filters ? "" : " groups=" + std::to_string(s.c)) + "\n";
  }
  Layer l{ir::parse(text, s.name, batch), {}, 0};
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& n : l.graph.nodes())
    for (auto& p : n.params) {
      p.value.data.resize(static_cast<size_t>(p.value.elements()));
      for (auto& v : p.value.data) v = u(rng) * 0.1f;
    }
  l.input = ir::Tensor(l.graph.node(0).type.shape);
  for (auto& v : l.input.data) v = u(rng);
  const ir::Node& n = l.graph.node(1);
  l.macs = ir::macs(n, ir::input_types(l.graph, n));
  return l;
}

// oneDNN's primitive for the layer, with the layer's weights and input reordered into the
// layouts it chose; run() executes it; output_nhwc() reorders its result for the check.
class OneDnnLayer {
 public:
  OneDnnLayer(const Shape& s, const Layer& l) : eng_(dnnl::engine::kind::cpu, 0), stream_(eng_) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const ir::Node& n = l.graph.node(1);
    const auto& kernel = n.param("kernel")->value;
    const auto& bias = n.param("bias")->value;
    const int64_t N = l.input.shape[0];
    if (s.dense) {
      const dnnl::memory::dims src{N, s.c}, wei{s.filters, s.c}, b{s.filters}, dst{N, s.filters};
      dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, md(src, tag::any), md(wei, tag::any),
                                          md(b, tag::x), md(dst, tag::any));
      dnnl::inner_product_forward::primitive_desc pd(d, eng_);
      prepare(pd, {src, tag::nc}, l.input, {wei, tag::io}, kernel, b, bias, {dst, tag::nc});
      primitive_ = dnnl::inner_product_forward(pd);
      return;
    }
    const ir::TensorType& out = n.type;
    const int64_t C = s.c, F = out.shape[3], K = s.k;
    const auto geo = ir::window_geometry(n, l.graph.node(0).type);
    const dnnl::memory::dims src{N, C, s.h, s.w}, dst{N, F, out.shape[1], out.shape[2]}, b{F};
    const dnnl::memory::dims wei = s.filters ? dnnl::memory::dims{F, C, K, K} : dnnl::memory::dims{C, 1, 1, K, K};
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                      md(src, tag::any), md(wei, tag::any), md(b, tag::x), md(dst, tag::any),
                                      {s.stride, s.stride}, {geo.pad_top, geo.pad_left}, {geo.pad_bottom, geo.pad_right});
    dnnl::convolution_forward::primitive_desc pd(d, eng_);
    // cnnc's kernels are HWIO ([kh][kw][in/groups][out]): hwio, or hwigo for depthwise.
    prepare(pd, {src, tag::nhwc}, l.input, {wei, s.filters ? tag::hwio : tag::hwigo}, kernel, b, bias, {dst, tag::nhwc});
    primitive_ = dnnl::convolution_forward(pd);
  }

  void run() {
    primitive_.execute(stream_, args_);
    stream_.wait();
  }

  std::vector<float> output_nhwc() {
    dnnl::reorder(args_.at(DNNL_ARG_DST), user_dst_).execute(stream_, args_.at(DNNL_ARG_DST), user_dst_);
    stream_.wait();
    return host_dst_;
  }

 private:
  static dnnl::memory::desc md(const dnnl::memory::dims& d, dnnl::memory::format_tag t) {
    return dnnl::memory::desc(d, dnnl::memory::data_type::f32, t);
  }

  // Memory in the primitive's layouts, filled once from cnnc's tensors (the untimed reorders).
  template <class PD>
  void prepare(const PD& pd, std::pair<dnnl::memory::dims, dnnl::memory::format_tag> src, const ir::Tensor& input,
               std::pair<dnnl::memory::dims, dnnl::memory::format_tag> wei, const ir::Tensor& kernel,
               const dnnl::memory::dims& b, const ir::Tensor& bias,
               std::pair<dnnl::memory::dims, dnnl::memory::format_tag> dst) {
    auto from_user = [&](const dnnl::memory::desc& want, const dnnl::memory::desc& have, const ir::Tensor& t) {
      dnnl::memory user(have, eng_, const_cast<float*>(t.data.data()));
      dnnl::memory mem(want, eng_);
      dnnl::reorder(user, mem).execute(stream_, user, mem);
      return mem;
    };
    args_[DNNL_ARG_SRC] = from_user(pd.src_desc(), md(src.first, src.second), input);
    args_[DNNL_ARG_WEIGHTS] = from_user(pd.weights_desc(), md(wei.first, wei.second), kernel);
    args_[DNNL_ARG_BIAS] = from_user(pd.bias_desc(), md(b, dnnl::memory::format_tag::x), bias);
    args_[DNNL_ARG_DST] = dnnl::memory(pd.dst_desc(), eng_);
    host_dst_.resize(static_cast<size_t>(pd.dst_desc().get_size() / sizeof(float)));
    user_dst_ = dnnl::memory(md(dst.first, dst.second), eng_, host_dst_.data());
    stream_.wait();
  }

  dnnl::engine eng_;
  dnnl::stream stream_;
  dnnl::primitive primitive_;
  std::unordered_map<int, dnnl::memory> args_;
  std::vector<float> host_dst_;
  dnnl::memory user_dst_;
};

void set_counters(benchmark::State& state, int64_t macs) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(macs) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MACs"] = static_cast<double>(macs);
}

// The %peak counter from the measured rate (Google Benchmark has no rate-ratio counter).
void add_peak_share(benchmark::State& state, double seconds_per_iteration, int64_t macs) {
  state.counters["%peak"] = 100.0 * 2.0 * static_cast<double>(macs) * 1e-9 / seconds_per_iteration / peak_gflops();
}

// Both kernels on the same input and weights; the relative difference of their outputs.
double disagreement(const Shape& s, int batch) {
  Layer l = make_layer(s, batch);
  OneDnnLayer d(s, l);
  d.run();
  const std::vector<float> want = d.output_nhwc();
  runtime::CompiledModel m(std::move(l.graph), {.threads = threads()});
  const ir::Tensor got = m.run({l.input})[0];
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < got.data.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(got.data[i] - want[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(want[i])));
  }
  return diff / scale;
}

template <class Run>
void timed(benchmark::State& state, int64_t macs, Run run) {
  run();  // warm-up: first-touch of buffers, thread pools started
  auto t0 = std::chrono::steady_clock::now();
  int64_t iterations = 0;
  for (auto _ : state) {
    run();
    ++iterations;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  set_counters(state, macs);
  add_peak_share(state, seconds / static_cast<double>(std::max<int64_t>(1, iterations)), macs);
}

void bm_cnnc(benchmark::State& state, const Shape& s, int batch) {
  if (const double e = disagreement(s, batch); !(e < 1e-4)) {
    state.SkipWithError(("cnnc and oneDNN disagree: max relative difference " + std::to_string(e)).c_str());
    return;
  }
  Layer l = make_layer(s, batch);
  runtime::CompiledModel m(std::move(l.graph), {.threads = threads()});
  m.run({l.input});
  timed(state, l.macs, [&] { m.rerun(); });
}

void bm_onednn(benchmark::State& state, const Shape& s, int batch) {
  omp_set_num_threads(threads());
  Layer l = make_layer(s, batch);
  OneDnnLayer d(s, l);
  timed(state, l.macs, [&] { d.run(); });
}

}  // namespace

int main(int argc, char** argv) {
  cnnc::codegen::set_num_threads(threads());
  for (const Shape& s : kShapes)
    for (int batch : {1, 32}) {
      if (batch == 32 && (s.dense || s.h >= 112)) continue;  // keep the run short: the big ones at batch 1
      const std::string suffix = std::string(s.name) + "/batch:" + std::to_string(batch);
      benchmark::RegisterBenchmark(("cnnc/" + suffix).c_str(), bm_cnnc, s, batch)->UseRealTime()->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("onednn/" + suffix).c_str(), bm_onednn, s, batch)->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
