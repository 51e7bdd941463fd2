#pragma once
// The learned cost model that guides the search (as TVM's AutoTVM and Ansor do): gradient-
// boosted trees (XGBoost's C API) trained on the measurements of this tune, predicting a
// candidate's time relative to its workload's heuristic schedule from features of the workload
// and the schedule. The search measures the candidates it predicts fastest.
#include <memory>
#include <vector>

#include "ir/graph.h"

namespace cnnc::tuner {

// Features of a schedule on node `n` of graph `g` (shapes, the tile, its registers and bytes,
// the number of tasks).
std::vector<float> features(const ir::Graph& g, const ir::Node& n, const ir::Schedule& s);

class CostModel {
 public:
  CostModel();
  ~CostModel();
  // A measurement: features, and the time over the heuristic's for that workload.
  void add(std::vector<float> x, double relative_time);
  size_t size() const { return y_.size(); }
  // Retrains on every measurement so far.
  void train();
  bool trained() const { return booster_ != nullptr; }
  // Predicted relative times (lower is faster).
  std::vector<float> predict(const std::vector<std::vector<float>>& xs) const;

 private:
  std::vector<float> x_;  // row-major, kFeatures per row
  std::vector<float> y_;
  void* booster_ = nullptr;
};

}  // namespace cnnc::tuner
