#include "tuner/fingerprint.h"

#include "codegen/compile.h"

namespace cnnc::tuner {

std::string fingerprint(const ir::Target& t) {
  if (t.family == ir::Target::Gpu) {
    // A GPU kernel's speed is its GPU's: the device found here (none: no record applies), the
    // API and the capability the kernels are compiled for.
    const std::string device = codegen::gpu_device_name(t);
    return "gpu=" + (device.empty() ? std::string("none found") : device) +
           (t.gpu.api == ir::GpuFacts::Cuda ? " cuda sm_" + std::to_string(t.gpu.capability)
                                            : std::string(" opencl"));
  }
  const ir::CpuFacts& c = t.cpu;
  auto k = [](int64_t b) { return std::to_string(b >> 10) + "K"; };
  return c.arch + " " + (c.isa.empty() ? "scalar" : c.isa) + " l" + std::to_string(c.vector_lanes) +
         " r" + std::to_string(c.vector_registers) + " L1=" + k(c.l1_bytes) +
         " L2=" + k(c.l2_bytes) + " L3=" + k(c.l3_bytes) + " cores=" + std::to_string(c.cores) +
         " cpu=" + (c.model.empty() ? "?" : c.model);
}

}  // namespace cnnc::tuner
