// Bad inputs from issue 21 are clear errors, never a silent wrong answer: a NaN, constant or
// decreasing KAN grid in a checkpoint; a CSV header with a column twice; `knot predict -o DIR`;
// size overrides that are negative, strings or written as 1e9.
#include <filesystem>
#include <fstream>

#include "core/safetensors.h"
#include "data/csv.h"
#include "models/config.h"
#include "models/electra.h"
#include "models/encoder_decoder.h"
#include "train/kan_fit.h"
#include "nn/basis_registry.h"
#include "nn/kan.h"
#include "nn/kan_linear.h"
#include "tests/helpers.h"

using namespace knot;
namespace fs = std::filesystem;
using models::Json;

namespace {

std::string tmp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("knot_inputs_" + std::to_string(::getpid()) + "_" + name)).string();
}

// Rewrites one tensor of a safetensors file through `edit`.
void edit_tensor(const std::string& path, const std::string& name, const std::function<void(std::vector<double>&)>& edit) {
  SafetensorsFile f = load_safetensors(path);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, t] : f.tensors) {
    if (n == name) {
      std::vector<double> v = t.to_vector<double>();
      edit(v);
      out.emplace_back(n, from_vector(v, t.shape()).to(t.dtype()));
    } else {
      out.emplace_back(n, t);
    }
  }
  save_safetensors(path, out, f.metadata);
}

Json fit_config(const std::string& run_dir) {
  return Json{{"task", "fit"},
              {"run_dir", run_dir},
              {"data", {{"generate", {{"function", "exp_sin_sq"}, {"n_train", 60}, {"n_test", 20}}}}},
              {"model", {{"widths", {2, 3, 1}}, {"projection", {{"kind", "kan_bspline"}, {"options", {{"grid_size", 5}}}}}}},
              {"train", {{"steps", 2}, {"log_every", 100}}}};
}

}  // namespace

TEST_CASE("kan grid: a NaN, constant or decreasing grid in a checkpoint is an error naming the tensor",
          "[kan][inputs]") {
  const std::string path = tmp_path("grid.safetensors");
  manual_seed(1);
  nn::KAN kan({2, 3, 1}, "bspline", {{"grid_size", 5}, {"dtype", "f64"}});
  kan.save(path);
  nn::KAN fresh({2, 3, 1}, "bspline", {{"grid_size", 5}, {"dtype", "f64"}});
  REQUIRE_NOTHROW(fresh.load(path));

  const int64_t nk = 5 + 2 * 3 + 1;  // G + 2k + 1 knots per input feature
  auto expect = [&](const std::function<void(std::vector<double>&)>& edit, const std::string& what) {
    kan.save(path);
    edit_tensor(path, "layers.1.grid", edit);
    nn::KAN other({2, 3, 1}, "bspline", {{"grid_size", 5}, {"dtype", "f64"}});
    const std::vector<double> before = other.state_dict().front().second.to_vector<double>();
    REQUIRE_THROWS_WITH(other.load(path), Catch::Contains("'layers.1.grid' (3, 12)") && Catch::Contains(what) &&
                                              Catch::Contains(path));
    // Nothing was copied: the model keeps its own weights.
    CHECK(other.state_dict().front().second.to_vector<double>() == before);
  };
  SECTION("NaN") {
    expect([](std::vector<double>& v) { v[4] = std::nan(""); }, "row 0 has nan at index 4; a knot grid must be finite");
  }
  SECTION("infinite") {
    expect([&](std::vector<double>& v) { v[nk + 2] = INFINITY; }, "row 1 has inf at index 2");
  }
  SECTION("constant") {
    expect([&](std::vector<double>& v) { std::fill(v.begin() + 2 * nk, v.begin() + 3 * nk, 0.5); },
           "row 2 is constant (0.5 … 0.5); a knot grid must span an interval");
  }
  SECTION("decreasing") {
    expect([&](std::vector<double>& v) { std::reverse(v.begin(), v.begin() + nk); },
           "row 0 decreases at index 1");
  }
  // Repeated knots (update_grid can make them) are fine for B-splines.
  kan.save(path);
  edit_tensor(path, "layers.0.grid", [](std::vector<double>& v) { v[5] = v[4]; });
  REQUIRE_NOTHROW(fresh.load(path));
  fs::remove(path);
}

