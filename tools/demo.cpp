// `knot demo`: a tiny MLP learns f(x) = sin(2·x0)·x1 with SGD and prints the loss as it goes.
// It exercises the whole stack (ops, autograd, optimizer) in under a second.
#include <fmt/format.h>

#include <chrono>

#include "train/demo.h"
#include "tools/commands.h"

namespace knot::tools {

void add_demo_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "Train a tiny MLP on f(x) = sin(2*x0)*x1 (a smoke test of the engine)");
  struct Opts {
    int steps = 600;
    uint64_t seed = 42;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--steps", opts->steps, "Training steps")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Random seed (same seed, same result)")->capture_default_str();
  cmd->callback([opts]() {
    fmt::print("demo: MLP [2, 32, 32, 1] (tanh) learning sin(2*x0)*x1 on 512 points, SGD lr 0.1 momentum 0.9\n");
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = train::run_demo(opts->seed, opts->steps, [](int step, double loss) {
      fmt::print("  step {:5d}  mse {:.6f}\n", step, loss);
    }, 100);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("demo: final mse {:.6f} (start {:.6f}) in {:.2f} s\n", r.losses.back(), r.losses.front(), secs);
  });
}

}  // namespace knot::tools
