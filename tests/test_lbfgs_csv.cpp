// L-BFGS convergence and numeric CSV reading/writing with its error cases.
#include <filesystem>
#include <fstream>

#include "data/csv.h"
#include "optim/lbfgs.h"
#include "tests/helpers.h"

using namespace knot;

TEST_CASE("lbfgs: minimises the Rosenbrock function", "[optim]") {
  Tensor p = from_values({-1.2, 1.0}, {2}, DType::f64);
  p.requires_grad_();
  optim::LBFGSOptions o;
  o.max_iter = 200;
  optim::LBFGS opt({p}, o);
  auto closure = [&]() {
    p.zero_grad();
    const Tensor a = p.select(0, 0), b = p.select(0, 1);
    const Tensor f = add(mul(pow(rsub(1.0, a), 2.0), 1.0), mul(pow(sub(b, mul(a, a)), 2.0), 100.0));
    f.backward();
    return f.item();
  };
  for (int i = 0; i < 5; ++i) opt.step(closure);
  const auto v = p.to_vector<double>();
  CHECK(v[0] == Approx(1.0).margin(1e-4));
  CHECK(v[1] == Approx(1.0).margin(1e-4));
}

TEST_CASE("lbfgs: fits least squares faster than plain gradient steps would", "[optim]") {
  Generator g(5);
  const Tensor X = rand({50, 3}, DType::f64, &g);
  const Tensor w_true = from_values({0.5, -2.0, 3.0}, {3, 1}, DType::f64);
  const Tensor y = matmul(X, w_true);
  Tensor w = zeros({3, 1}, DType::f64);
  w.requires_grad_();
  optim::LBFGS opt({w});
  auto closure = [&]() {
    w.zero_grad();
    const Tensor l = mse_loss(matmul(X, w), y);
    l.backward();
    return l.item();
  };
  opt.step(closure);
  opt.step(closure);
  REQUIRE(test::max_abs_diff(w, w_true) < 1e-5);
}

TEST_CASE("csv: reads numbers, writes them back, and names bad cells", "[data]") {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string path = (dir / ("knot_csv_" + std::to_string(::getpid()) + ".csv")).string();
  data::write_csv(path, {"x1", "x2", "y"}, {{1, 2.5, -3}, {0.125, 1e-3, 7}});
  const auto t = data::read_csv(path);
  REQUIRE(t.columns == std::vector<std::string>{"x1", "x2", "y"});
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[1][1] == 1e-3);
  const Tensor x = t.select({"x1", "x2"}, DType::f64);
  CHECK(x.shape() == Shape{2, 2});
  CHECK(x.to_vector<double>() == std::vector<double>{1, 2.5, 0.125, 1e-3});
  REQUIRE_THROWS_WITH(t.select({"z"}), Catch::Contains("no column 'z'"));

  { std::ofstream f(path); f << "a,b\n1,2\n3,oops\n"; }
  REQUIRE_THROWS_WITH(data::read_csv(path), Catch::Contains(":3:") && Catch::Contains("'oops'") && Catch::Contains("column 'b'"));
  { std::ofstream f(path); f << "a,b\n1\n"; }
  REQUIRE_THROWS_WITH(data::read_csv(path), Catch::Contains("1 values but the header has 2"));
  { std::ofstream f(path); f << "a,b\n"; }
  REQUIRE_THROWS_WITH(data::read_csv(path), Catch::Contains("no data rows"));
  { std::ofstream f(path); }
  REQUIRE_THROWS_WITH(data::read_csv(path), Catch::Contains("empty"));
  std::filesystem::remove(path);
  REQUIRE_THROWS_WITH(data::read_csv(path), Catch::Contains("cannot open"));
}

TEST_CASE("csv: the in-memory reader, the fixture and cells with bytes after the number", "[data]") {
  const auto fixture = data::read_csv((std::filesystem::path(__FILE__).parent_path() / "fixtures/csv/tiny.csv").string());
  REQUIRE(fixture.columns == std::vector<std::string>{"x1", "x2", "y"});
  REQUIRE(fixture.rows == std::vector<std::vector<double>>{{0.5, -1, 2e-3}, {1, 0.25, -7.5}});
  const auto t = data::parse_csv("a,b\r\n1, 2\n\n3,4\n", "mem.csv");
  REQUIRE(t.rows == std::vector<std::vector<double>>{{1, 2}, {3, 4}});
  // strtod stops at a NUL byte; the cell "1\0x" is not the number 1, and the message shows the NUL
  // (printed raw, it ended the message: "column 'a' has '1").
  REQUIRE_THROWS_WITH(data::parse_csv(std::string("a\n1\0x\n", 6), "mem.csv"),
                      Catch::Contains("mem.csv:2:") && Catch::Contains("has '1\\x00x', not a finite number"));
}
