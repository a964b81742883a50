// End to end: the tiny MLP learns, and the same seed gives bitwise-identical results.
#include "train/demo.h"
#include "tests/helpers.h"

TEST_CASE("train: tiny MLP with SGD reaches a low loss, bitwise reproducible", "[train]") {
  const auto a = knot::train::run_demo(7, 300);
  const auto b = knot::train::run_demo(7, 300);
  INFO("first loss " << a.losses.front() << ", last loss " << a.losses.back());
  REQUIRE(a.losses.back() < 0.02);
  REQUIRE(a.losses.back() < 0.1 * a.losses.front());
  REQUIRE(a.losses == b.losses);  // exact equality, step by step
  REQUIRE(a.params == b.params);
  const auto c = knot::train::run_demo(8, 5);
  REQUIRE(c.losses.front() != a.losses.front());  // the seed matters
}
