#pragma once
// Line charts for people: training curves, tuning curves. Drawn with cairo, written as PNG (or
// SVG when the path ends in .svg), to a temporary file renamed into place.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cnnc::tools {

struct Series {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), in x order
  uint32_t rgb = 0x1f77b4;
  bool steps = false;  // a value that holds until the next point (a best-so-far)
};

struct Panel {
  std::string title, x_label, y_label;
  std::vector<Series> series;  // empty series are left out
  bool integer_x = false;      // x counts something (epochs): ticks at whole numbers
};

// Panels side by side under one title. Throws cnnc::Error naming the path if it cannot write.
void write_chart(const std::string& path, const std::string& title,
                 const std::vector<Panel>& panels);

}  // namespace cnnc::tools
