#include "frontend/onnx/onnx.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "frontend/load.h"
#include "ir/error.h"

namespace cnnc::frontend::onnx {

namespace {

namespace fs = std::filesystem;
using ::onnx::AttributeProto;
using ::onnx::NodeProto;
using ::onnx::TensorProto;

constexpr size_t kMaxModelBytes = size_t{2} << 30;  // protobuf's own limit for one message
constexpr int64_t kMinOpset = 7, kMaxOpset = 21;

// A constant (initializer or Constant node), in ONNX's layout (dims as ONNX gives them).
struct Const {
  std::vector<int64_t> dims;
  std::vector<double> values;
  bool integral = false;  // int32/int64: Div truncates, as ONNX's integer Div
  // The product of the dims, saturating past 2^40 (a hostile file's dims must not overflow).
  int64_t elements() const {
    constexpr int64_t kHuge = int64_t{1} << 40;
    int64_t n = 1;
    for (int64_t d : dims) {
      if (d != 0 && n > kHuge / d) return kHuge + 1;
      n *= d;
    }
    return n;
  }
};

// A tensor of the graph: its IR node, and for a rank-2 value flattened from a spatial NCHW map,
// that map's C, H, W (its elements are in NCHW order there, NHWC in the IR).
struct Value {
  ir::NodeId id = -1;
  int64_t c = 0, h = 0, w = 0;
  // A graph input declared N x H x W x C that the model transposes to NCHW first (tf2onnx's
  // export of a Keras model): already the IR's layout, usable only through that Transpose.
  bool nhwc_input = false;
};

class Importer {
 public:
  Importer(std::string path, int64_t batch) : path_(std::move(path)) {
    g_.source = path_;
    g_.set_batch(batch);
  }

  ir::Graph run() {
    const std::string bytes = read_file(path_, kMaxModelBytes);
    ::onnx::ModelProto model;
    if (!model.ParseFromString(bytes))
      throw Error(path_ + ": not an ONNX model (the file does not parse as an ONNX ModelProto)");
    check_opset(model);
    const ::onnx::GraphProto& graph = model.graph();
    g_.name = graph.name().empty() ? fs::path(path_).stem().string() : sanitize(graph.name());
    for (const TensorProto& t : graph.initializer()) consts_[t.name()] = decode(t, "initializer");
    std::set<std::string> transposed_to_nchw;  // inputs a Transpose (0, 3, 1, 2) reads
    for (const NodeProto& n : graph.node())
      if (n.op_type() == "Transpose" && n.input_size() == 1) {
        node_ = &n;
        if (integers("perm", {}) == std::vector<int64_t>{0, 3, 1, 2})
          transposed_to_nchw.insert(n.input(0));
      }
    node_ = nullptr;
    bool all_nhwc = true;
    for (const auto& in : graph.input())
      if (!consts_.count(in.name())) {
        add_input(in, transposed_to_nchw.count(in.name()) > 0);
        all_nhwc = all_nhwc && transposed_to_nchw.count(in.name()) > 0;
      }
    g_.channels_first_io = !all_nhwc;
    if (values_.empty()) throw Error(path_ + ": the graph has no inputs (other than initializers)");
    for (int i = 0; i < graph.node_size(); ++i) convert(graph.node(i), i);
    std::vector<ir::NodeId> outs;
    for (const auto& out : graph.output()) {
      auto it = values_.find(out.name());
      if (it == values_.end())
        throw Error(path_ + ": graph output '" + out.name() + "' is not computed by any node");
      if (it->second.c)
        throw Error(path_ + ": graph output '" + out.name() +
                    "' is a flattened N x C x H x W map, whose features cnnc holds in N x H x W x "
                    "C order; accepted: outputs that are not flattened feature maps");
      outs.push_back(it->second.id);
    }
    if (outs.empty()) throw Error(path_ + ": the graph has no outputs");
    g_.set_outputs(outs);
    return std::move(g_);
  }

 private:
  std::string path_;
  ir::Graph g_;
  std::map<std::string, Const> consts_;
  std::map<std::string, Value> values_;
  int64_t opset_ = 0;
  const NodeProto* node_ = nullptr;  // the node being converted, for messages
  int index_ = 0;                    // its position in the graph

  [[noreturn]] void fail(const std::string& msg) const {
    if (!node_) throw Error(path_ + ": " + msg);
    const std::string label = !node_->name().empty()     ? node_->name()
                              : node_->output_size() > 0 ? node_->output(0)
                                                         : "#" + std::to_string(index_);
    throw Error(path_ + ": node '" + label + "' (" + node_->op_type() + "): " + msg);
  }
  // A constant's value where an integer is needed (pads, shapes), range-checked.
  int64_t to_integer(double v, const char* what) const {
    if (!(std::abs(v) <= double(int64_t{1} << 40)) || v != std::floor(v))
      fail(std::string(what) + " holds " + std::to_string(v) + ", not an integer of sensible size");
    return static_cast<int64_t>(v);
  }

  void check_opset(const ::onnx::ModelProto& m) {
    for (const auto& o : m.opset_import())
      if (o.domain().empty() || o.domain() == "ai.onnx")
        opset_ = o.version();
      else if (o.domain() != "ai.onnx.ml")
        throw Error(path_ + ": operator set domain '" + o.domain() +
                    "' is not supported; accepted: the default ONNX domain (ai.onnx)");
    if (opset_ < kMinOpset || opset_ > kMaxOpset)
      throw Error(path_ + ": ONNX opset " + std::to_string(opset_) +
                  " is not supported; accepted: " + std::to_string(kMinOpset) + " to " +
                  std::to_string(kMaxOpset));
  }

  // An IR name from an ONNX one ("/layer1/layer1.0/conv1/Conv_output_0" stays readable).
  static std::string sanitize(const std::string& s) {
    std::string r;
    for (char ch : s)
      r += std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-' ||
                   ch == '/'
               ? ch
               : '_';
    if (r.empty() || !(std::isalpha(static_cast<unsigned char>(r[0])) || r[0] == '_')) r = "n" + r;
    return r.substr(0, 200);
  }
  std::string unique_name(const std::string& s) const {
    std::string name = sanitize(s);
    for (int k = 2; g_.find(name) >= 0; ++k) name = sanitize(s) + "_" + std::to_string(k);
    return name;
  }

  // --- tensors ----------------------------------------------------------------------------

  Const decode(const TensorProto& t, const char* what) const {
    Const c;
    for (int64_t d : t.dims()) {
      if (d < 0 || d > (int64_t{1} << 31))
        fail(std::string(what) + " '" + t.name() + "' has dimension " + std::to_string(d));
      c.dims.push_back(d);
    }
    const int64_t n = c.elements();
    if (n > (int64_t{1} << 31)) fail(std::string(what) + " '" + t.name() + "' is too large");
    std::string raw;
    const std::string* bytes = nullptr;
    if (t.data_location() == TensorProto::EXTERNAL) {
      raw = external(t);
      bytes = &raw;
    } else if (t.has_raw_data()) {
      bytes = &t.raw_data();
    }
    // The typed field, or raw little-endian bytes of T (inline or external).
    auto read = [&](auto sample, const auto& field) {
      using T = decltype(sample);
      if (!bytes) {
        if (field.size() != n)
          fail(std::string(what) + " '" + t.name() + "' holds " + std::to_string(field.size()) +
               " values, its shape needs " + std::to_string(n));
        c.values.assign(field.begin(), field.end());
        return c;
      }
      if (bytes->size() != static_cast<size_t>(n) * sizeof(T))
        fail(std::string(what) + " '" + t.name() + "' holds " + std::to_string(bytes->size()) +
             " bytes, its shape needs " + std::to_string(static_cast<size_t>(n) * sizeof(T)));
      c.values.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, bytes->data() + i * sizeof(T), sizeof v);
        c.values[i] = static_cast<double>(v);
      }
      return c;
    };
    switch (t.data_type()) {
      case TensorProto::FLOAT:
        return read(float{}, t.float_data());
      case TensorProto::DOUBLE:
        return read(double{}, t.double_data());
      case TensorProto::INT64:
        c.integral = true;
        return read(int64_t{}, t.int64_data());
      case TensorProto::INT32:
        c.integral = true;
        return read(int32_t{}, t.int32_data());
      default:
        fail(std::string(what) + " '" + t.name() + "' has data type " +
             std::to_string(t.data_type()) + "; accepted: float, double, int64, int32");
    }
  }

