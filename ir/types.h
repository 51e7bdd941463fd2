#pragma once
// Tensor types and constant tensors. Layout is NHWC (rank 4) or NC (rank 2); the batch is the
// first dimension and the channel the last, so every op's "channel" axis is the innermost one.
#include <cstdint>
#include <string>
#include <vector>

namespace cnnc::ir {

enum class DType { F32 };

using Shape = std::vector<int64_t>;

struct TensorType {
  Shape shape;
  DType dtype = DType::F32;

  int rank() const { return static_cast<int>(shape.size()); }
  int64_t elements() const;
  int64_t channels() const { return shape.back(); }
  bool operator==(const TensorType&) const = default;
};

// "32x32x3" (the batch dimension is left out, as in the network format).
std::string shape_to_string(const Shape& s, bool with_batch = false);

// A constant (weights): dense row-major float data in the shape given.
struct Tensor {
  Shape shape;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(Shape s) : shape(std::move(s)), data(static_cast<size_t>(count(shape)), 0.f) {}
  int64_t elements() const { return count(shape); }
  static int64_t count(const Shape& s) {
    int64_t n = 1;
    for (auto d : s) n *= d;
    return n;
  }
};

}  // namespace cnnc::ir