TEST_CASE("kan grid: RBF centres must be strictly increasing", "[kan][inputs]") {
  const std::string path = tmp_path("rbf.safetensors");
  auto layer = nn::make_kan_layer("rbf", 3, 2, {{"num_grids", 4}});
  layer->save(path);
  edit_tensor(path, "rbf.grid", [](std::vector<double>& v) { v[2] = v[1]; });
  auto other = nn::make_kan_layer("rbf", 3, 2, {{"num_grids", 4}});
  REQUIRE_THROWS_WITH(other->load(path), Catch::Contains("'rbf.grid' (4,): row 0 repeats a knot at index 2") &&
                                             Catch::Contains("strictly increasing"));
  fs::remove(path);
}

TEST_CASE("kan grid: knot predict refuses a run whose grid was corrupted", "[fit][inputs]") {
  const std::string dir = tmp_path("predict-grid");
  train::run_fit(fit_config(dir), [](const std::string&) {});
  REQUIRE(train::run_predict(dir, dir + "/test.csv", dir + "/ok.csv") == 20);
  edit_tensor(dir + "/model.safetensors", "layers.0.grid", [](std::vector<double>& v) { v[0] = std::nan(""); });
  REQUIRE_THROWS_WITH(train::run_predict(dir, dir + "/test.csv", dir + "/pred.csv"),
                      Catch::Contains("'layers.0.grid'") && Catch::Contains("nan"));
  CHECK(!fs::exists(dir + "/pred.csv"));
  // A config.json edited to an absurd grid: an error naming the file, before anything is allocated.
  Json cfg = models::load_json_file(dir + "/config.json");
  cfg["model"]["projection"]["options"]["grid_size"] = 1000000000000;
  models::save_json_file(dir + "/config.json", cfg);
  REQUIRE_THROWS_WITH(train::run_predict(dir, dir + "/test.csv", "-"),
                      Catch::Contains("predict: the model of '" + dir + "/config.json' needs") &&
                          Catch::Contains("for its parameters and buffers but"));
  fs::remove_all(dir);
}

TEST_CASE("csv: a column name twice in the header is an error, in read_csv, fit and predict", "[data][inputs]") {
  const std::string dir = tmp_path("dup");
  fs::create_directories(dir);
  const std::string dup = dir + "/dup.csv";
  { std::ofstream f(dup); f << "x1,x1,y\n0.1,0.2,1\n0.3,0.4,2\n0.5,0.6,3\n0.7,0.8,4\n0.9,1.0,5\n"; }
  REQUIRE_THROWS_WITH(data::read_csv(dup), Catch::Contains(dup + ":1: column 'x1' appears twice in the header "
                                                                 "(columns 1 and 2)"));
  Json c = fit_config(dir + "/run");
  c["data"] = Json{{"train", dup}};
  REQUIRE_THROWS_WITH(train::run_fit(c, [](const std::string&) {}), Catch::Contains("appears twice"));

  // predict: a run trained on x1, x2; an input file with x1 twice
  train::run_fit(fit_config(dir + "/run"), [](const std::string&) {});
  REQUIRE_THROWS_WITH(train::run_predict(dir + "/run", dup, "-"), Catch::Contains("column 'x1' appears twice"));

  // fit: data.inputs naming a column twice, or the target
  c = fit_config(dir + "/run2");
  c["data"] = Json{{"train", dir + "/run/train.csv"}, {"inputs", {"x1", "x1"}}};
  c["model"]["widths"] = {2, 3, 1};
  REQUIRE_THROWS_WITH(train::run_fit(c, [](const std::string&) {}), Catch::Contains("inputs lists column 'x1' twice"));
  c["data"]["inputs"] = {"x1", "y"};
  REQUIRE_THROWS_WITH(train::run_fit(c, [](const std::string&) {}), Catch::Contains("inputs lists the target column 'y'"));
  fs::remove_all(dir);
}

