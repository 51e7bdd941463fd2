#include "ir/ops.h"

#include <utility>

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

bool is_epilogue_activation(OpKind k) {
  return k == OpKind::ReLU || k == OpKind::ReLU6 || k == OpKind::Sigmoid || k == OpKind::Tanh ||
         k == OpKind::Swish || k == OpKind::HardSigmoid;
}

const Epilogue* epilogue_of(const Attrs& a) {
  if (const auto* c = std::get_if<Conv2DAttrs>(&a)) return &c->epilogue;
  if (const auto* d = std::get_if<DenseAttrs>(&a)) return &d->epilogue;
  if (const auto* b = std::get_if<BatchNormAttrs>(&a)) return &b->epilogue;
  if (const auto* f = std::get_if<AffineAttrs>(&a)) return &f->epilogue;
  return nullptr;
}
Epilogue* epilogue_of(Attrs& a) { return const_cast<Epilogue*>(epilogue_of(std::as_const(a))); }

const Schedule* schedule_of(const Attrs& a) {
  if (const auto* c = std::get_if<Conv2DAttrs>(&a)) return &c->schedule;
  if (const auto* d = std::get_if<DenseAttrs>(&a)) return &d->schedule;
  return nullptr;
}
Schedule* schedule_of(Attrs& a) { return const_cast<Schedule*>(schedule_of(std::as_const(a))); }

}  // namespace cnnc::ir
