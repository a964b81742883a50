// `knot demo`: a tiny MLP learns y = sin(x0) * x1 + ... with SGD; prints the loss as it goes.
// It is the smoke test of the whole stack (ops, autograd, training loop) until the trainer lands.
#include <fmt/format.h>

#include "tools/commands.h"

namespace knot::tools {

void add_demo_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "Train a tiny MLP on a synthetic function (smoke test of the engine)");
  cmd->callback([]() { fmt::print("demo: not wired yet\n"); });
}

}  // namespace knot::tools
