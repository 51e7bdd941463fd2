#pragma once
// Writing a file so that an interrupted or failed write (a full disk, kill -9, a power loss)
// leaves the old file or the new one, never half of one: written beside it as PATH.tmp, put on
// disk (fsync), then renamed over it. In the base library because every stage writes files:
// weights, checkpoints, logs, Keras write-back, reports.
#include <string>
#include <string_view>

namespace cnnc::ir {

// Writes `bytes` to `path` that way. Throws Error naming `path`; the old file is then unchanged.
void write_file_atomically(const std::string& path, std::string_view bytes);

// Puts the finished file `tmp` (written by a library: HDF5, zip, cairo, a stream) in place of
// `path` the same way. On failure removes `tmp` and throws Error naming `path`.
void replace_file(const std::string& tmp, const std::string& path);

}  // namespace cnnc::ir
