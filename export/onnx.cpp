// ONNX writer (see onnx.h).
#include "export/onnx.h"

#include <fmt/format.h>

#include "core/error.h"
#include "data/jsonl.h"

#if KNOT_HAS_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#endif

namespace knot::exporting {

#if KNOT_HAS_ONNX

namespace {

int32_t onnx_elem_type(DType t) {
  switch (t) {
    case DType::f32: return onnx::TensorProto::FLOAT;
    case DType::f64: return onnx::TensorProto::DOUBLE;
    case DType::i64: return onnx::TensorProto::INT64;
    case DType::i32: return onnx::TensorProto::INT32;
    default: break;
  }
  KNOT_FAIL("export: dtype {} has no ONNX export", dtype_name(t));
}

void set_value_info(onnx::ValueInfoProto* v, const nn::GraphValue& gv) {
  v->set_name(gv.name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx_elem_type(gv.dtype));
  auto* shape = tt->mutable_shape();
  for (const std::string& d : gv.dims) {
    auto* dim = shape->add_dim();
    if (!d.empty() && d.find_first_not_of("0123456789") == std::string::npos)
      dim->set_dim_value(std::stoll(d));
    else
      dim->set_dim_param(d);
  }
}

void set_attr(onnx::AttributeProto* a, const nn::GraphAttr& ga) {
  a->set_name(ga.name);
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, int64_t>) {
          a->set_type(onnx::AttributeProto::INT);
          a->set_i(v);
        } else if constexpr (std::is_same_v<V, double>) {
          a->set_type(onnx::AttributeProto::FLOAT);
          a->set_f(static_cast<float>(v));
        } else if constexpr (std::is_same_v<V, std::string>) {
          a->set_type(onnx::AttributeProto::STRING);
          a->set_s(v);
        } else if constexpr (std::is_same_v<V, std::vector<int64_t>>) {
          a->set_type(onnx::AttributeProto::INTS);
          for (int64_t e : v) a->add_ints(e);
        } else {
          a->set_type(onnx::AttributeProto::FLOATS);
          for (double e : v) a->add_floats(static_cast<float>(e));
        }
      },
      ga.value);
}

void set_tensor(onnx::TensorProto* t, const nn::GraphInitializer& gi) {
  t->set_name(gi.name);
  t->set_data_type(onnx_elem_type(gi.value.dtype()));
  for (int64_t d : gi.value.shape()) t->add_dims(d);
  // raw_data is little-endian, which is how the tensor is laid out on this (x86-64/arm64) host.
  t->set_raw_data(std::string(static_cast<const char*>(gi.value.raw_data()), gi.value.nbytes()));
}

}  // namespace

bool onnx_supported() { return true; }

int64_t write_onnx(const nn::ExportGraph& g, const std::string& path, const OnnxOptions& opt) {
  KNOT_CHECK(opt.opset == 17,
             "export: opset {} is not supported; this build writes opset 17 (the ONNX library it was built "
             "with knows operator sets up to 17)",
             opt.opset);
  int64_t bytes = 0;
  for (const auto& i : g.initializers()) bytes += static_cast<int64_t>(i.value.nbytes());
  // protobuf cannot serialize a message of 2 GiB or more; ONNX's answer is external data files.
  KNOT_CHECK(bytes < (int64_t{2} << 30) - (int64_t{64} << 20),
             "export: the model's tensors take {} bytes, over the 2 GiB limit of a single ONNX file (external "
             "data files are not written yet)",
             bytes);
  onnx::ModelProto m;
  m.set_ir_version(onnx::IR_VERSION);
  m.set_producer_name("knot");
  m.set_producer_version("0.1.0");
  auto* imp = m.add_opset_import();
  imp->set_domain("");
  imp->set_version(opt.opset);
  for (const auto& [k, v] : opt.metadata) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  onnx::GraphProto* gp = m.mutable_graph();
  gp->set_name(opt.graph_name);
  for (const auto& v : g.inputs()) set_value_info(gp->add_input(), v);
  for (const auto& v : g.outputs()) set_value_info(gp->add_output(), v);
  for (const auto& i : g.initializers()) set_tensor(gp->add_initializer(), i);
  for (const auto& n : g.nodes()) {
    onnx::NodeProto* np = gp->add_node();
    np->set_op_type(n.op);
    np->set_name(n.name);
    for (const auto& s : n.inputs) np->add_input(s);
    for (const auto& s : n.outputs) np->add_output(s);
    for (const auto& a : n.attrs) set_attr(np->add_attribute(), a);
  }
  try {
    onnx::checker::check_model(m);
    onnx::ModelProto inferred = m;  // strict inference on a copy: the file keeps only what knot wrote
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1));
  } catch (const std::exception& e) {
    KNOT_FAIL("export: the ONNX checker rejected the graph (a knot bug; please report it): {}", e.what());
  }
  std::string out;
  KNOT_CHECK(m.SerializeToString(&out), "export: could not serialize the ONNX model");
  data::write_file_atomic(path, out);
  return static_cast<int64_t>(out.size());
}

#else

bool onnx_supported() { return false; }

int64_t write_onnx(const nn::ExportGraph&, const std::string& path, const OnnxOptions&) {
  KNOT_FAIL("export: this knot was built without ONNX support, so '{}' cannot be written (install libonnx-dev "
            "and libprotobuf-dev, e.g. with scripts/install-deps.sh, and rebuild)",
            path);
}

#endif

}  // namespace knot::exporting
