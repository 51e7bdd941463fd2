#pragma once
// The workers of every kernel's parallel loops (installed as Halide's do_par_for, JIT and AOT).
// A model is a sequence of short parallel loops, one per kernel, microseconds apart; Halide's
// own pool lets its workers fall asleep between them, and waking them costs about as much as a
// small kernel (MobileNetV2 at batch 1 ran at half speed, or full, at random). These workers
// spin for a while after each loop and sleep only when no loop came for ~2 ms.
#include <cstdint>
#include <functional>

namespace cnnc::runtime {

// Worker count including the calling thread (0: one per core). Takes effect for later loops.
void set_pool_threads(int threads);

// Halide's halide_do_par_for contract: run task(user_context, i, closure) for i in
// [min, min + size), in any order and in parallel; the first nonzero result is returned.
int pool_do_par_for(void* user_context, int (*task)(void*, int, uint8_t*), int min, int size,
                    uint8_t* closure);

// body(i) for i in [0, count) on the same workers (the host-side loops of a training step: the
// optimiser's update, dropout masks), so they do not run on one core while the others spin.
void parallel_for(int count, const std::function<void(int)>& body);

}  // namespace cnnc::runtime
