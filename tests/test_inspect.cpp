// knot inspect (train/kan_inspect.h) on a small `knot fit` run and a tiny translation run: the
// pictures exist and have the right panel counts, an edge zeroed by hand is reported dead, layer
// selection and bad input are errors naming the problem.
#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "models/config.h"
#include "models/kan_fit.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "train/kan_inspect.h"
#include "train/translation.h"

using namespace knot;
namespace fs = std::filesystem;
using models::Json;

namespace {

std::string tmp(const std::string& name) { return test::fresh_run_dir("inspect", name); }

// A [2, 3, 1] B-spline fit of the bundled example, a few L-BFGS steps.
std::string small_fit(const std::string& dir) {
  Json cfg = Json::parse(R"({
    "task": "fit",
    "data": {"generate": {"function": "exp_sin_sq", "n_train": 300, "n_test": 50, "seed": 3}},
    "model": {"widths": [2, 3, 1], "basis": "bspline", "options": {"grid_size": 5}},
    "train": {"optimizer": "lbfgs", "steps": 5, "update_grid_every": 0, "log_every": 100}
  })");
  cfg["run_dir"] = dir;
  models::run_fit(cfg, [](const std::string&) {});
  return dir;
}

auto quiet = [](const std::string&) {};

}  // namespace

TEST_CASE("inspect: a fit run gets one picture per layer with a panel per edge, and a zeroed edge is dead",
          "[inspect]") {
  const std::string run = small_fit(tmp("fit"));
  // Zero every weight of edge in 0 -> out 1 of layers.0 in the saved model: its phi is 0 everywhere.
  {
    auto st = load_safetensors(run + "/model.safetensors");
    std::vector<std::pair<std::string, Tensor>> named;
    for (auto& [name, t] : st.tensors) {
      Tensor c = t.clone();
      if (name == "layers.0.base_weight") {
        auto v = c.to_vector<double>();
        v[1 * 2 + 0] = 0;  // (out, in)
        c = from_vector(v, c.shape()).to(c.dtype());
      } else if (name == "layers.0.spline_weight") {
        auto v = c.to_vector<double>();
        const int64_t nb = c.size(2);
        for (int64_t j = 0; j < nb; ++j) v[(1 * 2 + 0) * nb + j] = 0;  // (out, in, nb)
        c = from_vector(v, c.shape()).to(c.dtype());
      }
      named.emplace_back(name, c);
    }
    save_safetensors(run + "/model.safetensors", named, st.metadata);
  }
  const std::string out = tmp("fit-out");
  train::InspectOptions o;
  o.run_dir = run;
  o.out_dir = out;
  const auto r = train::run_inspect(o, quiet);
  REQUIRE(r.task == "fit");
  REQUIRE(r.layers.size() == 2);
  const auto& l0 = r.layers[0];
  REQUIRE(l0.name == "layers.0");
  REQUIRE(l0.panels == 6);  // 2 -> 3: every edge
  REQUIRE(r.layers[1].panels == 3);
  REQUIRE(l0.rows == 300);
  REQUIRE(l0.importance[1 * 2 + 0] == 0.0);
  REQUIRE(l0.dead_edges >= 1);
  for (size_t k = 0; k < l0.importance.size(); ++k)
    if (k != 2) REQUIRE(l0.importance[k] > 0.0);
  REQUIRE(l0.outside_grid >= 0.0);
  REQUIRE(l0.outside_grid <= 1.0);
  REQUIRE(l0.quantiles[0] == 0.0);
  REQUIRE(l0.quantiles[4] == *std::max_element(l0.importance.begin(), l0.importance.end()));
  for (const auto& l : r.layers) {
    INFO(l.png);
    REQUIRE(fs::exists(l.png));
    REQUIRE(fs::file_size(l.png) > 10000);  // a picture, not an empty canvas
  }
  const Json report = models::load_json_file(out + "/inspect.json");
  REQUIRE(report["layers"].size() == 2);
  REQUIRE(report["layers"][0]["panels"] == 6);
  REQUIRE(report["layers"][0]["importance"].size() == 6);
  REQUIRE(r.table.find("| layers.0 | kan_bspline | 2 -> 3 |") != std::string::npos);
  std::ifstream md(out + "/layers.md");
  REQUIRE(md.good());
  // The run directory was only read.
  REQUIRE_FALSE(fs::exists(run + "/inspect.json"));

  SECTION("layer selection") {
    o.layers = {"layers.1"};
    o.plots = false;
    const auto r1 = train::run_inspect(o, quiet);
    REQUIRE(r1.layers.size() == 1);
    REQUIRE(r1.layers[0].png.empty());
    o.layers = {"layers.7"};
    REQUIRE_THROWS_WITH(train::run_inspect(o, quiet),
                        Catch::Contains("'layers.7' matches no KAN layer") && Catch::Contains("layers.0, layers.1"));
  }
  SECTION("bad options") {
    o.out_dir = run + "/model.safetensors";
    REQUIRE_THROWS_WITH(train::run_inspect(o, quiet), Catch::Contains("is not a directory"));
    o.out_dir = out;
    o.top_k = 0;
    REQUIRE_THROWS_WITH(train::run_inspect(o, quiet), Catch::Contains("--top"));
  }
  fs::remove_all(run);
  fs::remove_all(out);
}

TEST_CASE("inspect: a translation run with KAN projections, top edges of wide layers", "[inspect][trainer]") {
  Json cfg = test::tiny_translation_config(2);
  cfg["model"]["projection"] = {{"kind", "kan_bspline"}, {"options", {{"grid_size", 3}}}};
  const std::string run = tmp("tr"), out = tmp("tr-out");
  train::train_translation(cfg, run, false, test::quiet_hooks());
  train::InspectOptions o;
  o.run_dir = run;
  o.out_dir = out;
  o.layers = {"encoder"};
  o.top_k = 4;
  o.rows = 200;
  const auto r = train::run_inspect(o, quiet);
  REQUIRE(r.task == "translation");
  REQUIRE(!r.layers.empty());
  for (const auto& l : r.layers) {
    INFO(l.name);
    REQUIRE(l.name.rfind("encoder.", 0) == 0);
    REQUIRE(l.basis == "bspline");
    REQUIRE(l.panels == 4);  // every layer has more than 4 edges: the top 4
    REQUIRE(l.rows > 0);
    REQUIRE(l.rows <= 200);
    REQUIRE(fs::file_size(l.png) > 10000);
  }
  // A run whose model has no KAN layers.
  Json mlp = test::tiny_translation_config(1);
  const std::string run2 = tmp("tr-mlp");
  train::train_translation(mlp, run2, false, test::quiet_hooks());
  o.run_dir = run2;
  o.layers.clear();
  REQUIRE_THROWS_WITH(train::run_inspect(o, quiet), Catch::Contains("no KAN layers"));
  for (const auto& d : {run, out, run2}) fs::remove_all(d);
}
