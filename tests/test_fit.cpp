// End to end: `knot fit` on generated data learns, writes a run directory that `knot predict`
// uses, and bad configs are errors naming the key.
#include <cmath>
#include <filesystem>
#include <map>
#include <fstream>

#include "data/csv.h"
#include "models/config.h"
#include "train/kan_fit.h"
#include "train/run_lock.h"
#include "tests/helpers.h"

using namespace knot;
namespace fs = std::filesystem;

namespace {
models::Json small_config(const std::string& run_dir) {
  models::Json j = models::Json::parse(R"({
    "task": "fit",
    "data": {"generate": {"function": "exp_sin_sq", "n_train": 200, "n_test": 100, "seed": 3}},
    "model": {"widths": [2, 3, 1], "projection": {"kind": "kan_bspline", "options": {"grid_size": 5}}},
    "train": {"optimizer": "lbfgs", "steps": 8, "kan_grid_update_every": 4, "kan_grid_update_until": 7, "log_every": 100}
  })");
  j["run_dir"] = run_dir;
  return j;
}
std::string tmp_dir(const std::string& name) {
  return (fs::temp_directory_path() / ("knot_fit_" + std::to_string(::getpid()) + "_" + name)).string();
}
}  // namespace

TEST_CASE("fit: one writer per run directory, as knot train (a second fit was let in and interleaved)", "[fit]") {
  const std::string dir = tmp_dir("locked");
  {
    train::RunLock holder(dir, "train");
    REQUIRE_THROWS_WITH(train::run_fit(small_config(dir), [](const std::string&) {}),
                        Catch::Contains("in use by another process"));
    REQUIRE_FALSE(fs::exists(fs::path(dir) / "config.json"));
    REQUIRE_FALSE(fs::exists(fs::path(dir) / "train.csv"));
  }
  REQUIRE(train::run_fit(small_config(dir), [](const std::string&) {}).test_rmse < 0.15);  // free again
  fs::remove_all(dir);
}

TEST_CASE("fit: a small KAN learns exp(sin(pi x) + y^2) and predict reproduces it", "[fit]") {
  const std::string dir = tmp_dir("ok");
  std::vector<std::string> lines;
  const auto r = train::run_fit(small_config(dir), [&](const std::string& l) { lines.push_back(l); });
  INFO("test rmse " << r.test_rmse);
  REQUIRE(r.test_rmse < 0.15);  // the target's std is about 1.1; a constant predictor scores ~1
  REQUIRE(fs::exists(dir + "/model.safetensors"));
  REQUIRE(fs::exists(dir + "/config.json"));
  REQUIRE(fs::exists(dir + "/metrics.json"));
  REQUIRE(lines.size() >= 3);

  // predict on the generated test split: its RMSE equals the one fit reported
  const std::string out = dir + "/pred.csv";
  REQUIRE(train::run_predict(dir, dir + "/test.csv", out) == 100);
  const auto truth = data::read_csv(dir + "/test.csv"), pred = data::read_csv(out);
  REQUIRE(pred.columns == std::vector<std::string>{"x1", "x2", "y_pred"});
  double se = 0;
  for (size_t i = 0; i < truth.rows.size(); ++i) {
    const double d = pred.rows[i][2] - truth.rows[i][2];
    se += d * d;
  }
  REQUIRE(std::sqrt(se / 100) == Approx(r.test_rmse).epsilon(1e-6));

  // same seed, same result
  const auto r2 = train::run_fit(small_config(dir + "_again"), [](const std::string&) {});
  REQUIRE(r2.test_rmse == r.test_rmse);
  fs::remove_all(dir);
  fs::remove_all(dir + "_again");
}

