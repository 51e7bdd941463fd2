// The memory plan: two buffers whose lifetimes overlap never share a byte (a property checked on
// random graphs), and reuse makes the arena smaller than one buffer per value.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "ir/text.h"
#include "codegen/compile.h"

using namespace cnnc;

namespace {

// A random DAG of one-shape layers, each reading one or two earlier values, with dropout views;
// every value nothing reads is an output. Failures print the network.
std::string random_network(std::mt19937& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::string channels = std::to_string(1 + pick(8));
  std::string t = "input x shape=" + std::to_string(2 + pick(6)) + "x4x" + channels + "\n";
  std::vector<std::string> names{"x"};
  const int layers = 3 + pick(30);
  for (int i = 0; i < layers; ++i) {
    const std::string name = "v" + std::to_string(i);
    const std::string a = names[static_cast<size_t>(pick(static_cast<int>(names.size())))];
    const std::string b = names[static_cast<size_t>(pick(static_cast<int>(names.size())))];
    switch (pick(4)) {
      case 0: t += "add " + name + " <- " + a + ", " + b + "\n"; break;
      case 1: t += "dropout " + name + " <- " + a + "\n"; break;  // a view of a
      case 2: t += "conv2d " + name + " filters=" + channels + " kernel=1x1 <- " + a + "\n"; break;
      default: t += "relu " + name + " <- " + a + "\n"; break;
    }
    names.push_back(name);
  }
  std::string outputs;
  for (const auto& n : names)
    if (n != "x" && t.find(" " + n + ",") == std::string::npos && t.find(", " + n + "\n") == std::string::npos &&
        t.find("<- " + n + "\n") == std::string::npos)
      outputs += (outputs.empty() ? "output " : ", ") + n;
  return t + outputs + "\n";
}

}  // namespace

TEST_CASE("memory plan: live buffers never overlap, on random graphs, at CPU and GPU alignments") {
  for (unsigned seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    std::string text = random_network(rng);
    CAPTURE(seed);
    CAPTURE(text);
    const ir::Graph g = ir::parse(text, "random.cnn", 1 + static_cast<int64_t>(seed % 3));
    // Odd seeds at a GPU's alignment (OpenCL sub-buffer offsets), even ones at a CPU's.
    const int64_t alignment =
        seed % 2 ? codegen::MemoryPlan::kGpuAlignment : codegen::MemoryPlan::kCpuAlignment;
    const codegen::MemoryPlan p = codegen::plan_memory(g, true, alignment);
    CHECK(p.alignment == alignment);
    int64_t largest = 0;
    for (int i = 0; i < g.size(); ++i) {
      if (p.offset[i] < 0) continue;
      largest = std::max(largest, p.bytes[i]);
      CHECK(p.offset[i] % p.alignment == 0);
      CHECK(p.offset[i] + p.bytes[i] <= p.arena_bytes);
      CHECK(p.bytes[i] >= g.node(i).type.elements() * 4);
      for (int j = 0; j < i; ++j) {
        if (p.offset[j] < 0) continue;
        const bool live_together = p.first[i] <= p.last[j] && p.first[j] <= p.last[i];
        const bool share_bytes = p.offset[i] < p.offset[j] + p.bytes[j] && p.offset[j] < p.offset[i] + p.bytes[i];
        CHECK_MESSAGE(!(live_together && share_bytes), "layers " << g.node(j).name << " and " << g.node(i).name);
      }
    }
    CHECK(p.arena_bytes >= largest);
    CHECK(p.arena_bytes <= p.unshared_bytes);
  }
}

TEST_CASE("memory plan: a chain reuses, a view keeps its source alive, outputs and inputs live to the end") {
  // x -> a -> b -> c -> d: each value is read only by the next, so two buffers suffice... plus
  // the input, which stays for reruns.
  ir::Graph g = ir::parse("input x shape=64\nrelu a\nrelu b\nrelu c\nrelu d\n", "chain.cnn");
  codegen::MemoryPlan p = codegen::plan_memory(g);
  CHECK(p.unshared_bytes == 5 * 256);
  CHECK(p.arena_bytes == 3 * 256);
  CHECK(p.last[0] == g.size());
  CHECK(p.last[4] == g.size());
  // The dropout view v of a is read by c: a must live until c.
  g = ir::parse("input x shape=64\nrelu a\ndropout v\nrelu b <- x\nrelu c <- v\n", "view.cnn");
  p = codegen::plan_memory(g);
  CHECK(p.offset[2] == -1);
  CHECK(p.last[1] == 4);
}
