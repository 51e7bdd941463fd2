// The layer shapes that dominate ResNet50, VGG16 and MobileNetV2, each timed with cnnc's kernel
// and with oneDNN's (what TensorFlow runs on CPUs) in the same binary, on the same input,
// weights and thread count. Counters: GFLOP/s, % of the FMA peak measured in this run with the
// same thread count (benchmarks/peak.h), MACs, and max_rel_diff: before a shape is timed, its two
// outputs are compared once (max |cnnc - oneDNN| / max |output|); 1e-4 or more skips both sides.
//
// Fairness: both sides have pre-packed weights, packed outside the timed loop (cnnc packs at
// load; oneDNN's are reordered once into the layout its primitive chose with format_tag::any).
// cnnc reads and writes NHWC; oneDNN's source and destination are reordered once into its own
// chosen (blocked) layouts, so its time excludes any reorder from or to NHWC. Both add a bias;
// neither applies an activation.
//
//   build/benchmarks/bench_layers [--benchmark_filter=resnet50] [--benchmark_min_time=0.2]
//                                 [--benchmark_format=json] [--benchmark_out=layers.json]
//
// --net=FILE instead times every distinct conv2d and dense layer of a network in the text form
// after cnnc's passes, each with the schedule recorded on it: what `cnnc compile MODEL --db DB
// --emit graph` prints, so a tuned model's layers meet oneDNN with their tuned schedules. Each
// layer runs alone with a bias and no epilogue (oneDNN's side has none); its name is the
// first layer of that workload, with "_xN" when the model has N of them.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "benchmarks/peak.h"
#include "codegen/compile.h"
#include "ir/schedule.h"
#include "ir/shape_inference.h"
#include "ir/text.h"
#include "passes/choose_tiles.h"
#include "runtime/executor.h"

