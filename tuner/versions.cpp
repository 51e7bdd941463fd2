// The versions a tuning record is measured with (apart from database.cpp, so the database
// reader builds without codegen: its fuzz target).
#include "codegen/compile.h"
#include "tuner/database.h"

namespace cnnc::tuner {

std::string cnnc_version() { return CNNC_VERSION; }
std::string halide_version() { return codegen::halide_version(); }

}  // namespace cnnc::tuner
