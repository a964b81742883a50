// The `knot` command: entry point and sub-command registration (CLI11).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include <fmt/format.h>
#include <new>

#include "core/runtime.h"
#include "dist/comm.h"
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
  knot::tools::add_sweep_command(app);
  knot::tools::add_config_command(app);
  auto& world = knot::dist::Comm::world();
  // A rank that fails ends the whole job (MPI_Abort): the others would wait for it forever.
  // (--help under mpirun exits 0 on every rank, normally.)
  auto fail = [&](int code) {
    if (code != 0 && world.distributed()) knot::dist::abort_job(code);
    knot::dist::finalize();
    return code;
  };
  try {
    knot::init_threads();  // a bad KNOT_NUM_THREADS is an error before anything runs
    knot::dist::init(&argc, &argv);  // joins mpirun/srun's job when started by one (dist/comm.h)
    if (world.distributed()) {
      const std::string sub = argc > 1 ? argv[1] : "";
      if (sub != "train" && sub != "finetune" && sub != "--help" && sub != "-h" && sub != "--version")
        throw std::runtime_error(fmt::format(
            "'knot {}' runs as one process; of the commands only 'knot train' and 'knot finetune' run on several "
            "ranks (started here as rank {} of {}). Start it without mpirun/srun",
            sub, world.rank(), world.size()));
    }
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return fail(code);
  } catch (const std::bad_alloc&) {
    // Tensor allocations name their size (core/allocator.cpp); this is any other allocation.
    std::fprintf(stderr,
                 "knot: error: out of memory (std::bad_alloc outside the tensor allocator); lower the sizes in the "
                 "config (`knot params CONFIG` prints a memory estimate)\n");
    return fail(1);
  } catch (const std::exception& e) {
    if (world.distributed())
      std::fprintf(stderr, "knot: error (rank %d of %d; stopping every rank): %s\n", world.rank(), world.size(),
                   e.what());
    else
      std::fprintf(stderr, "knot: error: %s\n", e.what());
    return fail(1);
  }
  knot::dist::finalize();
  return 0;
}
