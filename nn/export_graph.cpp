// ExportGraph (see export_graph.h).
#include "nn/export_graph.h"

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "nn/projection.h"
#include "ops/ops.h"

namespace knot::nn {

ExportGraph::ExportGraph(DType float_dtype) : dtype_(float_dtype) {
  KNOT_CHECK(float_dtype == DType::f32 || float_dtype == DType::f64,
             "export: the graph's float type must be f32 or f64, got {}", dtype_name(float_dtype));
}

std::string ExportGraph::fresh(const std::string& hint) {
  const std::string base = hint.empty() ? "v" : hint;
  for (;;) {  // "Add", "Add_1", ...; skips a name taken another way (an input, or a hint that looked like one)
    const int n = used_names_[base]++;
    std::string name = n == 0 ? base : fmt::format("{}_{}", base, n);
    if (taken_.insert(name).second) return name;
  }
}

std::string ExportGraph::input(const std::string& name, DType dt, const std::vector<std::string>& dims) {
  KNOT_CHECK(taken_.insert(name).second, "export: graph input '{}' is named twice", name);
  inputs_.push_back({name, dt, dims});
  return name;
}

void ExportGraph::output(const std::string& value, const std::string& name, DType dt,
                         const std::vector<std::string>& dims) {
  std::string v = value;
  if (value != name) {
    KNOT_CHECK(taken_.insert(name).second, "export: graph output '{}' clashes with another value", name);
    nodes_.push_back({"Identity", {value}, {name}, {}, fresh("node_Identity")});
    v = name;
  }
  outputs_.push_back({v, dt, dims});
}

std::string ExportGraph::add_initializer(std::string name, const Tensor& t) {
  NoGradGuard ng;
  Tensor v = t.detach().to(Device::cpu());
  if (is_floating(v.dtype()) && v.dtype() != dtype_) v = v.to(dtype_);
  inits_.push_back({name, v.contiguous()});
  return name;
}

std::string ExportGraph::weight(const std::string& name, const Tensor& t) {
  KNOT_CHECK(t.defined(), "export: weight '{}' is undefined", name);
  const std::string key = fmt::format("w:{}:{}:{}", static_cast<const void*>(t.storage().get()), t.offset(),
                                      shape_str(t.shape()));
  if (auto it = shared_.find(key); it != shared_.end()) return it->second;
  const std::string n = fresh(name);
  shared_[key] = n;
  return add_initializer(n, t);
}

std::string ExportGraph::constant(const std::string& name, const Tensor& t) {
  KNOT_CHECK(t.defined(), "export: constant '{}' is undefined", name);
  return add_initializer(fresh(name), t);
}

std::string ExportGraph::scalar(double v) {
  const std::string key = fmt::format("s:{:a}", v);
  if (auto it = shared_.find(key); it != shared_.end()) return it->second;
  const std::string n = add_initializer(fresh("const_scalar"), full({}, v, dtype_));
  shared_[key] = n;
  return n;
}

std::string ExportGraph::ints(const std::vector<int64_t>& v) {
  const std::string key = fmt::format("i:{}", fmt::join(v, ","));
  if (auto it = shared_.find(key); it != shared_.end()) return it->second;
  const std::string n = add_initializer(fresh("const_ints"), from_vector(v, {static_cast<int64_t>(v.size())}));
  shared_[key] = n;
  return n;
}

std::vector<std::string> ExportGraph::op_n(const std::string& type, const std::vector<std::string>& inputs, int n,
                                           std::vector<GraphAttr> attrs) {
  std::vector<std::string> outs;
  for (int i = 0; i < n; ++i) outs.push_back(fresh(type));
  nodes_.push_back({type, inputs, outs, std::move(attrs), fresh("node_" + type)});
  return outs;
}

std::string ExportGraph::op(const std::string& type, const std::vector<std::string>& inputs,
                            std::vector<GraphAttr> attrs) {
  return op_n(type, inputs, 1, std::move(attrs))[0];
}

std::string ExportGraph::linear(const std::string& x, const std::string& weight_name, const Tensor& W,
                                const std::string& bias_name, const Tensor& b) {
  KNOT_CHECK(W.defined() && W.dim() == 2, "export: linear weight '{}' must be (out, in)", weight_name);
  // The trained (out, in) weight is stored once under its own name (state_dict layout) and
  // transposed by a Transpose node; runtimes fold that at load time.
  const std::string w = weight(weight_name, W);
  std::string y = matmul(x, transpose(w, {1, 0}));
  if (b.defined()) y = add(y, weight(bias_name, b));
  return y;
}

std::string ExportGraph::activation(const std::string& name, const std::string& x) {
  if (name == "relu") return op("Relu", {x});
  if (name == "gelu") {  // x·Φ(x) = ½x(1 + erf(x/√2)) (opset 17 has no Gelu)
    const std::string e = op("Erf", {mul(x, scalar(0.70710678118654752440))});
    return mul(mul(x, scalar(0.5)), add(e, scalar(1.0)));
  }
  if (name == "gelu_tanh") {  // ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
    const std::string x3 = mul(mul(x, x), x);
    const std::string in = mul(add(x, mul(x3, scalar(0.044715))), scalar(0.79788456080286535588));
    return mul(mul(x, scalar(0.5)), add(op("Tanh", {in}), scalar(1.0)));
  }
  if (name == "silu" || name == "swish") {
    // f64: ONNX Runtime fuses x·Sigmoid(x) into an f32-only kernel (QuickGelu) and then refuses the
    // model, so the f64 graph spells it x / (1 + exp(−x)).
    if (dtype_ == DType::f64) return div(x, add(scalar(1.0), op("Exp", {op("Neg", {x})})));
    return mul(x, op("Sigmoid", {x}));
  }
  if (name == "sigmoid") return op("Sigmoid", {x});
  if (name == "tanh") return op("Tanh", {x});
  if (name == "elu") return op("Elu", {x}, {{"alpha", 1.0}});
  if (name == "leaky_relu") return op("LeakyRelu", {x}, {{"alpha", 0.01}});
  if (name == "softplus") return op("Softplus", {x});
  if (name == "identity") return x;
  KNOT_FAIL("export: activation '{}' has no export (relu, gelu, gelu_tanh, silu, swish, sigmoid, tanh, elu, "
            "leaky_relu, softplus, identity)",
            name);
}

std::string ExportGraph::flatten_rows(const std::string& x, int64_t in, std::string* shape) {
  *shape = op("Shape", {x});
  return reshape(x, {-1, in});
}

std::string ExportGraph::unflatten_rows(const std::string& y, const std::string& shape, int64_t out) {
  // Slice(shape, 0, -1) keeps the leading dims; the last becomes `out`.
  const std::string lead = op("Slice", {shape, ints({0}), ints({-1})});
  return op("Reshape", {y, op("Concat", {lead, ints({out})}, {{"axis", int64_t{0}}})});
}

std::string ExportGraph::dim_of(const std::string& x, int64_t axis) {
  return op("Gather", {op("Shape", {x}), ints({axis})}, {{"axis", int64_t{0}}});
}

std::string Projection::to_graph(ExportGraph&, const std::string&, const std::string& prefix) const {
  KNOT_FAIL("export: layer '{}' ({}) has no export to standard operators",
            prefix.empty() ? std::string("<root>") : prefix.substr(0, prefix.size() - 1), type_name());
}

}  // namespace knot::nn
