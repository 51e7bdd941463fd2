#include "ir/target.h"

namespace cnnc::ir {

std::string Target::describe() const {
  auto kib = [](int64_t b) { return std::to_string(b >> 10) + " KiB"; };
  std::string s = name + " (" + cpu.arch + (cpu.isa.empty() ? "" : " " + cpu.isa) + ", " +
                  std::to_string(cpu.vector_lanes) + " lanes, " +
                  std::to_string(cpu.vector_registers) + " vector registers, L1 " +
                  kib(cpu.l1_bytes) + " " + std::to_string(cpu.l1_ways) + "-way";
  if (cpu.l2_bytes) s += ", L2 " + kib(cpu.l2_bytes);
  if (cpu.l3_bytes) s += ", L3 " + kib(cpu.l3_bytes);
  s += ", " + std::to_string(cpu.cores) + " cores";
  if (!cpu.model.empty()) s += ", " + cpu.model;
  if (family == Gpu && gpu.api == GpuFacts::OpenCL) s += "; GPU OpenCL";
  if (family == Gpu && gpu.api == GpuFacts::Cuda) {
    s += "; GPU CUDA sm_" + std::to_string(gpu.capability);
    if (gpu.requested_capability > gpu.capability)
      s += " PTX, which the driver compiles for sm_" + std::to_string(gpu.requested_capability);
  }
  return s + ")";
}

}  // namespace cnnc::ir
