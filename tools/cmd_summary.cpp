// cnnc summary NET: a Keras-style table of layers, output shapes, parameters and work.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "frontend/load.h"
#include "ir/shape_inference.h"
#include "tools/commands.h"
#include "tools/format.h"

namespace cnnc::tools {

namespace {

std::string keras_shape(const ir::Shape& s) {
  std::string out = "(None";
  for (size_t i = 1; i < s.size(); ++i) out += ", " + std::to_string(s[i]);
  return out + ")";
}

int summary(const std::string& path) {
  const ir::Graph g = frontend::load(path, 1);
  std::printf("Network: %s (%s)\n", g.name.c_str(), path.c_str());
  const char* rule = "──────────────────────────────────────────────────────────────────────────────────────────";
  std::printf("%-30s %-20s %12s %14s  %s\n", "Layer (type)", "Output shape", "Param #", "MACs", "Connected to");
  std::printf("%s\n", rule);
  int64_t params = 0, total_macs = 0;
  int depth = 0;
  for (int i = 0; i < g.size(); ++i) {
    const ir::Node& n = g.node(i);
    const int64_t p = ir::param_count(n), m = ir::macs(n, ir::input_types(g, n));
    params += p;
    total_macs += m;
    if (n.op == ir::OpKind::Conv2D || n.op == ir::OpKind::Conv2DTranspose ||
        n.op == ir::OpKind::Dense)
      ++depth;
    std::string from;
    if (!(n.inputs.size() == 1 && n.inputs[0] == i - 1))
      for (ir::NodeId in : n.inputs) from += (from.empty() ? "" : ", ") + g.node(in).name;
    const std::string label = n.name + " (" + std::string(n.info().text) + ")";
    std::printf("%-30s %-20s %12s %14s  %s\n", label.c_str(), keras_shape(n.type.shape).c_str(),
                with_commas(p).c_str(), with_commas(m).c_str(), from.c_str());
  }
  std::printf("%s\n", rule);
  params += g.folded_params;
  std::printf("Total params: %s (%s of float32 weights)\n", with_commas(params).c_str(),
              bytes(params * 4).c_str());
  if (g.folded_params)
    std::printf("  of which %s were folded into the affine layers above by the importer "
                "(Keras Normalization statistics)\n", with_commas(g.folded_params).c_str());
  std::printf("MACs per image: %s (%.3f GFLOP at 2 flops per MAC)\n", with_commas(total_macs).c_str(),
              2e-9 * static_cast<double>(total_macs));
  std::printf("Depth: %d weight layers (conv2d, conv2d_transpose, dense); %d layers in all\n",
              depth, g.size());
  return 0;
}

}  // namespace

Action add_summary(CLI::App& app) {
  auto* sub = app.add_subcommand("summary", "Print layers, output shapes, parameters and MACs");
  auto path = std::make_shared<std::string>();
  sub->add_option("NET", *path, "network file (.cnn)")->required();
  return [path] { return summary(*path); };
}

}  // namespace cnnc::tools
