#include "passes/fuse_padding.h"

#include "ir/shape_inference.h"
#include "passes/rewrite.h"

namespace cnnc::passes {

ir::Graph fuse_padding(ir::Graph g) {
  const Uses uses = find_uses(g);
  std::vector<ir::NodeId> replacement(g.size());
  for (int i = 0; i < g.size(); ++i) {
    replacement[i] = i;
    ir::Node& conv = g.node(i);
    if (conv.op != ir::OpKind::Conv2D) continue;
    const ir::NodeId p = conv.inputs[0];
    const ir::Node& pad = g.node(p);
    if (pad.op != ir::OpKind::ZeroPadding2D || uses.sole_reader(p) != i) continue;
    // The conv's own padding as four amounts ('same' resolved against the padded input).
    const auto geo = ir::window_geometry(conv, pad.type);
    const ir::Padding& extra = pad.attr<ir::PadAttrs>().pad;
    auto& a = std::get<ir::Conv2DAttrs>(conv.attrs);
    a.padding = {ir::Padding::Explicit, geo.pad_top + extra.top, geo.pad_bottom + extra.bottom,
                 geo.pad_left + extra.left, geo.pad_right + extra.right};
    conv.inputs[0] = pad.inputs[0];
    conv.absorbed.insert(conv.absorbed.begin(), pad.name);
    replacement[p] = -1;
  }
  return rebuild(std::move(g), replacement);
}

}  // namespace cnnc::passes
