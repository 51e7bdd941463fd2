// The buffers of every algorithm: dense inputs and outputs with fixed bounds (and the same as
// estimates, which Halide's autoschedulers read).
#include "codegen/ops/ops.h"

namespace cnnc::codegen {

using namespace Halide;

ImageParam make_input(const std::string& name, const std::vector<int>& dims) {
  ImageParam p(Float(32), static_cast<int>(dims.size()), name);
  int stride = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    p.dim(static_cast<int>(i)).set_bounds(0, dims[i]).set_stride(stride).set_estimate(0, dims[i]);
    stride *= dims[i];
  }
  return p;
}

ImageParam Algorithm::add_arg(const std::string& name, const std::vector<int>& dims) {
  ImageParam p = make_input(name, dims);
  args.push_back(p);
  arg_dims.push_back(dims);
  return p;
}

void Algorithm::epilogue_output(const std::string& name, const ir::Epilogue& e, Expr result,
                                const ImageParam& residual, const std::vector<int>& dims) {
  if (e.add) result += residual(vars[0], vars[1], vars[2], vars[3]);
  out = Func(name);
  out(vars[0], vars[1], vars[2], vars[3]) = with_activation(e, result);
  out_dims = dims;
  bound_output(out, out_dims);
}

void bound_output(Func& f, const std::vector<int>& dims) {
  // Estimates too, for Halide's autoschedulers (ir::is_autoscheduler).
  Region estimates;
  for (int d : dims) estimates.emplace_back(0, d);
  f.set_estimates(estimates);
  int stride = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    f.output_buffer().dim(static_cast<int>(i)).set_bounds(0, dims[i]).set_stride(stride);
    stride *= dims[i];
  }
}

std::vector<int> halide_dims(const ir::Shape& s) { return std::vector<int>(s.rbegin(), s.rend()); }

}  // namespace cnnc::codegen
