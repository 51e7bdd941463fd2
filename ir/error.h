#pragma once
// Errors a user can act on: every message names where (file:line, layer) and what would work.
#include <stdexcept>
#include <string>

namespace cnnc {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace cnnc
