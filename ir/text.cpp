#include "ir/text.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <iterator>
#include <map>
#include <sstream>

#include "ir/error.h"
#include "ir/shape_inference.h"

namespace cnnc::ir {

namespace {

// ---- attribute values to text ----
std::string to_text(int64_t v) { return std::to_string(v); }
std::string to_text(bool v) { return v ? "true" : "false"; }
std::string to_text(float v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
std::string to_text(const Pair& p) { return std::to_string(p.h) + "x" + std::to_string(p.w); }
std::string to_text(const Shape& s) { return shape_to_string(s, /*with_batch=*/true); }
std::string to_text(OpKind k) { return std::string(op_info(k).text); }
std::string to_text(Rounding r) { return r == Rounding::Exact ? "exact" : "floor"; }
std::string to_text(Interpolation i) {
  return i == Interpolation::Nearest ? "nearest" : "bilinear";
}
std::string to_text(const Epilogue& e) {
  if (!e.add && !e.has_activation) return "none";
  const std::string act = e.has_activation ? std::string(op_info(e.activation).text) : "";
  return e.add ? (act.empty() ? "add" : "add+" + act) : act;
}
std::string to_text(const Padding& p) {
  if (p.mode == Padding::Valid) return "valid";
  if (p.mode == Padding::Same) return "same";
  if (p.top == p.bottom && p.top == p.left && p.top == p.right) return std::to_string(p.top);
  return std::to_string(p.top) + "," + std::to_string(p.bottom) + "," + std::to_string(p.left) +
         "," + std::to_string(p.right);
}

// Prints the fields that are required or differ from the default.
template <class A>
struct AttrPrinter {
  std::string out;
  A defaults{};
  const A* self;
  template <class T>
  void operator()(const char* key, const T& value, bool required = false) {
    // The default of the same field: found by offset into the default struct.
    const auto offset = reinterpret_cast<const char*>(&value) - reinterpret_cast<const char*>(self);
    const T& def = *reinterpret_cast<const T*>(reinterpret_cast<const char*>(&defaults) + offset);
    if (required || !(value == def)) out += " " + std::string(key) + "=" + to_text(value);
  }
};

// ---- text to attribute values ----
bool parse_int(std::string_view s, int64_t& v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return parts;
}
bool from_text(std::string_view s, int64_t& v) { return parse_int(s, v); }
bool from_text(std::string_view s, bool& v) {
  if (s == "true") return v = true, true;
  if (s == "false") return v = false, true;
  return false;
}
bool from_text(std::string_view s, float& v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}
bool from_text(std::string_view s, Pair& p) {
  auto parts = split(s, 'x');
  if (parts.size() == 1) return parse_int(parts[0], p.h) && parse_int(parts[0], p.w);
  return parts.size() == 2 && parse_int(parts[0], p.h) && parse_int(parts[1], p.w);
}
bool from_text(std::string_view s, Shape& shape) {
  shape.clear();
  for (auto part : split(s, 'x')) {
    int64_t d;
    if (!parse_int(part, d) || d < 1) return false;
    shape.push_back(d);
  }
  return true;
}
bool from_text(std::string_view s, OpKind& k) {
  const OpInfo* op = find_op(s);
  if (op) k = op->kind;
  return op != nullptr;
}
bool from_text(std::string_view s, Rounding& r) {
  if (s == "exact") return r = Rounding::Exact, true;
  if (s == "floor") return r = Rounding::Floor, true;
  return false;
}
bool from_text(std::string_view s, Interpolation& i) {
  if (s == "nearest") return i = Interpolation::Nearest, true;
  if (s == "bilinear") return i = Interpolation::Bilinear, true;
  return false;
}
bool from_text(std::string_view s, Epilogue& e) {
  e = Epilogue{};
  if (s == "none") return true;
  auto parts = split(s, '+');
  size_t i = 0;
  if (parts[0] == "add") e.add = true, ++i;
  if (i == parts.size()) return e.add;
  const OpInfo* op = find_op(parts[i]);
  if (!op || !is_epilogue_activation(op->kind) || i + 1 != parts.size()) return false;
  e.has_activation = true;
  e.activation = op->kind;
  return true;
}
bool from_text(std::string_view s, Padding& p) {
  if (s == "valid") return p = Padding{}, true;
  if (s == "same") return p = Padding{Padding::Same}, true;
  auto parts = split(s, ',');
  int64_t v[4];
  if (parts.size() == 1 && parse_int(parts[0], v[0]) && v[0] >= 0)
    return p = Padding{Padding::Explicit, v[0], v[0], v[0], v[0]}, true;
  if (parts.size() != 4) return false;
  for (int i = 0; i < 4; ++i)
    if (!parse_int(parts[i], v[i]) || v[i] < 0) return false;
  return p = Padding{Padding::Explicit, v[0], v[1], v[2], v[3]}, true;
}

const char* accepted(int64_t*) { return "an integer"; }
const char* accepted(bool*) { return "true or false"; }
const char* accepted(float*) { return "a number"; }
const char* accepted(Pair*) { return "HxW like 3x3, or one number for both"; }
const char* accepted(Shape*) { return "positive sizes like 32x32x3"; }
const char* accepted(OpKind*) { return "an op name (relu, sigmoid, ...)"; }
const char* accepted(Rounding*) { return "exact or floor"; }
const char* accepted(Interpolation*) { return "nearest or bilinear"; }
const char* accepted(Padding*) { return "valid, same, P, or top,bottom,left,right"; }
std::string epilogue_syntax(OpKind op) {
  std::string acts;
  for (int k = 0; k < kNumOps; ++k)
    if (is_epilogue_activation(static_cast<OpKind>(k)))
      acts += (acts.empty() ? "" : ", ") + std::string(op_info(static_cast<OpKind>(k)).text);
  return (epilogue_rule(op) == EpilogueRule::AddAndActivation ? "none, add, ACT or add+ACT"
                                                              : "none or ACT") +
         std::string(" with ACT one of ") + acts;
}

// Sets one field by key; collects the field names and which required ones were seen.
struct AttrSetter {
  std::string_view key, value;
  bool found = false;
  std::string error;
  std::vector<std::string> keys, required;
  template <class T>
  void operator()(const char* k, T& field, bool req = false) {
    keys.push_back(k);
    if (req) required.push_back(k);
    if (key != k) return;
    found = true;
    if (!from_text(value, field))
      error = "attribute '" + std::string(k) + "': '" + std::string(value) + "' is not " +
              accepted(static_cast<T*>(nullptr));
  }
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

bool valid_name(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
          c == '/'))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> w;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) w.push_back(s.substr(i, j - i));
    i = j;
  }
  return w;
}

