// The pass pipeline: golden IR before/after, and outputs preserved (against the reference).
#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "ir/error.h"
#include "ir/text.h"
#include "passes/pipeline.h"
#include "runtime/reference/reference.h"
#include "tests/util.h"

using namespace cnnc;

namespace {

std::string optimized(const std::string& text, passes::PipelineOptions opts = {}) {
  return ir::print(passes::optimize(ir::parse(text, "t.cnn"), opts));
}

}  // namespace

TEST_CASE("remove_identities bypasses dropout, including one that is an output") {
  CHECK(optimized("input x shape=4\ndropout d rate=0.5\nrelu r\ndropout e\n", {.disabled = {"choose_tiles"}}) ==
        "network network\n"
        "input x shape=4  # 4\n"
        "relu r           # 4\n");
}

TEST_CASE("dead_code_elimination removes branches no output reads, keeps inputs") {
  CHECK(optimized("input x shape=4\ninput unused shape=2\nrelu dead <- x\nsigmoid s <- x\noutput s\n",
                  {.disabled = {"choose_tiles"}}) ==
        "network network\n"
        "input x shape=4       # 4\n"
        "input unused shape=2  # 2\n"
        "sigmoid s <- x        # 4\n");
}

TEST_CASE("a disabled pass does not run; an unknown pass name is an error naming the passes") {
  passes::PipelineOptions opts;
  opts.disabled = {"remove_identities"};
  CHECK(optimized("input x shape=4\ndropout d\n", opts).find("dropout d") != std::string::npos);
  opts.disabled = {"fold_everything"};
  CHECK_THROWS_WITH_AS(optimized("input x shape=4\n", opts),
                       doctest::Contains("unknown pass 'fold_everything'; the passes are: remove_identities"), Error);
}

TEST_CASE("after_pass sees each pass and whether it changed the graph") {
  passes::PipelineOptions opts;
  std::vector<std::pair<std::string, bool>> seen;
  opts.after_pass = [&](const passes::PipelineOptions::PassRun& r) { seen.emplace_back(r.pass, r.changed); };
  passes::optimize(ir::parse("input x shape=4\ndropout d\nrelu r\n", "t.cnn"), opts);
  CHECK(seen == std::vector<std::pair<std::string, bool>>{{"remove_identities", true},
                                                          {"fold_batchnorm", false},
                                                          {"fuse_padding", false},
                                                          {"fuse_epilogues", false},
                                                          {"subsample_strided_convs", false},
                                                          {"dead_code_elimination", false},
                                                          {"choose_tiles", true}});
}

TEST_CASE("the pipeline preserves the outputs of the example models") {
  std::mt19937 rng(11);
  for (const char* model : {"models/cifar10_cnn.cnn", "models/resnet_mini.cnn", "models/lenet5.cnn"}) {
    CAPTURE(model);
    std::ifstream f(test::source_path(model));
    std::stringstream text;
    text << f.rdbuf();
    ir::Graph g = ir::parse(text.str(), model, 2);
    for (auto& n : g.nodes())
      for (auto& p : n.params) p.value = test::random_tensor(p.value.shape, rng, 0.5f, 1.5f);
    std::vector<ir::Tensor> inputs;
    for (ir::NodeId id : g.inputs()) inputs.push_back(test::random_tensor(g.node(id).type.shape, rng));
    const auto before = runtime::reference::run(g, inputs);
    const auto after = runtime::reference::run(passes::optimize(g), inputs);
    REQUIRE(before.size() == after.size());
    // Folding batchnorm rounds the folded weights once more: not bit-identical.
    for (size_t i = 0; i < before.size(); ++i) test::check_close(after[i], before[i], 1e-5);
  }
}
