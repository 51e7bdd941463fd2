#include "tuner/cost_model.h"

#include <xgboost/c_api.h>

#include <algorithm>
#include <cmath>

#include "ir/error.h"

namespace cnnc::tuner {

namespace {

constexpr size_t kFeatures = 32;

void check(int rc, const char* what) {
  if (rc != 0) throw InternalError(std::string("xgboost: ") + what + ": " + XGBGetLastError());
}

float lg(double v) { return static_cast<float>(std::log2(std::max(v, 0.0) + 1)); }

}  // namespace

std::vector<float> features(const ir::Graph& g, const ir::Node& n, const ir::Schedule& s) {
  const ir::TensorType& in = g.node(n.inputs[0]).type;
  const ir::Shape& o = n.type.shape;
  const double out_c = static_cast<double>(o.back());
  const double out_w = o.size() == 4 ? static_cast<double>(o[2]) : 1;
  const double out_h = o.size() == 4 ? static_cast<double>(o[1]) : 1;
  const double batch = static_cast<double>(o[0]);
  double taps = 1, in_per_group = static_cast<double>(in.channels());
  if (n.op == ir::OpKind::Conv2D) {
    const auto& a = n.attr<ir::Conv2DAttrs>();
    taps = static_cast<double>(a.kernel.h * a.kernel.w);
    in_per_group /= static_cast<double>(a.groups);
  } else if (n.op == ir::OpKind::Conv2DTranspose) {
    const auto& a = n.attr<ir::Conv2DTransposeAttrs>();
    taps = static_cast<double>(a.kernel.h * a.kernel.w);
  }
  const double v = std::max<double>(1, static_cast<double>(s.vector));
  const double c = static_cast<double>(s.channels), x = static_cast<double>(s.pixels);
  const double rows = std::max<double>(1, static_cast<double>(s.rows));
  const double bc = std::max<double>(1, static_cast<double>(s.block_channels));
  const double bx = std::max<double>(1, static_cast<double>(s.block_pixels));
  const double br = std::max<double>(1, static_cast<double>(s.block_rows));
  // A CPU tile's task takes C channels (several tiles') where C is set.
  const double task_c = std::max({c, v, s.kind == ir::ScheduleKind::Tile ? bc : 1.0});
  const double tasks = std::ceil(out_c / task_c) * std::ceil(out_h / rows) * batch;
  // The pixels a row of register tiles runs through: the image's when tiles span its rows.
  const bool spans = s.kind == ir::ScheduleKind::Tile && ir::tile_spans_rows(g, n);
  const double run = spans ? out_h * out_w : out_w;
  std::vector<float> f = {
      static_cast<float>(ir::kernel_kind(g, n)),
      static_cast<float>(s.kind),
      lg(out_c),
      lg(out_w),
      lg(out_h),
      lg(batch),
      lg(in_per_group),
      lg(taps),
      lg(v),
      lg(c),
      lg(x),
      lg(static_cast<double>(s.chunk)),
      lg(rows),
      static_cast<float>(s.taps_inside),
      static_cast<float>(s.pack > 0),
      lg(c / v * x),                             // accumulators in registers
      lg(c * x * 4),                             // tile bytes
      lg(static_cast<double>(s.chunk) * c * 4),  // a chunk's weights for one tap
      lg(rows * out_w * c * 4),                  // a task's output bytes
      lg(tasks),
      static_cast<float>(std::fmod(run, std::max(x, 1.0)) != 0),  // a partial tile
      static_cast<float>(std::fmod(out_c, std::max(c, v)) != 0),
      lg(out_c * out_w * out_h * batch * in_per_group * taps),  // MACs (the direct conv's)
      static_cast<float>(s.kind == ir::ScheduleKind::Winograd ? ir::winograd_outputs(s) : 0),
      static_cast<float>(std::fmod(out_c, v) != 0),
      // GPU schedules: the block (C x X x R outputs), its threads and how many blocks fill the
      // device, shared-memory staging and the reduction's unroll (0 for CPU schedules).
      lg(bc),
      lg(bx),
      lg(br),
      lg(std::max(1.0, bc / std::max(c, v)) * std::max(1.0, bx / std::max(x, 1.0)) * br),
      lg(std::ceil(out_c / bc) * std::ceil(out_w / bx) * std::ceil(out_h / br) * batch),
      static_cast<float>(s.shared),
      lg(static_cast<double>(s.unroll)),
  };
  internal_assert(f.size() == kFeatures, "cost model: feature count");
  return f;
}

CostModel::CostModel() = default;
CostModel::~CostModel() {
  if (booster_) XGBoosterFree(booster_);
}

void CostModel::add(std::vector<float> x, double relative_time) {
  internal_assert(x.size() == kFeatures, "cost model: feature count");
  x_.insert(x_.end(), x.begin(), x.end());
  y_.push_back(static_cast<float>(std::log2(std::max(relative_time, 1e-6))));
}

void CostModel::train() {
  if (y_.size() < 8) return;
  DMatrixHandle d = nullptr;
  check(XGDMatrixCreateFromMat(x_.data(), y_.size(), kFeatures, NAN, &d), "matrix");
  check(XGDMatrixSetFloatInfo(d, "label", y_.data(), y_.size()), "labels");
  BoosterHandle b = nullptr;
  check(XGBoosterCreate(&d, 1, &b), "booster");
  // Small trees, one thread (the measuring worker uses the cores), deterministic.
  for (auto [k, v] : {std::pair{"max_depth", "5"},
                      {"eta", "0.3"},
                      {"nthread", "1"},
                      {"objective", "reg:squarederror"},
                      {"seed", "1"},
                      {"verbosity", "0"}})
    check(XGBoosterSetParam(b, k, v), "parameter");
  for (int i = 0; i < 40; ++i) check(XGBoosterUpdateOneIter(b, i, d), "training");
  XGDMatrixFree(d);
  if (booster_) XGBoosterFree(booster_);
  booster_ = b;
}

std::vector<float> CostModel::predict(const std::vector<std::vector<float>>& xs) const {
  internal_assert(booster_ != nullptr, "cost model used before training");
  std::vector<float> flat;
  for (const auto& x : xs) flat.insert(flat.end(), x.begin(), x.end());
  DMatrixHandle d = nullptr;
  check(XGDMatrixCreateFromMat(flat.data(), xs.size(), kFeatures, NAN, &d), "matrix");
  bst_ulong len = 0;
  const float* out = nullptr;
  check(XGBoosterPredict(booster_, d, 0, 0, 0, &len, &out), "prediction");
  std::vector<float> r(out, out + len);
  XGDMatrixFree(d);
  return r;
}

}  // namespace cnnc::tuner