// The most layers (activation layers from `activation=` included) a network may have.
constexpr int kMaxLayers = 10000;

}  // namespace

namespace {
// The op's attributes and its epilogue: what the kernel computes.
std::string print_semantics(const Node& n) {
  std::string s = std::visit(
      [&](const auto& a) {
        using A = std::decay_t<decltype(a)>;
        AttrPrinter<A> p;
        p.self = &a;
        const_cast<A&>(a).visit(p);
        return p.out;
      },
      n.attrs);
  if (!(n.epilogue == Epilogue{})) s += " epilogue=" + to_text(n.epilogue);
  return s;
}
}  // namespace

std::string print_attrs(const Node& n) {
  std::string s = print_semantics(n);
  if (n.schedule.kind != ScheduleKind::None) s += " schedule=" + to_text(n.schedule);
  return s;
}

std::string workload_key(const Graph& g, const Node& n) {
  std::string s = std::string(n.info().text) + print_semantics(n) + " in";
  for (NodeId in : n.inputs) s += " " + shape_to_string(g.node(in).type.shape, true);
  s += " out " + shape_to_string(n.type.shape, true) + " params";
  for (const Param& p : n.params) s += " " + p.role + ":" + shape_to_string(p.value.shape, true);
  return s;
}

std::string print(const Graph& g) {
  std::ostringstream os;
  os << "network " << g.name << "\n";
  std::vector<std::string> lines, comments;
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g.node(i);
    std::string line = std::string(n.info().text) + " " + n.name + print_attrs(n);
    if (!n.inputs.empty() && !(n.inputs.size() == 1 && n.inputs[0] == i - 1)) {
      line += " <-";
      for (size_t k = 0; k < n.inputs.size(); ++k)
        line += (k ? ", " : " ") + g.node(n.inputs[k]).name;
    }
    lines.push_back(line);
    comments.push_back(shape_to_string(n.type.shape, (n.info().traits & kNoBatch) != 0));
  }
  size_t width = 0;
  for (const auto& l : lines) width = std::max(width, std::min<size_t>(l.size(), 64));
  for (size_t i = 0; i < lines.size(); ++i)
    os << lines[i] << std::string(width - std::min(width, lines[i].size()) + 2, ' ') << "# "
       << comments[i] << "\n";
  const auto outs = g.outputs();
  if (!(outs.size() == 1 && outs[0] == g.size() - 1)) {
    os << "output";
    for (size_t k = 0; k < outs.size(); ++k) os << (k ? ", " : " ") << g.node(outs[k]).name;
    os << "\n";
  }
  return os.str();
}

