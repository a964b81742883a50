// knot inspect (train/kan_inspect.h) on a small `knot fit` run and a tiny translation run: the
// pictures exist and have the right panel counts, an edge zeroed by hand is reported dead, layer
// selection and bad input are errors naming the problem.
#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "models/config.h"
#include "train/kan_fit.h"
#include "nn/kan.h"
#include "ops/ops.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "train/kan_inspect.h"
#include "train/kan_symbolic.h"
#include "train/electra_pretrain.h"
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
    "model": {"widths": [2, 3, 1], "projection": {"kind": "kan_bspline", "options": {"grid_size": 5}}},
    "train": {"optimizer": "lbfgs", "steps": 5, "kan_grid_update_every": 0, "log_every": 100}
  })");
  cfg["run_dir"] = dir;
  train::run_fit(cfg, [](const std::string&) {});
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

namespace {

// Rewrites one fit run's model.safetensors with `edit(name, values, shape)` applied to each tensor.
template <typename F>
void edit_model(const std::string& run, F&& edit) {
  auto st = load_safetensors(run + "/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> named;
  for (auto& [name, t] : st.tensors) {
    auto v = t.to(DType::f64).template to_vector<double>();
    edit(name, v, t.shape());
    named.emplace_back(name, from_vector(v, t.shape()).to(t.dtype()));
  }
  save_safetensors(run + "/model.safetensors", named, st.metadata);
}

}  // namespace

TEST_CASE("prune: a hidden node whose outgoing edge is zero is removed and the predictions stay", "[inspect]") {
  const std::string run = small_fit(tmp("prune"));
  // Hidden node 1 (output 1 of layers.0) feeds nothing: layers.1's edge in 1 -> out 0 is zero.
  edit_model(run, [](const std::string& name, std::vector<double>& v, const Shape& shape) {
    if (name == "layers.1.base_weight") v[0 * 3 + 1] = 0;
    if (name == "layers.1.spline_weight")
      for (int64_t j = 0; j < shape[2]; ++j) v[(0 * 3 + 1) * shape[2] + j] = 0;
  });
  train::PruneOptions o;
  o.run_dir = run;
  o.threshold = 1e-9;  // nothing else is that small
  const auto r = train::run_prune(o, quiet);
  REQUIRE(r.out_dir == run + "-pruned");
  REQUIRE(r.widths_before == std::vector<int64_t>{2, 3, 1});
  REQUIRE(r.widths_after == std::vector<int64_t>{2, 2, 1});
  REQUIRE(r.removed_nodes == std::vector<std::vector<int64_t>>{{1}});
  REQUIRE(r.edges_before == 9);
  REQUIRE(r.edges_after == 6);
  REQUIRE(r.max_change < 1e-9);
  REQUIRE(r.test_rmse_after == Approx(r.test_rmse_before).epsilon(1e-9));
  // The pruned run is a fit run like any other.
  REQUIRE(models::load_json_file(r.out_dir + "/config.json")["model"]["widths"] == Json({2, 2, 1}));
  REQUIRE(train::run_predict(r.out_dir, r.out_dir + "/test.csv", r.out_dir + "/pred.csv") == 50);
  const Json info = models::load_json_file(r.out_dir + "/pruned.json");
  REQUIRE(info["removed_output_nodes"]["layers.0"] == Json({1}));
  REQUIRE_FALSE(fs::exists(r.out_dir + ".tmp-prune"));

  SECTION("a threshold above every node keeps the best node of each hidden layer; cut edges are zero") {
    o.threshold = 1e9;
    o.out_dir = tmp("prune-all");
    const auto r2 = train::run_prune(o, quiet);
    REQUIRE(r2.widths_after == std::vector<int64_t>{2, 1, 1});
    REQUIRE(r2.edges_after == 0);
    train::InspectOptions io;
    io.run_dir = r2.out_dir;
    io.out_dir = tmp("prune-all-inspect");
    io.plots = false;
    const auto ins = train::run_inspect(io, quiet);
    for (const auto& l : ins.layers)
      for (double v : l.importance) REQUIRE(v == 0.0);
    fs::remove_all(r2.out_dir);
    fs::remove_all(io.out_dir);
  }
  SECTION("errors") {
    REQUIRE_THROWS_WITH(train::run_prune(o, quiet), Catch::Contains("exists"));  // run-pruned is there now
    o.out_dir = tmp("prune-neg");
    o.threshold = -1;
    REQUIRE_THROWS_WITH(train::run_prune(o, quiet), Catch::Contains("--threshold"));
    REQUIRE_FALSE(fs::exists(o.out_dir));
  }
  fs::remove_all(run);
  fs::remove_all(run + "-pruned");
}

TEST_CASE("prune then fit again: train.init_from starts from the pruned weights", "[inspect][fit]") {
  const std::string run = small_fit(tmp("refit"));
  train::PruneOptions o;
  o.run_dir = run;
  o.threshold = 1e9;  // [2, 1, 1], every edge cut: the model predicts 0
  const auto r = train::run_prune(o, quiet);
  Json cfg = models::load_json_file(r.out_dir + "/config.json");
  cfg["run_dir"] = tmp("refit-again");
  cfg["train"]["init_from"] = r.out_dir;
  cfg["train"]["kan_grid_update_every"] = 0;
  cfg["train"]["optimizer"] = "adam";
  cfg["train"]["lr"] = 0.0;  // no update: the fit's result is the loaded model's
  cfg["train"]["steps"] = 1;
  const auto f = train::run_fit(cfg, quiet);
  REQUIRE(f.test_rmse == Approx(r.test_rmse_after).epsilon(1e-12));
  cfg["train"]["init_from"] = run;  // [2, 3, 1] weights into a [2, 1, 1] model
  REQUIRE_THROWS_WITH(train::run_fit(cfg, quiet), Catch::Contains("init_from") && Catch::Contains("do not fit"));
  for (const auto& d : {run, r.out_dir, cfg["run_dir"].get<std::string>()}) fs::remove_all(d);
}

namespace {

// docs/kan-workflow.md's steps on the bundled example: a fit with a sparsity penalty (a), pruned to
// (b), trained on from the pruned weights with the grid extended 5 -> 10 -> 20 (c).
struct Workflow {
  std::string sparse, pruned, refit;
  train::PruneResult prune;
  train::FitResult fit;
};
Workflow run_workflow(const std::string& name) {
  Workflow w{tmp(name + "-sparse"), tmp(name + "-pruned"), tmp(name + "-refit"), {}, {}};
  Json cfg = models::load_json_file((fs::path(__FILE__).parent_path().parent_path() / "configs/fit-exp-sin.json").string());
  cfg["run_dir"] = w.sparse;
  cfg["train"]["kan_regularization"] = 0.003;
  cfg["train"]["kan_reg_e"] = 10;
  cfg["train"]["steps"] = 100;
  train::run_fit(cfg, quiet);
  train::PruneOptions o;
  o.run_dir = w.sparse;
  o.out_dir = w.pruned;
  o.threshold = 0.1;
  w.prune = train::run_prune(o, quiet);
  Json re = models::load_json_file(w.pruned + "/config.json");
  re["run_dir"] = w.refit;
  re["train"]["init_from"] = w.pruned;
  re["train"]["kan_regularization"] = 0.0;
  re["train"]["steps"] = 100;
  re["train"]["kan_grid_update_every"] = 0;
  re["train"]["grid_schedule"] = {5, 10, 20};
  w.fit = train::run_fit(re, quiet);
  return w;
}

}  // namespace

TEST_CASE("the KAN workflow end to end: sparse fit, prune to [2, 1, 1], refit with grid extension", "[inspect][fit]") {
  const Workflow w = run_workflow("wf");
  REQUIRE(w.prune.widths_after == std::vector<int64_t>{2, 1, 1});  // the structure of exp(sin(pi x1) + x2^2)
  const auto& f = w.fit;
  INFO("test RMSE per stage " << f.stages[0].test_rmse << " " << f.stages[1].test_rmse << " " << f.stages[2].test_rmse);
  REQUIRE(f.stages[1].test_rmse < f.stages[0].test_rmse);
  REQUIRE(f.stages[2].test_rmse < f.stages[1].test_rmse);
  REQUIRE(f.test_rmse < 2e-4);
  for (const auto& d : {w.sparse, w.pruned, w.refit}) fs::remove_all(d);
}

TEST_CASE("symbolic: the pruned and refitted example becomes exp(sin(pi x1) + x2^2)", "[inspect][fit][symbolic]") {
  // The steps of docs/kan-workflow.md, then knot symbolic.
  const Workflow w = run_workflow("sym");
  const std::string out = tmp("sym-out");
  train::SymbolicOptions so;
  so.run_dir = w.refit;
  so.out_dir = out;
  const auto r = train::run_symbolic(so, quiet);
  REQUIRE(r.edges.size() == 3);
  REQUIRE(r.edges[0].function == "sin");
  REQUIRE(r.edges[1].function == "x^2");
  REQUIRE(r.edges[2].function == "exp");
  for (const auto& e : r.edges) REQUIRE(e.replaced);
  REQUIRE(r.numeric_edges == 0);
  REQUIRE(r.tuned);
  INFO(r.formulas[0]);
  REQUIRE(r.test_rmse <= 1e-4);
  // sin's frequency is pi within 1 % (the inner scale is the only constant that no other can absorb).
  REQUIRE(std::abs(std::abs(r.edges[0].a) - M_PI) < 0.01 * M_PI);
  REQUIRE(r.formulas[0].find("exp(") != std::string::npos);
  REQUIRE(r.formulas[0].find("sin(3.14") != std::string::npos);
  REQUIRE(r.formulas[0].find("x2^2") != std::string::npos);
  REQUIRE(models::load_json_file(out + "/symbolic.json")["edges"].size() == 3);

  {  // a fixed edge and a narrow library; bad --fix names the problem
    so.out_dir.clear();
    so.fix = {"layers.0.1.0=cos"};
    so.library = {"x", "x^2", "sin", "exp"};
    const auto f = train::run_symbolic(so, quiet);
    REQUIRE(f.edges[1].function == "cos");
    REQUIRE(f.edges[1].fixed);
    so.fix = {"layers.0.7.0=sin"};
    REQUIRE_THROWS_WITH(train::run_symbolic(so, quiet), Catch::Contains("layers.0.7.0"));
    so.fix = {"layers.0.1.0=gamma"};
    REQUIRE_THROWS_WITH(train::run_symbolic(so, quiet), Catch::Contains("unknown function 'gamma'"));
  }
  {  // a high R² threshold keeps edges numeric: no tuning, the formula names them
    so.fix.clear();
    so.r2_threshold = 1.0;
    so.library = {"x", "tanh"};  // neither fits sin or x^2 exactly
    const auto f = train::run_symbolic(so, quiet);
    REQUIRE(f.numeric_edges > 0);
    REQUIRE_FALSE(f.tuned);
    REQUIRE(f.formulas[0].find("phi[layers.") != std::string::npos);
    // With the splines kept, the network is the fitted model: its test RMSE is the fit's.
    REQUIRE(f.test_rmse < 2e-4);
  }
  for (const auto& d : {w.sparse, w.pruned, w.refit, out}) fs::remove_all(d);
}

TEST_CASE("symbolic: x1*x2 through a [2, 2, 1] net and sqrt(x1^2 + x2^2) through [2, 1, 1], fitted in stages",
          "[inspect][fit][symbolic]") {
  const Json base =
      models::load_json_file((fs::path(__FILE__).parent_path().parent_path() / "configs/fit-exp-sin.json").string());
  auto fit = [&](const std::string& name, const std::string& fn, const Json& widths, bool grid_updates, int seed) {
    Json cfg = base;
    cfg["run_dir"] = tmp(name);
    cfg["data"]["generate"]["function"] = fn;
    cfg["model"]["widths"] = widths;
    cfg["train"]["steps"] = 100;
    cfg["train"]["grid_schedule"] = {5, 10, 20};
    cfg["train"]["seed"] = seed;
    if (!grid_updates) cfg["train"]["kan_grid_update_every"] = 0;
    train::run_fit(cfg, quiet);
    return cfg["run_dir"].get<std::string>();
  };
  auto coefficient_of_square = [](const train::SymbolicEdge& e) { return e.c * e.a * e.a; };  // c·(a·x + b)² + d
  {  // x1·x2 = ((x1 + x2)² − (x1 − x2)²) / 4: the first layer linear (pykan's hint, every edge of it fixed to x),
     // then the staged refit turns the second layer's splines into exact squares.
    const std::string run = fit("product", "product", Json::array({2, 2, 1}), true, 0);
    train::SymbolicOptions so;
    so.run_dir = run;
    so.fix = {"layers.0=x"};
    const auto r = train::run_symbolic(so, quiet);
    REQUIRE(r.edges.size() == 6);
    for (size_t k = 0; k < 4; ++k) REQUIRE(r.edges[k].function == "x");
    REQUIRE(r.edges[4].function == "x^2");
    REQUIRE(r.edges[5].function == "x^2");
    REQUIRE(r.tuned);
    INFO(r.formulas[0]);
    REQUIRE(r.test_rmse < 1e-4);
    // Without the staged refit the second layer stays a poor fit (it was learned against curved first-layer
    // edges): the refit is what makes it exact.
    so.refit_steps = 0;
    const auto unstaged = train::run_symbolic(so, quiet);
    INFO("unstaged: " << unstaged.formulas[0]);
    REQUIRE(unstaged.test_rmse > 10 * r.test_rmse);
    fs::remove_all(run);
  }
  {  // sqrt(x1² + x2²) with the library narrowed to the functions it needs (as pykan's tutorials do).
    const std::string run = fit("hypot", "hypot", Json::array({2, 1, 1}), false, 1);
    train::SymbolicOptions so;
    so.run_dir = run;
    so.library = {"x", "x^2", "sqrt"};
    const auto r = train::run_symbolic(so, quiet);
    REQUIRE(r.edges.size() == 3);
    REQUIRE(r.edges[0].function == "x^2");
    REQUIRE(r.edges[1].function == "x^2");
    REQUIRE(r.edges[2].function == "sqrt");
    INFO(r.formulas[0]);
    REQUIRE(r.test_rmse < 1e-3);
    // y = c·sqrt(a·(k0·x1² + k1·x2² + …) + b) + d: equal weights of x1² and x2², overall scale 1, within 1 %.
    const double k0 = coefficient_of_square(r.edges[0]), k1 = coefficient_of_square(r.edges[1]);
    REQUIRE(std::abs(k0 / k1 - 1) < 0.01);
    const double scale = r.edges[2].c * std::sqrt(r.edges[2].a * 0.5 * (k0 + k1));
    REQUIRE(std::abs(scale - 1) < 0.01);
    fs::remove_all(run);
  }
}

TEST_CASE("inspect: an ELECTRA run with KAN feed-forward layers", "[inspect][trainer]") {
  Json cfg = test::tiny_electra_config(2);
  cfg["model"]["projections"] = {{"ffn", {{"kind", "kan_bspline"}, {"options", {{"grid_size", 3}}}}}};
  const std::string run = tmp("el"), out = tmp("el-out");
  train::train_electra(cfg, run, false, test::quiet_hooks());
  train::InspectOptions o;
  o.run_dir = run;
  o.out_dir = out;
  o.top_k = 4;
  o.rows = 100;
  const auto r = train::run_inspect(o, quiet);
  REQUIRE(r.task == "electra");
  REQUIRE(!r.layers.empty());
  bool generator = false, discriminator = false;
  for (const auto& l : r.layers) {
    INFO(l.name);
    generator = generator || l.name.rfind("generator.", 0) == 0;
    discriminator = discriminator || l.name.rfind("discriminator.", 0) == 0;
    REQUIRE(l.rows > 0);
    REQUIRE(l.panels == 4);
    REQUIRE(fs::file_size(l.png) > 10000);
  }
  REQUIRE(generator);  // both networks ran on the recorded batch
  REQUIRE(discriminator);
  for (const auto& d : {run, out}) fs::remove_all(d);
}

TEST_CASE("fit: reg_metric activations (pykan's penalty) shrinks the edges of any basis that has it", "[inspect][fit]") {
  auto total_importance = [](const std::string& run) {
    train::InspectOptions o;
    o.run_dir = run;
    o.out_dir = run + "-inspect";
    o.plots = false;
    double t = 0;
    for (const auto& l : train::run_inspect(o, quiet).layers)
      for (double v : l.importance) t += v;
    fs::remove_all(o.out_dir);
    return t;
  };
  for (const char* basis : {"chebyshev", "bspline"}) {
    INFO(basis);
    Json cfg = Json::parse(R"({
      "task": "fit",
      "data": {"generate": {"function": "exp_sin_sq", "n_train": 200, "n_test": 50, "seed": 3}},
      "model": {"widths": [2, 3, 1]},
      "train": {"optimizer": "adam", "lr": 0.01, "steps": 40, "kan_grid_update_every": 0, "log_every": 100,
                "kan_reg_metric": "activations"}
    })");
    cfg["model"]["projection"] = {{"kind", std::string("kan_") + basis}, {"options", models::Json::object()}};
    const std::string plain = tmp(std::string("act-plain-") + basis), reg = tmp(std::string("act-reg-") + basis);
    cfg["run_dir"] = plain;
    train::run_fit(cfg, quiet);
    cfg["run_dir"] = reg;
    cfg["train"]["kan_regularization"] = 0.5;
    train::run_fit(cfg, quiet);
    const double a = total_importance(plain), b = total_importance(reg);
    INFO("sum of edge importances without the penalty " << a << ", with it " << b);
    REQUIRE(b < 0.8 * a);
    fs::remove_all(plain);
    fs::remove_all(reg);
  }
  Json bad = Json::parse(R"({"task": "fit", "data": {"generate": {"n_train": 20, "n_test": 5}},
    "model": {"widths": [2, 1], "projection": "kan_rbf"}, "train": {"steps": 1, "kan_regularization": 0.1, "kan_reg_metric": "activations"}})");
  bad["run_dir"] = tmp("act-bad");
  REQUIRE_THROWS_WITH(train::run_fit(bad, quiet), Catch::Contains("reg_metric 'activations'") && Catch::Contains("kan_rbf"));
  bad["train"]["kan_reg_metric"] = "grads";
  REQUIRE_THROWS_WITH(train::run_fit(bad, quiet), Catch::Contains("reg_metric must be"));
  fs::remove_all(tmp("act-bad"));
}

