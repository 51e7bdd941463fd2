#include "passes/subsample_strided_convs.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "ir/error.h"
#include "ir/shape_inference.h"
#include "passes/rewrite.h"

namespace cnnc::passes {

namespace {

bool unpadded(const ir::WindowGeometry& geo) {
  return geo.pad_top == 0 && geo.pad_bottom == 0 && geo.pad_left == 0 && geo.pad_right == 0;
}

// A 1x1 conv2d without padding (as resolved against its input); strided or not.
bool pointwise_conv(const ir::Graph& g, const ir::Node& n, bool strided) {
  if (n.op != ir::OpKind::Conv2D) return false;
  const auto& a = n.attr<ir::Conv2DAttrs>();
  const bool unit = a.strides.h == 1 && a.strides.w == 1;
  return a.kernel.h == 1 && a.kernel.w == 1 && unit != strided &&
         unpadded(ir::window_geometry(n, g.node(n.inputs[0]).type));
}

// A 1x1 maxpool2d without padding or epilogue: a strided copy of its input's pixels.
bool subsample(const ir::Graph& g, const ir::Node& n) {
  if (n.op != ir::OpKind::MaxPool2D || !(n.epilogue == ir::Epilogue{})) return false;
  const auto& a = n.attr<ir::Pool2DAttrs>();
  return a.pool.h == 1 && a.pool.w == 1 &&
         unpadded(ir::window_geometry(n, g.node(n.inputs[0]).type));
}

// Builds the rewritten graph node by node, with one subsampled copy per value and stride.
class Builder {
 public:
  explicit Builder(const ir::Graph& g) : out(empty_like(g)), new_id(g.size(), -1) {}

  // The copy of every stride-th pixel of `value` (an id in `out`).
  ir::NodeId subsampled(ir::NodeId value, ir::Pair stride, int line) {
    const auto key = std::tuple{value, stride.h, stride.w};
    if (auto it = copies_.find(key); it != copies_.end()) return it->second;
    ir::Node pool;
    const std::string base = out.node(value).name + "_subsample_" + std::to_string(stride.h) + "x" +
                             std::to_string(stride.w);
    pool.name = base;
    for (int i = 2; out.find(pool.name) >= 0; ++i) pool.name = base + "_" + std::to_string(i);
    pool.op = ir::OpKind::MaxPool2D;
    ir::Pool2DAttrs p;
    p.pool = {1, 1};
    p.strides = stride;
    p.round = ir::Rounding::Floor;  // (in - 1) / stride + 1 pixels, as an unpadded 1x1 conv's
    pool.attrs = p;
    pool.inputs = {value};
    pool.line = line;
    return copies_[key] = out.add(std::move(pool));
  }

  ir::Graph finish(const ir::Graph& g) {
    copy_outputs(g, new_id, out);
    return std::move(out);
  }

  ir::Graph out;
  std::vector<ir::NodeId> new_id;

 private:
  std::map<std::tuple<ir::NodeId, int64_t, int64_t>, ir::NodeId> copies_;
};

// Step 1: every strided, unpadded 1x1 conv reads a subsampled copy at stride 1.
ir::Graph split_strided(ir::Graph g) {
  std::vector<bool> strided(g.size());
  for (int i = 0; i < g.size(); ++i) strided[i] = pointwise_conv(g, g.node(i), true);
  if (std::find(strided.begin(), strided.end(), true) == strided.end()) return g;
  Builder b(g);
  for (int i = 0; i < g.size(); ++i) {
    ir::Node n = std::move(g.node(i));
    for (auto& in : n.inputs) in = b.new_id[in];
    if (strided[i]) {
      auto& a = std::get<ir::Conv2DAttrs>(n.attrs);
      n.inputs[0] = b.subsampled(n.inputs[0], a.strides, n.line);
      a.strides = a.dilation = {1, 1};  // a 1x1 kernel is one tap at any dilation
      a.padding = {};
      a.round = ir::Rounding::Exact;
      n.schedule = {};  // one chosen for the strided conv is another workload's
    }
    const std::vector<int64_t> shape = n.type.shape;
    b.new_id[i] = b.out.add(std::move(n));
    internal_assert(
        b.out.node(b.new_id[i]).type.shape == shape,
        "subsampling changed the output shape of '" + b.out.node(b.new_id[i]).name + "'");
  }
  return b.finish(g);
}

// Step 2, once: each subsampled copy of a stride-1 1x1 conv that only the copy reads is replaced
// by that conv computing the copy's pixels from copies of its input and residual. False if none.
bool hoist_once(ir::Graph& g) {
  const Uses uses = find_uses(g);
  std::vector<ir::Pair> hoisted(g.size(), ir::Pair{0, 0});  // conv -> the stride it computes at
  std::vector<ir::NodeId> replaced_by(g.size(), -1);        // copy -> the conv that replaces it
  bool any = false;
  for (int i = 0; i < g.size(); ++i) {
    const ir::Node& copy = g.node(i);
    if (!subsample(g, copy)) continue;
    const ir::NodeId conv = copy.inputs[0];
    if (uses.sole_reader(conv) != i || !pointwise_conv(g, g.node(conv), false)) continue;
    hoisted[conv] = copy.attr<ir::Pool2DAttrs>().effective_strides();
    replaced_by[i] = conv;
    any = true;
  }
  if (!any) return false;
  Builder b(g);
  for (int i = 0; i < g.size(); ++i) {
    if (replaced_by[i] >= 0) {
      internal_assert(b.out.node(b.new_id[replaced_by[i]]).type == g.node(i).type,
                      "a hoisted subsampling changed the shape of '" + g.node(i).name + "'");
      b.new_id[i] = b.new_id[replaced_by[i]];
      continue;
    }
    ir::Node n = std::move(g.node(i));
    for (auto& in : n.inputs) in = b.new_id[in];
    if (hoisted[i].h) {
      for (auto& in : n.inputs) in = b.subsampled(in, hoisted[i], n.line);  // input, residual
      n.schedule = {};
    }
    b.new_id[i] = b.out.add(std::move(n));
  }
  g = b.finish(g);
  return true;
}

}  // namespace

ir::Graph subsample_strided_convs(ir::Graph g) {
  g = split_strided(std::move(g));
  while (hoist_once(g)) {
  }
  return g;
}

}  // namespace cnnc::passes
