#pragma once
// Errors. A user can act on an Error: every message names where (file:line, layer) and what
// would work. An InternalError is cnnc's own bug.
#include <stdexcept>
#include <string>

namespace cnnc {

// The user's mistake (a malformed file, an impossible shape, a bad flag): exit status 1.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bug in cnnc (a broken invariant, as Halide's internal_assert): exit status 2, "internal
// error: ...; please report".
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Throws InternalError with the message when `ok` is false.
inline void internal_assert(bool ok, const std::string& message) {
  if (!ok) throw InternalError(message);
}

}  // namespace cnnc
