#include "tools/chart.h"

#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "ir/atomic_file.h"
#include "ir/error.h"

namespace cnnc::tools {

namespace {

constexpr double kPanelW = 460, kPanelH = 330, kTitleH = 34;
constexpr double kLeft = 64, kRight = 16, kTop = 30, kBottom = 56;

// Axis ticks at 1, 2 or 5 times a power of ten, about `want` of them over [lo, hi]; whole
// numbers only when `integer`.
std::vector<double> ticks(double lo, double hi, int want, bool integer = false) {
  const double raw = (hi - lo) / want, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = raw / mag < 1.5   ? mag
                : raw / mag < 3.5 ? 2 * mag
                : raw / mag < 7.5 ? 5 * mag
                                  : 10 * mag;
  if (integer) step = std::max(step, 1.0);
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

void set_rgb(cairo_t* cr, uint32_t rgb) {
  cairo_set_source_rgb(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0,
                       (rgb & 255) / 255.0);
}

void text(cairo_t* cr, double x, double y, const std::string& s, double size, double align = 0) {
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - align * e.x_advance, y);
  cairo_show_text(cr, s.c_str());
}

std::string label_of(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

void draw_panel(cairo_t* cr, double x0, double y0, const Panel& p) {
  double xlo = 1e300, xhi = -1e300, ylo = 1e300, yhi = -1e300;
  for (const Series& s : p.series)
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      xlo = std::min(xlo, x), xhi = std::max(xhi, x), ylo = std::min(ylo, y),
      yhi = std::max(yhi, y);
    }
  if (xlo > xhi) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (xhi - xlo < 1e-12) xhi = xlo + 1;
  const double pad = yhi - ylo < 1e-12 ? std::max(std::abs(yhi) * 0.05, 1e-3) : (yhi - ylo) * 0.05;
  ylo -= pad, yhi += pad;
  const double L = x0 + kLeft, R = x0 + kPanelW - kRight, T = y0 + kTop, B = y0 + kPanelH - kBottom;
  auto px = [&](double x) { return L + (R - L) * (x - xlo) / (xhi - xlo); };
  auto py = [&](double y) { return B - (B - T) * (y - ylo) / (yhi - ylo); };

  cairo_set_source_rgb(cr, 0, 0, 0);
  text(cr, L, y0 + 18, p.title, 13);
  // Grid and tick labels.
  cairo_set_line_width(cr, 1);
  for (double v : ticks(ylo, yhi, 5)) {
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, L, py(v)), cairo_line_to(cr, R, py(v)), cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    text(cr, L - 6, py(v) + 4, label_of(v), 10, 1);
  }
  for (double v : ticks(xlo, xhi, 6, p.integer_x)) {
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, px(v), T), cairo_line_to(cr, px(v), B), cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    text(cr, px(v), B + 14, label_of(v), 10, 0.5);
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, L, T, R - L, B - T), cairo_stroke(cr);
  text(cr, (L + R) / 2, B + 32, p.x_label, 11, 0.5);
  cairo_save(cr);
  cairo_translate(cr, x0 + 16, (T + B) / 2);
  cairo_rotate(cr, -M_PI / 2);
  text(cr, 0, 0, p.y_label, 11, 0.5);
  cairo_restore(cr);
  // The series, then their legend along the bottom.
  cairo_set_line_width(cr, 2);
  double legend_x = L;
  for (const Series& s : p.series) {
    if (s.points.empty()) continue;
    set_rgb(cr, s.rgb);
    bool pen = false;
    double last_y = 0;
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      if (pen && s.steps) cairo_line_to(cr, px(x), py(last_y));
      pen ? cairo_line_to(cr, px(x), py(y)) : cairo_move_to(cr, px(x), py(y));
      pen = true, last_y = y;
    }
    if (s.points.size() == 1)
      cairo_arc(cr, px(s.points[0].first), py(s.points[0].second), 3, 0, 2 * M_PI);
    cairo_stroke(cr);
    cairo_move_to(cr, legend_x, B + 46), cairo_line_to(cr, legend_x + 18, B + 46), cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, legend_x + 22, B + 50, s.label, 10);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s.label.c_str(), &e);
    legend_x += 40 + e.x_advance;
  }
}

}  // namespace

void write_chart(const std::string& path, const std::string& title,
                 const std::vector<Panel>& panels) {
  const double w = kPanelW * std::max<size_t>(1, panels.size()), h = kPanelH + kTitleH;
  const bool svg = path.size() >= 4 && path.compare(path.size() - 4, 4, ".svg") == 0;
  const std::string tmp = path + ".tmp";
  using Surface = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
  Surface surface(svg ? cairo_svg_surface_create(tmp.c_str(), w, h)
                      : cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(w),
                                                   static_cast<int>(h)),
                  cairo_surface_destroy);
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr(cairo_create(surface.get()), cairo_destroy);
  cairo_select_font_face(cr.get(), "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());
  cairo_set_source_rgb(cr.get(), 0, 0, 0);
  text(cr.get(), kLeft, 22, title, 14);
  for (size_t i = 0; i < panels.size(); ++i) draw_panel(cr.get(), kPanelW * i, kTitleH, panels[i]);
  cr.reset();
  cairo_surface_flush(surface.get());
  cairo_status_t status =
      svg ? CAIRO_STATUS_SUCCESS : cairo_surface_write_to_png(surface.get(), tmp.c_str());
  cairo_surface_finish(surface.get());  // an SVG is written here
  if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_status(surface.get());
  if (status != CAIRO_STATUS_SUCCESS) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write the chart (" + cairo_status_to_string(status) + ")");
  }
  ir::replace_file(tmp, path);
}

}  // namespace cnnc::tools