namespace {

using namespace cnnc;

struct Shape {
  const char* name;
  int h, w, c;             // input, without the batch
  int filters, k, stride;  // filters = 0: depthwise (one filter per channel)
  bool same;               // padding 'same' (else valid, partial windows dropped as in Keras)
  bool dense;              // a dense layer of c inputs, filters outputs
  bool batch32;            // also at batch 32 (a few heavy ones: keeps the whole run short)
};

const Shape kShapes[] = {
    {"resnet50_stem_7x7s2_224x224x3", 224, 224, 3, 64, 7, 2, true, false, false},
    {"resnet50_3x3_56x56x64", 56, 56, 64, 64, 3, 1, true, false, true},
    {"resnet50_1x1_56x56x64_to_256", 56, 56, 64, 256, 1, 1, true, false, true},
    {"resnet50_1x1s2_56x56x256_to_512", 56, 56, 256, 512, 1, 2, false, false, false},
    {"resnet50_3x3_14x14x256", 14, 14, 256, 256, 3, 1, true, false, true},
    {"resnet50_1x1_7x7x512_to_2048", 7, 7, 512, 2048, 1, 1, true, false, false},
    {"vgg16_3x3_224x224x64", 224, 224, 64, 64, 3, 1, true, false, false},
    {"vgg16_3x3_28x28x512", 28, 28, 512, 512, 3, 1, true, false, false},
    {"vgg16_3x3_14x14x512", 14, 14, 512, 512, 3, 1, true, false, false},
    {"mobilenetv2_dw3x3s2_112x112x96", 112, 112, 96, 0, 3, 2, true, false, false},
    {"mobilenetv2_dw3x3_56x56x144", 56, 56, 144, 0, 3, 1, true, false, true},
    {"mobilenetv2_1x1_56x56x24_to_144", 56, 56, 24, 144, 1, 1, true, false, false},
    {"mobilenetv2_1x1_56x56x144_to_24", 56, 56, 144, 24, 1, 1, true, false, true},
    {"dense_2048_to_1000", 1, 1, 2048, 1000, 1, 1, false, true, false},
    {"dense_25088_to_4096", 1, 1, 25088, 4096, 1, 1, false, true, false},
};

int all_cores() { return static_cast<int>(std::thread::hardware_concurrency()); }

// Measured once per thread count, the first time a benchmark with that count finishes.
double peak_gflops(int threads) {
  static std::map<int, double> peaks;
  auto it = peaks.find(threads);
  if (it == peaks.end()) it = peaks.emplace(threads, bench::measure_fma_peak_gflops(threads)).first;
  return it->second;
}

// One layer as cnnc's IR, with random weights and biases (nonzero, unlike init_weights' Keras
// defaults, so that the check covers the bias layout) and a random input, from a fixed seed.
struct Layer {
  ir::Graph graph;
  ir::Tensor input;
  int64_t macs = 0;
};

// A layer to time: a built-in shape, or a layer of --net (its graph: an input and the layer).
struct Case {
  std::string name;
  std::string text;  // the one-layer network, its schedule included where it has one
  bool batch32 = false;
};

std::string shape_text(const Shape& s) {
  const auto str = [](auto v) { return std::to_string(v); };
  if (s.dense) return "input x shape=" + str(s.c) + "\ndense d units=" + str(s.filters) + "\n";
  return "input x shape=" + str(s.h) + "x" + str(s.w) + "x" + str(s.c) +
         "\nconv2d c filters=" + str(s.filters ? s.filters : s.c) + " kernel=" + str(s.k) + "x" +
         str(s.k) + " strides=" + str(s.stride) + "x" + str(s.stride) +
         " padding=" + (s.same ? "same" : "valid round=floor") +
         (s.filters ? "" : " groups=" + str(s.c)) + "\n";
}

// Every distinct conv2d (not transposed) and dense layer of a network after cnnc's passes, alone:
// its input, then the layer with its attributes and schedule, its epilogue and residual dropped.
std::vector<Case> net_cases(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("bench_layers: cannot read --net " + path);
  std::stringstream text;
  text << f.rdbuf();
  const ir::Graph g = ir::parse(text.str(), path);
  std::vector<Case> cases;
  std::map<std::string, std::pair<size_t, int>> seen;  // workload key -> (case, layers)
  for (const ir::Node& n : g.nodes()) {
    if (n.op != ir::OpKind::Conv2D && n.op != ir::OpKind::Dense) continue;
    ir::Graph one;
    ir::Node in;
    in.name = "x";
    in.op = ir::OpKind::Input;
    const std::vector<int64_t>& shape = g.node(n.inputs[0]).type.shape;
    in.attrs = ir::InputAttrs{ir::Shape(shape.begin() + 1, shape.end())};
    one.add(in);
    ir::Node layer = n;
    layer.name = "layer";
    layer.inputs = {0};
    layer.epilogue = {};
    layer.line = 0;
    if (auto* c = std::get_if<ir::Conv2DAttrs>(&layer.attrs)) c->use_bias = true;
    if (auto* d = std::get_if<ir::DenseAttrs>(&layer.attrs)) d->use_bias = true;
    one.add(layer);
    const std::string key = ir::workload_key(one, one.node(1)) + " " + ir::to_text(layer.schedule);
    auto it = seen.find(key);
    if (it != seen.end()) {
      ++it->second.second;
      continue;
    }
    seen.emplace(key, std::pair{cases.size(), 1});
    cases.push_back({n.name, ir::print(one), false});
  }
  for (const auto& [key, at] : seen)
    if (at.second > 1) cases[at.first].name += "_x" + std::to_string(at.second);
  return cases;
}

Layer make_layer(const Case& s, int batch) {
  Layer l{ir::parse(s.text, s.name, batch), {}, 0};
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& n : l.graph.nodes())
    for (auto& p : n.params) {
      p.value.data.resize(static_cast<size_t>(p.value.elements()));
      for (auto& v : p.value.data) v = u(rng) * 0.1f;
    }
  l.input = ir::Tensor(l.graph.node(0).type.shape);
  for (auto& v : l.input.data) v = u(rng);
  // The schedule cnnc would give this layer on this machine, at the batch its kernel runs (a
  // schedule the layer already has, as --net's do, is kept).
  const passes::TilingOptions tiling{codegen::describe_target("host"), codegen::choose_micro_batch(l.graph, 0), true};
  l.graph = passes::choose_tiles(std::move(l.graph), tiling);
  const ir::Node& n = l.graph.node(1);
  l.macs = ir::macs(n, ir::input_types(l.graph, n));
  return l;
}

