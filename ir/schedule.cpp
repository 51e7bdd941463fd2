#include "ir/schedule.h"

#include <charconv>

#include "ir/graph.h"
#include "ir/shape_inference.h"

namespace cnnc::ir {

namespace {

struct Field {
  char letter;
  int64_t Schedule::*slot;
};
constexpr Field kFields[] = {
    {'v', &Schedule::vector},     {'c', &Schedule::channels},       {'x', &Schedule::pixels},
    {'k', &Schedule::chunk},      {'r', &Schedule::rows},           {'t', &Schedule::taps_inside},
    {'p', &Schedule::pack},       {'C', &Schedule::block_channels}, {'X', &Schedule::block_pixels},
    {'R', &Schedule::block_rows}, {'s', &Schedule::shared},         {'u', &Schedule::unroll},
    {'m', &Schedule::outputs},
};

// Every schedule kind: its name, target family, the kernels it applies to (a bit per
// KernelKind) and the field letters it takes.
struct KindInfo {
  ScheduleKind kind;
  const char* name;
  TargetFamily family;
  unsigned kernels;
  const char* fields;
};
constexpr unsigned bit(KernelKind k) { return 1u << static_cast<unsigned>(k); }
constexpr unsigned kConvs = bit(KernelKind::Conv) | bit(KernelKind::Depthwise);
constexpr unsigned kAll = kConvs | bit(KernelKind::Pool) | bit(KernelKind::Pointwise);
constexpr KindInfo kKinds[] = {
    {ScheduleKind::None, "none", TargetFamily::Cpu, kAll, ""},
    {ScheduleKind::Tile, "tile", TargetFamily::Cpu, bit(KernelKind::Conv), "vcxkrtpC"},
    {ScheduleKind::Gemv, "gemv", TargetFamily::Cpu, bit(KernelKind::Conv), "vcp"},
    {ScheduleKind::Stream, "stream", TargetFamily::Cpu, bit(KernelKind::Conv), "vc"},
    {ScheduleKind::Depthwise, "depthwise", TargetFamily::Cpu, bit(KernelKind::Depthwise), "vcxr"},
    {ScheduleKind::Winograd, "winograd", TargetFamily::Cpu, bit(KernelKind::Conv), "vcxrm"},
    {ScheduleKind::Pool, "pool", TargetFamily::Cpu, bit(KernelKind::Pool), "vr"},
    {ScheduleKind::Pointwise, "pointwise", TargetFamily::Cpu, bit(KernelKind::Pointwise), "vr"},
    {ScheduleKind::GpuTile, "gpu_tile", TargetFamily::Gpu, kConvs, "cxkCXRsu"},
    {ScheduleKind::GpuPointwise, "gpu_pointwise", TargetFamily::Gpu,
     bit(KernelKind::Pool) | bit(KernelKind::Pointwise), "vCX"},
    {ScheduleKind::Adams2019, "adams2019", TargetFamily::Cpu, kAll, ""},
    {ScheduleKind::Mullapudi2016, "mullapudi2016", TargetFamily::Cpu, kAll, ""},
    {ScheduleKind::Anderson2021, "anderson2021", TargetFamily::Gpu, kAll, ""},
};

const KindInfo& info(ScheduleKind k) {
  for (const auto& i : kKinds)
    if (i.kind == k) return i;
  return kKinds[0];
}

}  // namespace

const char* kernel_kind_name(KernelKind k) {
  switch (k) {
    case KernelKind::Conv:
      return "conv";
    case KernelKind::Depthwise:
      return "depthwise";
    case KernelKind::Pool:
      return "pool";
    case KernelKind::Pointwise:
      return "pointwise";
    case KernelKind::Gradient:
      return "gradient";
  }
  return "?";
}

const char* schedule_kind_name(ScheduleKind k) { return info(k).name; }
bool is_autoscheduler(ScheduleKind k) {
  return k == ScheduleKind::Adams2019 || k == ScheduleKind::Mullapudi2016 ||
         k == ScheduleKind::Anderson2021;
}
TargetFamily target_family(ScheduleKind k) { return info(k).family; }
bool schedule_fits(ScheduleKind s, KernelKind k) { return info(s).kernels & bit(k); }

std::string to_text(const Schedule& sc) {
  std::string s = info(sc.kind).name;
  char sep = ':';
  for (const Field& f : kFields)
    if (const int64_t v = sc.*f.slot)
      s += sep + std::string(1, f.letter) + std::to_string(v), sep = ',';
  return s;
}

std::string schedule_syntax() {
  std::string s = "none, an autoscheduler (";
  for (const auto& k : kKinds)
    if (is_autoscheduler(k.kind)) s += std::string(s.back() == '(' ? "" : ", ") + k.name;
  s += "), or KIND:FIELDS with KIND and its field letters one of";
  for (const auto& k : kKinds)
    if (*k.fields) s += std::string(" ") + k.name + "(" + k.fields + ")";
  return s + ", each letter followed by a positive number (e.g. tile:v16,c32,x10,k64,r2,p32)";
}

bool parse_schedule(std::string_view text, Schedule& sc, std::string& why) {
  sc = Schedule{};
  const auto colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  const KindInfo* kind = nullptr;
  for (const auto& k : kKinds)
    if (name == k.name) kind = &k;
  if (!kind) return why = "unknown schedule kind '" + std::string(name) + "'", false;
  sc.kind = kind->kind;
  if (colon == std::string_view::npos) return true;
  if (!*kind->fields) return why = std::string(kind->name) + " takes no fields", false;
  std::string_view rest = text.substr(colon + 1);
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view field = rest.substr(0, comma);
    int64_t v = 0;
    const char* end = field.data() + field.size();
    const bool number =
        field.size() >= 2 && std::from_chars(field.data() + 1, end, v).ptr == end && v >= 1;
    const Field* f = nullptr;
    for (const auto& candidate : kFields)
      if (!field.empty() && candidate.letter == field[0]) f = &candidate;
    if (!number || !f)
      return why = "'" + std::string(field) + "' is not a letter and a positive number", false;
    if (std::string_view(kind->fields).find(field[0]) == std::string_view::npos)
      return why = std::string(kind->name) + " takes the fields " + kind->fields + ", not '" +
                   field[0] + "'",
             false;
    if (sc.*f->slot) return why = "field '" + std::string(1, field[0]) + "' is given twice", false;
    sc.*f->slot = v;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return true;
}

bool input_gradient_is_conv(const Graph& g, const Node& n) {
  if (n.op == OpKind::DenseGradInput) return true;
  if (n.op == OpKind::Conv2DTranspose) {
    // Stride 1: a conv of the input with the kernel flipped, padded by what the crop leaves.
    const auto& a = n.attr<Conv2DTransposeAttrs>();
    if (a.strides.h != 1 || a.strides.w != 1) return false;
    const TensorType& in = g.node(n.inputs[0]).type;
    const auto geo = transposed_geometry(a, in.shape[1], in.shape[2]);
    return geo.crop_top <= (a.kernel.h - 1) * a.dilation.h &&
           geo.crop_left <= (a.kernel.w - 1) * a.dilation.w;
  }
  if (n.op != OpKind::Conv2DGradInput) return false;
  const auto& a = n.attr<ConvGradAttrs>().conv;
  if (a.groups != 1 || a.strides.h != 1 || a.strides.w != 1) return false;
  Node forward;
  forward.op = OpKind::Conv2D;
  forward.attrs = a;
  const auto geo = window_geometry(forward, n.type);
  return geo.pad_top <= (a.kernel.h - 1) * a.dilation.h &&
         geo.pad_left <= (a.kernel.w - 1) * a.dilation.w;
}

bool tile_spans_rows(const Graph& g, const Node& n) {
  if (n.op != OpKind::Conv2D || kernel_kind(g, n) != KernelKind::Conv) return false;
  const auto& a = n.attr<Conv2DAttrs>();
  const Shape& in = g.node(n.inputs[0]).type.shape;
  const Shape& out = n.type.shape;
  return a.kernel.h == 1 && a.kernel.w == 1 && a.strides.h == 1 && a.strides.w == 1 &&
         in[1] == out[1] && in[2] == out[2] && out[1] > 1;
}

KernelKind kernel_kind(const Graph& g, const Node& n) {
  if (input_gradient_is_conv(g, n)) return KernelKind::Conv;
  if (n.op == OpKind::Conv2D) {
    const int64_t groups = n.attr<Conv2DAttrs>().groups;
    return groups > 1 && g.node(n.inputs[0]).type.channels() == groups ? KernelKind::Depthwise
                                                                       : KernelKind::Conv;
  }
  if (n.op == OpKind::Dense) return KernelKind::Conv;
  if (n.op == OpKind::MaxPool2D || n.op == OpKind::AvgPool2D) return KernelKind::Pool;
  // A strided transposed conv is a gather like a strided conv's input gradient.
  if (n.op == OpKind::Conv2DTranspose) return KernelKind::Gradient;
  return n.info().traits & kBackward ? KernelKind::Gradient : KernelKind::Pointwise;
}

}  // namespace cnnc::ir
