// knot sweep's grid, point names and table (train/sweep.h); the command end to end is
// tests/tools/sweep_cli.sh.
#include <filesystem>
#include <fstream>

#include "tests/helpers.h"
#include "train/sweep.h"

namespace kt = knot::train;
namespace fs = std::filesystem;

TEST_CASE("sweep: values split at top-level commas only", "[sweep]") {
  using V = std::vector<std::string>;
  REQUIRE(kt::split_sweep_values("a") == V{"a"});
  REQUIRE(kt::split_sweep_values("mlp,kan_bspline,kan_chebyshev") == V{"mlp", "kan_bspline", "kan_chebyshev"});
  REQUIRE(kt::split_sweep_values("[1,2],[3]") == V{"[1,2]", "[3]"});
  REQUIRE(kt::split_sweep_values(R"({"kind":"kan_bspline","options":{"grid_size":5}},mlp)") ==
          V{R"({"kind":"kan_bspline","options":{"grid_size":5}})", "mlp"});
  REQUIRE(kt::split_sweep_values(R"("a,b","c\",d")") == V{R"("a,b")", R"("c\",d")"});
  REQUIRE_THROWS_WITH(kt::split_sweep_values("a,,b"), Catch::Contains("empty value"));
  REQUIRE_THROWS_WITH(kt::split_sweep_values("a,"), Catch::Contains("empty value"));
  REQUIRE_THROWS_WITH(kt::split_sweep_values("[1,2"), Catch::Contains("unclosed '['"));
  REQUIRE_THROWS_WITH(kt::split_sweep_values("1]"), Catch::Contains("without its opening"));
  REQUIRE_THROWS_WITH(kt::split_sweep_values("\"a"), Catch::Contains("unclosed '\"'"));
}

TEST_CASE("sweep: the grid is every combination, the first axis slowest, seeds last", "[sweep]") {
  const kt::SweepPlan plan = kt::parse_sweep({"model.projection.kind=mlp,kan_bspline", "train.steps=300",
                                              "train.lr=1e-3,2e-3,4e-3"},
                                             {1, 2});
  REQUIRE(plan.fixed == std::vector<std::string>{"train.steps=300"});
  REQUIRE(plan.axes.size() == 3);
  REQUIRE(plan.axes[2].key == "seed");
  const auto points = kt::expand_sweep(plan);
  REQUIRE(points.size() == 12);
  REQUIRE(points[0].name == "model.projection.kind=mlp__train.lr=1e-3__seed=1");
  REQUIRE(points[1].name == "model.projection.kind=mlp__train.lr=1e-3__seed=2");
  REQUIRE(points[2].name == "model.projection.kind=mlp__train.lr=2e-3__seed=1");
  REQUIRE(points[11].name == "model.projection.kind=kan_bspline__train.lr=4e-3__seed=2");
  REQUIRE(points[11].overrides == std::vector<std::string>{"train.steps=300", "model.projection.kind=kan_bspline",
                                                           "train.lr=4e-3", "seed=2"});
  // No axis: one point, the config as the fixed overrides leave it.
  const auto one = kt::expand_sweep(kt::parse_sweep({"train.steps=10"}, {}));
  REQUIRE(one.size() == 1);
  REQUIRE(one[0].name == "base");
  // A JSON value gets a directory name of safe characters.
  const auto js = kt::expand_sweep(kt::parse_sweep({R"(model.projection={"kind":"mlp"},{"kind":"kan_rational"})"}, {}));
  REQUIRE(js[1].name == "model.projection=__kind___kan_rational__");
  REQUIRE(js[1].overrides[0] == R"(model.projection={"kind":"kan_rational"})");
}

TEST_CASE("sweep: bad plans are errors that name the problem", "[sweep]") {
  REQUIRE_THROWS_WITH(kt::parse_sweep({"train.lr"}, {}), Catch::Contains("'train.lr' is not an override"));
  REQUIRE_THROWS_WITH(kt::parse_sweep({"train.lr=1,2", "train.lr=3"}, {}), Catch::Contains("'train.lr' is given twice"));
  REQUIRE_THROWS_WITH(kt::parse_sweep({"seed=1,2"}, {3}), Catch::Contains("'seed' is given both"));
  REQUIRE_THROWS_WITH(kt::parse_sweep({}, {1, 1}), Catch::Contains("seed 1 twice"));
  // Values that differ only in characters a directory name cannot hold.
  REQUIRE_THROWS_WITH(kt::expand_sweep(kt::parse_sweep({"data.train=a/b,a:b"}, {})),
                      Catch::Contains("share the run directory 'data.train=a_b'"));
}

TEST_CASE("sweep: the table reads each point's run directory", "[sweep]") {
  const fs::path dir = fs::temp_directory_path() / "knot-test-sweep-table";
  fs::remove_all(dir);
  fs::create_directories(dir / "p");
  {
    std::ofstream(dir / "p" / "config.json") << R"({"task": "translation", "train": {"steps": 30}})";
    std::ofstream m(dir / "p" / "metrics.jsonl");
    // Two windows of 10 steps at 1000 and 800 tokens/s (2000 tokens each): 0.2 and 0.25 s/step.
    m << R"({"step": 10, "loss": 3.0, "tokens": 2000, "tokens_per_s": 1000.0})" << "\n";
    m << R"({"step": 10, "val_loss": 2.5})" << "\n";
    m << R"({"step": 20, "loss": 2.0, "tokens": 2000, "tokens_per_s": 800.0})" << "\n";
    m << R"({"step": 20, "val_loss": 2.25, "val_bleu": 1.5})" << "\n";
    std::ofstream(dir / "p" / "sweep-point.json")
        << R"({"peak_rss_mib": 123.4, "test": {"bleu": 2.5, "loss": 2.3}, "test_beam": {"beam": 4, "bleu": 3.0}})";
  }
  kt::SweepPoint pt;
  pt.name = "p";
  pt.values = {{"train.lr", "1e-3"}};
  kt::SweepResult r = kt::read_sweep_result((dir / "p").string(), pt, {10, 15, 30});
  REQUIRE(r.status == "not run");  // no checkpoint
  REQUIRE(r.final_val_loss == Approx(2.25));
  REQUIRE(r.best_val_loss == Approx(2.25));
  REQUIRE(r.best_val_step == 20);
  REQUIRE(r.final_val_bleu == Approx(1.5));
  REQUIRE(r.val_loss_at[0] == Approx(2.5));
  REQUIRE(r.val_loss_at[1] == Approx(2.5));  // the last validation at or before step 15
  REQUIRE(r.val_loss_at[2] == Approx(2.25));
  REQUIRE(*r.seconds_per_step == Approx(0.25));  // 2000 tokens / 800 per s / 10 steps; the first window (from an unknown start) is not counted
  REQUIRE(*r.tokens_per_second == Approx(900.0));
  REQUIRE(*r.peak_rss_mib == Approx(123.4));
  REQUIRE(*r.test_bleu == Approx(2.5));
  REQUIRE(r.beam == 4);
  const std::string md = kt::sweep_markdown({r}, {"train.lr"}, {10});
  REQUIRE_THAT(md, Catch::Contains("| train.lr | parameters | steps | final val_loss | best val_loss (step) | val_loss@10 |"));
  REQUIRE_THAT(md, Catch::Contains("| 1e-3 | - | 0/30 | 2.2500 | 2.2500 (20) | 2.5000 | 1.50 | 2.50 | 3.00 |"));
  REQUIRE_THAT(md, Catch::Contains("| 123 | not run |"));
  const std::string csv = kt::sweep_csv({r}, {"train.lr"}, {10});
  REQUIRE_THAT(csv, Catch::StartsWith("train.lr,parameters,steps,final val_loss,best val_loss (step),val_loss@10,"));
  fs::remove_all(dir);
}
