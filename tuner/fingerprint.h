#pragma once
// The hardware a tuning record was measured on: what makes a schedule's speed comparable. A
// record is applied only on a machine with the same fingerprint.
#include <string>

#include "ir/target.h"

namespace cnnc::tuner {

// "x86-64 avx512 l16 r32 L1=32K L2=1024K L3=32768K cores=2 cpu=AMD EPYC (family 25, model 17)"
// For a GPU target: "gpu=NVIDIA H200, 132 SMs cuda sm_86" (the device the driver finds).
std::string fingerprint(const ir::Target& t);

}  // namespace cnnc::tuner
