#pragma once
// Memory for the buffers a kernel allocates for itself on every call (a padded copy of its
// input, a per-task tile), installed as Halide's malloc and free, JIT and AOT.
//
// Why not plain malloc: glibc returns a freed block above 32 MiB straight to the OS, so the next
// call page-faults all of it again. VGG16's 224x224x64 conv at batch 4 pads into a 52 MB copy;
// re-faulting it cost a quarter of the layer's time (63-70% of the FMA peak, 87% with the block
// kept). The pool keeps freed blocks and hands them out again.
#include <cstddef>

namespace cnnc::runtime {

// Halide's halide_malloc/halide_free contract: 64-byte aligned, safe to read a few bytes either
// side. Thread-safe: kernels allocate per task from the worker threads.
void* scratch_malloc(void* user_context, size_t bytes);
void scratch_free(void* user_context, void* ptr);

// Bytes the pool holds (handed out or kept for reuse), over all threads: memory outside the
// memory plan's arena, for `cnnc bench` to report beside it.
size_t scratch_bytes_held();

}  // namespace cnnc::runtime