// oneDNN's primitive for the layer, with the layer's weights and input reordered into the
// layouts it chose; run() executes it; output_nhwc() reorders its result for the check.
class OneDnnLayer {
 public:
  explicit OneDnnLayer(const Layer& l) : eng_(dnnl::engine::kind::cpu, 0), stream_(eng_) {
    using tag = dnnl::memory::format_tag;
    const ir::Node& n = l.graph.node(1);
    const ir::TensorType& in = l.graph.node(0).type;
    const ir::Tensor& kernel = n.param("kernel")->value;
    const ir::Tensor& bias = n.param("bias")->value;
    const int64_t N = l.input.shape[0];
    if (n.op == ir::OpKind::Dense) {
      // cnnc's dense kernel is (in, out): oneDNN's {out, in} dims in tag io.
      const int64_t C = kernel.shape[0], F = kernel.shape[1];
      const dnnl::memory::dims src{N, C}, wei{F, C}, b{F}, dst{N, F};
      dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, md(src, tag::any), md(wei, tag::any),
                                          md(b, tag::x), md(dst, tag::any));
      dnnl::inner_product_forward::primitive_desc pd(d, eng_);
      prepare(pd, md(src, tag::nc), l.input, md(wei, tag::io), kernel, md(b, tag::x), bias, md(dst, tag::nc));
      primitive_ = dnnl::inner_product_forward(pd);
      return;
    }
    const auto& a = n.attr<ir::Conv2DAttrs>();
    // cnnc's kernels are HWIO ([kh][kw][in/groups][out]).
    const int64_t KH = kernel.shape[0], KW = kernel.shape[1], IG = kernel.shape[2],
                  F = kernel.shape[3];
    const int64_t G = a.groups, C = IG * G;
    const ir::TensorType& out = n.type;
    const auto geo = ir::window_geometry(n, in);
    const dnnl::memory::dims src{N, C, in.shape[1], in.shape[2]},
        dst{N, F, out.shape[1], out.shape[2]}, b{F};
    // Grouped (depthwise too): weights {G, O/G, I/G, KH, KW}, which HWIO stores as hwigo.
    const dnnl::memory::dims wei =
        G == 1 ? dnnl::memory::dims{F, C, KH, KW} : dnnl::memory::dims{G, F / G, IG, KH, KW};
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, md(src, tag::any),
        md(wei, tag::any), md(b, tag::x), md(dst, tag::any), {a.strides.h, a.strides.w},
        {a.dilation.h - 1, a.dilation.w - 1}, {geo.pad_top, geo.pad_left},
        {geo.pad_bottom, geo.pad_right});
    dnnl::convolution_forward::primitive_desc pd(d, eng_);
    prepare(pd, md(src, tag::nhwc), l.input, md(wei, G == 1 ? tag::hwio : tag::hwigo), kernel,
            md(b, tag::x), bias, md(dst, tag::nhwc));
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
  // The *_user descriptors say how cnnc's tensors are laid out.
  template <class PD>
  void prepare(const PD& pd, const dnnl::memory::desc& src_user, const ir::Tensor& input,
               const dnnl::memory::desc& wei_user, const ir::Tensor& kernel, const dnnl::memory::desc& bias_user,
               const ir::Tensor& bias, const dnnl::memory::desc& dst_user) {
    auto from_user = [&](const dnnl::memory::desc& want, const dnnl::memory::desc& have, const ir::Tensor& t) {
      dnnl::memory user(have, eng_, const_cast<float*>(t.data.data()));
      dnnl::memory mem(want, eng_);
      dnnl::reorder(user, mem).execute(stream_, user, mem);
      return mem;
    };
    args_[DNNL_ARG_SRC] = from_user(pd.src_desc(), src_user, input);
    args_[DNNL_ARG_WEIGHTS] = from_user(pd.weights_desc(), wei_user, kernel);
    args_[DNNL_ARG_BIAS] = from_user(pd.bias_desc(), bias_user, bias);
    args_[DNNL_ARG_DST] = dnnl::memory(pd.dst_desc(), eng_);
    host_dst_.resize(dst_user.get_size() / sizeof(float));
    user_dst_ = dnnl::memory(dst_user, eng_, host_dst_.data());
    stream_.wait();
  }

  dnnl::engine eng_;
  dnnl::stream stream_;
  dnnl::primitive primitive_;
  std::unordered_map<int, dnnl::memory> args_;
  std::vector<float> host_dst_;
  dnnl::memory user_dst_;
};