  // An initializer's bytes from its external data file, which must lie in the model's folder.
  std::string external(const TensorProto& t) const {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : t.external_data()) {
      try {
        if (kv.key() == "location")
          location = kv.value();
        else if (kv.key() == "offset")
          offset = std::stoll(kv.value());
        else if (kv.key() == "length")
          length = std::stoll(kv.value());
      } catch (const std::exception&) {
        fail("initializer '" + t.name() + "': external data " + kv.key() + " '" + kv.value() +
             "' is not a number");
      }
    }
    const fs::path dir = fs::path(path_).parent_path().lexically_normal();  // "a/../b.onnx" too
    const fs::path file = (dir / location).lexically_normal();
    const std::string rel = file.lexically_relative(dir.empty() ? "." : dir).string();
    if (location.empty() || fs::path(location).is_absolute() || rel.empty() ||
        rel.rfind("..", 0) == 0)
      fail("initializer '" + t.name() + "': external data location '" + location +
           "' must name a file in the model's folder");
    std::ifstream f(file, std::ios::binary);
    if (!f)
      fail("initializer '" + t.name() + "': cannot open its external data file " + file.string());
    f.seekg(0, std::ios::end);
    const int64_t size = f.tellg();
    if (length < 0) length = size - offset;
    if (offset < 0 || length < 0 || offset + length > size)
      fail("initializer '" + t.name() + "': bytes " + std::to_string(offset) + ".." +
           std::to_string(offset + length) + " lie outside " + file.string() + " (" +
           std::to_string(size) + " bytes)");
    std::string data(static_cast<size_t>(length), '\0');
    f.seekg(offset);
    f.read(data.data(), length);
    return data;
  }

  bool has_input(int i) const { return i < node_->input_size() && !node_->input(i).empty(); }
  const Const* constant(int i) const {
    if (!has_input(i)) return nullptr;
    auto it = consts_.find(node_->input(i));
    return it == consts_.end() ? nullptr : &it->second;
  }
  const Const& need_constant(int i, const char* what) const {
    const Const* c = constant(i);
    if (!c)
      fail(std::string(what) + " (input " + std::to_string(i) +
           ") must be a constant (an initializer); cnnc compiles fixed weights");
    return *c;
  }
  // An optional input (a bias, Clip's bounds): absent, or a constant.
  const Const* optional_constant(int i, const char* what) const {
    return has_input(i) ? &need_constant(i, what) : nullptr;
  }
  const Value& value(int i) const {
    if (!has_input(i)) fail("input " + std::to_string(i) + " is missing");
    auto it = values_.find(node_->input(i));
    if (it == values_.end()) {
      if (consts_.count(node_->input(i)))
        fail("input '" + node_->input(i) + "' is a constant where a computed tensor is expected");
      fail("input '" + node_->input(i) + "' is not defined before this node");
    }
    if (it->second.nhwc_input && node_->op_type() != "Transpose")
      fail("reads the N x H x W x C graph input '" + node_->input(i) +
           "' directly; accepted: that input only through a Transpose to NCHW (perm 0, 3, 1, 2)");
    return it->second;
  }
  // By value: Graph::add may move the nodes, so a reference would not outlive the next add().
  ir::Shape shape(const Value& v) const { return g_.node(v.id).type.shape; }
  int rank(const Value& v) const { return static_cast<int>(g_.node(v.id).type.shape.size()); }
  int64_t channels(const Value& v) const { return g_.node(v.id).type.channels(); }

  // --- attributes -------------------------------------------------------------------------

  const AttributeProto* attribute(const char* name) const {
    for (const auto& a : node_->attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  int64_t integer(const char* name, int64_t def) const {
    const AttributeProto* a = attribute(name);
    if (!a) return def;
    if (a->type() != AttributeProto::INT)
      fail(std::string("attribute '") + name + "' must be an integer");
    return a->i();
  }
  double number(const char* name, double def) const {
    const AttributeProto* a = attribute(name);
    if (!a) return def;
    if (a->type() != AttributeProto::FLOAT)
      fail(std::string("attribute '") + name + "' must be a float");
    return a->f();
  }
  std::string text(const char* name, const std::string& def) const {
    const AttributeProto* a = attribute(name);
    if (!a) return def;
    if (a->type() != AttributeProto::STRING)
      fail(std::string("attribute '") + name + "' must be a string");
    return a->s();
  }
  std::vector<int64_t> integers(const char* name, std::vector<int64_t> def) const {
    const AttributeProto* a = attribute(name);
    if (!a) return def;
    if (a->type() != AttributeProto::INTS)
      fail(std::string("attribute '") + name + "' must be a list of integers");
    return {a->ints().begin(), a->ints().end()};
  }
  // A 2-D window attribute (kernel_shape, strides, dilations) as a Pair.
  ir::Pair pair(const char* name, ir::Pair def) const {
    const std::vector<int64_t> v = integers(name, {def.h, def.w});
    if (v.size() != 2 || v[0] < 1 || v[1] < 1 || v[0] > 4096 || v[1] > 4096)
      fail(std::string("attribute '") + name + "' must hold 2 positive values (2-D), has " +
           std::to_string(v.size()));
    return {v[0], v[1]};
  }

  // --- graph building ---------------------------------------------------------------------

  ir::NodeId add(ir::OpKind op, ir::Attrs attrs, std::vector<ir::NodeId> ins,
                 const std::string& suffix = "") {
    ir::Node n;
    // The node's name (PyTorch's "/layer1/layer1.0/conv1/Conv"), else its output's.
    std::string base = node_->name().empty() ? node_->output(0) : node_->name();
    base.erase(0, base.find_first_not_of('/'));
    n.name = unique_name((base.empty() ? node_->op_type() : base) + suffix);
    n.op = op;
    n.attrs = std::move(attrs);
    n.inputs = std::move(ins);
    try {
      return g_.add(std::move(n));
    } catch (const Error& e) {
      fail(e.what());
    }
  }
  void set(ir::NodeId id, const std::string& role, std::vector<float> data) {
    for (auto& p : g_.node(id).params)
      if (p.role == role) {
        if (static_cast<int64_t>(data.size()) != p.value.elements())
          fail("'" + role + "' has " + std::to_string(data.size()) + " values, the layer needs " +
               std::to_string(p.value.elements()));
        p.value.data = std::move(data);
        return;
      }
    throw InternalError("onnx import: no weights '" + role + "' on node " + g_.node(id).name);
  }
  void define(const Value& v, int output = 0) {
    if (output < node_->output_size() && !node_->output(output).empty())
      values_[node_->output(output)] = v;
  }
  void define(ir::NodeId id) { define(Value{id}); }
  // Where feature r of ONNX's flattening of an N x C x H x W map (c*H*W + h*W + w) lies in the
  // IR's NHWC flattening ((h*W + w)*C + c); r itself for any other value.
  static int64_t ir_feature(const Value& x, int64_t r) {
    if (!x.c) return r;
    const int64_t c = r / (x.h * x.w), hw = r % (x.h * x.w);
    return hw * x.c + c;
  }
  // Per-feature constants (a dense layer's rows, BatchNorm's statistics, an affine map's scale)
  // in the order the IR holds `x`'s features.
  static std::vector<float> in_ir_order(const Value& x, std::vector<float> v) {
    if (!x.c) return v;
    std::vector<float> r(v.size());
    for (size_t i = 0; i < v.size(); ++i) r[ir_feature(x, static_cast<int64_t>(i))] = v[i];
    return r;
  }
  // Values combined position by position must hold their features in the same order.
  void same_order(const Value& a, const Value& b) const {
    if (a.c != b.c || a.h != b.h || a.w != b.w)
      fail(
          "combines a flattened feature map with a tensor of another element order; accepted: "
          "tensors flattened alike");
  }
  // A node computed position by position from `from`: its values keep from's element order.
  void define_like(ir::NodeId id, const Value& from) { define(Value{id, from.c, from.h, from.w}); }

  void add_input(const ::onnx::ValueInfoProto& in, bool nhwc) {
    const auto& type = in.type();
    if (!type.has_tensor_type() || type.tensor_type().elem_type() != TensorProto::FLOAT)
      throw Error(path_ + ": input '" + in.name() +
                  "' is not a float tensor; cnnc compiles float32 models");
    const auto& shape = type.tensor_type().shape();
    std::vector<int64_t> dims;
    for (int i = 1; i < shape.dim_size(); ++i) {
      const auto& d = shape.dim(i);
      if (!d.has_dim_value() || d.dim_value() < 1)
        throw Error(path_ + ": input '" + in.name() + "' dimension " + std::to_string(i) +
                    " is not a fixed size; cnnc compiles fixed shapes (only the batch may vary)");
      if (d.dim_value() > (int64_t{1} << 20))
        throw Error(path_ + ": input '" + in.name() + "' dimension " + std::to_string(i) + " is " +
                    std::to_string(d.dim_value()) + "; accepted: at most 2^20");
      dims.push_back(d.dim_value());
    }
    ir::InputAttrs a;
    if (shape.dim_size() == 4 && nhwc)
      a.shape = dims;  // H, W, C already
    else if (shape.dim_size() == 4)
      a.shape = {dims[1], dims[2], dims[0]};  // C, H, W -> H, W, C
    else if (shape.dim_size() == 2)
      a.shape = {dims[0]};
    else
      throw Error(path_ + ": input '" + in.name() + "' has rank " +
                  std::to_string(shape.dim_size()) + "; accepted: 4 (N, C, H, W) or 2 (N, C)");
    ir::Node n;
    n.name = unique_name(in.name());
    n.op = ir::OpKind::Input;
    n.attrs = a;
    Value v{g_.add(std::move(n))};
    v.nhwc_input = nhwc && shape.dim_size() == 4;
    values_[in.name()] = v;
  }

  // ONNX's pads [top, left, bottom, right] (or auto_pad) as an IR padding for a window of
  // `kernel` with `strides` and `dilation` over the input value.
  ir::Padding padding(const Value& x, ir::Pair kernel, ir::Pair strides, ir::Pair dilation) const {
    const std::string mode = text("auto_pad", "NOTSET");
    ir::Padding p{ir::Padding::Explicit, 0, 0, 0, 0};
    if (mode == "VALID") return {ir::Padding::Valid};
    if (mode == "SAME_UPPER" || mode == "SAME_LOWER") {
      const ir::Shape s = shape(x);
      auto split = [&](int64_t in, int64_t k, int64_t st, int64_t d, int64_t& lo, int64_t& hi) {
        const int64_t out = (in + st - 1) / st;
        const int64_t total = std::max<int64_t>(0, (out - 1) * st + (k - 1) * d + 1 - in);
        lo = mode == "SAME_UPPER" ? total / 2 : total - total / 2;
        hi = total - lo;
      };
      split(s[1], kernel.h, strides.h, dilation.h, p.top, p.bottom);
      split(s[2], kernel.w, strides.w, dilation.w, p.left, p.right);
      return p;
    }
    if (mode != "NOTSET")
      fail("auto_pad '" + mode + "'; accepted: NOTSET, VALID, SAME_UPPER, SAME_LOWER");
    const std::vector<int64_t> pads = integers("pads", {0, 0, 0, 0});
    if (pads.size() != 4)
      fail("'pads' must hold 4 values for a 2-D window, has " + std::to_string(pads.size()));
    for (int64_t v : pads)
      if (v < 0 || v > 4096) fail("'pads' holds " + std::to_string(v) + "; accepted: 0 to 4096");
    p.top = pads[0], p.left = pads[1], p.bottom = pads[2], p.right = pads[3];
    return p;
  }

  void need_rank(const Value& v, int want) const {
    if (rank(v) != want)
      fail("input has rank " + std::to_string(rank(v)) + "; accepted: rank " +
           std::to_string(want) + (want == 4 ? " (N, C, H, W)" : " (N, C)"));
  }

  // --- operators --------------------------------------------------------------------------

  void conv() {
    const Value& x = value(0);
    need_rank(x, 4);
    const Const& w = need_constant(1, "the weights");
    if (w.dims.size() != 4) fail("weights must be 4-D (O, I/group, kH, kW)");
    ir::Conv2DAttrs a;
    a.filters = w.dims[0];
    a.groups = integer("group", 1);
    a.kernel = pair("kernel_shape", {w.dims[2], w.dims[3]});
    if (a.kernel.h != w.dims[2] || a.kernel.w != w.dims[3])
      fail("kernel_shape disagrees with the weights' shape");
    a.strides = pair("strides", {1, 1});
    a.dilation = pair("dilations", {1, 1});
    a.padding = padding(x, a.kernel, a.strides, a.dilation);
    a.round = ir::Rounding::Floor;  // ONNX drops a partial window
    const Const* b = optional_constant(2, "the bias");
    a.use_bias = b != nullptr;
    const ir::NodeId id = add(ir::OpKind::Conv2D, a, {x.id});
    // OIHW -> HWIO
    const int64_t O = w.dims[0], I = w.dims[1], H = w.dims[2], W = w.dims[3];
    std::vector<float> k(static_cast<size_t>(w.elements()));
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t ww = 0; ww < W; ++ww)
            k[((h * W + ww) * I + i) * O + o] =
                static_cast<float>(w.values[((o * I + i) * H + h) * W + ww]);
    set(id, "kernel", std::move(k));
    if (b) set(id, "bias", per_channel(*b, O, "the bias"));
    define(id);
  }

  // ConvTranspose: ONNX's output size stride * (in - 1) + output_padding + (kernel - 1) *
  // dilation + 1 - pads is the IR's explicit crop of the full output; output_shape and auto_pad
  // SAME_* set the crop from the size wanted. Grouped: one transposed conv whose weights are
  // zero between groups (group times the MACs of the grouped form; PyTorch's classification
  // models have none, decoders rarely).
  void conv_transpose() {
    const Value& x = value(0);
    need_rank(x, 4);
    const Const& w = need_constant(1, "the weights");
    if (w.dims.size() != 4) fail("weights must be 4-D (C_in, C_out/group, kH, kW)");
    const int64_t group = integer("group", 1);
    if (group < 1 || channels(x) % group != 0)
      fail("group " + std::to_string(group) + " does not divide the input's " +
           std::to_string(channels(x)) + " channels");
    if (channels(x) != w.dims[0])
      fail("the weights take " + std::to_string(w.dims[0]) + " input channels, the input has " +
           std::to_string(channels(x)));
    ir::Conv2DTransposeAttrs a;
    a.filters = w.dims[1] * group;
    a.kernel = pair("kernel_shape", {w.dims[2], w.dims[3]});
    if (a.kernel.h != w.dims[2] || a.kernel.w != w.dims[3])
      fail("kernel_shape disagrees with the weights' shape");
    a.strides = pair("strides", {1, 1});
    a.dilation = pair("dilations", {1, 1});
    const std::vector<int64_t> extra = integers("output_padding", {0, 0});
    if (extra.size() != 2) fail("'output_padding' must hold 2 values");
    a.output_padding = {extra[0], extra[1]};
    a.padding = transpose_crop(x, a);
    const Const* b = optional_constant(2, "the bias");
    a.use_bias = b != nullptr;
    const ir::NodeId id = add(ir::OpKind::Conv2DTranspose, a, {x.id});
    // (C_in, C_out/group, kH, kW) -> (kH, kW, C_out, C_in), zero where the groups differ
    const int64_t I = w.dims[0], G = w.dims[1], H = w.dims[2], W = w.dims[3], O = G * group;
    std::vector<float> k(static_cast<size_t>(H * W * O * I), 0.f);
    for (int64_t i = 0; i < I; ++i)
      for (int64_t g = 0; g < G; ++g) {
        const int64_t o = i / (I / group) * G + g;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t ww = 0; ww < W; ++ww)
            k[((h * W + ww) * O + o) * I + i] =
                static_cast<float>(w.values[((i * G + g) * H + h) * W + ww]);
      }
    set(id, "kernel", std::move(k));
    if (b) set(id, "bias", per_channel(*b, O, "the bias"));
    define(id);
  }

  // What a ConvTranspose crops from its full output: explicit pads (read and checked as a
  // conv's); VALID, nothing (which the IR's valid, Keras' sizes, does not always mean); or, from
  // output_shape or auto_pad SAME_* (an output of in * stride), the difference split as ONNX's
  // spec and ONNX Runtime do: the odd one at the end for SAME_UPPER, at the start otherwise.
  ir::Padding transpose_crop(const Value& x, const ir::Conv2DTransposeAttrs& a) const {
    const std::string mode = text("auto_pad", "NOTSET");
    if (mode != "NOTSET" && mode != "VALID" && mode != "SAME_UPPER" && mode != "SAME_LOWER")
      fail("auto_pad '" + mode + "'; accepted: NOTSET, VALID, SAME_UPPER, SAME_LOWER");
    const ir::Shape s = shape(x);  // N, H, W, C
    std::vector<int64_t> want = integers("output_shape", {});
    if (want.size() == 4) want.erase(want.begin(), want.begin() + 2);  // N, C, H, W
    if (!want.empty() && want.size() != 2)
      fail("'output_shape' must hold 2 values (H, W) or 4 (N, C, H, W), has " +
           std::to_string(want.size()));
    if (want.empty() && (mode == "SAME_UPPER" || mode == "SAME_LOWER"))
      want = {s[1] * a.strides.h, s[2] * a.strides.w};
    if (want.empty()) {
      if (mode == "VALID") return {ir::Padding::Explicit, 0, 0, 0, 0};
      return padding(x, a.kernel, a.strides, a.dilation);
    }
    ir::Padding p{ir::Padding::Explicit, 0, 0, 0, 0};
    auto split = [&](int64_t in, int64_t k, int64_t st, int64_t d, int64_t extra, int64_t out,
                     int64_t& lo, int64_t& hi, const char* axis) {
      const int64_t full = st * (in - 1) + extra + (k - 1) * d + 1;
      if (out < 1 || out > full)
        fail(std::string("output_shape asks for ") + std::to_string(out) + " " + axis +
             "; accepted: 1 to " + std::to_string(full) +
             " (the full output of this input, kernel and strides)");
      const int64_t total = full - out;
      lo = mode == "SAME_UPPER" ? total / 2 : total - total / 2;
      hi = total - lo;
    };
    split(s[1], a.kernel.h, a.strides.h, a.dilation.h, a.output_padding.h, want[0], p.top, p.bottom,
          "rows");
    split(s[2], a.kernel.w, a.strides.w, a.dilation.w, a.output_padding.w, want[1], p.left, p.right,
          "columns");
    return p;
  }

  // Resize with constant scales or sizes, in the forms that are the IR's half-pixel sampling:
  // PyTorch's nn.Upsample nearest (asymmetric coordinates, floor) at whole-number factors, and
  // bilinear without align_corners (half_pixel, pytorch_half_pixel).
  void resize() {
    const Value& x = value(0);
    need_rank(x, 4);
    if (attribute("axes") || integer("antialias", 0) != 0)
      fail("axes and antialias are not supported; accepted: scales or sizes of all four axes");
    const ir::Shape s = shape(x);  // N, H, W, C
    const Const* scales = optional_constant(2, "the scales");
    const Const* sizes = optional_constant(3, "the sizes");
    if (scales && scales->elements() == 0) scales = nullptr;
    int64_t out_h = 0, out_w = 0;
    if (sizes && sizes->elements() == 4 && sizes->values[1] == s[3]) {  // any batch
      out_h = static_cast<int64_t>(sizes->values[2]),
      out_w = static_cast<int64_t>(sizes->values[3]);
    } else if (scales && scales->elements() == 4 && scales->values[0] == 1 &&
               scales->values[1] == 1) {
      // ONNX samples with the given scale, the IR with out / in: equal when in * scale is whole.
      const double h = s[1] * scales->values[2], w = s[2] * scales->values[3];
      if (h != std::floor(h) || w != std::floor(w) || h < 1 || w < 1 || h > 1 << 20 || w > 1 << 20)
        fail(
            "scales give a fractional or out-of-range size; accepted: scales whose products "
            "with the input's height and width are whole numbers");
      out_h = static_cast<int64_t>(h), out_w = static_cast<int64_t>(w);
    } else {
      fail("needs constant scales [1, 1, sh, sw] or sizes [N, C, H, W] with C unchanged");
    }
    const std::string mode = text("mode", "nearest");
    const std::string coords = text("coordinate_transformation_mode", "half_pixel");
    const std::string nearest = text("nearest_mode", "round_prefer_floor");
    ir::ResizeAttrs a;
    a.size = {out_h, out_w};
    bool ok = false;
    if (mode == "nearest") {
      a.interpolation = ir::Interpolation::Nearest;
      const bool whole = out_h % s[1] == 0 && out_w % s[2] == 0;
      ok = nearest == "floor" &&
           ((coords == "asymmetric" && whole) || coords == "tf_half_pixel_for_nn");
    } else if (mode == "linear") {
      a.interpolation = ir::Interpolation::Bilinear;
      ok = coords == "half_pixel" || (coords == "pytorch_half_pixel" && out_h > 1 && out_w > 1);
    }
    if (!ok)
      fail("mode '" + mode + "' with coordinate_transformation_mode '" + coords +
           "' (nearest_mode '" + nearest +
           "'); accepted: nearest with asymmetric coordinates and floor at whole-number "
           "upscales (PyTorch's nn.Upsample) or tf_half_pixel_for_nn and floor; linear with "
           "half_pixel or pytorch_half_pixel (align_corners=False)");
    define(add(ir::OpKind::Resize, a, {x.id}));
  }

  // Max and Min of computed tensors in one element order, broadcasting as multiply does.
  void extremum(ir::OpKind op) {
    for (int i = 0; i < node_->input_size(); ++i)
      if (constant(i))
        fail("input " + std::to_string(i + 1) + " is a constant; accepted: computed tensors");
    const std::vector<ir::NodeId> ins = input_ids();
    for (int i = 1; i < node_->input_size(); ++i) same_order(value(0), value(i));
    if (ins.size() == 1) return define(value(0));
    define_like(add(op, ir::NoAttrs{}, ins), value(0));
  }

  // A constant's values as one per channel. `broadcast_rank` 0: a vector operand (a bias,
  // BatchNorm's statistics): one value or n. Otherwise the constant broadcasts against a tensor
  // of that rank as numpy does (dims aligned at the end), so only shapes that vary along the
  // channel axis (1) alone are per-channel: [C, 1, 1] or [1, C, 1, 1] for NCHW, [C] for N x C.
  std::vector<float> per_channel(const Const& c, int64_t n, const std::string& what,
                                 int broadcast_rank = 0) const {
    if (c.elements() == 1)
      return std::vector<float>(static_cast<size_t>(n), static_cast<float>(c.values[0]));
    bool ok = c.elements() == n;
    if (broadcast_rank > 0) {
      ok = ok && static_cast<int>(c.dims.size()) <= broadcast_rank;
      for (size_t i = 0; ok && i < c.dims.size(); ++i) {
        const int axis = broadcast_rank - static_cast<int>(c.dims.size()) + static_cast<int>(i);
        ok = c.dims[i] == (axis == 1 ? n : 1) || c.dims[i] == 1;
      }
    }
    if (!ok)
      fail(what + " has shape " + dims_text(c.dims) +
           "; accepted: one value, or one per channel (" + std::to_string(n) +
           (broadcast_rank == 4 ? ", shaped [C, 1, 1]" : "") + ")");
    return {c.values.begin(), c.values.end()};
  }
  static std::string dims_text(const std::vector<int64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
  }

  // Gemm and MatMul with constant weights: a dense layer. `in_out` is (K, M) row-major.
  void dense(const Value& x, std::vector<double> in_out, int64_t K, int64_t M, const Const* bias,
             double beta) {
    need_rank(x, 2);
    if (channels(x) != K)
      fail("the weights take " + std::to_string(K) + " inputs, the input has " +
           std::to_string(channels(x)));
    ir::DenseAttrs a;
    a.units = M;
    a.use_bias = bias != nullptr;
    const ir::NodeId id = add(ir::OpKind::Dense, a, {x.id});
    std::vector<float> k(static_cast<size_t>(K * M));
    // Rows in the IR's order of x's features.
    for (int64_t r = 0; r < K; ++r)
      for (int64_t m = 0; m < M; ++m)
        k[ir_feature(x, r) * M + m] = static_cast<float>(in_out[r * M + m]);
    set(id, "kernel", std::move(k));
    if (bias) {
      std::vector<float> b = per_channel(*bias, M, "the bias C", 2);
      for (float& v : b) v = static_cast<float>(v * beta);
      set(id, "bias", std::move(b));
    }
    define(id);
  }

  void gemm() {
    const Value& x = value(0);
    const Const& b = need_constant(1, "B");
    if (integer("transA", 0) != 0) fail("transA = 1 is not supported; accepted: transA = 0");
    if (b.dims.size() != 2) fail("B must be 2-D");
    const bool trans = integer("transB", 0) != 0;
    const int64_t K = trans ? b.dims[1] : b.dims[0], M = trans ? b.dims[0] : b.dims[1];
    const double alpha = number("alpha", 1.0), beta = number("beta", 1.0);
    std::vector<double> w(static_cast<size_t>(K * M));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t m = 0; m < M; ++m)
        w[k * M + m] = alpha * (trans ? b.values[m * K + k] : b.values[k * M + m]);
    dense(x, std::move(w), K, M, optional_constant(2, "C"), beta);
  }

  void matmul() {
    const Value& x = value(0);
    const Const& b = need_constant(1, "the second input");
    if (b.dims.size() != 2) fail("the second input must be 2-D (K, M)");
    dense(x, b.values, b.dims[0], b.dims[1], nullptr, 1.0);
  }

  void batch_norm() {
    const Value& x = value(0);
    if (integer("training_mode", 0) != 0) fail("training_mode = 1; cnnc imports inference graphs");
    ir::BatchNormAttrs a;
    a.epsilon = static_cast<float>(number("epsilon", 1e-5));
    const ir::NodeId id = add(ir::OpKind::BatchNorm, a, {x.id});
    const int64_t C = channels(x);
    const char* roles[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    const char* names[] = {"scale", "B", "mean", "var"};
    for (int i = 0; i < 4; ++i)
      set(id, roles[i], in_ir_order(x, per_channel(need_constant(i + 1, names[i]), C, names[i])));
    define_like(id, x);
  }

  // An activation op from the IR's table, at its defaults.
  void activation(ir::OpKind op, const Value& x) {
    define_like(add(op, ir::default_attrs(op), {x.id}), x);
  }

  void clip() {
    const Value& x = value(0);
    double lo, hi;
    if (opset_ < 11) {
      lo = number("min", -INFINITY), hi = number("max", INFINITY);
    } else {
      const Const* mn = optional_constant(1, "min");
      const Const* mx = optional_constant(2, "max");
      if ((mn && mn->values.size() != 1) || (mx && mx->values.size() != 1))
        fail("min and max must be scalars");
      lo = mn ? mn->values[0] : -INFINITY;
      hi = mx ? mx->values[0] : INFINITY;
    }
    if (lo != 0) fail("min " + std::to_string(lo) + "; accepted: Clip with min 0 (ReLU, ReLU6)");
    ir::ReLUAttrs a;
    a.max_value = static_cast<float>(hi);
    define_like(add(ir::OpKind::ReLU, a, {x.id}), x);
  }

  void hard_sigmoid() {
    const Value& x = value(0);
    const double alpha = number("alpha", 0.2), beta = number("beta", 0.5);
    // max(0, min(1, alpha x + beta)) = relu6(6 alpha x + 6 beta - 3 + 3) / 6: the IR's
    // hardsigmoid after an affine map, which is the identity for PyTorch's (1/6, 1/2).
    ir::NodeId in = x.id;
    if (std::abs(alpha - 1.0 / 6) > 1e-7 || std::abs(beta - 0.5) > 1e-7) {
      in = add(ir::OpKind::Affine, ir::AffineAttrs{}, {x.id}, ".affine");
      const int64_t C = channels(x);
      set(in, "scale", std::vector<float>(static_cast<size_t>(C), static_cast<float>(6 * alpha)));
      set(in, "shift",
          std::vector<float>(static_cast<size_t>(C), static_cast<float>(6 * beta - 3)));
    }
    define_like(add(ir::OpKind::HardSigmoid, ir::NoAttrs{}, {in}), x);
  }

  void softmax(ir::OpKind op) {
    const Value& x = value(0);
    const int r = rank(x);
    int64_t axis = integer("axis", opset_ < 13 ? 1 : -1);
    if (axis < 0) axis += r;
    // The channel axis: 1 of a rank-2 tensor, 1 (C) of NCHW; opset < 13 coerces from `axis` on,
    // which for rank 2 is the same.
    if (axis != 1 || (r == 4 && opset_ < 13))
      fail("axis " + std::to_string(axis) + " of a rank-" + std::to_string(r) +
           " tensor; accepted: the channel axis (1)");
    activation(op, x);
  }

  // Add, Mul, Sub, Div: of two computed tensors (Add, Mul), or of one and a constant that is a
  // scalar or one value per channel (an affine map).
  void binary(const std::string& op) {
    const Const* k0 = constant(0);
    const Const* k1 = constant(1);
    if (k0 && k1) return fold_binary(op, *k0, *k1);
    if (!k0 && !k1) {
      const Value& a = value(0);
      const Value& b = value(1);
      same_order(a, b);
      if (op == "Add") return define_like(add(ir::OpKind::Add, ir::NoAttrs{}, {a.id, b.id}), a);
      if (op == "Mul")
        return define_like(add(ir::OpKind::Multiply, ir::NoAttrs{}, {a.id, b.id}), a);
      fail(
          "of two computed tensors; accepted: Add and Mul of two tensors, Sub and Div with a "
          "constant");
    }
    const Value& x = value(k0 ? 1 : 0);
    const Const& k = k0 ? *k0 : *k1;
    const int64_t C = channels(x);
    std::vector<float> v = in_ir_order(x, per_channel(k, C, "the constant", rank(x)));
    std::vector<float> scale(static_cast<size_t>(C), 1.f), shift(static_cast<size_t>(C), 0.f);
    if (op == "Add")
      shift = v;
    else if (op == "Mul")
      scale = v;
    else if (op == "Sub" && !k0)
      for (int64_t c = 0; c < C; ++c) shift[c] = -v[c];
    else if (op == "Sub")
      for (int64_t c = 0; c < C; ++c) scale[c] = -1, shift[c] = v[c];
    else if (op == "Div" && !k0)
      for (int64_t c = 0; c < C; ++c) scale[c] = 1 / v[c];
    else
      fail(
          "a constant divided by a tensor is not supported; accepted: a tensor divided by a "
          "constant");
    const ir::NodeId id = add(ir::OpKind::Affine, ir::AffineAttrs{}, {x.id});
    set(id, "scale", std::move(scale));
    set(id, "shift", std::move(shift));
    define_like(id, x);
  }

  std::vector<ir::NodeId> input_ids() const {
    std::vector<ir::NodeId> ids;
    for (int i = 0; i < node_->input_size(); ++i) ids.push_back(value(i).id);
    return ids;
  }

  void sum() {
    const std::vector<ir::NodeId> ins = input_ids();
    for (int i = 1; i < node_->input_size(); ++i) same_order(value(0), value(i));
    if (ins.size() == 1) return define(value(0));
    define_like(add(ir::OpKind::Add, ir::NoAttrs{}, ins), value(0));
  }

  void concat() {
    if (all_inputs_constant()) return fold_concat();
    const Value& first = value(0);
    const int r = rank(first);
    int64_t axis = integer("axis", 1);
    if (axis < 0) axis += r;
    if (axis != 1) fail("axis " + std::to_string(axis) + "; accepted: the channel axis (1)");
    const std::vector<ir::NodeId> ins = input_ids();
    for (int i = 0; i < node_->input_size(); ++i)
      if (value(i).c)
        fail(
            "concatenates a flattened feature map, whose features cnnc holds in another order; "
            "accepted: concatenations of N x C x H x W maps or of unflattened N x C tensors");
    if (ins.size() == 1) return define(first);
    define(add(ir::OpKind::Concat, ir::NoAttrs{}, ins));
  }

  void pool(bool max) {
    const Value& x = value(0);
    need_rank(x, 4);
    ir::Pool2DAttrs a;
    a.pool = pair("kernel_shape", {0, 0});
    if (!attribute("kernel_shape")) fail("needs kernel_shape");
    a.strides = pair("strides", {1, 1});
    if (pair("dilations", {1, 1}) != ir::Pair{1, 1})
      fail("dilations other than 1 are not supported");
    a.padding = padding(x, a.pool, a.strides, {1, 1});
    a.round = ir::Rounding::Floor;
    if (!max && integer("count_include_pad", 0) != 0 && a.padding.mode != ir::Padding::Valid &&
        (a.padding.top || a.padding.bottom || a.padding.left || a.padding.right))
      fail(
          "count_include_pad = 1 with padding; accepted: count_include_pad = 0 (the average of the "
          "valid elements)");
    if (integer("ceil_mode", 0) != 0 && a.padding.mode == ir::Padding::Explicit) {
      // The last partial window is kept (as PyTorch: if it starts inside the input or its
      // leading padding): more padding at the bottom/right, which neither max nor the average
      // of valid elements sees.
      const ir::Shape s = shape(x);
      auto extra = [](int64_t in, int64_t k, int64_t st, int64_t lo, int64_t hi) {
        int64_t out = (in + lo + hi - k + st - 1) / st + 1;
        if ((out - 1) * st >= in + lo) --out;
        return std::max<int64_t>(0, (out - 1) * st + k - (in + lo + hi));
      };
      a.padding.bottom += extra(s[1], a.pool.h, a.strides.h, a.padding.top, a.padding.bottom);
      a.padding.right += extra(s[2], a.pool.w, a.strides.w, a.padding.left, a.padding.right);
    }
    define(add(max ? ir::OpKind::MaxPool2D : ir::OpKind::AvgPool2D, a, {x.id}));
  }

  // GlobalAveragePool and GlobalMaxPool keep N x C x 1 x 1; a ReduceMean/Max may not.
  void global_pool(bool max, bool keepdims = true) {
    const Value& x = value(0);
    need_rank(x, 4);
    ir::GlobalPoolAttrs a;
    a.keepdims = keepdims;
    define(add(max ? ir::OpKind::GlobalMaxPool2D : ir::OpKind::GlobalAvgPool2D, a, {x.id}));
  }

  // --- shape arithmetic -------------------------------------------------------------------
  // PyTorch's exports with a dynamic batch compute a Reshape's target from the input's shape
  // (x.view(x.size(0), -1): Shape, Gather, Unsqueeze, Concat). cnnc compiles for one batch, so
  // every shape is known: these fold to constants and the Reshape sees a constant target.

  void define_constant(Const c) { consts_[node_->output(0)] = std::move(c); }
  const Const& shape_operand(int i) const {
    if (!has_input(i)) fail("input " + std::to_string(i) + " is missing");
    if (const Const* c = constant(i)) return *c;
    fail("input " + std::to_string(i) +
         " is a computed tensor; accepted: constants (shape arithmetic, folded at import)");
  }
  bool all_inputs_constant() const {
    for (int i = 0; i < node_->input_size(); ++i)
      if (!constant(i)) return false;
    return node_->input_size() > 0;
  }
  static int64_t axis_in(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

  // Shape (opset 15's start and end too), in ONNX's order: N, C, H, W.
  void shape_of() {
    const Value& x = value(0);
    const ir::Shape s = shape(x);
    std::vector<int64_t> dims;
    if (s.size() == 4)
      dims = {s[0], s[3], s[1], s[2]};
    else if (s.size() == 2)
      dims = {s[0], s[1]};
    else
      fail("of a rank-" + std::to_string(s.size()) + " tensor; accepted: rank 4 or 2");
    const int64_t r = static_cast<int64_t>(dims.size());
    const int64_t start = std::clamp<int64_t>(axis_in(integer("start", 0), r), 0, r);
    const int64_t end = std::clamp<int64_t>(axis_in(integer("end", r), r), 0, r);
    Const c;
    c.integral = true;
    for (int64_t i = start; i < end; ++i) c.values.push_back(static_cast<double>(dims[i]));
    c.dims = {static_cast<int64_t>(c.values.size())};
    define_constant(std::move(c));
  }

  // Gather from a 1-D constant (a shape) along axis 0.
  void gather() {
    const Const& data = shape_operand(0);
    const Const& idx = shape_operand(1);
    if (data.dims.size() != 1 || integer("axis", 0) != 0)
      fail("of a " + std::to_string(data.dims.size()) +
           "-D constant; accepted: axis 0 of a 1-D constant (a shape)");
    Const c = idx;
    c.integral = data.integral;
    const int64_t n = data.dims[0];
    for (double& v : c.values) {
      const int64_t i = axis_in(to_integer(v, "the indices"), n);
      if (i < 0 || i >= n)
        fail("index " + std::to_string(to_integer(v, "the indices")) + " outside [" +
             std::to_string(-n) + ", " + std::to_string(n) + ")");
      v = data.values[i];
    }
    define_constant(std::move(c));
  }

  // Unsqueeze and Squeeze of a constant: the same values under new dims.
  void reshape_constant(bool unsqueeze) {
    Const c = shape_operand(0);
    std::vector<int64_t> axes = integers("axes", {});  // an input from opset 13
    if (has_input(1))
      for (double v : need_constant(1, "axes").values) axes.push_back(to_integer(v, "axes"));
    const int64_t out_rank =
        static_cast<int64_t>(c.dims.size()) + (unsqueeze ? static_cast<int64_t>(axes.size()) : 0);
    for (int64_t& a : axes)
      a = axis_in(a, unsqueeze ? out_rank : static_cast<int64_t>(c.dims.size()));
    std::sort(axes.begin(), axes.end());
    if (unsqueeze) {
      for (int64_t a : axes) {
        if (a < 0 || a > static_cast<int64_t>(c.dims.size())) fail("axis out of range");
        c.dims.insert(c.dims.begin() + a, 1);
      }
    } else {
      for (int64_t a : axes)
        if (a < 0 || a >= static_cast<int64_t>(c.dims.size())) fail("axis out of range");
      std::vector<int64_t> dims;
      for (int64_t i = 0; i < static_cast<int64_t>(c.dims.size()); ++i) {
        const bool listed = std::binary_search(axes.begin(), axes.end(), i);
        if (listed && c.dims[i] != 1)
          fail("squeezes axis " + std::to_string(i) + " of size " + std::to_string(c.dims[i]));
        if (!(listed || (axes.empty() && c.dims[i] == 1))) dims.push_back(c.dims[i]);
      }
      c.dims = dims;
    }
    define_constant(std::move(c));
  }

  // Concat of constants along their one axis.
  void fold_concat() {
    Const c;
    c.integral = true;
    for (int i = 0; i < node_->input_size(); ++i) {
      const Const& k = *constant(i);
      if (k.dims.size() > 1)
        fail("of constants of rank " + std::to_string(k.dims.size()) +
             "; accepted: 1-D constants (shapes)");
      c.values.insert(c.values.end(), k.values.begin(), k.values.end());
      c.integral = c.integral && k.integral;
    }
    c.dims = {static_cast<int64_t>(c.values.size())};
    define_constant(std::move(c));
  }

  // Add, Sub, Mul, Div of two constants: element by element, or with one of them a scalar.
  void fold_binary(const std::string& op, const Const& a, const Const& b) {
    if (a.elements() == 0 || b.elements() == 0) fail("of an empty constant");
    if (a.elements() != b.elements() && a.elements() != 1 && b.elements() != 1)
      fail("of constants shaped " + dims_text(a.dims) + " and " + dims_text(b.dims) +
           "; accepted: equal shapes, or one a scalar");
    Const c = a.elements() >= b.elements() ? a : b;
    c.integral = a.integral && b.integral;
    for (size_t i = 0; i < c.values.size(); ++i) {
      const double x = a.values[a.elements() == 1 ? 0 : i], y = b.values[b.elements() == 1 ? 0 : i];
      if (op == "Div" && y == 0) fail("divides a constant by 0");
      c.values[i] = op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y;
      if (op == "Div" && c.integral) c.values[i] = std::trunc(c.values[i]);
    }
    define_constant(std::move(c));
  }

  // Cast: of a constant, its values in the new type; of a computed tensor, only to float.
  void cast() {
    const int64_t to = integer("to", 0);
    const bool to_integer_type = to == TensorProto::INT64 || to == TensorProto::INT32;
    if (const Const* k = constant(0)) {
      if (!to_integer_type && to != TensorProto::FLOAT && to != TensorProto::DOUBLE)
        fail("to type " + std::to_string(to) + "; accepted: float, double, int32, int64");
      Const c = *k;
      c.integral = to_integer_type;
      if (to_integer_type)
        for (double& v : c.values) v = std::trunc(v);
      return define_constant(std::move(c));
    }
    if (to != TensorProto::FLOAT)
      fail("a computed tensor to type " + std::to_string(to) + "; accepted: float (a no-op)");
    define(value(0));
  }

  // ReduceMean / ReduceMax over H and W (PyTorch's torch.export writes adaptive_avg_pool2d to
  // 1 x 1 and x.mean((2, 3)) so): a global pooling; without keepdims, N x C.
  void reduce(bool max) {
    need_rank(value(0), 4);                            // before its axes are read as N, C, H, W
    std::vector<int64_t> axes = integers("axes", {});  // an input from opset 18
    if (has_input(1))
      for (double v : need_constant(1, "axes").values) axes.push_back(to_integer(v, "axes"));
    for (int64_t& a : axes)
      if (a < 0) a += 4;
    std::sort(axes.begin(), axes.end());
    if (axes != std::vector<int64_t>{2, 3})
      fail("axes " + dims_text(axes) + "; accepted: the spatial axes (2, 3)");
    global_pool(max, integer("keepdims", 1) != 0);
  }

  // Identity and Dropout pass their input on; of an initializer (PyTorch's TorchScript exporter
  // writes one Identity per duplicate weight), the output is that constant under a new name.
  void identity() {
    if (const Const* c = constant(0)) return define_constant(*c);
    define(value(0));
  }

  // N x C x H x W to N x (C*H*W): a view of the NHWC data, whose order (h, w, c) the next
  // dense layer's rows follow.
  void flatten_to_2d(const Value& x) {
    if (rank(x) == 2) return define(x);
    const ir::Shape s = shape(x);
    Value v{add(ir::OpKind::Flatten, ir::NoAttrs{}, {x.id})};
    if (s[1] * s[2] > 1) v.c = s[3], v.h = s[1], v.w = s[2];
    define(v);
  }

  void flatten() {
    const Value& x = value(0);
    int64_t axis = integer("axis", 1);
    if (axis < 0) axis += rank(x);
    if (axis != 1) fail("axis " + std::to_string(axis) + "; accepted: 1 (N x everything else)");
    flatten_to_2d(x);
  }

  void reshape() {
    const Value& x = value(0);
    const std::vector<double>& v = need_constant(1, "the shape").values;
    const ir::Shape s = shape(x);
    int64_t elements = 1;
    for (size_t i = 1; i < s.size(); ++i) elements *= s[i];
    const bool batch_kept =
        !v.empty() && (v[0] == 0 || v[0] == -1 || v[0] == static_cast<double>(s[0]));
    if (v.size() == 2 && batch_kept && (v[1] == -1 || v[1] == static_cast<double>(elements)))
      return flatten_to_2d(x);
    // To its own shape (N x C x H x W again): nothing to do.
    if (v.size() == 4 && batch_kept && rank(x) == 4 && v[1] == static_cast<double>(s[3]) &&
        v[2] == static_cast<double>(s[1]) && v[3] == static_cast<double>(s[2]))
      return define(x);
    // N x C to N x C x 1 x 1 (Keras' Reshape((1, 1, C)) as tf2onnx writes it): the same data.
    if (v.size() == 4 && batch_kept && rank(x) == 2 && !x.c &&
        v[1] == static_cast<double>(elements) && v[2] == 1 && v[3] == 1) {
      ir::ReshapeAttrs a;
      a.shape = {1, 1, elements};
      return define(add(ir::OpKind::Reshape, a, {x.id}));
    }
    std::vector<int64_t> dims;
    for (double d : v) dims.push_back(to_integer(d, "the shape"));
    fail("to " + dims_text(dims) + "; accepted: a reshape to (N, everything else), as a flatten");
  }

  // Only the one that makes an NHWC graph input NCHW: the IR's layout is NHWC already.
  void transpose() {
    const Value& x = value(0);
    const std::vector<int64_t> perm = integers("perm", {});
    if (!x.nhwc_input || perm != std::vector<int64_t>{0, 3, 1, 2})
      fail("perm " + dims_text(perm) +
           "; accepted: a Transpose (0, 3, 1, 2) of an N x H x W x C graph input (tf2onnx's)");
    Value v = x;
    v.nhwc_input = false;
    define(v);
  }

  // A Slice of the spatial axes with step 1 (Keras' Cropping2D as tf2onnx writes it): a crop.
  void slice() {
    const Value& x = value(0);
    need_rank(x, 4);
    if (opset_ < 10)
      fail("opset " + std::to_string(opset_) +
           "'s Slice (attributes); accepted: opset 10 and later");
    // Ends are often INT64_MAX ("to the end"): clamped first, as Slice clamps them to the axis.
    auto ints = [&](int i, const char* what) {
      std::vector<int64_t> r;
      for (double v : need_constant(i, what).values)
        r.push_back(to_integer(std::clamp(v, -1e12, 1e12), what));
      return r;
    };
    const std::vector<int64_t> starts = ints(1, "starts"), ends = ints(2, "ends");
    std::vector<int64_t> axes, steps;
    if (has_input(3)) axes = ints(3, "axes");
    if (has_input(4)) steps = ints(4, "steps");
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (ends.size() != starts.size() || axes.size() != starts.size() ||
        (!steps.empty() && steps.size() != starts.size()))
      fail("starts, ends, axes and steps must have one value per sliced axis");
    const ir::Shape s = shape(x);
    const int64_t dims[4] = {s[0], s[3], s[1], s[2]};  // N, C, H, W
    ir::CropAttrs a;
    a.crop = {ir::Padding::Explicit, 0, 0, 0, 0};
    for (size_t i = 0; i < axes.size(); ++i) {
      const int64_t axis = axes[i] < 0 ? axes[i] + 4 : axes[i];
      if (axis < 0 || axis > 3) fail("axis " + std::to_string(axes[i]) + " of a rank-4 tensor");
      if (!steps.empty() && steps[i] != 1) fail("steps other than 1 are not supported");
      const int64_t d = dims[axis];
      const int64_t b = std::clamp<int64_t>(starts[i] < 0 ? starts[i] + d : starts[i], 0, d);
      const int64_t e = std::clamp<int64_t>(ends[i] < 0 ? ends[i] + d : ends[i], 0, d);
      if (e <= b) fail("an empty slice of axis " + std::to_string(axis));
      if (axis < 2 && (b != 0 || e != d))
        fail("a slice of N or C; accepted: slices of H and W (a crop)");
      if (axis == 2) a.crop.top = b, a.crop.bottom = d - e;
      if (axis == 3) a.crop.left = b, a.crop.right = d - e;
    }
    define(add(ir::OpKind::Cropping2D, a, {x.id}));
  }

  // Squeeze of the 1 x 1 spatial axes of N x C x 1 x 1 (after global pooling): a flatten.
  void squeeze() {
    if (constant(0)) return reshape_constant(false);
    const Value& x = value(0);
    std::vector<int64_t> axes;
    if (opset_ < 13)
      axes = integers("axes", {});
    else if (const Const* a = constant(1))
      for (double v : a->values) axes.push_back(to_integer(v, "axes"));
    for (int64_t& a : axes)
      if (a < 0) a += rank(x);
    std::sort(axes.begin(), axes.end());
    const ir::Shape s = shape(x);
    if (rank(x) != 4 || s[1] != 1 || s[2] != 1 ||
        (axes != std::vector<int64_t>{2, 3} && !axes.empty()))
      fail("axes " + dims_text(axes) +
           "; accepted: the 1 x 1 spatial axes (2, 3) of N x C x 1 x 1");
    flatten_to_2d(x);
  }

  void pad() {
    const Value& x = value(0);
    need_rank(x, 4);
    if (text("mode", "constant") != "constant")
      fail("mode '" + text("mode", "") + "'; accepted: constant");
    std::vector<int64_t> pads;
    double fill = 0;
    if (opset_ < 11) {
      pads = integers("pads", {});
      fill = number("value", 0);
    } else {
      for (double v : need_constant(1, "pads").values) pads.push_back(to_integer(v, "pads"));
      if (const Const* f = constant(2)) fill = f->values.empty() ? 0 : f->values[0];
      if (has_input(3)) fail("the axes input is not supported");
    }
    if (pads.size() != 8) fail("pads must hold 8 values (begin and end of N, C, H, W)");
    if (fill != 0) fail("constant value " + std::to_string(fill) + "; accepted: 0");
    if (pads[0] || pads[1] || pads[4] || pads[5]) fail("padding of N or C; accepted: H and W only");
    for (int64_t p : pads)
      if (p < 0 || p > 4096) fail("pads hold " + std::to_string(p) + "; accepted: 0 to 4096");
    ir::PadAttrs a;
    a.pad = {ir::Padding::Explicit, pads[2], pads[6], pads[3], pads[7]};
    define(add(ir::OpKind::ZeroPadding2D, a, {x.id}));
  }

  void constant_node() {
    const AttributeProto* a = attribute("value");
    Const c;
    if (a && a->type() == AttributeProto::TENSOR) {
      c = decode(a->t(), "constant");
    } else if (const AttributeProto* f = attribute("value_float")) {
      c.values = {f->f()};
    } else if (const AttributeProto* i = attribute("value_int")) {
      c.values = {static_cast<double>(i->i())};
      c.integral = true;
    } else if (const AttributeProto* is = attribute("value_ints")) {
      c.dims = {is->ints_size()};
      c.values.assign(is->ints().begin(), is->ints().end());
      c.integral = true;
    } else if (const AttributeProto* fs = attribute("value_floats")) {
      c.dims = {fs->floats_size()};
      c.values.assign(fs->floats().begin(), fs->floats().end());
    } else {
      fail("needs a tensor, float(s) or int(s) value");
    }
    define_constant(std::move(c));
  }

  // One row per ONNX operator the reader takes: its name, what it is taken with (for the
  // accepted list in messages) and its conversion. The dispatch and the list are this table.
  struct Rule {
    const char* name;
    const char* limits;
    std::function<void(Importer&)> convert;
  };
  static const std::vector<Rule>& rules() {
    using K = ir::OpKind;
    auto act = [](K op) { return [op](Importer& m) { m.activation(op, m.value(0)); }; };
    static const std::vector<Rule> table = {
        {"Add", "", [](Importer& m) { m.binary("Add"); }},
        {"AveragePool", "", [](Importer& m) { m.pool(false); }},
        {"BatchNormalization", "", [](Importer& m) { m.batch_norm(); }},
        {"Cast", "", [](Importer& m) { m.cast(); }},
        {"Clip", "min 0", [](Importer& m) { m.clip(); }},
        {"Concat", "channels", [](Importer& m) { m.concat(); }},
        {"Constant", "", [](Importer& m) { m.constant_node(); }},
        {"Conv", "", [](Importer& m) { m.conv(); }},
        {"ConvTranspose", "", [](Importer& m) { m.conv_transpose(); }},
        {"Div", "by a constant", [](Importer& m) { m.binary("Div"); }},
        {"Dropout", "", [](Importer& m) { m.identity(); }},
        {"Elu", "",
         [](Importer& m) {
           if (m.number("alpha", 1.0) != 1.0) m.fail("alpha other than 1 is not supported");
           m.activation(K::Elu, m.value(0));
         }},
        {"Exp", "", act(K::Exponential)},
        {"Flatten", "", [](Importer& m) { m.flatten(); }},
        {"Gelu", "",
         [](Importer& m) {
           const std::string approx = m.text("approximate", "none");
           if (approx != "none" && approx != "tanh")
             m.fail("approximate '" + approx + "'; accepted: none, tanh");
           m.activation(approx == "tanh" ? K::GeluTanh : K::Gelu, m.value(0));
         }},
        {"Gather", "of a shape", [](Importer& m) { m.gather(); }},
        {"Gemm", "", [](Importer& m) { m.gemm(); }},
        {"GlobalAveragePool", "", [](Importer& m) { m.global_pool(false); }},
        {"GlobalMaxPool", "", [](Importer& m) { m.global_pool(true); }},
        {"HardSigmoid", "", [](Importer& m) { m.hard_sigmoid(); }},
        {"HardSwish", "", act(K::HardSilu)},
        {"Identity", "", [](Importer& m) { m.identity(); }},
        {"LeakyRelu", "",
         [](Importer& m) {
           ir::LeakyReLUAttrs a;
           a.alpha = static_cast<float>(m.number("alpha", 0.01));
           const Value& x = m.value(0);
           m.define_like(m.add(K::LeakyReLU, a, {x.id}), x);
         }},
        {"LogSoftmax", "", [](Importer& m) { m.softmax(K::LogSoftmax); }},
        {"MatMul", "constant weights", [](Importer& m) { m.matmul(); }},
        {"Max", "computed tensors", [](Importer& m) { m.extremum(K::Maximum); }},
        {"MaxPool", "",
         [](Importer& m) {
           if (m.node_->output_size() > 1 && !m.node_->output(1).empty())
             m.fail("the Indices output is not supported");
           m.pool(true);
         }},
        {"Min", "computed tensors", [](Importer& m) { m.extremum(K::Minimum); }},
        {"Mish", "", act(K::Mish)},
        {"Mul", "", [](Importer& m) { m.binary("Mul"); }},
        {"Pad", "constant, H and W", [](Importer& m) { m.pad(); }},
        {"ReduceMax", "H and W", [](Importer& m) { m.reduce(true); }},
        {"ReduceMean", "H and W", [](Importer& m) { m.reduce(false); }},
        {"Relu", "", act(K::ReLU)},
        {"Reshape", "to N x rest, to its own shape, or N x C to N x C x 1 x 1",
         [](Importer& m) { m.reshape(); }},
        {"Resize", "nearest (PyTorch's Upsample), linear (half-pixel)",
         [](Importer& m) { m.resize(); }},
        {"Selu", "",
         [](Importer& m) {
           if ((m.attribute("alpha") || m.attribute("gamma")) &&
               (std::abs(m.number("alpha", 1.67326) - 1.67326319) > 1e-5 ||
                std::abs(m.number("gamma", 1.0507) - 1.05070102) > 1e-5))
             m.fail("alpha and gamma other than SELU's constants are not supported");
           m.activation(K::Selu, m.value(0));
         }},
        {"Shape", "", [](Importer& m) { m.shape_of(); }},
        {"Sigmoid", "", act(K::Sigmoid)},
        {"Slice", "H and W, step 1", [](Importer& m) { m.slice(); }},
        {"Softmax", "channels", [](Importer& m) { m.softmax(K::Softmax); }},
        {"Softplus", "", act(K::Softplus)},
        {"Softsign", "", act(K::Softsign)},
        {"Squeeze", "N x C x 1 x 1, a constant", [](Importer& m) { m.squeeze(); }},
        {"Sub", "a constant", [](Importer& m) { m.binary("Sub"); }},
        {"Sum", "", [](Importer& m) { m.sum(); }},
        {"Tanh", "", act(K::Tanh)},
        {"Transpose", "an NHWC input to NCHW", [](Importer& m) { m.transpose(); }},
        {"Unsqueeze", "of a constant", [](Importer& m) { m.reshape_constant(true); }},
    };
    return table;
  }

  void convert(const NodeProto& n, int index) {
    node_ = &n;
    index_ = index;
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      fail("operator domain '" + n.domain() +
           "' is not supported; accepted: the default ONNX domain");
    if (n.output_size() < 1 || n.output(0).empty()) fail("has no output");
    const auto& table = rules();
    const auto rule = std::find_if(table.begin(), table.end(),
                                   [&](const Rule& r) { return n.op_type() == r.name; });
    if (rule == table.end()) fail("operator not supported; accepted: " + supported_operators());
    rule->convert(*this);
    node_ = nullptr;
  }

 public:
  // "Add, ..., Clip (min 0), ...": the table's operators and their limits.
  static std::string accepted() {
    std::string s;
    for (const Rule& r : rules())
      s += (s.empty() ? "" : ", ") + std::string(r.name) +
           (*r.limits ? std::string(" (") + r.limits + ")" : "");
    return s;
  }
};

}  // namespace

ir::Graph load(const std::string& path, int64_t batch) { return Importer(path, batch).run(); }

std::string supported_operators() { return Importer::accepted(); }

}  // namespace cnnc::frontend::onnx