TEST_CASE("predict: -o naming a directory is an error and leaves no temporary file", "[fit][inputs]") {
  const std::string dir = tmp_path("outdir");
  train::run_fit(fit_config(dir), [](const std::string&) {});
  const std::string out_dir = dir + "/out";
  fs::create_directories(out_dir);
  REQUIRE_THROWS_WITH(train::run_predict(dir, dir + "/test.csv", out_dir),
                      Catch::Contains("cannot write '" + out_dir + "': it is a directory"));
  CHECK(!fs::exists(out_dir + ".tmp"));
  REQUIRE_THROWS_WITH(train::run_predict(dir, dir + "/test.csv", dir + "/no/such/dir/p.csv"),
                      Catch::Contains("does not exist"));
  // write_csv itself: no PATH.tmp after a failure
  REQUIRE_THROWS_WITH(data::write_csv(out_dir, {"a"}, {{1.0}}), Catch::Contains("is a directory"));
  CHECK(!fs::exists(out_dir + ".tmp"));
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".tmp") left.push_back(e.path().string());
  CHECK(left.empty());
  fs::remove_all(dir);
}

TEST_CASE("config: size errors name the key and the value, not the whole config", "[models][inputs]") {
  const Json base = {{"model", "encoder_decoder"}, {"vocab_src_size", 50}, {"vocab_tgt_size", 50},
                     {"embedding_dim", 16},        {"num_heads", 2},        {"ffn_hidden_dim", 32}};
  Json c = base;
  models::apply_override(c, "embedding_dim=-5");
  REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(c),
                      Catch::Equals("config 'encoder_decoder': key 'embedding_dim' must be positive, got -5"));
  c = base;
  models::apply_override(c, "num_encoder_layers=-1");  // a key the config leaves out
  REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(c),
                      Catch::Equals("config 'encoder_decoder': key 'num_encoder_layers' must be >= 0, got -1"));
  c = base;
  REQUIRE_THROWS_WITH(models::apply_override(c, "embedding_dim=abc"),
                      Catch::Contains("key 'embedding_dim' has type integer but the new value has type string"));
  c = base;
  models::apply_override(c, "max_length=abc");  // absent: the reader names it
  REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(c),
                      Catch::Contains("key 'max_length' must be an integer, got string \"abc\""));
  // 1e9 is an integer, in an override of an integer key and in a config file alike; 2.5 is not.
  c = base;
  models::apply_override(c, "embedding_dim=1e3");
  CHECK(c["embedding_dim"].is_number_integer());
  CHECK(models::EncoderDecoderConfig::from_json(c).embedding_dim == 1000);
  c = base;
  c["ffn_hidden_dim"] = 1e9;
  CHECK(models::EncoderDecoderConfig::from_json(c).ffn_hidden_dim == 1000000000);
  c["ffn_hidden_dim"] = 2.5;
  REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(c),
                      Catch::Contains("key 'ffn_hidden_dim' must be an integer, got number 2.5"));
  c = base;
  REQUIRE_THROWS_WITH(models::apply_override(c, "embedding_dim=2.5"), Catch::Contains("'embedding_dim'"));

  // ELECTRA: the same per key
  Json e = {{"model", "electra"}, {"vocab_size", 40}};
  models::apply_override(e, "embedding_size=-5");
  REQUIRE_THROWS_WITH(models::ElectraConfig::from_json(e),
                      Catch::Equals("config 'electra': key 'embedding_size' must be positive, got -5"));
  e = {{"model", "electra"}, {"vocab_size", 40}};
  models::apply_override(e, "discriminator.hidden_size=0");
  REQUIRE_THROWS_WITH(models::ElectraConfig::from_json(e),
                      Catch::Equals("config 'electra.discriminator': key 'hidden_size' must be positive, got 0"));
  e = {{"model", "electra"}, {"vocab_size", 40}};
  models::apply_override(e, "generator.num_heads=3");
  REQUIRE_THROWS_WITH(models::ElectraConfig::from_json(e), Catch::Contains("config 'electra.generator': key 'hidden_size' (64) must divide by 'num_heads' (3)"));
}
