// The demo job: a tiny MLP [2, 32, 32, 1] (tanh) learns f(x) = sin(2·x0)·x1 on 512 fixed random
// points with SGD + momentum. Used by `knot demo` and by the end-to-end determinism test.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "nn/mlp.h"

namespace knot::train {

struct DemoResult {
  std::vector<double> losses;           // one per step
  std::vector<std::vector<float>> params;  // final parameter values, for bitwise comparisons
};

// `on_step(step, loss)` is called every `report_every` steps (if set).
DemoResult run_demo(uint64_t seed, int steps, const std::function<void(int, double)>& on_step = {},
                    int report_every = 50);

}  // namespace knot::train