Graph parse(std::string_view text, const std::string& source, int64_t batch) {
  Graph g;
  g.source = source;
  if (batch < 1) throw Error(source + ": batch size must be >= 1");
  g.set_batch(batch);
  std::map<std::string, NodeId, std::less<>> ref;  // declared name -> the node it denotes
  NodeId prev = -1;
  int line_no = 0;
  std::vector<NodeId> outputs;
  bool seen_layer = false;

  auto resolve = [&](std::string_view name, auto&& fail) {
    auto it = ref.find(name);
    if (it != ref.end()) return it->second;
    NodeId id = g.find(name);
    if (id >= 0) return id;
    fail("unknown input '" + std::string(name) + "': inputs must name a layer defined above");
    return -1;
  };

  for (std::string_view rest = text; !rest.empty() || line_no == 0;) {
    ++line_no;
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    const std::string here = source + ":" + std::to_string(line_no);
    auto fail = [&](const std::string& msg) -> void { throw Error(here + ": " + msg); };
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) {
      if (rest.empty()) break;
      continue;
    }
    for (char c : line)
      if (static_cast<unsigned char>(c) < 32 && c != '\t' && c != '\r')
        fail("control character in the line; the format is plain text");

    // Split off the inputs: "<- a, b".
    std::string_view inputs_text;
    bool has_arrow = false;
    if (auto arrow = line.find("<-"); arrow != std::string_view::npos) {
      has_arrow = true;
      inputs_text = trim(line.substr(arrow + 2));
      line = trim(line.substr(0, arrow));
    }
    auto w = words(line);
    if (w.empty()) fail("nothing before '<-'; expected: TYPE NAME [key=value ...] <- INPUT, ...");
    if (w[0] == "network") {
      if (w.size() != 2 || has_arrow || !valid_name(w[1])) fail("expected: network NAME");
      if (seen_layer) fail("'network NAME' must come before the first layer");
      g.name = std::string(w[1]);
      continue;
    }
    if (w[0] == "output") {
      if (w.size() < 2 || has_arrow) fail("expected: output LAYER[, LAYER...]");
      std::string all;
      for (size_t i = 1; i < w.size(); ++i) all += std::string(w[i]) + ",";
      for (auto name : split(all, ','))
        if (!name.empty()) outputs.push_back(resolve(name, fail));
      continue;
    }
    const OpInfo* info = find_op(w[0]);
    if (!info)
      fail("unknown layer type '" + std::string(w[0]) + "'; accepted are: " + op_names() +
           " (and the statements network, output)");
    if (w.size() < 2 || w[1].find('=') != std::string_view::npos)
      fail("expected: " + std::string(info->text) + " NAME [key=value ...] [<- INPUT, ...]");
    if (!valid_name(w[1]))
      fail("'" + std::string(w[1]) +
           "' is not a layer name: use letters, digits, '_', '.', '-' or '/', starting with a "
           "letter");
    Node n;
    n.op = info->kind;
    n.name = std::string(w[1]);
    n.line = line_no;
    n.attrs = default_attrs(n.op);
    const std::string layer = "layer '" + n.name + "' (" + std::string(info->text) + ")";
    auto fail_layer = [&](const std::string& msg) { fail(layer + ": " + msg); };

    std::string activation;
    std::vector<std::string> seen_keys;
    std::vector<std::string> all_keys, required;
    for (size_t i = 2; i < w.size(); ++i) {
      auto eq = w[i].find('=');
      if (eq == std::string_view::npos || eq == 0)
        fail_layer("'" + std::string(w[i]) + "' is not key=value");
      std::string_view key = w[i].substr(0, eq), value = w[i].substr(eq + 1);
      for (const auto& k : seen_keys)
        if (k == key) fail_layer("attribute '" + std::string(key) + "' is given twice");
      seen_keys.emplace_back(key);
      const bool takes_activation =
          n.op == OpKind::Conv2D || n.op == OpKind::Dense || n.op == OpKind::Conv2DTranspose;
      if (takes_activation && key == "activation") {
        if (value != "linear" && !find_activation(value))
          fail_layer("activation '" + std::string(value) +
                     "' is not known; accepted: " + activation_names());
        activation = std::string(value);
        continue;
      }
      if (key == "epilogue" && epilogue_rule(n.op) != EpilogueRule::None) {
        if (!from_text(value, n.epilogue))
          fail_layer("attribute 'epilogue': '" + std::string(value) + "' is not " +
                     epilogue_syntax(n.op));
        if (n.epilogue.add && epilogue_rule(n.op) != EpilogueRule::AddAndActivation)
          fail_layer("attribute 'epilogue': " + std::string(info->text) + " (" +
                     pattern_name(info->pattern) +
                     ") applies an activation only (epilogue=ACT); a residual add is for conv2d, "
                     "dense and pooling");
        continue;
      }
      if (key == "schedule" && has_kernel(n.op)) {
        std::string why;
        if (!parse_schedule(value, n.schedule, why))
          fail_layer("attribute 'schedule': '" + std::string(value) + "': " + why +
                     "; accepted: " + schedule_syntax());
        continue;
      }
      AttrSetter set;
      set.key = key;
      set.value = value;
      std::visit([&](auto& a) { a.visit(set); }, n.attrs);
      all_keys = set.keys;
      if (epilogue_rule(n.op) != EpilogueRule::None) all_keys.push_back("epilogue");
      if (has_kernel(n.op)) all_keys.push_back("schedule");
      if (takes_activation) all_keys.push_back("activation");
      if (!set.error.empty()) fail_layer(set.error);
      if (!set.found)
        fail_layer("unknown attribute '" + std::string(key) +
                   "'; accepted: " + (all_keys.empty() ? std::string("none") : join(all_keys)));
    }
    {
      AttrSetter probe;
      std::visit([&](auto& a) { a.visit(probe); }, n.attrs);
      for (const auto& r : probe.required)
        if (std::find(seen_keys.begin(), seen_keys.end(), r) == seen_keys.end())
          fail_layer("missing required attribute '" + r + "' (required: " + join(probe.required) +
                     ")");
    }
    if (has_arrow) {
      if (info->max_inputs == 0) fail_layer("takes no inputs");
      for (auto name : split(inputs_text, ',')) {
        name = trim(name);
        if (name.empty()) fail_layer("empty input name in '<- " + std::string(inputs_text) + "'");
        n.inputs.push_back(resolve(name, fail_layer));
      }
    } else if (info->min_inputs > 0) {
      if (prev < 0) fail_layer("has no input: the first layer must be an input layer");
      n.inputs.push_back(prev);
    }
    // Graph::add checks names linearly: bound the work a hostile file can ask for.
    if (g.size() >= kMaxLayers)
      fail("more than " + std::to_string(kMaxLayers) +
           " layers; networks this large are not supported");
    seen_layer = true;
    NodeId id = g.add(std::move(n));
    const std::string declared = g.node(id).name;
    if (!activation.empty() && activation != "linear") {
      Node act;
      act.op = find_activation(activation)->kind;
      act.attrs = default_attrs(act.op);
      act.name = declared + "." + activation;
      act.inputs = {id};
      act.line = line_no;
      id = g.add(std::move(act));
    }
    ref[declared] = id;
    prev = id;
  }
  if (g.size() == 0) throw Error(source + ": no layers; a network starts with an input layer");
  if (!outputs.empty()) g.set_outputs(outputs);
  return g;
}