// Max |cnnc - oneDNN| over max |oneDNN| on the same input and weights, with all cores.
double disagreement(const Case& s, int batch) {
  Layer l = make_layer(s, batch);
  omp_set_num_threads(all_cores());
  OneDnnLayer d(l);
  d.run();
  const std::vector<float> want = d.output_nhwc();
  runtime::CompiledModel m(codegen::compile(std::move(l.graph)), all_cores());
  const ir::Tensor got = m.run({l.input})[0];
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < got.data.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(got.data[i] - want[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(want[i])));
  }
  return diff / scale;
}

// Checks the shape once (for every thread count and both sides); false: skipped with an error.
bool verified(benchmark::State& state, const Case& s, int batch) {
  static std::map<std::pair<std::string, int>, double> checked;  // each side times a copy
  auto it = checked.find({s.name, batch});
  if (it == checked.end())
    it = checked.emplace(std::pair{s.name, batch}, disagreement(s, batch)).first;
  state.counters["max_rel_diff"] = it->second;
  if (it->second < 1e-4) return true;
  state.SkipWithError(("cnnc and oneDNN disagree: max |diff| / max |output| = " + std::to_string(it->second)).c_str());
  return false;
}

// Rates over Google Benchmark's own (real) time per iteration (the console prints them with "/s").
void set_counters(benchmark::State& state, int64_t macs, int threads) {
  const double gflop = 2.0 * static_cast<double>(macs) * 1e-9;
  state.counters["GFLOP/s"] = benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["%peak"] =
      benchmark::Counter(100.0 * gflop / peak_gflops(threads), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MACs"] = static_cast<double>(macs);
}

void bm_cnnc(benchmark::State& state, const Case& s, int batch, int threads) {
  if (!verified(state, s, batch)) return;
  Layer l = make_layer(s, batch);
  runtime::CompiledModel m(codegen::compile(std::move(l.graph)), threads);
  m.run({l.input});  // sets the input; warm-up (first touch, worker pool started)
  for (auto _ : state) m.rerun();
  set_counters(state, l.macs, threads);
}

void bm_onednn(benchmark::State& state, const Case& s, int batch, int threads) {
  if (!verified(state, s, batch)) return;
  omp_set_num_threads(threads);  // oneDNN is built with OpenMP: its parallel regions take this
  Layer l = make_layer(s, batch);
  OneDnnLayer d(l);
  d.run();  // warm-up (first touch, OpenMP team started, JIT kernels generated)
  for (auto _ : state) d.run();
  set_counters(state, l.macs, threads);
}

}  // namespace

int main(int argc, char** argv) {
  // --net=FILE (ours) is taken out before Google Benchmark reads the rest.
  std::string net;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--net=", 6) == 0)
      net = argv[i] + 6;
    else
      argv[kept++] = argv[i];
  }
  argc = kept;
  static std::vector<Case> cases;
  try {
    if (!net.empty()) cases = net_cases(net);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  if (net.empty())
    for (const Shape& s : kShapes) cases.push_back({s.name, shape_text(s), s.batch32});
  using Bench = void (*)(benchmark::State&, const Case&, int, int);
  const std::pair<std::string, Bench> sides[] = {{"cnnc/", bm_cnnc}, {"onednn/", bm_onednn}};
  std::vector<int> thread_counts{1};
  if (all_cores() > 1) thread_counts.push_back(all_cores());
  // All of cnnc's runs, then all of oneDNN's: libgomp's workers keep spinning for a while after
  // each oneDNN call, and interleaved they took a core from cnnc's next run (cnnc's small
  // kernels ran slower on 2 threads than on 1). The report pairs them by name.
  for (const auto& [side, fn] : sides)
    for (const Case& s : cases)
      for (int batch : {1, 32}) {
        if (batch == 32 && !s.batch32) continue;
        for (int t : thread_counts) {
          const std::string suffix =
              s.name + "/batch:" + std::to_string(batch) + "/threads:" + std::to_string(t);
          benchmark::RegisterBenchmark((side + suffix).c_str(), fn, s, batch, t)->UseRealTime()->Unit(benchmark::kMillisecond);
        }
      }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