TEST_CASE("fit: grid extension (train.grid_schedule) lowers the test RMSE stage by stage", "[fit]") {
  const std::string dir = tmp_dir("refine");
  auto cfg = small_config(dir);
  cfg["data"]["generate"]["n_train"] = 1000;
  cfg["model"]["projection"]["options"] = models::Json::object();
  cfg["train"]["grid_schedule"] = {3, 5, 10};
  cfg["train"]["steps"] = 25;
  cfg["train"]["kan_grid_update_every"] = 5;
  cfg["train"]["kan_grid_update_until"] = 19;
  std::vector<std::string> lines;
  const auto r = train::run_fit(cfg, [&](const std::string& l) { lines.push_back(l); });
  REQUIRE(r.stages.size() == 3);
  REQUIRE(r.steps == 75);
  for (size_t i = 0; i < r.stages.size(); ++i) {
    INFO("stage " << i << ": grid " << r.stages[i].grid_size << ", test RMSE " << r.stages[i].test_rmse);
    REQUIRE(r.stages[i].grid_size == std::vector<int64_t>{3, 5, 10}[i]);
    if (i > 0) REQUIRE(r.stages[i].test_rmse < r.stages[i - 1].test_rmse);
  }
  REQUIRE(r.test_rmse == r.stages.back().test_rmse);
  int stage_lines = 0;
  for (const auto& l : lines) stage_lines += l.find("(grid size") != std::string::npos;
  REQUIRE(stage_lines == 3);
  // The run directory describes the saved model: grid size 10, per-stage results, and predict
  // reproduces the final test RMSE from it.
  const auto saved = models::load_json_file(dir + "/config.json");
  REQUIRE(saved["model"]["projection"]["options"]["grid_size"] == 10);
  const auto metrics = models::load_json_file(dir + "/metrics.json");
  REQUIRE(metrics["stages"].size() == 3);
  REQUIRE(metrics["stages"][2]["grid_size"] == 10);
  const std::string out = dir + "/pred.csv";
  REQUIRE(train::run_predict(dir, dir + "/test.csv", out) == 100);
  const auto truth = data::read_csv(dir + "/test.csv"), pred = data::read_csv(out);
  double se = 0;
  for (size_t i = 0; i < truth.rows.size(); ++i) se += std::pow(pred.rows[i][2] - truth.rows[i][2], 2);
  REQUIRE(std::sqrt(se / 100) == Approx(r.test_rmse).epsilon(1e-6));
  // Rerunning from the saved config (grid_size = the schedule's last entry) gives the same result.
  auto again = saved;
  again["run_dir"] = dir + "_again";
  REQUIRE(train::run_fit(again, [](const std::string&) {}).test_rmse == r.test_rmse);
  fs::remove_all(dir);
  fs::remove_all(dir + "_again");
}

TEST_CASE("fit: config and data errors name the problem", "[fit]") {
  const std::string dir = tmp_dir("bad");
  auto cfg = small_config(dir);
  auto quiet = [](const std::string&) {};
  SECTION("unknown key") {
    cfg["train"]["stpes"] = 3;
    REQUIRE_THROWS_WITH(train::run_fit(cfg, quiet), Catch::Contains("stpes"));
  }
  SECTION("wrong type") {
    cfg["train"]["steps"] = "many";
    REQUIRE_THROWS_WITH(train::run_fit(cfg, quiet), Catch::Contains("steps") && Catch::Contains("integer"));
  }
  SECTION("widths do not match the data") {
    cfg["model"]["widths"] = {3, 1};
    REQUIRE_THROWS_WITH(train::run_fit(cfg, quiet), Catch::Contains("widths") && Catch::Contains("x1, x2"));
  }
  SECTION("unknown basis option") {
    cfg["model"]["projection"]["options"]["grid_sise"] = 4;
    REQUIRE_THROWS_WITH(train::run_fit(cfg, quiet), Catch::Contains("grid_sise"));
    REQUIRE_FALSE(fs::exists(dir));  // refused before anything was written, generated data included
  }
  SECTION("a sparsity penalty on a basis that has none") {
    cfg["model"]["projection"]["kind"] = "kan_chebyshev";
    cfg["model"]["projection"]["options"] = {{"degree", 3}};
    cfg["train"]["kan_regularization"] = 0.01;
    REQUIRE_THROWS_WITH(train::run_fit(cfg, quiet), Catch::Contains("fit.train.kan_regularization") && Catch::Contains("kan_chebyshev"));
    REQUIRE_FALSE(fs::exists(dir + "/config.json"));
  }
  SECTION("grid_schedule: another basis, a mismatched grid_size, a bad entry") {
    cfg["train"]["grid_schedule"] = {3, 6};
    REQUIRE_THROWS_WITH(train::run_fit(cfg, quiet), Catch::Contains("grid_size is 5") && Catch::Contains("starts at 3") &&
                                                         Catch::Contains("ends at 6"));
    cfg["model"]["projection"]["options"].erase("grid_size");
    cfg["train"]["grid_schedule"] = {3, 0};
    REQUIRE_THROWS_WITH(train::run_fit(cfg, quiet), Catch::Contains("grid_schedule entries"));
    cfg["train"]["grid_schedule"] = {3, 6};
    cfg["model"]["projection"]["kind"] = "kan_chebyshev";
    REQUIRE_THROWS_WITH(train::run_fit(cfg, quiet), Catch::Contains("needs the bspline basis"));
  }
  SECTION("predict on a directory that is not a run") {
    fs::create_directories(dir);
    REQUIRE_THROWS_WITH(train::run_predict(dir, "x.csv", "-"), Catch::Contains("config.json"));
  }
  fs::remove_all(dir);
}

