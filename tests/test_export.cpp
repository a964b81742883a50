// Export graphs (nn/export_graph.h, export/models.h) and the ONNX writer (export/onnx.h). That the
// exported models compute what knot computes is checked by ONNX Runtime in tests/tools/onnx_cli.sh
// (ctest tool.onnx_export); these tests cover the graph building itself and the errors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>
#include <unistd.h>

#include "export/models.h"
#include "export/onnx.h"
#include "models/decoder_only.h"
#include "models/electra.h"
#include "models/memory_estimate.h"
#include "models/encoder_decoder.h"
#include "nn/basis_registry.h"
#include "nn/kan.h"
#include "ops/ops.h"
#include "tests/helpers.h"

using namespace knot;
namespace fs = std::filesystem;

namespace {
std::string tmp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("knot_export_" + std::to_string(::getpid()) + "_" + name)).string();
}

int count_op(const nn::ExportGraph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node.op == op;
  return n;
}

// The names of a graph's inputs or outputs, in order.
std::vector<std::string> names(const std::vector<nn::GraphValue>& v) {
  std::vector<std::string> n;
  for (const auto& e : v) n.push_back(e.name);
  return n;
}

// A KAN layer of a basis that has not written an export.
class NoExportKAN : public nn::KANLayer {
 public:
  NoExportKAN() : KANLayer(2, 1) {}
  std::string basis() const override { return "homemade"; }
  Tensor forward(const Tensor& x) const override { return x; }
};
}  // namespace

TEST_CASE("export: every registered basis writes its layer as standard operators, and ONNX accepts it", "[export]") {
  for (const std::string& name : nn::basis_names()) {
    INFO("basis " << name);
    nlohmann::json opt = nn::basis_spec(name).test_options;
    nn::KAN model({3, 4, 2}, name, opt);
    nn::ExportGraph g;
    exporting::kan_graph(g, model);
    REQUIRE(g.inputs().size() == 1);
    CHECK(g.inputs()[0].name == "x");
    CHECK(g.inputs()[0].dims == std::vector<std::string>{"batch", "3"});
    REQUIRE(g.outputs().size() == 1);
    CHECK(g.outputs()[0].dims == std::vector<std::string>{"batch", "2"});
    CHECK(count_op(g, "MatMul") >= 2);  // at least one per layer
    for (const auto& init : g.initializers()) CHECK(init.value.dtype() != DType::f64);  // all converted to f32
    if (exporting::onnx_supported()) {
      const std::string path = tmp_path(name + ".onnx");
      CHECK(exporting::write_onnx(g, path) > 0);
      CHECK(fs::exists(path));
      fs::remove(path);
    }
  }
}

TEST_CASE("export: a basis without an export is an error naming the basis and the layer", "[export]") {
  NoExportKAN layer;
  nn::ExportGraph g;
  const std::string x = g.input("x", DType::f32, {"batch", "2"});
  REQUIRE_THROWS_WITH(layer.to_graph(g, x, "layers.3."),
                      Catch::Contains("'homemade'") && Catch::Contains("'layers.3'") &&
                          Catch::Contains("docs/adding-a-basis.md"));
}

TEST_CASE("export: a weight used twice (tied embeddings) is stored once", "[export]") {
  models::ElectraConfig c;
  c.vocab_size = 50;
  c.embedding_size = 8;
  c.max_position_embeddings = 16;
  c.generator = {8, 1, 1, 16};
  c.discriminator = {16, 1, 2, 32};
  models::Electra model(c);
  model.eval();
  nn::ExportGraph g;
  exporting::electra_graph(g, model, "generator");
  int word = 0;
  std::set<std::string> names;
  for (const auto& init : g.initializers()) {
    word += init.name == "embeddings.word_embeddings.weight";
    CHECK(names.insert(init.name).second);  // initializer names are unique
  }
  CHECK(word == 1);
  REQUIRE_THROWS_WITH(exporting::electra_graph(g, model, "encoder"),
                      Catch::Contains("'discriminator', 'generator' or 'classifier'"));
  nn::ExportGraph g2;  // a model without the classification head (num_labels 0)
  REQUIRE_THROWS_WITH(exporting::electra_graph(g2, model, "classifier"), Catch::Contains("needs a fine-tuned model"));
  c.num_labels = 3;
  models::Electra tuned(c);
  tuned.eval();
  nn::ExportGraph g3;
  exporting::electra_graph(g3, tuned, "classifier");
  CHECK(g3.outputs()[0].dims == std::vector<std::string>{"batch", "3"});
}

TEST_CASE("export: the translation model's parts have the documented inputs and outputs", "[export]") {
  models::EncoderDecoderConfig c;
  c.vocab_src_size = 40;
  c.vocab_tgt_size = 30;
  c.pad_src_idx = 3;
  c.pad_tgt_idx = 3;
  c.embedding_dim = 16;
  c.num_heads = 2;
  c.ffn_hidden_dim = 32;
  c.num_encoder_layers = c.num_decoder_layers = 1;
  c.max_length = 20;
  models::EncoderDecoderTransformer model(c);
  model.eval();
  {
    nn::ExportGraph g;
    exporting::encoder_decoder_graph(g, model, "encoder");
    CHECK(names(g.inputs()) == std::vector<std::string>{"src_ids"});
    CHECK(names(g.outputs()) == std::vector<std::string>{"memory"});
    CHECK(g.outputs()[0].dims == std::vector<std::string>{"batch", "src_seq", "16"});
  }
  {
    nn::ExportGraph g;
    exporting::encoder_decoder_graph(g, model, "decoder");
    CHECK(names(g.inputs()) == std::vector<std::string>{"tgt_ids", "memory", "src_ids"});
    CHECK(g.outputs()[0].dims == std::vector<std::string>{"batch", "tgt_seq", "30"});
    CHECK(count_op(g, "Softmax") == 2);  // self- and cross-attention
  }
  {
    nn::ExportGraph g;
    exporting::encoder_decoder_graph(g, model, "decoder", /*kv_cache=*/true);
    CHECK(names(g.inputs()) == std::vector<std::string>{"tgt_ids", "memory", "src_ids", "past_key_0", "past_value_0"});
    CHECK(g.inputs()[3].dims == std::vector<std::string>{"batch", "2", "past_seq", "8"});
    CHECK(names(g.outputs()) == std::vector<std::string>{"logits", "present_key_0", "present_value_0"});
    CHECK(g.outputs()[0].dims == std::vector<std::string>{"batch", "new_seq", "30"});
  }
  nn::ExportGraph g;
  REQUIRE_THROWS_WITH(exporting::encoder_decoder_graph(g, model, "fit"), Catch::Contains("not 'fit'"));
  REQUIRE_THROWS_WITH(exporting::encoder_decoder_graph(g, model, "encoder", true), Catch::Contains("part 'decoder'"));
}

