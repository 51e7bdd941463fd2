#include "ir/ops.h"

#include <array>

namespace cnnc::ir {

namespace {
constexpr OpInfo kOps[] = {
#define CNNC_OP(Name, text, Attrs, Pattern, min_in, max_in, doc) \
  {OpKind::Name, text, PatternKind::Pattern, min_in, max_in, doc},
#include "ir/ops.def"
#undef CNNC_OP
};
}  // namespace

const OpInfo& op_info(OpKind k) { return kOps[static_cast<int>(k)]; }

const OpInfo* find_op(std::string_view text) {
  for (const auto& op : kOps)
    if (op.text == text) return &op;
  return nullptr;
}

std::string op_names() {
  std::string s;
  for (const auto& op : kOps) {
    if (!s.empty()) s += ", ";
    s += op.text;
  }
  return s;
}

Attrs default_attrs(OpKind k) {
  switch (k) {
#define CNNC_OP(Name, text, AttrsT, Pattern, min_in, max_in, doc) \
  case OpKind::Name:                                             \
    return AttrsT{};
#include "ir/ops.def"
#undef CNNC_OP
  }
  return NoAttrs{};
}

const char* pattern_name(PatternKind p) {
  switch (p) {
    case PatternKind::ElemWise: return "elementwise";
    case PatternKind::Broadcast: return "broadcast";
    case PatternKind::Injective: return "injective";
    case PatternKind::Reduction: return "reduction";
    case PatternKind::OutEWiseFusable: return "out-elementwise-fusable";
    case PatternKind::Opaque: return "opaque";
  }
  return "?";
}

}  // namespace cnnc::ir
