// ExportGraph: a model's inference pass written down as a graph of standard operators, for export
// (export/onnx.h turns it into an ONNX model). Modules describe their own forward pass here
// (Projection::to_graph, and every KAN basis), so a layer and its export live side by side and a
// basis without one is an error that names it.
//
// The graph speaks ONNX: node types and attribute names are those of the ONNX operator set
// (opset 17: MatMul, Add, LayerNormalization, Gather, Softmax, Where, ...), so the writer only
// translates. Nothing here depends on the ONNX library; a build without it can still build graphs.
//
// Values are named strings. Graph inputs and outputs carry a dtype and dims, where a dim is a
// number ("64") or a symbolic name ("batch", "seq"): the dynamic axes of the exported model.
// Trained tensors become initializers under their state_dict names (weight()); tensors derived from
// them at export time (a transposed or pre-scaled weight, a KAN grid's reciprocal knot spans)
// become initializers with names that say where they come from (constant()).
// Every float value of the graph has the graph's dtype (f32 unless asked otherwise): weights are
// converted when added.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace knot::nn {

using GraphAttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;
struct GraphAttr {
  std::string name;
  GraphAttrValue value;
};

struct GraphNode {
  std::string op;  // ONNX operator type
  std::vector<std::string> inputs, outputs;
  std::vector<GraphAttr> attrs;
  std::string name;  // unique node name
};

struct GraphValue {
  std::string name;
  DType dtype;
  std::vector<std::string> dims;  // "12" or a symbolic name
};

struct GraphInitializer {
  std::string name;
  Tensor value;  // contiguous, on the CPU
};

class ExportGraph {
 public:
  explicit ExportGraph(DType float_dtype = DType::f32);
  DType dtype() const { return dtype_; }

  // ---- graph inputs and outputs ----
  // Integer inputs keep their dtype (ids are i64); dims as above.
  std::string input(const std::string& name, DType dt, const std::vector<std::string>& dims);
  // Names value `value` as the graph output `name` (an Identity node when the names differ).
  void output(const std::string& value, const std::string& name, DType dt, const std::vector<std::string>& dims);

  // ---- tensors ----
  // A trained tensor under its state_dict name. The same tensor (same storage, offset and shape)
  // added again returns the first name, so a tied weight is stored once. Float tensors are
  // converted to the graph's dtype.
  std::string weight(const std::string& name, const Tensor& t);
  // A tensor computed at export time from the weights, stored under a unique name derived from `name`.
  std::string constant(const std::string& name, const Tensor& t);
  // A float scalar of the graph's dtype (shape (), shared by value).
  std::string scalar(double v);
  // A 1-D int64 constant (shapes, axes, indices), shared by value.
  std::string ints(const std::vector<int64_t>& v);

  // ---- nodes ----
  // Adds a node with one output and returns the output's (fresh) name.
  std::string op(const std::string& type, const std::vector<std::string>& inputs, std::vector<GraphAttr> attrs = {});
  // A node with n outputs.
  std::vector<std::string> op_n(const std::string& type, const std::vector<std::string>& inputs, int n,
                                std::vector<GraphAttr> attrs = {});

  // ---- common patterns ----
  std::string add(const std::string& a, const std::string& b) { return op("Add", {a, b}); }
  std::string sub(const std::string& a, const std::string& b) { return op("Sub", {a, b}); }
  std::string mul(const std::string& a, const std::string& b) { return op("Mul", {a, b}); }
  std::string div(const std::string& a, const std::string& b) { return op("Div", {a, b}); }
  std::string matmul(const std::string& a, const std::string& b) { return op("MatMul", {a, b}); }
  std::string reshape(const std::string& x, const std::vector<int64_t>& shape) { return op("Reshape", {x, ints(shape)}); }
  std::string unsqueeze(const std::string& x, const std::vector<int64_t>& axes) { return op("Unsqueeze", {x, ints(axes)}); }
  std::string transpose(const std::string& x, const std::vector<int64_t>& perm) {
    return op("Transpose", {x}, {{"perm", perm}});
  }
  // x: (..., in) -> (..., out) = x·Wᵀ (+ b), W (out, in) added under `weight_name`, b under `bias_name`
  // (b may be undefined). Wᵀ is stored as a derived constant, so the graph has a single MatMul.
  std::string linear(const std::string& x, const std::string& weight_name, const Tensor& W,
                     const std::string& bias_name = "", const Tensor& b = Tensor());
  // A named activation (ops/elementwise.h's activation names) of x.
  std::string activation(const std::string& name, const std::string& x);
  // (..., in) -> (N, in): the rows a KAN layer works on. Returns the flattened value; *shape gets
  // x's runtime shape for unflatten.
  std::string flatten_rows(const std::string& x, int64_t in, std::string* shape);
  // (N, out) -> (..., out) with the leading dims of the shape flatten_rows kept.
  std::string unflatten_rows(const std::string& y, const std::string& shape, int64_t out);
  // The length of axis `axis` of x's runtime shape, as a 1-D int64 tensor of one element.
  std::string dim_of(const std::string& x, int64_t axis);

  const std::vector<GraphNode>& nodes() const { return nodes_; }
  const std::vector<GraphInitializer>& initializers() const { return inits_; }
  const std::vector<GraphValue>& inputs() const { return inputs_; }
  const std::vector<GraphValue>& outputs() const { return outputs_; }

 private:
  std::string fresh(const std::string& hint);
  std::string add_initializer(std::string name, const Tensor& t);
  DType dtype_;
  std::vector<GraphNode> nodes_;
  std::vector<GraphInitializer> inits_;
  std::vector<GraphValue> inputs_, outputs_;
  std::map<std::string, int> used_names_;      // hint -> next suffix
  std::set<std::string> taken_;                // every value, initializer and node name
  std::map<std::string, std::string> shared_;  // weight identity / constant value key -> name
};

}  // namespace knot::nn