void verify(const Graph& g) {
  std::map<std::string, NodeId, std::less<>> names;
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g.node(i);
    auto fail = [&](const std::string& m) { throw Error("verify: " + g.where(n) + ": " + m); };
    if (!names.emplace(n.name, i).second) fail("duplicate name");
    for (NodeId in : n.inputs)
      if (in < 0 || in >= i) fail("input " + std::to_string(in) + " is not an earlier node");
    if (!arity_ok(n)) fail("wrong number of inputs");
    Inferred inf = infer(n, input_types(g, n), g.batch());
    if (!(inf.type == n.type))
      fail("type " + shape_to_string(n.type.shape, true) + " disagrees with inference " +
           shape_to_string(inf.type.shape, true));
    if (inf.params.size() != n.params.size()) fail("wrong number of weight tensors");
    for (size_t k = 0; k < n.params.size(); ++k) {
      const auto& p = n.params[k];
      if (p.role != inf.params[k].role || p.value.shape != inf.params[k].shape)
        fail("weights '" + p.role + "' have the wrong role or shape");
      if (!p.value.data.empty() && static_cast<int64_t>(p.value.data.size()) != p.value.elements())
        fail("weights '" + p.role + "' hold the wrong number of values");
    }
  }
  for (NodeId o : g.outputs())
    if (o < 0 || o >= g.size()) throw Error("verify: output refers to an unknown node");
}

}  // namespace cnnc::ir
