#include "tuner/fingerprint.h"

namespace cnnc::tuner {

std::string fingerprint(const ir::Target& t) {
  const ir::CpuFacts& c = t.cpu;
  auto k = [](int64_t b) { return std::to_string(b >> 10) + "K"; };
  std::string s = c.arch + " " + (c.isa.empty() ? "scalar" : c.isa) + " l" +
                  std::to_string(c.vector_lanes) + " r" + std::to_string(c.vector_registers) +
                  " L1=" + k(c.l1_bytes) + " L2=" + k(c.l2_bytes) + " L3=" + k(c.l3_bytes) +
                  " cores=" + std::to_string(c.cores) + " cpu=" + (c.model.empty() ? "?" : c.model);
  if (t.family == ir::Target::Gpu)
    s += " gpu=" + t.gpu.name + " sm_" + std::to_string(t.gpu.capability) +
         " sms=" + std::to_string(t.gpu.sms);
  return s;
}

}  // namespace cnnc::tuner
