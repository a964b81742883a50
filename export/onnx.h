// Writes an export graph (nn/export_graph.h) as an ONNX model with the ONNX project's own C++
// library (Debian libonnx-dev: its protobuf classes, checker and shape inference), not a
// hand-rolled protobuf writer. Built when CMake finds ONNX (KNOT_ONNX=AUTO); without it
// write_onnx is an error that says so.
#pragma once

#include <map>
#include <string>

#include "nn/export_graph.h"

namespace knot::exporting {

struct OnnxOptions {
  int64_t opset = 17;  // the default ai.onnx operator set (>= 17: LayerNormalization)
  std::string graph_name = "knot";
  std::map<std::string, std::string> metadata;  // metadata_props (knot version, run, part, ...)
};

// Whether this build can write ONNX.
bool onnx_supported();

// Builds the ModelProto, checks it as `onnx.checker.check_model(full_check=True)` does (the checker,
// then strict shape and type inference), and writes it atomically (a temporary file renamed over
// `path`): a failed export leaves no file and no half-written one. Returns the file's size in bytes.
int64_t write_onnx(const nn::ExportGraph& g, const std::string& path, const OnnxOptions& opt = {});

}  // namespace knot::exporting
