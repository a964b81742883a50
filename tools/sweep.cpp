// `knot sweep CONFIG key=a,b other=x,y [--seeds 1,2] [--root DIR] [--test] [--beam N] [--val-at S,...]`:
// a Hydra-style multirun of knot train. The grid and the table are train/sweep.h; this file runs
// each point as a child `knot train` (and `knot eval`) process, so a point that fails does not take
// the others with it and each training starts from a fresh process, as a single run would.
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "data/jsonl.h"
#include "models/config.h"
#include "models/memory_estimate.h"
#include "tools/commands.h"
#include "tools/plot.h"
#include "train/checkpoint.h"
#include "train/sweep.h"

namespace knot::tools {
namespace {
namespace fs = std::filesystem;

struct ChildResult {
  int exit_code = 0;  // 128 + signal when killed
  double peak_rss_mib = 0;
  double seconds = 0;
};

// Runs this knot binary with `args`, stdout and stderr passed through; waits for it.
ChildResult run_knot(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"knot"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::fflush(stdout);
  std::fflush(stderr);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  KNOT_CHECK(pid >= 0, "sweep: fork failed: {}", std::strerror(errno));
  if (pid == 0) {
    std::vector<char*> cargs;
    for (auto& a : argv) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    ::execv("/proc/self/exe", cargs.data());
    const char msg[] = "knot sweep: cannot start /proc/self/exe\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  int status = 0;
  struct rusage ru {};
  while (::wait4(pid, &status, 0, &ru) < 0) {
    KNOT_CHECK(errno == EINTR, "sweep: waiting for `knot {}` failed: {}", fmt::join(args, " "), std::strerror(errno));
  }
  ChildResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.peak_rss_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::string quoted_command(const std::vector<std::string>& args) {
  std::string s = "knot";
  for (const auto& a : args) {
    const bool plain = !a.empty() && a.find_first_of(" \t'\"\\$`*?[]{}();&|<>") == std::string::npos;
    s += " " + (plain ? a : "'" + a + "'");
  }
  return s;
}

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

struct SweepOptions {
  std::vector<std::string> args;  // CONFIG then overrides
  std::vector<int64_t> seeds, val_at;
  std::string root;
  bool test = false, dry_run = false, no_plot = false;
  int64_t beam = 1;
};

void run_sweep(const SweepOptions& o, const std::vector<std::string>& argv_echo) {
  KNOT_CHECK(!o.args.empty() && o.args[0].find('=') == std::string::npos,
             "sweep: needs a CONFIG file first, then the overrides to sweep (key=a,b,c)");
  const std::string config = o.args[0];
  const std::vector<std::string> assignments(o.args.begin() + 1, o.args.end());
  KNOT_CHECK(o.beam >= 1, "sweep: --beam must be >= 1, got {}", o.beam);
  for (int64_t s : o.val_at) KNOT_CHECK(s > 0, "sweep: --val-at steps must be > 0, got {}", s);

  // Every point's config is resolved and checked before anything runs: a typo in one value is an
  // error now, not after the first points have trained.
  const models::Json base = models::load_json_file(config);
  const train::SweepPlan plan = train::parse_sweep(assignments, o.seeds);
  const std::vector<train::SweepPoint> points = train::expand_sweep(plan);
  std::vector<int64_t> target_steps;  // each point's train.steps as resolved now (0: the trainer's default)
  for (const auto& p : points) {
    models::Json c = base;
    models::apply_overrides(c, p.overrides);
    const models::Json tr = c.is_object() ? c.value("train", models::Json::object()) : models::Json();
    target_steps.push_back(tr.is_object() && tr.contains("steps") && tr["steps"].is_number_integer()
                               ? tr["steps"].get<int64_t>() : 0);
    const std::string task = c.is_object() ? c.value("task", std::string("translation")) : std::string();
    KNOT_CHECK(task == "translation" || task == "electra" || task == "lm",
               "sweep: point {}: config key 'task' is '{}'; knot sweep runs knot train tasks (translation, electra, lm)",
               p.name, task);
    KNOT_CHECK(!(o.test || o.beam > 1) || task == "translation",
               "sweep: --test and --beam evaluate translation runs on their test split; this config's task is '{}'",
               task);
    try {  // every model key, through the model's own config reader (as knot params does)
      models::TrainingShape shape;
      (void)models::estimate_model_memory(models::resolve_model_config(c, &shape), shape);
    } catch (const std::exception& e) {
      KNOT_FAIL("sweep: point {} ({}): {}", p.name, fmt::join(p.overrides, " "), e.what());
    }
  }
  const std::string root =
      !o.root.empty() ? o.root : (fs::path("runs") / ("sweep-" + fs::path(config).stem().string())).string();
  std::vector<std::string> axis_keys;
  for (const auto& ax : plan.axes) axis_keys.push_back(ax.key);

  fmt::print("sweep: {} point{} of {} into {}/\n", points.size(), points.size() == 1 ? "" : "s", config, root);
  for (size_t i = 0; i < points.size(); ++i)
    fmt::print("  [{}/{}] {}\n", i + 1, points.size(), points[i].name);
  if (o.dry_run) return;
  fs::create_directories(root);

  int failed = 0;
  std::vector<std::string> failures(points.size());  // this invocation's, also for points that left no directory
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    const std::string dir = (fs::path(root) / p.name).string();
    const std::string tag = fmt::format("sweep: [{}/{}] {}", i + 1, points.size(), p.name);
    const fs::path record_path = fs::path(dir) / "sweep-point.json";
    models::Json record = fs::exists(record_path) ? models::load_json_file(record_path.string()) : models::Json::object();
    if (!record.is_object()) record = models::Json::object();
    record["point"] = p.name;
    record["overrides"] = p.overrides;
    auto save_record = [&] {
      fs::create_directories(dir);
      data::write_file_atomic(record_path.string(), record.dump(2) + "\n");
    };

    train::SweepResult now = train::read_sweep_result(dir, p, {}, target_steps[i]);
    if (now.status != "done") {
      // Train, or continue: a directory with a checkpoint resumes (with the point's overrides, which
      // knot train checks against the run's saved config), any other starts a run there.
      std::vector<std::string> args{"train"};
      if (now.steps > 0) args.insert(args.end(), {"--resume", dir});
      else args.insert(args.end(), {config, "--run", dir});
      args.insert(args.end(), p.overrides.begin(), p.overrides.end());
      fmt::print("{}: {}\n  {}\n", tag, now.steps > 0 ? fmt::format("resuming at step {}", now.steps) : "training",
                 quoted_command(args));
      const ChildResult r = run_knot(args);
      if (fs::exists(dir)) {
        record["peak_rss_mib"] = std::max(r.peak_rss_mib, record.value("peak_rss_mib", 0.0));
        record["train_seconds"] = record.value("train_seconds", 0.0) + r.seconds;
      }
      if (r.exit_code != 0) {
        ++failed;
        const std::string why = r.exit_code > 128 ? fmt::format("failed: signal {}", r.exit_code - 128)
                                                  : fmt::format("failed: exit {}", r.exit_code);
        fmt::print(stderr, "{}: {} (the sweep goes on; rerun the command to retry this point)\n", tag, why);
        failures[i] = why;
        if (fs::exists(dir)) {
          record["status"] = why;
          save_record();
        }
        continue;
      }
      now = train::read_sweep_result(dir, p, {}, target_steps[i]);
      if (now.status != "done") {
        ++failed;
        record["status"] = fmt::format("failed: knot train ended at step {} of {}", now.steps, now.target_steps);
        failures[i] = record["status"].get<std::string>();
        fmt::print(stderr, "{}: {}\n", tag, record["status"].get<std::string>());
        save_record();
        continue;
      }
    } else {
      fmt::print("{}: finished at step {}, not trained again\n", tag, now.steps);
    }
    record["status"] = "done";
    record["checkpoint_step"] = now.steps;
    // Test evaluations, each once per checkpoint (kept in sweep-point.json; eval-test.json is the
    // latest eval's own file and is overwritten by the next one).
    auto evaluate = [&](int64_t beam, const char* key) {
      const models::Json have = record.value(key, models::Json());
      if (have.is_object() && have.value("checkpoint_step", int64_t{-1}) == now.steps && have.value("beam", int64_t{0}) == beam)
        return true;
      const std::vector<std::string> args{"eval", "--run", dir, "--split", "test", "--samples", "0", "--beam",
                                          std::to_string(beam)};
      fmt::print("{}: {}\n", tag, quoted_command(args));
      const ChildResult r = run_knot(args);
      if (r.exit_code != 0) {
        fmt::print(stderr, "{}: knot eval failed (exit {}); the table leaves its BLEU out\n", tag, r.exit_code);
        return false;
      }
      models::Json e = models::load_json_file((fs::path(dir) / "eval-test.json").string());
      e["checkpoint_step"] = now.steps;
      e["beam"] = beam;
      record[key] = e;
      return true;
    };
    bool ok = true;
    if (o.test || o.beam > 1) ok = evaluate(1, "test") && ok;
    if (o.beam > 1) ok = evaluate(o.beam, "test_beam") && ok;
    if (!ok) ++failed;
    save_record();
  }

  // The table, from what each directory holds (also the points finished by earlier invocations).
  std::vector<train::SweepResult> rows;
  std::vector<std::string> dirs;
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    const std::string dir = (fs::path(root) / p.name).string();
    rows.push_back(train::read_sweep_result(dir, p, o.val_at, target_steps[i]));
    if (!failures[i].empty() && rows.back().status != "done") rows.back().status = failures[i];
    if (fs::exists(fs::path(dir) / "metrics.jsonl")) dirs.push_back(dir);
  }
  const std::string table = train::sweep_markdown(rows, axis_keys, o.val_at);
  std::string md = fmt::format("# knot sweep: {}\n\n", config);
  md += fmt::format("Written {} by:\n\n    {}\n\n", today(), quoted_command(argv_echo));
  if (!plan.fixed.empty()) md += fmt::format("Every point: `{}`.\n\n", fmt::join(plan.fixed, " "));
  md += "s/step and tokens/s: medians over the logged windows of training (validation and checkpoints excluded); "
        "peak MiB: the training process's peak resident memory (the largest over resumptions). "
        "Each point's run directory is " + root + "/<point>.\n\n";
  md += table;
  data::write_file_atomic((fs::path(root) / "sweep.md").string(), md);
  data::write_file_atomic((fs::path(root) / "sweep.csv").string(), train::sweep_csv(rows, axis_keys, o.val_at));
  fmt::print("\n{}\nsweep: wrote {}/sweep.md and {}/sweep.csv\n", table, root, root);
  if (!o.no_plot && !dirs.empty()) {
    try {
      // The curves a comparison needs (knot plot RUN... draws every metric).
      std::vector<std::string> metrics;
      for (const auto& m : available_metrics(dirs))
        if (m == "loss" || m == "val_loss" || m == "val_bleu" || m == "val_ppl") metrics.push_back(m);
      plot_runs(dirs, (fs::path(root) / "sweep.png").string(), metrics, fmt::format("knot sweep: {}", config), "sweep");
    } catch (const std::exception& e) {
      fmt::print(stderr, "sweep: no plot: {}\n", e.what());  // the table stands without it
    }
  }
  KNOT_CHECK(failed == 0, "sweep: {} of {} points failed (see above and the status column); rerun the same command to "
             "retry them (finished points are skipped)", failed, points.size());
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("sweep", "Train a grid of configs (Hydra-style multirun) and tabulate the results");
  auto o = std::make_shared<SweepOptions>();
  cmd->add_option("args", o->args,
                  "CONFIG (a knot train config), then overrides: key=a,b,c sweeps the key over the values (commas "
                  "inside [..], {..} or \"..\" do not split), key=value fixes it for every point")
      ->required();
  cmd->add_option("--seeds", o->seeds, "Seeds to run each point with, e.g. --seeds 1,2 (the last axis, key 'seed')")
      ->delimiter(',')->allow_extra_args(false);
  cmd->add_option("--root", o->root, "Directory of the point runs and the table (default: runs/sweep-<config name>)");
  cmd->add_flag("--test", o->test, "Evaluate each finished point on its test split (greedy BLEU and loss; translation)");
  cmd->add_option("--beam", o->beam, "Also evaluate the test split with this beam width (> 1; implies --test)")
      ->capture_default_str();
  cmd->add_option("--val-at", o->val_at, "Steps at which to tabulate the validation loss, e.g. --val-at 1000,2000,3000 "
                  "(the last validation at or before each)")->delimiter(',')->allow_extra_args(false);
  cmd->add_flag("--dry-run", o->dry_run, "Print the points and their run directories, run nothing");
  cmd->add_flag("--no-plot", o->no_plot, "Do not draw ROOT/sweep.png");
  cmd->footer(
      "Each point is a normal run directory, ROOT/<key=value__...>, trained by a child `knot train` process\n"
      "(KNOT_NUM_THREADS and the other environment settings pass through). Every point's model config is\n"
      "checked before the first one trains. Rerunning the same command skips finished points, resumes interrupted ones\n"
      "(bit-identically, as knot train --resume) and retries failed ones; a point that fails does not stop the\n"
      "others, but the command then exits non-zero. The results go to ROOT/sweep.md (Markdown, with the command\n"
      "that made it), ROOT/sweep.csv and ROOT/sweep.png (knot plot of every point; needs gnuplot).\n"
      "Columns: the swept values, parameters, steps, final and best validation loss, validation loss at the\n"
      "--val-at steps, validation BLEU, test BLEU (--test, --beam), seconds per step, tokens/s, peak memory, status.\n"
      "Examples:\n"
      "  knot sweep configs/translate-kan-small.json model.projection.kind=mlp,kan_bspline --seeds 1,2 --test\n"
      "  knot sweep configs/translate-mlp-small.json train.lr=1e-3,2e-3,4e-3 train.steps=500 --root runs/lr\n"
      "  knot sweep configs/translate-kan-small.json model.projections.ffn=mlp,kan_bspline --dry-run");
  cmd->callback([o, cmd]() {
    std::vector<std::string> echo{"sweep"};
    echo.insert(echo.end(), o->args.begin(), o->args.end());
    if (!o->seeds.empty()) echo.push_back(fmt::format("--seeds={}", fmt::join(o->seeds, ",")));
    if (!o->root.empty()) echo.insert(echo.end(), {"--root", o->root});
    if (o->test) echo.push_back("--test");
    if (o->beam > 1) echo.insert(echo.end(), {"--beam", std::to_string(o->beam)});
    if (!o->val_at.empty()) echo.push_back(fmt::format("--val-at={}", fmt::join(o->val_at, ",")));
    run_sweep(*o, echo);
  });
}

}  // namespace knot::tools
