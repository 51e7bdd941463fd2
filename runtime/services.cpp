#include "runtime/services.h"

#include <cstdlib>
#include <string>

#include "runtime/scratch_pool.h"
#include "runtime/thread_pool.h"

namespace cnnc::runtime {

const codegen::RuntimeServices& services() {
  static const codegen::RuntimeServices s{pool_do_par_for, scratch_malloc, scratch_free};
  return s;
}

void set_num_threads(int threads) {
  // Halide's own pool (unused while our do_par_for is installed) agrees, for any code path that
  // still reaches it.
  if (threads > 0) setenv("HL_NUM_THREADS", std::to_string(threads).c_str(), 1);
  set_pool_threads(threads);
}

}  // namespace cnnc::runtime
