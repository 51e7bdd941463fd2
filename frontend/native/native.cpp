#include "frontend/native/native.h"

#include "frontend/load.h"
#include "ir/text.h"

namespace cnnc::frontend::native {

ir::Graph load(const std::string& path, int64_t batch) {
  // A network description is a few KB; 16 MiB is generous and bounds a hostile file.
  return ir::parse(read_file(path, 16u << 20), path, batch);
}

}  // namespace cnnc::frontend::native
