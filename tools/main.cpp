// The `knot` command: entry point and sub-command registration (CLI11).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <new>

#include "core/threads.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"knot: a C++ tensor engine for Kolmogorov-Arnold Networks in Transformers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "knot 0.1.0");
  knot::tools::add_fit_commands(app);
  knot::tools::add_params_command(app);
  knot::tools::add_plot_command(app);
  knot::tools::add_inspect_command(app);
  knot::tools::add_data_commands(app);
  knot::tools::add_demo_command(app);
  knot::tools::add_tokenizer_commands(app);
  knot::tools::add_train_commands(app);
  knot::tools::add_finetune_command(app);
  knot::tools::add_export_commands(app);
  knot::tools::add_import_command(app);
  try {
    knot::init_threads();  // a bad KNOT_NUM_THREADS is an error before anything runs
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::bad_alloc&) {
    // Tensor allocations name their size (core/allocator.cpp); this is any other allocation.
    std::fprintf(stderr,
                 "knot: error: out of memory (std::bad_alloc outside the tensor allocator); lower the sizes in the "
                 "config (`knot params CONFIG` prints a memory estimate)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "knot: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
