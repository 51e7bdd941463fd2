#include "ir/ops.h"

#include <array>
#include <vector>

namespace cnnc::ir {

namespace {
constexpr OpInfo kOps[] = {
#define CNNC_OP(Name, text, Attrs, Pattern, min_in, max_in, traits, doc) \
  {OpKind::Name, text, PatternKind::Pattern, min_in, max_in, traits, doc},
#include "ir/ops.def"
#undef CNNC_OP
};

// Keras' names of the table's activations, where they differ from ours (silu, hard_swish).
struct KerasName {
  OpKind kind;
  std::string_view names;  // space separated
};
constexpr KerasName kKerasNames[] = {
#define CNNC_ACTIVATION(Name, text, keras_names, reference, halide, grad_from, grad_reference, \
                        grad_halide, doc)                                                      \
  {OpKind::Name, keras_names},
#include "ir/activations.def"
#undef CNNC_ACTIVATION
};

// The space-separated words of a Keras-names column.
std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto space = s.find(' ');
    out.push_back(s.substr(0, space));
    if (space == std::string_view::npos) break;
    s.remove_prefix(space + 1);
  }
  return out;
}
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
#define CNNC_OP(Name, text, AttrsT, Pattern, min_in, max_in, traits, doc) \
  case OpKind::Name:                                                      \
    return AttrsT{};
#include "ir/ops.def"
#undef CNNC_OP
  }
  return NoAttrs{};
}

const char* pattern_name(PatternKind p) {
  switch (p) {
    case PatternKind::ElemWise:
      return "elementwise";
    case PatternKind::Broadcast:
      return "broadcast";
    case PatternKind::Injective:
      return "injective";
    case PatternKind::Reduction:
      return "reduction";
    case PatternKind::OutEWiseFusable:
      return "out-elementwise-fusable";
    case PatternKind::Opaque:
      return "opaque";
  }
  return "?";
}

bool is_epilogue_activation(OpKind k) {
  return k == OpKind::ReLU || (op_info(k).traits & kEpilogueActivation);
}
bool is_view(OpKind k) { return op_info(k).traits & kView; }
bool activation_grad_from_output(OpKind k) {
  enum { Input, Output };
  switch (k) {
    case OpKind::ReLU:
    case OpKind::LeakyReLU:
      return true;
#define CNNC_ACTIVATION(Name, text, keras_names, reference, halide, grad_from, grad_reference, \
                        grad_halide, doc)                                                      \
  case OpKind::Name:                                                                           \
    return grad_from == Output;
#include "ir/activations.def"
#undef CNNC_ACTIVATION
    default:
      return false;
  }
}

bool has_activation_grad(OpKind k) {
  return k == OpKind::ReLU || k == OpKind::LeakyReLU || is_epilogue_activation(k);
}

bool has_kernel(OpKind k) {
  return !is_view(k) && k != OpKind::Input && k != OpKind::Parameter;
}

const OpInfo* find_activation(std::string_view name) {
  for (const auto& k : kKerasNames)
    for (std::string_view w : words(k.names))
      if (w == name) return &op_info(k.kind);
  const OpInfo* op = find_op(name);
  return op && (op->traits & kNamedActivation) ? op : nullptr;
}

std::string activation_names() {
  std::string s = "linear";
  for (const auto& op : kOps)
    if (op.traits & kNamedActivation) s += ", " + std::string(op.text);
  for (const auto& k : kKerasNames)
    for (std::string_view w : words(k.names))
      if (w != op_info(k.kind).text) s += ", " + std::string(w);
  return s;
}

std::string_view keras_names(OpKind k) {
  for (const auto& n : kKerasNames)
    if (n.kind == k) return n.names;
  return "";
}

EpilogueRule epilogue_rule(OpKind k) {
  switch (op_info(k).pattern) {
    case PatternKind::OutEWiseFusable:
      return EpilogueRule::AddAndActivation;
    case PatternKind::Broadcast:
      return EpilogueRule::Activation;
    case PatternKind::ElemWise:
    case PatternKind::Injective:
    case PatternKind::Reduction:
    case PatternKind::Opaque:
      return EpilogueRule::None;
  }
  return EpilogueRule::None;
}

}  // namespace cnnc::ir
