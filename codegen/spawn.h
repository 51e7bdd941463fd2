#pragma once
// Running a build tool (the C compiler, the linker, ar) from codegen: no shell involved.
#include <string>
#include <vector>

namespace cnnc::codegen {

// Runs args[0] (found on PATH) with the rest as its arguments; true when it exits with 0.
// quiet: its output goes to /dev/null (a probe), else to ours (a compiler's errors).
bool run_program(const std::vector<std::string>& args, bool quiet = false);

}  // namespace cnnc::codegen
