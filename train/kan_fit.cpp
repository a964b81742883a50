// The `knot fit` / `knot predict` job (see kan_fit.h).
#include "train/kan_fit.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>
#include <sstream>

#include "data/csv.h"
#include "models/config.h"
#include "models/memory_estimate.h"
#include "nn/basis_registry.h"
#include "nn/kan.h"
#include "ops/ops.h"
#include "optim/lbfgs.h"
#include "optim/optimizer.h"
#include "train/run_lock.h"

namespace knot::train {
// The configs, data readers and memory checks of models/ (fit jobs moved here from models/, issue 20).
using namespace knot::models;
namespace {

namespace fs = std::filesystem;

struct FitData {
  std::vector<std::string> inputs;
  std::string target;
  Tensor x_train, y_train, x_test, y_test;
};

// The generated examples (data.generate.function), each of two inputs on U[-1, 1]²: pykan's tutorial
// functions, to check that fit → prune → symbolic recovers them.
struct Generated {
  const char* name;
  double (*f)(double, double);
};
const Generated kGenerated[] = {
    {"exp_sin_sq", [](double a, double b) { return std::exp(std::sin(M_PI * a) + b * b); }},  // exp(sin(πx1) + x2²)
    {"product", [](double a, double b) { return a * b; }},                                   // x1·x2
    {"hypot", [](double a, double b) { return std::sqrt(a * a + b * b); }},                   // √(x1² + x2²)
    {"nested", [](double a, double b) { return std::exp(std::sin(a * a + b * b)); }},         // exp(sin(x1² + x2²))
};

// The generated example named `fn`; an error naming the known ones otherwise.
const Generated& generated_function(const std::string& fn) {
  std::vector<std::string> names;
  for (const Generated& k : kGenerated) {
    if (fn == k.name) return k;
    names.emplace_back(k.name);
  }
  KNOT_FAIL("fit: unknown data.generate.function '{}' (known: {})", fn, fmt::join(names, ", "));
}

data::CsvTable generate_table(const std::string& fn, int64_t n, uint64_t seed) {
  const Generated* target = &generated_function(fn);
  KNOT_CHECK(n > 0, "fit: data.generate needs a positive number of rows, got {}", n);
  Generator g(seed);
  const std::vector<double> u = rand({n, 2}, DType::f64, &g, -1.0, 1.0).to_vector<double>();
  data::CsvTable t;
  t.columns = {"x1", "x2", "y"};
  for (int64_t i = 0; i < n; ++i) {
    t.rows.push_back({u[2 * i], u[2 * i + 1], target->f(u[2 * i], u[2 * i + 1])});
  }
  return t;
}

double rmse(const Tensor& pred, const Tensor& y) {
  NoGradGuard ng;
  const Tensor d = sub(pred, y);
  return std::sqrt(mean(mul(d, d)).item());
}

}  // namespace

FitModelSpec read_fit_model(const Json& model_cfg, const std::string& context) {
  ConfigReader mr(model_cfg, context);
  FitModelSpec s;
  const Json widths = mr.require<Json>("widths", "layer widths [in, hidden..., 1]; in = the number of input columns");
  bool ints = widths.is_array();
  for (const Json& w : widths) ints = ints && w.is_number_integer() && w.get<int64_t>() >= 1;
  KNOT_CHECK(ints, "config '{}': key 'widths' must be a list of positive integers like [2, 5, 1], got {}", context,
             widths.dump());
  s.widths = widths.get<std::vector<int64_t>>();
  if (mr.has("basis") || mr.has("options")) {  // the spelling before "projection"
    KNOT_CHECK(!mr.has("projection"),
               "config '{}': 'basis'/'options' and 'projection' are the same setting (the old and the new spelling); "
               "keep 'projection'",
               context);
    config::warn_deprecated(context, mr.has("basis") ? "basis" : "options",
                            "'projection': {\"kind\": \"kan_<basis>\", \"options\": {...}}");
    s.basis = mr.get<std::string>("basis", "bspline");
    s.options = mr.get<Json>("options", Json::object());
    KNOT_CHECK(s.options.is_object(), "config '{}': key 'options' must be an object, got {}", context, s.options.dump());
    if (s.basis.rfind("kan_", 0) == 0) s.basis = s.basis.substr(4);
  } else {
    const nn::ProjectionSpec p = read_projection(
        mr.get<Json>("projection", Json("kan_bspline"),
                     "the KAN layers: \"kan_<basis>\" or {\"kind\": \"kan_<basis>\", \"options\": {...}} (the basis' "
                     "options: knot config --schema bases), as model.projection of the other tasks"),
        context + ".projection");
    KNOT_CHECK(p.is_kan(), "config '{}': key 'projection' must be a KAN layer (kan_<basis>), got '{}'", context, p.kind);
    s.basis = p.kind.substr(4);
    s.options = p.options;
  }
  mr.finish();
  return s;
}

FitResult run_fit(const nlohmann::json& config, const FitLog& log) {
  // ---- every key is read and checked before any work (nothing is read or written yet) ----
  ConfigReader root(config, "fit");
  const std::string run_dir = root.get<std::string>("run_dir", "runs/fit", "the run directory");
  const std::string task = root.get<std::string>("task", "fit", "\"fit\"");
  KNOT_CHECK(task == "fit", "fit: config key 'task' is '{}', expected 'fit'", task);
  ConfigReader dr = root.child("data", "the table: CSV files, or a generated example");
  const Json model_cfg = root.require<Json>("model", "the KAN: widths and projection");
  ConfigReader tr = root.child("train", "the optimizer, steps, grid updates and sparsity penalty");
  root.finish();

  // ---- training options ----
  tr.renamed("update_grid_every", "kan_grid_update_every");
  tr.renamed("lamb", "kan_regularization");
  tr.renamed("lamb_l1", "kan_reg_a");
  tr.renamed("lamb_entropy", "kan_reg_e");
  tr.renamed("reg_metric", "kan_reg_metric");
  // pykan's stop_grid_update_step S updated before steps < S: the trainer's "until" S - 1. S <= 1 (no
  // update at all) has no "until" (0 there means the whole run): it turns the updates off.
  int64_t until_default = 49;
  bool old_stop_disables = false;
  if (tr.has("stop_grid_update_step")) {
    KNOT_CHECK(!tr.has("kan_grid_update_until"),
               "config 'fit.train': keys 'stop_grid_update_step' and 'kan_grid_update_until' are the same setting (the "
               "old and the new spelling); keep 'kan_grid_update_until'");
    config::warn_deprecated("fit.train", "stop_grid_update_step", "'kan_grid_update_until' (S - 1)");
    const int64_t stop = tr.get<int64_t>("stop_grid_update_step", 50);
    old_stop_disables = stop <= 1;
    until_default = old_stop_disables ? 0 : stop - 1;
  }
  const std::string optimizer = tr.get<std::string>("optimizer", "lbfgs", "\"lbfgs\" (full batch) or \"adam\"");
  const int64_t steps = tr.get<int64_t>("steps", 50, "optimizer steps (per stage of grid_schedule)");
  const double lr = tr.get<double>("lr", optimizer == "lbfgs" ? 1.0 : 1e-2, "learning rate (default: 1 for L-BFGS, 0.01 for Adam)");
  const int64_t batch_size = tr.get<int64_t>("batch_size", 0, "rows per step (0 = all)");
  const int64_t grid_every_read = tr.get<int64_t>(
      "kan_grid_update_every", 10, "> 0: the grids adapt to the inputs before steps 1, 1+n, ... (efficient-kan's update_grid)");
  const int64_t grid_every = old_stop_disables ? 0 : grid_every_read;
  const int64_t grid_until = tr.get<int64_t>(
      "kan_grid_update_until", until_default,
      "no grid update after this step; 0 = the whole run (the default 49 is pykan's: updates before step 50)");
  const double lamb = tr.get<double>("kan_regularization", 0.0, "weight of the sparsity penalty (0 = off)");
  const double lamb_l1 = tr.get<double>("kan_reg_a", 1.0, "L1 weight inside the penalty");
  const double lamb_entropy = tr.get<double>("kan_reg_e", 1.0, "entropy weight inside the penalty");
  const uint64_t seed = static_cast<uint64_t>(tr.get<int64_t>("seed", 0, "initialisation and batch seed"));
  const DType dtype = dtype_from_string(tr.get<std::string>("dtype", "f64", "\"f64\" or \"f32\""));
  const int64_t log_every = std::max<int64_t>(1, tr.get<int64_t>("log_every", 5, "steps per log line"));
  const bool memory_check =
      tr.get<bool>("memory_check", true, "refuse a model that would not fit in memory (models/memory_estimate.h)");
  const Json schedule_j = tr.get<Json>(
      "grid_schedule", Json::array(), "pykan's grid extension: one stage per grid size, e.g. [5, 10, 20] (bspline)");
  const std::string init_from = tr.get<std::string>(
      "init_from", "", "a run directory whose model.safetensors fits this model (e.g. a knot prune output)");
  const std::string reg_metric = tr.get<std::string>(
      "kan_reg_metric", "weights", "\"weights\" (efficient-kan: spline weights) or \"activations\" (pykan: mean |phi|)");
  tr.finish();
  KNOT_CHECK(grid_every >= 0 && grid_until >= 0,
             "fit.train: kan_grid_update_every and kan_grid_update_until must be >= 0, got {} and {}", grid_every,
             grid_until);
  // Updates happen before steps < grid_stop (kan_grid_update_until 0: every step of the run, as in the trainer).
  const int64_t grid_stop = grid_until == 0 ? std::numeric_limits<int64_t>::max() : grid_until + 1;
  std::vector<int64_t> schedule;
  KNOT_CHECK(schedule_j.is_array(), "fit.train: grid_schedule must be a list of grid sizes, e.g. [5, 10, 20], got {}",
             schedule_j.dump());
  for (const Json& g : schedule_j) {
    KNOT_CHECK(g.is_number_integer() && g.get<int64_t>() >= 1 && g.get<int64_t>() <= 100000,
               "fit.train: grid_schedule entries must be integers in 1 … 100000, got {}", g.dump());
    schedule.push_back(g.get<int64_t>());
  }
  KNOT_CHECK(optimizer == "lbfgs" || optimizer == "adam", "fit.train: optimizer must be 'lbfgs' or 'adam', got '{}'",
             optimizer);
  KNOT_CHECK(steps > 0, "fit.train: steps must be positive, got {}", steps);
  KNOT_CHECK(is_floating(dtype), "fit.train: dtype must be f32 or f64");
  KNOT_CHECK(reg_metric == "weights" || reg_metric == "activations",
             "fit.train: kan_reg_metric must be 'weights' (efficient-kan's penalty) or 'activations' (pykan's), got '{}'",
             reg_metric);

  // ---- data keys ----
  const std::string target = dr.get<std::string>("target", "y", "the target column");
  ConfigReader gr = dr.child("generate", "a generated example instead of files (written into the run directory)");
  const bool generate = dr.has("generate");
  const std::string fn = gr.get<std::string>("function", "exp_sin_sq", "exp_sin_sq, product, hypot or nested");
  const int64_t n_train = gr.get<int64_t>("n_train", 1000, "training rows");
  const int64_t n_test = gr.get<int64_t>("n_test", 1000, "test rows");
  const uint64_t gseed = static_cast<uint64_t>(gr.get<int64_t>("seed", 1, "the generator's seed"));
  gr.finish();
  if (generate) (void)generated_function(fn);  // an unknown function is a reading error
  KNOT_CHECK(!generate || (n_train > 0 && n_test > 0), "fit: data.generate needs positive n_train and n_test, got {} and {}",
             n_train, n_test);
  const std::string train_path = dr.get<std::string>("train", "", "the training CSV (columns x1..xn, y; needed without 'generate')");
  const std::string test_path = dr.get<std::string>("test", "", "the test CSV (\"\": split off test_fraction)");
  KNOT_CHECK(generate || !train_path.empty(), "config 'fit.data': missing required key 'train' (or 'generate')");
  const double test_fraction = dr.get<double>("test_fraction", 0.2, "share of the rows held out when there is no test file");
  const Json inputs_j = dr.get<Json>("inputs", Json::array(), "the input columns (default: every column but the target)");
  dr.finish();
  bool names = inputs_j.is_array();
  for (const Json& x : inputs_j) names = names && x.is_string();
  KNOT_CHECK(names, "config 'fit.data': key 'inputs' must be a list of column names, got {}", inputs_j.dump());
  std::vector<std::string> inputs = inputs_j.get<std::vector<std::string>>();

  // ---- model keys (the basis' options checked by counting a 1 x 1 layer: nothing is allocated) ----
  const FitModelSpec spec = read_fit_model(model_cfg, "fit.model");
  std::vector<int64_t> widths = spec.widths;
  const std::string basis = spec.basis;
  Json options = spec.options;
  {
    Json probe = options;
    probe["dtype"] = dtype_name(dtype);
    (void)count_kan_layer(basis, 1, 1, probe);
  }
  config::reading_done();

  // One writer per run directory, from the first check to the last write (train/run_lock.h): a second
  // `knot fit` into the same directory is refused at once, naming the first one's pid.
  RunLock lock(run_dir, "fit");

  // ---- data ----
  // Nothing is written into run_dir until the data and the model have passed their checks.
  std::string generated;  // the log line of generated data, said when it is written
  data::CsvTable train_t, test_t;
  bool have_test = false;
  Json resolved_data = dr.raw();
  if (generate) {
    train_t = generate_table(fn, n_train, gseed);
    test_t = generate_table(fn, n_test, gseed + 1);
    have_test = true;
    generated = fmt::format("fit: generated {} ({} train / {} test rows) into {}", fn, n_train, n_test, run_dir);
  } else {
    train_t = data::read_csv(train_path);
    if (!test_path.empty()) {
      test_t = data::read_csv(test_path);
      have_test = true;
    }
  }
  KNOT_CHECK(train_t.index_of(target) >= 0, "fit: the training data has no target column '{}' (columns: {})", target,
             fmt::join(train_t.columns, ", "));
  if (inputs.empty())
    for (const auto& c : train_t.columns)
      if (c != target) inputs.push_back(c);
  for (size_t i = 0; i < inputs.size(); ++i) {
    KNOT_CHECK(inputs[i] != target, "fit.data: inputs lists the target column '{}'", target);
    for (size_t j = 0; j < i; ++j)
      KNOT_CHECK(inputs[j] != inputs[i], "fit.data: inputs lists column '{}' twice", inputs[i]);
  }
  if (!have_test) {
    KNOT_CHECK(test_fraction > 0 && test_fraction < 1, "fit.data: test_fraction must be in (0, 1), got {}", test_fraction);
    const size_t n_test = std::max<size_t>(1, static_cast<size_t>(std::round(test_fraction * train_t.rows.size())));
    KNOT_CHECK(n_test < train_t.rows.size(), "fit: {} rows are too few to split off a test set", train_t.rows.size());
    test_t.columns = train_t.columns;
    test_t.rows.assign(train_t.rows.end() - static_cast<std::ptrdiff_t>(n_test), train_t.rows.end());
    train_t.rows.resize(train_t.rows.size() - n_test);
  }
  FitData d{inputs, target, train_t.select(inputs, dtype), train_t.select({target}, dtype), test_t.select(inputs, dtype),
            test_t.select({target}, dtype)};

  // ---- model ----
  KNOT_CHECK(widths.size() >= 2, "fit.model: widths needs at least [in, out]");
  KNOT_CHECK(widths.front() == static_cast<int64_t>(inputs.size()),
             "fit.model: widths starts with {} inputs but the data has {} input columns ({})", widths.front(), inputs.size(),
             fmt::join(inputs, ", "));
  KNOT_CHECK(widths.back() == 1, "fit.model: widths must end with 1 output (one target), got {}", widths.back());
  options["dtype"] = dtype_name(dtype);
  if (!options.contains("seed")) options["seed"] = seed;
  Json saved_options = options;  // what config.json records: the saved model's options
  Json estimate_options = options;
  if (!schedule.empty()) {
    KNOT_CHECK(basis == "bspline", "fit.train: grid_schedule (grid extension) needs the bspline basis, got '{}'", basis);
    KNOT_CHECK(!options.contains("grid_size") || options["grid_size"] == Json(schedule.front()) ||
                   options["grid_size"] == Json(schedule.back()),
               "fit: model.projection.options.grid_size is {} but train.grid_schedule starts at {} and ends at {}; with a "
               "schedule, grid_size may be left out or be its first or last entry",
               options.contains("grid_size") ? options["grid_size"].dump() : "", schedule.front(), schedule.back());
    options["grid_size"] = schedule.front();
    saved_options["grid_size"] = schedule.back();
    estimate_options["grid_size"] = *std::max_element(schedule.begin(), schedule.end());
  }
  if (memory_check)  // before anything is allocated: model.projection.options.grid_size=1e9 is an error, not a swap storm
    check_memory(estimate_kan_memory(widths, basis, estimate_options,
                                     {std::max(d.x_train.size(0), d.x_test.size(0)), optimizer, optim::LBFGSOptions{}.history,
                                      grid_every > 0 && grid_stop > 1}),
                 available_memory(), "train.memory_check=false");
  nn::KAN model(widths, basis, options);
  const bool act_reg = lamb > 0 && reg_metric == "activations";
  if (lamb > 0 && !act_reg) nn::check_kan_regularization(model, "fit.train.kan_regularization");
  if (act_reg)  // every layer must give its edges as a graph; each records its input for the penalty
    for (size_t l = 0; l < model.layers->size(); ++l) {
      nn::KANLayer& k = model.layer(l);
      try {
        k.edge_activations(zeros({1, k.in_features()}, dtype));
      } catch (const Error& e) {
        KNOT_FAIL("fit.train.kan_reg_metric 'activations': layer 'layers.{}': {}", l, e.what());
      }
      k.set_capture_input(true);
    }
  if (!init_from.empty()) {  // e.g. a pruned run (knot prune), to train on from where it is
    const fs::path w = fs::path(init_from) / "model.safetensors";
    KNOT_CHECK(fs::exists(w), "fit: train.init_from '{}' has no model.safetensors", init_from);
    try {
      model.load(w.string());
    } catch (const Error& e) {
      KNOT_FAIL("fit: train.init_from '{}': its weights do not fit this model ({})", init_from, e.what());
    }
    log(fmt::format("fit: starting from the weights of {}", w.string()));
  }
  log(fmt::format("fit: KAN {} ({}), {} parameters, {} on {} train rows, {} steps", Json(widths).dump(), basis,
                  model.num_parameters(), optimizer, d.x_train.size(0), steps));

  // ---- every check has passed: the run directory, its data, and the resolved config first, so a
  // run directory always says what it holds ----
  fs::create_directories(run_dir);
  if (!generated.empty()) {
    data::write_csv((fs::path(run_dir) / "train.csv").string(), train_t.columns, train_t.rows);
    data::write_csv((fs::path(run_dir) / "test.csv").string(), test_t.columns, test_t.rows);
    log(generated);
  }
  Json resolved = config;
  resolved["run_dir"] = run_dir;
  resolved["data"] = resolved_data;
  resolved["data"]["inputs"] = inputs;
  resolved["data"]["target"] = target;
  // Written in today's spellings, whatever the config used.
  resolved["model"] = {{"widths", spec.widths}, {"projection", {{"kind", "kan_" + basis}, {"options", saved_options}}}};
  resolved["train"] = tr.raw();
  if (resolved["train"].contains("stop_grid_update_step")) {
    resolved["train"].erase("stop_grid_update_step");
    resolved["train"]["kan_grid_update_until"] = grid_until;
    if (old_stop_disables) resolved["train"]["kan_grid_update_every"] = 0;
  }
  resolved["task"] = "fit";
  save_json_file((fs::path(run_dir) / "config.json").string(), resolved);

  // ---- training ----
  const int64_t n = d.x_train.size(0);
  Generator batch_gen(seed + 7);
  auto batch = [&](Tensor* xb, Tensor* yb) {
    if (batch_size <= 0 || batch_size >= n) { *xb = d.x_train; *yb = d.y_train; return; }
    const Tensor idx = randint(0, n, {batch_size}, DType::i64, &batch_gen);
    *xb = index_select(d.x_train, 0, idx);
    *yb = index_select(d.y_train, 0, idx);
  };
  auto objective = [&](const Tensor& xb, const Tensor& yb) {
    const Tensor diff = sub(model.forward(xb), yb);
    Tensor loss = mean(mul(diff, diff));
    if (act_reg) {  // pykan's penalty on each layer's activations over this batch
      for (size_t l = 0; l < model.layers->size(); ++l) {
        const nn::KANLayer& k = model.layer(l);
        loss = add(loss, mul(k.activation_regularization(k.captured_input(), lamb_l1, lamb_entropy), lamb));
      }
    } else if (lamb > 0) {
      loss = add(loss, mul(model.regularization_loss(lamb_l1, lamb_entropy), lamb));
    }
    return loss;
  };
  std::unique_ptr<optim::LBFGS> lbfgs;
  std::unique_ptr<optim::Adam> adam;
  FitResult r;
  const size_t nstages = std::max<size_t>(1, schedule.size());
  for (size_t stage = 0; stage < nstages; ++stage) {
    if (!schedule.empty()) {
      std::string how;
      if (stage > 0) {
        model.refine_grid(d.x_train, schedule[stage]);  // on the training inputs, before the stage
        NoGradGuard ng;
        how = fmt::format(" (extended from {}; right after the extension: train RMSE {:.4e}, test RMSE {:.4e})",
                          schedule[stage - 1], rmse(model.forward(d.x_train), d.y_train),
                          rmse(model.forward(d.x_test), d.y_test));
      }
      log(fmt::format("fit: stage {}/{}: grid size {}{}", stage + 1, nstages, schedule[stage], how));
    }
    // A fresh optimizer per stage: a grid extension replaces the spline weights by larger ones.
    // Only trained parameters: kan_rbf's grid (and kan_relu's phases without train_ab) are
    // parameters that are not trained, and L-BFGS refuses them.
    std::vector<Tensor> trained;
    for (const Tensor& p : model.parameters())
      if (p.requires_grad()) trained.push_back(p);
    if (optimizer == "lbfgs") {
      optim::LBFGSOptions o;
      o.lr = lr;
      lbfgs = std::make_unique<optim::LBFGS>(trained, o);
    } else {
      adam = std::make_unique<optim::Adam>(trained, lr);
    }
    for (int64_t step = 1; step <= steps; ++step) {
      Tensor xb, yb;
      batch(&xb, &yb);
      if (grid_every > 0 && (step - 1) % grid_every == 0 && step < grid_stop) {
        NoGradGuard ng;
        model.forward(xb, /*update_grid=*/true);
      }
      double loss = 0;
      if (lbfgs) {
        loss = lbfgs->step([&]() {
          model.zero_grad();
          const Tensor l = objective(xb, yb);
          l.backward();
          return l.item();
        });
      } else {
        model.zero_grad();
        const Tensor l = objective(xb, yb);
        l.backward();
        adam->step();
        loss = l.item();
      }
      KNOT_CHECK(std::isfinite(loss), "fit: the loss became {} at step {}; lower train.lr or check the data", loss, step);
      if (step % log_every == 0 || step == 1 || step == steps) {
        NoGradGuard ng;
        log(fmt::format("  step {:4d}  loss {:.4e}  train rmse {:.4e}  test rmse {:.4e}", step, loss,
                        rmse(model.forward(d.x_train), d.y_train), rmse(model.forward(d.x_test), d.y_test)));
      }
    }
    {
      NoGradGuard ng;
      FitStage st{schedule.empty() ? 0 : schedule[stage], rmse(model.forward(d.x_train), d.y_train),
                  rmse(model.forward(d.x_test), d.y_test)};
      if (!schedule.empty())
        log(fmt::format("fit: stage {}/{} (grid size {}): train RMSE {:.4e}, test RMSE {:.4e}", stage + 1, nstages,
                        st.grid_size, st.train_rmse, st.test_rmse));
      r.stages.push_back(st);
    }
  }

  r.train_rmse = r.stages.back().train_rmse;
  r.test_rmse = r.stages.back().test_rmse;
  r.steps = static_cast<int>(steps * static_cast<int64_t>(nstages));
  r.run_dir = run_dir;
  model.save((fs::path(run_dir) / "model.safetensors").string(), {{"format", "pt"}, {"knot_task", "fit"}});
  Json metrics{{"train_rmse", r.train_rmse}, {"test_rmse", r.test_rmse}, {"steps", r.steps},
               {"train_rows", d.x_train.size(0)}, {"test_rows", d.x_test.size(0)}};
  if (!schedule.empty()) {
    metrics["stages"] = Json::array();
    for (const FitStage& st : r.stages)
      metrics["stages"].push_back({{"grid_size", st.grid_size}, {"train_rmse", st.train_rmse}, {"test_rmse", st.test_rmse}});
  }
  save_json_file((fs::path(run_dir) / "metrics.json").string(), metrics);
  log(fmt::format("fit: train RMSE {:.4e}, test RMSE {:.4e}; saved {}/model.safetensors", r.train_rmse, r.test_rmse, run_dir));
  return r;
}

std::shared_ptr<nn::KAN> load_fit_model(const std::string& run_dir, const std::string& command, Json* config) {
  const std::string cfg_path = (fs::path(run_dir) / "config.json").string();
  KNOT_CHECK(fs::exists(cfg_path), "{}: '{}' has no config.json; is it a `knot fit` run directory?", command, run_dir);
  const Json cfg = load_json_file(cfg_path);
  KNOT_CHECK(cfg.value("task", "") == "fit", "{}: '{}' is not a `knot fit` run (task '{}')", command, run_dir,
             cfg.value("task", ""));
  const FitModelSpec m = read_fit_model(cfg.value("model", Json::object()), "model");
  const Json& options = m.options;
  {  // a config.json edited to absurd sizes is an error, not an allocation storm
    const MemoryEstimate e = estimate_kan_memory(m.widths, m.basis, options, {});
    const AvailableMemory a = available_memory();
    KNOT_CHECK(!e.overflow && e.parameter_bytes + e.buffer_bytes <= a.bytes,
               "{}: the model of '{}' needs {} for its parameters and buffers but {} is available ({})", command,
               cfg_path, e.overflow ? std::string("more than 16.0 EiB") : bytes_str(e.parameter_bytes + e.buffer_bytes),
               bytes_str(a.bytes), a.source);
  }
  auto model = std::make_shared<nn::KAN>(m.widths, m.basis, options);
  model->load((fs::path(run_dir) / "model.safetensors").string());
  model->eval();
  if (config) *config = cfg;
  return model;
}

int64_t run_predict(const std::string& run_dir, const std::string& input_csv, const std::string& output_csv) {
  if (output_csv != "-") data::check_csv_output(output_csv);  // before any work: `-o DIR` is an error
  Json cfg;
  const std::shared_ptr<nn::KAN> loaded = load_fit_model(run_dir, "predict", &cfg);
  nn::KAN& model = *loaded;
  const auto inputs = cfg.at("data").at("inputs").get<std::vector<std::string>>();
  const std::string target = cfg.at("data").at("target").get<std::string>();
  const Json options = read_fit_model(cfg.at("model"), "model").options;
  const data::CsvTable t = data::read_csv(input_csv);
  const DType dtype = dtype_from_string(options.value("dtype", "f64"));
  NoGradGuard ng;
  const std::vector<double> pred = model.forward(t.select(inputs, dtype)).to_vector<double>();
  std::vector<std::string> cols = inputs;
  cols.push_back(target + "_pred");
  std::vector<std::vector<double>> rows;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    std::vector<double> r;
    for (const auto& c : inputs) r.push_back(t.rows[i][static_cast<size_t>(t.index_of(c))]);
    r.push_back(pred[i]);
    rows.push_back(std::move(r));
  }
  if (output_csv == "-") {
    std::cout << fmt::format("{}\n", fmt::join(cols, ","));
    for (const auto& r : rows) std::cout << fmt::format("{}\n", fmt::join(r, ","));
  } else {
    data::write_csv(output_csv, cols, rows);
  }
  return static_cast<int64_t>(rows.size());
}

}  // namespace knot::train