TEST_CASE("prune: every basis with per-edge functions keeps the kept edges exactly and zeroes the cut ones",
          "[inspect]") {
  for (const std::string basis : {"bspline", "chebyshev", "legendre", "fourier", "relu"}) {
    INFO(basis);
    Json cfg = Json::parse(R"({
      "task": "fit",
      "data": {"generate": {"function": "exp_sin_sq", "n_train": 200, "n_test": 50, "seed": 3}},
      "model": {"widths": [2, 6, 1]},
      "train": {"optimizer": "adam", "steps": 3, "kan_grid_update_every": 0, "log_every": 100}
    })");
    cfg["model"]["projection"] = {{"kind", "kan_" + basis}, {"options", models::Json::object()}};
    cfg["run_dir"] = tmp("prune-basis-" + basis);
    train::run_fit(cfg, quiet);
    // A threshold in the middle of the edge importances: some nodes and edges go, some stay.
    train::InspectOptions io;
    io.run_dir = cfg["run_dir"];
    io.out_dir = tmp("prune-basis-inspect-" + basis);
    io.plots = false;
    std::vector<double> all;
    for (const auto& l : train::run_inspect(io, quiet).layers) all.insert(all.end(), l.importance.begin(), l.importance.end());
    std::sort(all.begin(), all.end());
    train::PruneOptions o;
    o.run_dir = cfg["run_dir"];
    o.threshold = all[all.size() / 2];
    const auto r = train::run_prune(o, quiet);
    REQUIRE(r.edges_after < r.edges_before);
    std::vector<int64_t> kept;  // hidden nodes that stay
    for (int64_t j = 0; j < 6; ++j)
      if (std::find(r.removed_nodes[0].begin(), r.removed_nodes[0].end(), j) == r.removed_nodes[0].end()) kept.push_back(j);
    REQUIRE(r.widths_after == std::vector<int64_t>{2, static_cast<int64_t>(kept.size()), 1});
    const auto orig = train::load_fit_model(o.run_dir, "test");
    const auto pruned = train::load_fit_model(r.out_dir, "test");
    Generator gen(4);
    int64_t live = 0;
    // Each edge of the pruned layer is the original edge between the same nodes, or zero (cut).
    auto compare = [&](size_t l, const Tensor& x_orig, const Tensor& x_pruned, const std::vector<int64_t>& outs,
                       const std::vector<int64_t>& ins) {
      const Tensor e = orig->layer(l).edge_values(x_orig);
      const Tensor ep = pruned->layer(l).edge_values(x_pruned);
      const int64_t N = e.size(0), O = e.size(1), I = e.size(2), Op = ep.size(1), Ip = ep.size(2);
      const std::vector<double> ev = e.to_vector<double>(), epv = ep.to_vector<double>();
      for (int64_t a = 0; a < Op; ++a)
        for (int64_t c = 0; c < Ip; ++c) {
          bool zero = true, same = true;
          for (int64_t n = 0; n < N; ++n) {
            const double got = epv[(n * Op + a) * Ip + c], want = ev[(n * O + outs[a]) * I + ins[c]];
            zero = zero && got == 0.0;
            same = same && std::abs(got - want) <= 1e-9 * (1 + std::abs(want));
          }
          REQUIRE((zero || same));
          live += !zero;
        }
    };
    const Tensor x0 = rand({16, 2}, DType::f64, &gen, -1, 1);
    compare(0, x0, x0, kept, {0, 1});
    const Tensor x1 = rand({16, 6}, DType::f64, &gen, -1, 1);
    compare(1, x1, index_select(x1, 1, from_vector(kept, {static_cast<int64_t>(kept.size())})), {0}, kept);
    CHECK(live == r.edges_after);
    fs::remove_all(o.run_dir);
    fs::remove_all(r.out_dir);
    fs::remove_all(io.out_dir);
  }
  // rbf and rational cannot be cut: an error naming the basis and why, before any work.
  Json cfg = Json::parse(R"({"task": "fit", "data": {"generate": {"function": "exp_sin_sq", "n_train": 50, "n_test": 20}},
    "model": {"widths": [2, 2, 1], "projection": "kan_rbf"}, "train": {"optimizer": "adam", "steps": 1, "log_every": 100}})");
  cfg["run_dir"] = tmp("prune-rbf");
  train::run_fit(cfg, quiet);
  train::PruneOptions o;
  o.run_dir = cfg["run_dir"];
  REQUIRE_THROWS_WITH(train::run_prune(o, quiet), Catch::Contains("kan_rbf") && Catch::Contains("LayerNorm"));
  REQUIRE_FALSE(fs::exists(o.run_dir + "-pruned"));
  fs::remove_all(o.run_dir);
}
