#include "ir/dot.h"

#include <sstream>

#include "ir/text.h"

namespace cnnc::ir {

namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {  // Graphviz's line break
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string label(const Node& n) {
  std::string attrs = print_attrs(n);
  if (attrs.size() > 48) attrs = attrs.substr(0, 45) + "...";
  return quoted(n.name + "\n" + std::string(n.info().text) + attrs + "\n" + shape_to_string(n.type.shape, true));
}

void edges(std::ostringstream& os, const Graph& g, const std::string& prefix) {
  for (int i = 0; i < g.size(); ++i)
    for (NodeId in : g.node(i).inputs) os << "  " << prefix << in << " -> " << prefix << i << ";\n";
}

}  // namespace

std::string to_dot(const Graph& before, const Graph& after) {
  std::ostringstream os;
  os << "digraph " << quoted(after.name) << " {\n  node [shape=box, fontsize=9, fontname=\"monospace\"];\n";
  os << "  subgraph cluster_before {\n    label=" << quoted("before the passes: " + std::to_string(before.size()) + " layers")
     << ";\n";
  for (int i = 0; i < before.size(); ++i) os << "    b" << i << " [label=" << label(before.node(i)) << "];\n";
  os << "  }\n";
  edges(os, before, "b");
  int fused = 0;
  for (const Node& n : after.nodes()) fused += !n.absorbed.empty();
  os << "  subgraph cluster_after {\n    label=" << quoted("after the passes: " + std::to_string(after.size()) + " layers, " +
                                                      std::to_string(fused) + " fused groups")
     << ";\n";
  for (int i = 0; i < after.size(); ++i) {
    const Node& n = after.node(i);
    if (n.absorbed.empty()) {
      os << "    a" << i << " [label=" << label(n) << "];\n";
      continue;
    }
    // The group: the kernel's own node, then the layers it absorbed, in order.
    os << "    subgraph cluster_group" << i << " {\n      style=filled; color=lightblue; label="
       << quoted("one kernel: " + n.name) << ";\n      a" << i << " [label=" << label(n) << ", style=filled, fillcolor=white];\n";
    for (size_t k = 0; k < n.absorbed.size(); ++k)
      os << "      a" << i << "_" << k << " [label=" << quoted(n.absorbed[k]) << ", shape=ellipse, style=dashed];\n";
    os << "      a" << i;
    for (size_t k = 0; k < n.absorbed.size(); ++k) os << " -> a" << i << "_" << k;
    os << " [style=dashed, arrowhead=none];\n    }\n";
  }
  os << "  }\n";
  edges(os, after, "a");
  os << "}\n";
  return os.str();
}

}  // namespace cnnc::ir