TEST_CASE("fit: every generated example writes the function it names", "[fit]") {
  const std::map<std::string, double (*)(double, double)> want{
      {"exp_sin_sq", [](double a, double b) { return std::exp(std::sin(M_PI * a) + b * b); }},
      {"product", [](double a, double b) { return a * b; }},
      {"hypot", [](double a, double b) { return std::sqrt(a * a + b * b); }},
      {"nested", [](double a, double b) { return std::exp(std::sin(a * a + b * b)); }}};
  for (const auto& [name, f] : want) {
    INFO(name);
    const std::string dir = tmp_dir("gen-" + name);
    auto cfg = small_config(dir);
    cfg["data"]["generate"]["function"] = name;
    cfg["train"]["steps"] = 1;
    train::run_fit(cfg, [](const std::string&) {});
    const auto t = data::read_csv(dir + "/train.csv");
    REQUIRE(t.rows.size() == 200);
    for (const auto& r : t.rows) REQUIRE(r[2] == Approx(f(r[0], r[1])).epsilon(1e-12));
    fs::remove_all(dir);
  }
  auto cfg = small_config(tmp_dir("gen-bad"));
  cfg["data"]["generate"]["function"] = "gamma";
  REQUIRE_THROWS_WITH(train::run_fit(cfg, [](const std::string&) {}),
                      Catch::Contains("unknown data.generate.function 'gamma'") && Catch::Contains("product"));
  fs::remove_all(tmp_dir("gen-bad"));
}

// Bug: `knot fit` with kan_rbf (and L-BFGS, the default) failed at once with "LBFGS: parameters must
// be CPU leaves requiring grad": the RBF centres are a parameter that is not trained, and the fit
// handed every parameter to the optimizer.
TEST_CASE("fit: bases with untrained parameters (rbf grid, relu phases) fit with L-BFGS and Adam", "[fit]") {
  for (const std::string opt : {"lbfgs", "adam"}) {
    for (const auto& [basis, options] : {std::pair<std::string, std::string>{"rbf", "{}"}, {"relu", R"({"train_ab": false})"}}) {
      models::Json cfg = small_config(tmp_dir("untrained_" + basis + "_" + opt));
      cfg["model"]["projection"] = {{"kind", "kan_" + basis}, {"options", models::Json::object()}};
      cfg["model"]["projection"]["options"] = models::Json::parse(options);
      cfg["train"]["optimizer"] = opt;
      cfg["train"]["steps"] = 3;
      INFO(basis << " " << opt);
      const auto r = train::run_fit(cfg, [](const std::string&) {});
      CHECK(std::isfinite(r.test_rmse));
      CHECK(r.steps == 3);
    }
  }
}