TEST_CASE("export: the ONNX writer refuses what it cannot write and leaves no file", "[export]") {
  if (!exporting::onnx_supported()) {
    nn::ExportGraph g;
    REQUIRE_THROWS_WITH(exporting::write_onnx(g, tmp_path("x.onnx")), Catch::Contains("without ONNX support"));
    return;
  }
  nn::ExportGraph g;
  const std::string x = g.input("x", DType::f32, {"batch", "2"});
  g.output(g.op("NotAnOperator", {x}), "y", DType::f32, {"batch", "2"});
  const std::string path = tmp_path("bad.onnx");
  REQUIRE_THROWS_WITH(exporting::write_onnx(g, path), Catch::Contains("ONNX checker rejected") &&
                                                          Catch::Contains("NotAnOperator"));
  CHECK_FALSE(fs::exists(path));
  exporting::OnnxOptions old;
  old.opset = 13;
  nn::ExportGraph ok;
  ok.output(ok.op("Relu", {ok.input("x", DType::f32, {"batch"})}), "y", DType::f32, {"batch"});
  REQUIRE_THROWS_WITH(exporting::write_onnx(ok, path, old), Catch::Contains("opset 13"));
  CHECK_FALSE(fs::exists(path));
  CHECK(exporting::write_onnx(ok, path) > 0);
  fs::remove(path);
}

TEST_CASE("export: the language model's inputs and outputs, with and without the KV cache, and MoE refused", "[export]") {
  models::DecoderOnlyConfig c;
  c.num_layers = 2;
  c.vocab_size = 50;
  c.embedding_dim = 16;
  c.num_heads = 2;
  c.ffn_hidden_dim = 32;
  c.max_length = 24;
  c.positions = "rope";
  models::DecoderOnlyTransformer model(c);
  model.eval();
  {
    nn::ExportGraph g;
    exporting::decoder_only_graph(g, model);
    CHECK(names(g.inputs()) == std::vector<std::string>{"input_ids"});
    CHECK(g.outputs()[0].dims == std::vector<std::string>{"batch", "seq", "50"});
    int tables = 0;
    for (const auto& init : g.initializers()) tables += init.name == "rope.cos" || init.name == "rope.sin";
    CHECK(tables == 2);  // one pair for every layer
  }
  nn::ExportGraph g;
  exporting::decoder_only_graph(g, model, /*kv_cache=*/true);
  CHECK(names(g.inputs()) ==
        std::vector<std::string>{"input_ids", "past_key_0", "past_value_0", "past_key_1", "past_value_1"});
  CHECK(names(g.outputs()) == std::vector<std::string>{"logits", "present_key_0", "present_value_0", "present_key_1",
                                                       "present_value_1"});
  models::DecoderOnlyConfig m = c;
  m.moe.num_experts = 2;
  models::DecoderOnlyTransformer moe(m);
  nn::ExportGraph g2;
  REQUIRE_THROWS_WITH(exporting::decoder_only_graph(g2, moe), Catch::Contains("mixture-of-experts"));
}

TEST_CASE("export: ELECTRA's attention_qkv_bias gives q/k/v biases, counted by the estimate, and round-trips", "[export]") {
  models::Json j = models::Json::parse(R"({"model": "electra", "vocab_size": 50, "embedding_size": 8,
    "max_position_embeddings": 16, "generator": {"hidden_size": 8, "num_layers": 1, "num_heads": 1, "intermediate_size": 16},
    "discriminator": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}})");
  const models::Electra plain(models::ElectraConfig::from_json(j));
  CHECK_FALSE(plain.config().to_json().contains("attention_qkv_bias"));  // old configs hash as before
  j["attention_qkv_bias"] = true;
  const models::ElectraConfig c = models::ElectraConfig::from_json(j);
  CHECK(models::ElectraConfig::from_json(c.to_json()).attention_qkv_bias);
  const models::Electra biased(c);
  int64_t qkv_biases = 0;
  for (const auto& [name, t] : biased.named_parameters())
    if (name.find("_proj.bias") != std::string::npos &&
        (name.find("q_proj") != std::string::npos || name.find("k_proj") != std::string::npos ||
         name.find("v_proj") != std::string::npos))
      qkv_biases += t.numel();
  CHECK(qkv_biases == 3 * 8 + 3 * 16);  // generator 1 layer of 8, discriminator 1 layer of 16
  CHECK(biased.num_parameters() == plain.num_parameters() + qkv_biases);
  const auto e = models::estimate_model_memory(c.to_json(), {2, 8});
  CHECK(e.parameters == static_cast<uint64_t>(biased.num_parameters()));
}
