#pragma once
// The device memory of a GPU Program (codegen-internal; includes Halide): host regions mirrored
// on the GPU through Halide's runtime for the target's API, and the device views GPU kernels
// are called with.
#include <Halide.h>

#include <memory>

#include "codegen/program.h"
#include "ir/target.h"

namespace cnnc::codegen {

// Device memory for a GPU target: regions are allocated on first map(); until then nothing
// touches the driver, so a GPU Program compiles on a machine without a GPU.
std::shared_ptr<DeviceMemory> make_device_memory(const ir::Target& target,
                                                 const Halide::Target& halide);

// Points `buf` (whose host pointer and shape are set) at the device's copy of its bytes, which
// must lie in a region mapped in `device`. Inputs are marked device-dirty, so a stage Halide
// runs on the host copies them back first; the caller must unbind() before `buf` is destroyed.
void bind(DeviceMemory& device, halide_buffer_t& buf, bool input);
void unbind(halide_buffer_t& buf);

}  // namespace cnnc::codegen
