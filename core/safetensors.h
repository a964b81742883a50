// safetensors I/O: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the raw little-endian data. The format Hugging Face and PyTorch users load directly.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace knot {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order (sorted by offset)
  std::map<std::string, std::string> metadata;
};

// Writes atomically: to "<path>.tmp", then renamed over path.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Reads onto the CPU. A truncated file, a corrupt header, overlapping or out-of-range offsets, an
// unknown dtype or a shape that does not match its byte count is an error naming the file and
// the problem.
// A duplicated tensor name (or a key repeated inside one entry) is an error naming it.
SafetensorsFile load_safetensors(const std::string& path);
// The same reader over a whole file held in memory; `name` stands for the file in errors.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name = "<memory>");

}  // namespace knot
