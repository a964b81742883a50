// Autograd semantics: reuse, diamonds, accumulation, no_grad, retain_graph, in-place checks, memory.
#include "tests/helpers.h"

using namespace knot;
using knot::test::all_close;

TEST_CASE("autograd: a reused input gets the sum of its gradients", "[autograd]") {
  Tensor x = from_values({1.0, 2.0, 3.0}, {3}, DType::f64);
  x.requires_grad_();
  Tensor y = sum(mul(x, x));  // d/dx Σ x² = 2x, x used twice by one node
  y.backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{2.0, 4.0, 6.0});
}

TEST_CASE("autograd: a diamond graph sums both paths once", "[autograd]") {
  Tensor x = from_values({0.5, -1.5}, {2}, DType::f64);
  x.requires_grad_();
  Tensor a = exp(x);          // shared node
  Tensor b = mul(a, 3.0);     // path 1
  Tensor c = mul(a, a);       // path 2 (a reused)
  Tensor y = sum(add(b, c));  // y = 3e^x + e^{2x}; dy/dx = 3e^x + 2e^{2x}
  y.backward();
  const auto g = x.grad().to_vector<double>();
  for (int i = 0; i < 2; ++i) {
    const double xv = i == 0 ? 0.5 : -1.5;
    REQUIRE(g[i] == Approx(3 * std::exp(xv) + 2 * std::exp(2 * xv)).epsilon(1e-12));
  }
}

TEST_CASE("autograd: gradients accumulate across two backward calls", "[autograd]") {
  Tensor x = from_values({1.0, -2.0}, {2}, DType::f64);
  x.requires_grad_();
  sum(mul(x, 2.0)).backward();
  sum(mul(x, 3.0)).backward();
  REQUIRE(x.grad().to_vector<double>() == std::vector<double>{5.0, 5.0});
  x.zero_grad();
  REQUIRE_FALSE(x.grad().defined());
}

TEST_CASE("autograd: no_grad records no graph", "[autograd]") {
  Tensor x = ones({2}, DType::f64);
  x.requires_grad_();
  Tensor y;
  {
    NoGradGuard ng;
    y = mul(x, 2.0);
  }
  REQUIRE_FALSE(y.requires_grad());
  REQUIRE(y.grad_fn() == nullptr);
  REQUIRE_THROWS_WITH(sum(y).backward(), Catch::Contains("does not require grad"));
}

TEST_CASE("autograd: backward twice without retain_graph is a clear error", "[autograd]") {
  Tensor x = from_values({1.0, 2.0}, {2}, DType::f64);
  x.requires_grad_();
  Tensor y = sum(exp(x));
  y.backward();
  REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("second time") && Catch::Contains("retain_graph"));

  Tensor z = sum(exp(x));
  x.zero_grad();
  z.backward(Tensor(), /*retain_graph=*/true);
  z.backward();
  const auto g = x.grad().to_vector<double>();
  REQUIRE(g[0] == Approx(2 * std::exp(1.0)));
}

TEST_CASE("autograd: an in-place edit of a saved tensor is caught", "[autograd]") {
  Tensor x = from_values({1.0, 2.0}, {2}, DType::f64);
  x.requires_grad_();
  Tensor y = exp(x);  // saves its output
  {
    NoGradGuard ng;
    y.mul_(2.0);
  }
  REQUIRE_THROWS_WITH(sum(y).backward(), Catch::Contains("modified in place"));
}

TEST_CASE("autograd: in-place write to a tensor that requires grad is refused", "[autograd]") {
  Tensor x = ones({2}, DType::f64);
  x.requires_grad_();
  REQUIRE_THROWS_WITH(x.fill_(3.0), Catch::Contains("fill_") && Catch::Contains("requires grad"));
  NoGradGuard ng;
  x.fill_(3.0);
  REQUIRE(x.to_vector<double>() == std::vector<double>{3.0, 3.0});
}

TEST_CASE("autograd: live bytes return to baseline after backward", "[autograd]") {
  Tensor x = rand({64, 64}, DType::f64);
  x.requires_grad_();
  const size_t base = cpu_live_bytes();
  {
    Tensor y = sum(mul(exp(x), sigmoid(x)));
    REQUIRE(cpu_live_bytes() > base);
    y.backward();
  }
  // Only the gradient of x (64·64 doubles) is left.
  REQUIRE(cpu_live_bytes() == base + 64 * 64 * sizeof(double));
  x.zero_grad();
  REQUIRE(cpu_live_bytes() == base);
}

TEST_CASE("autograd: an implied gradient needs a one-element output", "[autograd]") {
  Tensor x = ones({3}, DType::f64);
  x.requires_grad_();
  REQUIRE_THROWS_WITH(exp(x).backward(), Catch::Contains("one-element"));
}

TEST_CASE("autograd: requires_grad_ only on float leaves", "[autograd]") {
  REQUIRE_THROWS_WITH(zeros({2}, DType::i64).requires_grad_(), Catch::Contains("float"));
  Tensor x = ones({2}, DType::f64);
  x.requires_grad_();
  Tensor y = exp(x);
  REQUIRE_THROWS_WITH(y.requires_grad_(), Catch::Contains("leaf"));
  REQUIRE_FALSE(y.detach().requires_grad());
}
