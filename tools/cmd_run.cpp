// cnnc run NET: compile for the target (the host CPU by default) and run inference once.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "ir/error.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/weights.h"
#include "tools/commands.h"
#include "tools/prepare.h"

namespace cnnc::tools {

namespace {

struct RunOptions {
  std::string net, input, weights, output, save_weights;
  int64_t batch = 0;
  uint64_t seed = 0;
  int threads = 0;
  PassFlags passes;
};

int run(const RunOptions& o) {
  ir::Tensor given;
  int64_t batch = o.batch;
  if (!o.input.empty()) {
    given = runtime::read_npy(o.input);
    if (given.shape.empty())
      throw Error(o.input + ": a scalar is not an input; give N x H x W x C");
    if (batch == 0) batch = given.shape[0];
  }
  ir::Graph g = load_with_weights(o.net, batch ? batch : 1, o.weights, o.seed);
  // Saved before the passes, so the file fits the network as written.
  if (!o.save_weights.empty()) runtime::save_weights(g, o.save_weights);
  if (!o.input.empty() && g.inputs().size() != 1)
    throw Error(o.net + ": has " + std::to_string(g.inputs().size()) +
                " inputs; --input gives one (leave it out for random inputs)");
  runtime::CompiledModel model(build_program(std::move(g), o.passes, o.threads), o.threads);
  std::vector<ir::Tensor> inputs;
  if (o.input.empty())
    inputs = random_inputs(model.graph(), o.seed);
  else
    inputs.push_back(input_from_user(model.graph(), std::move(given)));
  const auto t0 = std::chrono::steady_clock::now();
  auto outputs = model.run(inputs);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: batch %lld, compiled %zu kernels in %.2f s, ran in %.2f ms\n",
              model.graph().name.c_str(), static_cast<long long>(model.graph().batch()),
              model.kernels().size(), model.program().compile_seconds, ms);
  for (size_t k = 0; k < outputs.size(); ++k) {
    const ir::Tensor t = output_to_user(model.graph(), std::move(outputs[k]));
    const auto& node = model.graph().node(model.graph().outputs()[k]);
    std::printf("output '%s' %s:\n", node.name.c_str(), ir::shape_to_string(t.shape, true).c_str());
    const int64_t per = t.elements() / t.shape[0];
    for (int64_t b = 0; b < std::min<int64_t>(t.shape[0], 8); ++b) {
      const float* row = t.data.data() + b * per;
      const int64_t arg = std::max_element(row, row + per) - row;
      std::printf("  [%lld] argmax %lld (%.6f); first values:", static_cast<long long>(b),
                  static_cast<long long>(arg), row[arg]);
      for (int64_t i = 0; i < std::min<int64_t>(per, 6); ++i) std::printf(" %.6f", row[i]);
      std::printf("\n");
    }
    if (!o.output.empty()) {
      std::string path = o.output;
      if (outputs.size() > 1)
        path = path.substr(0, path.rfind(".npy")) + "_" + std::to_string(k) + ".npy";
      runtime::write_npy(path, t);
      std::printf("  written to %s\n", path.c_str());
    }
  }
  return 0;
}

}  // namespace

Action add_run(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "run", "Compile (Halide kernels for --target, the host CPU by default) and run inference");
  auto o = std::make_shared<RunOptions>();
  sub->add_option("NET", o->net, "network file (.cnn)")->required();
  sub->add_option("--input", o->input,
                  "input tensor (.npy, N x H x W x C float32); random if absent");
  sub->add_option("--batch", o->batch, "batch size (default: the input's first dimension, or 1)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option("--seed", o->seed, "seed for the weights (Glorot-uniform) and the random input");
  sub->add_option("--weights", o->weights,
                  "weights file (.cnnw); initialised from --seed if absent");
  sub->add_option("--save-weights", o->save_weights, "write the weights used to this .cnnw file");
  sub->add_option("-o,--output", o->output, "write the output to this .npy file");
  sub->add_option("--threads", o->threads, "worker threads (0: one per core)")
      ->check(CLI::Range(0, 256));
  add_pass_flags(*sub, o->passes);
  return [o] { return run(*o); };
}

}  // namespace cnnc::tools
