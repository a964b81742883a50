// `knot inspect` (see kan_inspect.h).
#include "train/kan_inspect.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "data/csv.h"
#include "data/jsonl.h"
#include "models/config.h"
#include "nn/basis_registry.h"
#include "nn/kan.h"
#include "ops/ops.h"
#include "train/gnuplot.h"
#include "train/kan_fit.h"
#include "train/kan_record.h"
#include "train/electra_pretrain.h"
#include "train/translation.h"

namespace knot::train {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::json;

// Points per curve, and histogram bins per panel.
constexpr int64_t kCurvePoints = 100;
constexpr int64_t kHistBins = 20;
// edge_values is called on row chunks of at most this many (row, edge) values.
constexpr int64_t kChunkValues = int64_t{1} << 22;

bool selected(const std::string& name, const std::vector<std::string>& wanted) {
  if (wanted.empty()) return true;
  for (const auto& w : wanted)
    if (name == w || (name.size() > w.size() && name.compare(0, w.size(), w) == 0 && name[w.size()] == '.')) return true;
  return false;
}

// The KAN layers of `model` (name, layer) that `wanted` selects; an unmatched name is an error
// listing the layers there are.
std::vector<std::pair<std::string, nn::KANLayer*>> kan_layers(nn::Module& model, const std::vector<std::string>& wanted) {
  std::vector<std::pair<std::string, nn::KANLayer*>> all, out;
  for (const auto& [name, m] : model.named_modules())
    if (const auto* k = dynamic_cast<const nn::KANLayer*>(m))
      all.emplace_back(name, const_cast<nn::KANLayer*>(k));  // the model is ours; named_modules is const
  std::vector<std::string> names;
  for (const auto& [n, k] : all) names.push_back(n);
  KNOT_CHECK(!all.empty(), "inspect: the model has no KAN layers (its projections are MLPs)");
  for (const auto& w : wanted) {
    bool hit = false;
    for (const auto& n : names) hit = hit || selected(n, {w});
    KNOT_CHECK(hit, "inspect: --layer '{}' matches no KAN layer; the model has: {}", w, fmt::join(names, ", "));
  }
  for (auto& p : all)
    if (selected(p.first, wanted)) out.push_back(p);
  return out;
}

// q-quantile of sorted values, linear between neighbours.
double quantile(const std::vector<double>& v, double q) {
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

struct Panel {
  int64_t o, i;
  double importance;
  std::vector<double> xs, ys;  // the curve
};

std::string layer_script(const InspectLayer& L, const std::vector<Panel>& panels, const std::vector<double>& lo,
                         const std::vector<double>& hi, const std::vector<std::vector<double>>& hist,
                         const std::vector<double>& knots, int64_t nk, bool grid_layout, const std::string& png) {
  const int64_t n = static_cast<int64_t>(panels.size());
  const int64_t cols = grid_layout ? L.in : static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = grid_layout ? L.out : (n + cols - 1) / cols;
  const double top = *std::max_element(L.importance.begin(), L.importance.end());
  std::string s;
  s += fmt::format("set terminal pngcairo size {},{} font 'sans,8'\n", std::max<int64_t>(560, 220 * cols),
                   50 + 160 * rows);
  s += fmt::format("set output {}\n", gnuplot_quote(png));
  s += "set termoption noenhanced\nunset key\nset tics scale 0.5 font ',7'\nset format y '%.2g'\nset format x '%.2g'\n";
  s += "set style fill solid 0.35 noborder\nset lmargin 7\nset rmargin 2\nset tmargin 2.5\nset bmargin 2\n";
  s += fmt::format("set multiplot layout {},{} title {} font ',10'\n", rows, cols,
                   gnuplot_quote(fmt::format("{} (kan_{}, {} -> {}), {} edge{}: darker = more important", L.name,
                                             L.basis, L.in, L.out, n, n == 1 ? "" : "s")));
  for (const Panel& p : panels) {
    double ymin = *std::min_element(p.ys.begin(), p.ys.end()), ymax = *std::max_element(p.ys.begin(), p.ys.end());
    if (ymax - ymin < 1e-12) { ymin -= 0.5; ymax += 0.5; }
    const double pad = 0.1 * (ymax - ymin);
    ymin -= 3 * pad;  // room for the histogram beneath the curve
    ymax += pad;
    const int grey = static_cast<int>(std::lround(200.0 * (1.0 - (top > 0 ? p.importance / top : 0.0))));
    s += fmt::format("set title {}\n", gnuplot_quote(fmt::format("in {} -> out {}  ({:.3g})", p.i, p.o, p.importance)));
    s += fmt::format("set xrange [{}:{}]\nset yrange [{}:{}]\n", lo[p.i], hi[p.i], ymin, ymax);
    const double mid = 0.5 * (lo[p.i] + hi[p.i]);
    s += fmt::format("set xtics ('{:.3g}' {}, '{:.3g}' {}, '{:.3g}' {})\n", lo[p.i], lo[p.i], mid, mid, hi[p.i], hi[p.i]);
    const std::vector<double>& h = hist[p.i];
    const double hmax = std::max(1.0, *std::max_element(h.begin(), h.end()));
    const double bw = (hi[p.i] - lo[p.i]) / static_cast<double>(kHistBins);
    // Histogram bars (x, y, xlow, xhigh, ylow, yhigh) standing on the bottom of the panel, at most a
    // quarter of its height; knots as red marks just above the bottom; then the curve.
    s += "plot '-' using 1:2:3:4:5:6 with boxxyerror lc rgb '#9ecae1'";
    const bool has_knots = !knots.empty();
    if (has_knots) s += ", '-' using 1:2 with points pt 9 ps 0.8 lc rgb '#d62728'";
    s += fmt::format(", '-' using 1:2 with lines lw 2 lc rgb '#{:02x}{:02x}{:02x}'\n", grey, grey, grey);
    for (int64_t b = 0; b < kHistBins; ++b) {
      const double x0 = lo[p.i] + static_cast<double>(b) * bw, y1 = ymin + 0.25 * (ymax - ymin) * h[b] / hmax;
      s += fmt::format("{} {} {} {} {} {}\n", x0 + 0.5 * bw, y1, x0 + 0.05 * bw, x0 + 0.95 * bw, ymin, y1);
    }
    s += "e\n";
    if (has_knots) {
      for (int64_t j = 0; j < nk; ++j) {
        const double t = knots[p.i * nk + j];
        if (t >= lo[p.i] && t <= hi[p.i]) s += fmt::format("{} {}\n", t, ymin + 0.02 * (ymax - ymin));
      }
      s += fmt::format("{} {}\n", lo[p.i] - 1e9, ymin);  // gnuplot needs a point per block; off-range
      s += "e\n";
    }
    for (size_t j = 0; j < p.xs.size(); ++j) s += fmt::format("{} {}\n", p.xs[j], p.ys[j]);
    s += "e\n";
  }
  s += "unset multiplot\n";
  return s;
}

std::string file_stem(const std::string& layer) { return layer.empty() ? std::string("model") : layer; }

}  // namespace

std::string record_inputs(const InspectOptions& opt, std::shared_ptr<nn::Module>& model,
                          std::vector<std::pair<std::string, nn::KANLayer*>>& layers,
                          const std::function<void(const std::string&)>& log) {
  const fs::path cfg_path = fs::path(opt.run_dir) / "config.json";
  KNOT_CHECK(fs::exists(cfg_path), "inspect: '{}' has no config.json; is it a knot run directory?", opt.run_dir);
  const Json cfg = models::load_json_file(cfg_path.string());
  const std::string task = cfg.value("task", "");
  if (task == "fit") {
    const FitModelSpec m = read_fit_model(cfg.value("model", Json::object()), "model");
    auto kan = std::make_shared<nn::KAN>(m.widths, m.basis, m.options);
    kan->load((fs::path(opt.run_dir) / "model.safetensors").string());
    kan->eval();
    model = kan;
    layers = kan_layers(*model, opt.layers);
    const fs::path generated = fs::path(opt.run_dir) / "train.csv";
    const std::string table_path =
        fs::exists(generated) ? generated.string() : cfg.at("data").at("train").get<std::string>();
    const data::CsvTable t = data::read_csv(table_path);
    Tensor x = t.select(cfg.at("data").at("inputs").get<std::vector<std::string>>(),
                        dtype_from_string(m.options.value("dtype", "f64")));
    x = slice(x, 0, 0, std::min<int64_t>(x.size(0), opt.rows)).contiguous();
    log(fmt::format("inspect: fit run, {} rows of {}", x.size(0), table_path));
    for (auto& [n, k] : layers) k->set_capture_input(true);
    NoGradGuard ng;
    kan->forward(x);
  } else if (task == "translation") {
    TranslationRun run = load_translation_run(opt.run_dir);
    model = run.model;
    layers = kan_layers(*model, opt.layers);
    const auto& d = run.config.at("data");
    const std::string path = d.value("val", d.value("train", ""));
    KNOT_CHECK(!path.empty(), "inspect: the run's config has no data.val or data.train to record inputs on");
    const auto [src_key, tgt_key] = translation_keys(d);
    auto pairs = read_translation_pairs(path, src_key, tgt_key);
    encode_pairs(pairs, *run.tokenizer);
    // Pairs that fit the model, until they hold about `rows` target tokens (one batch).
    const auto cap = static_cast<size_t>(run.model->config().max_length - 1);
    std::vector<TranslationPair> batch;
    int64_t tokens = 0;
    for (auto& p : pairs) {
      if (p.src.empty() || p.src.size() > cap || p.tgt.size() > cap) continue;
      tokens += static_cast<int64_t>(p.tgt.size() + 1);
      batch.push_back(std::move(p));
      if (tokens >= opt.rows) break;
    }
    KNOT_CHECK(!batch.empty(), "inspect: no sentence pair of '{}' fits the model", path);
    log(fmt::format("inspect: translation run, {} sentence pairs of {} ({} target tokens)", batch.size(), path, tokens));
    for (auto& [n, k] : layers) k->set_capture_input(true);
    teacher_forced_loss(*run.model, batch, special_tokens(*run.tokenizer), static_cast<int64_t>(batch.size()));
  } else if (task == "electra") {
    ElectraRun run = load_electra_run(opt.run_dir);
    model = run.model;
    layers = kan_layers(*model, opt.layers);
    const ElectraVocab v = electra_vocab(*run.tokenizer);
    const ElectraCorpus corpus =
        load_electra_corpus(ElectraDataConfig::from_json(run.config.at("data")), *run.tokenizer, v, /*with_train=*/false);
    // Validation sequences until they hold about `rows` tokens (one batch, the eval masking).
    std::vector<std::vector<int32_t>> seqs;
    int64_t tokens = 0;
    for (const auto& s : corpus.val) {
      if (tokens >= opt.rows) break;
      seqs.push_back(s);
      tokens += static_cast<int64_t>(s.size());
    }
    KNOT_CHECK(!seqs.empty(), "inspect: the run's validation data ({}) holds no sequence", corpus.val_source);
    log(fmt::format("inspect: ELECTRA run, {} validation sequences ({} tokens) of {}", seqs.size(), tokens,
                    corpus.val_source));
    for (auto& [n, k] : layers) k->set_capture_input(true);
    evaluate_electra(*run.model, seqs, v, ElectraOptions::from_json(run.config.value("electra", Json::object())),
                     static_cast<int64_t>(seqs.size()), run.config.value("seed", uint64_t{1}));
  } else {
    KNOT_FAIL("inspect: '{}' is a '{}' run; inspect reads `knot fit`, translation and ELECTRA runs", opt.run_dir, task);
  }
  return task;
}

RecordedFit record_fit_run(const std::string& run_dir, int64_t rows, const std::string& who,
                           const std::function<void(const std::string&)>& log) {
  RecordedFit r;
  r.config = models::load_json_file((fs::path(run_dir) / "config.json").string());
  KNOT_CHECK(r.config.value("task", "") == "fit", "{}: '{}' is not a `knot fit` run (task '{}'); {} reads fit runs", who,
             run_dir, r.config.value("task", ""), who);
  InspectOptions io;
  io.run_dir = run_dir;
  io.rows = rows;
  record_inputs(io, r.model, r.layers, log);
  r.kan = dynamic_cast<nn::KAN*>(r.model.get());
  KNOT_CHECK(r.kan != nullptr, "{}: the run's model is not a KAN stack", who);
  return r;
}

void for_each_edge_chunk(const nn::KANLayer& layer, const Tensor& x,
                         const std::function<void(int64_t, const Tensor&)>& fn) {
  const int64_t N = x.size(0), edges = layer.in_features() * layer.out_features();
  const int64_t chunk = std::max<int64_t>(1, kChunkValues / std::max<int64_t>(edges, 1));
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    const Tensor e = layer.edge_values(slice(x, 0, r0, std::min(N, r0 + chunk)).contiguous()).contiguous();
    fn(r0, e);
  }
}

std::vector<double> edge_importance(const nn::KANLayer& layer, const Tensor& x) {
  const int64_t edges = layer.out_features() * layer.in_features();
  std::vector<double> imp(static_cast<size_t>(edges), 0.0);
  for_each_edge_chunk(layer, x, [&](int64_t, const Tensor& e) {
    const double* pe = e.data<double>();
    for (int64_t r = 0; r < e.size(0); ++r)
      for (int64_t k = 0; k < edges; ++k) imp[k] += std::abs(pe[r * edges + k]);
  });
  for (double& v : imp) v /= static_cast<double>(std::max<int64_t>(1, x.size(0)));
  return imp;
}

Tensor recorded_rows(nn::KANLayer& layer, const std::string& name, int64_t rows) {
  Tensor x = layer.captured_input();
  layer.set_capture_input(false);
  KNOT_CHECK(x.defined(), "inspect: layer '{}' saw no input in the recorded forward pass", name);
  x = x.reshape({-1, layer.in_features()}).to(Device::cpu()).to(DType::f64);
  return slice(x, 0, 0, std::min<int64_t>(x.size(0), rows)).contiguous();
}

InspectResult run_inspect(const InspectOptions& opt, const std::function<void(const std::string&)>& log) {
  KNOT_CHECK(!opt.out_dir.empty(), "inspect: an output directory (-o DIR) is required");
  KNOT_CHECK(opt.rows >= 1, "inspect: --rows must be >= 1, got {}", opt.rows);
  KNOT_CHECK(opt.top_k >= 1 && opt.top_k <= 1024, "inspect: --top must be in 1 … 1024, got {}", opt.top_k);
  KNOT_CHECK(opt.dead_fraction >= 0 && opt.dead_fraction < 1, "inspect: --dead must be in [0, 1), got {}",
             opt.dead_fraction);
  KNOT_CHECK(!fs::exists(opt.out_dir) || fs::is_directory(opt.out_dir), "inspect: -o '{}' exists and is not a directory",
             opt.out_dir);
  InspectResult res;
  res.out_dir = opt.out_dir;
  std::shared_ptr<nn::Module> model;
  std::vector<std::pair<std::string, nn::KANLayer*>> layers;
  res.task = record_inputs(opt, model, layers, log);
  fs::create_directories(opt.out_dir);

  Json report{{"run", opt.run_dir}, {"task", res.task}, {"dead_fraction", opt.dead_fraction}, {"layers", Json::array()}};
  for (auto& [name, layer] : layers) {
    const Tensor x = recorded_rows(*layer, name, opt.rows);
    InspectLayer L;
    L.name = name;
    L.basis = layer->basis();
    L.in = layer->in_features();
    L.out = layer->out_features();
    L.rows = x.size(0);
    const std::vector<double> xv = x.to_vector<double>();

    L.importance = edge_importance(*layer, x);
    const double top = *std::max_element(L.importance.begin(), L.importance.end());
    for (double v : L.importance) L.dead_edges += v < opt.dead_fraction * top;
    const double qs[5] = {0.0, 0.25, 0.5, 0.75, 1.0};
    std::vector<double> sorted = L.importance;
    std::sort(sorted.begin(), sorted.end());
    for (int q = 0; q < 5; ++q) L.quantiles[q] = quantile(sorted, qs[q]);

    // Per-feature range and histogram of the recorded inputs; the knots and the outside fraction.
    std::vector<double> lo(L.in, INFINITY), hi(L.in, -INFINITY);
    for (int64_t n = 0; n < L.rows; ++n)
      for (int64_t i = 0; i < L.in; ++i) {
        lo[i] = std::min(lo[i], xv[n * L.in + i]);
        hi[i] = std::max(hi[i], xv[n * L.in + i]);
      }
    for (int64_t i = 0; i < L.in; ++i)
      if (!(hi[i] - lo[i] > 1e-9)) { lo[i] -= 0.5; hi[i] += 0.5; }  // a constant input: a unit-wide window
    std::vector<std::vector<double>> hist(L.in, std::vector<double>(kHistBins, 0.0));
    for (int64_t n = 0; n < L.rows; ++n)
      for (int64_t i = 0; i < L.in; ++i) {
        const double u = (xv[n * L.in + i] - lo[i]) / (hi[i] - lo[i]);
        hist[i][std::clamp<int64_t>(static_cast<int64_t>(u * kHistBins), 0, kHistBins - 1)] += 1;
      }
    int order = 0;
    const Tensor g = layer->knot_grid(&order);
    std::vector<double> knots;
    int64_t nk = 0;
    if (g.defined()) {
      knots = g.detach().to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
      nk = g.size(-1);
      int64_t outside = 0;
      for (int64_t n = 0; n < L.rows; ++n)
        for (int64_t i = 0; i < L.in; ++i) {
          const double v = xv[n * L.in + i];
          outside += v < knots[i * nk + order] || v > knots[i * nk + nk - 1 - order];
        }
      L.outside_grid = static_cast<double>(outside) / static_cast<double>(L.rows * L.in);
    }

    // Panels: every edge (pykan's layout) or the top_k by importance.
    std::vector<int64_t> chosen(static_cast<size_t>(L.out * L.in));
    for (int64_t k = 0; k < L.out * L.in; ++k) chosen[k] = k;
    const bool grid_layout = L.out * L.in <= opt.top_k;
    if (!grid_layout) {
      std::stable_sort(chosen.begin(), chosen.end(), [&](int64_t a, int64_t b) { return L.importance[a] > L.importance[b]; });
      chosen.resize(static_cast<size_t>(opt.top_k));
    }
    L.panels = static_cast<int64_t>(chosen.size());
    if (opt.plots) {
      // φ on kCurvePoints points across each feature's recorded range (column i of X sweeps feature i).
      Tensor X = empty({kCurvePoints, L.in}, DType::f64);
      double* px = X.data<double>();
      for (int64_t s = 0; s < kCurvePoints; ++s)
        for (int64_t i = 0; i < L.in; ++i)
          px[s * L.in + i] = lo[i] + (hi[i] - lo[i]) * static_cast<double>(s) / static_cast<double>(kCurvePoints - 1);
      std::vector<Panel> panels;
      for (int64_t k : chosen) panels.push_back({k / L.in, k % L.in, L.importance[k], {}, {}});
      for_each_edge_chunk(*layer, X, [&](int64_t r0, const Tensor& e) {
        const double* pe = e.data<double>();
        for (int64_t r = 0; r < e.size(0); ++r)
          for (Panel& p : panels) {
            p.xs.push_back(px[(r0 + r) * L.in + p.i]);
            p.ys.push_back(pe[(r * L.out + p.o) * L.in + p.i]);
          }
      });
      L.png = (fs::path(opt.out_dir) / (file_stem(name) + ".png")).string();
      const std::string tmp = L.png + ".tmp.png";
      run_gnuplot(layer_script(L, panels, lo, hi, hist, knots, nk, grid_layout, tmp), "inspect");
      fs::rename(tmp, L.png);
    }
    Json lj{{"name", L.name},       {"basis", L.basis},           {"in", L.in},
            {"out", L.out},         {"rows", L.rows},             {"dead_edges", L.dead_edges},
            {"panels", L.panels},   {"png", L.png},               {"importance_quantiles", L.quantiles},
            {"outside_grid", L.outside_grid < 0 ? Json() : Json(L.outside_grid)}};
    if (L.out * L.in <= 65536) lj["importance"] = L.importance;  // (out, in) row-major
    report["layers"].push_back(lj);
    log(fmt::format("inspect: {} (kan_{}, {} -> {}): {} dead of {} edges{}{}", L.name, L.basis, L.in, L.out,
                    L.dead_edges, L.out * L.in,
                    L.outside_grid >= 0 ? fmt::format(", {:.1f} % of inputs outside the grid", 100 * L.outside_grid)
                                        : std::string(),
                    L.png.empty() ? std::string() : fmt::format("; {}", L.png)));
    res.layers.push_back(std::move(L));
  }

  std::string t = fmt::format("KAN layers of {} ({} run), over the first recorded input rows; importance = mean |phi| "
                              "over them, dead = below {} x the layer's largest\n\n",
                              opt.run_dir, res.task, opt.dead_fraction);
  t += "| layer | basis | in -> out | rows | outside grid | dead edges | importance min / 25% / median / 75% / max |\n";
  t += "|---|---|---|---|---|---|---|\n";
  for (const InspectLayer& L : res.layers)
    t += fmt::format("| {} | kan_{} | {} -> {} | {} | {} | {} of {} | {:.3g} / {:.3g} / {:.3g} / {:.3g} / {:.3g} |\n",
                     L.name, L.basis, L.in, L.out, L.rows,
                     L.outside_grid < 0 ? std::string("-") : fmt::format("{:.1f} %", 100 * L.outside_grid),
                     L.dead_edges, L.out * L.in, L.quantiles[0], L.quantiles[1], L.quantiles[2], L.quantiles[3],
                     L.quantiles[4]);
  res.table = t;
  data::write_file_atomic((fs::path(opt.out_dir) / "layers.md").string(), t);
  data::write_file_atomic((fs::path(opt.out_dir) / "inspect.json").string(), report.dump(1) + "\n");
  return res;
}

namespace {

// Where a KAN layer's tensor keeps its output and input nodes (dims; -1: none) and whether a cut
// edge (o, i) zeros its slice. An empty key only checks that the basis can be pruned.
struct PruneAxes {
  int64_t out = -1, in = -1;
  bool edge = false;
};

PruneAxes prune_axes(const std::string& basis, const std::string& key) {
  auto unexpected = [&]() -> PruneAxes { KNOT_FAIL("prune: unexpected tensor '{}' in a kan_{} layer", key, basis); };
  if (basis == "bspline") {
    if (key.empty()) return {};
    if (key == "grid") return {-1, 0, false};
    if (key == "bias") return {0, -1, false};
    if (key == "base_weight" || key == "spline_weight") return {0, 1, true};
    if (key == "spline_scaler") return {0, 1, false};  // scales a zeroed spline weight: nothing to cut
    return unexpected();
  }
  if (basis == "chebyshev" || basis == "legendre") {  // coeffs (in, out, D+1)
    if (key.empty()) return {};
    if (key == "cheby_coeffs" || key == "legendre_coeffs") return {1, 0, true};
    return unexpected();
  }
  if (basis == "fourier") {  // fouriercoeffs (2, out, in, G), bias (1, out)
    if (key.empty()) return {};
    if (key == "fouriercoeffs") return {1, 2, true};
    if (key == "bias") return {1, -1, false};
    return unexpected();
  }
  if (basis == "relu") {  // phases (in, nf); weight viewed as (out, in, nf) by the caller; bias (out)
    if (key.empty()) return {};
    if (key == "phase_low" || key == "phase_height") return {-1, 0, false};
    if (key == "equal_size_conv.weight") return {0, 1, true};
    if (key == "equal_size_conv.bias") return {0, -1, false};
    return unexpected();
  }
  KNOT_FAIL("prune: the run's basis is kan_{}, which prune cannot cut: {}", basis,
            basis == "rbf" ? "its LayerNorm makes every edge depend on all inputs (no per-edge functions)"
            : basis == "rational" ? "its channel groups must divide the input count, which removing nodes changes"
                                  : "no pruning rule for its tensors");
}

}  // namespace

PruneResult run_prune(const PruneOptions& opt, const std::function<void(const std::string&)>& log) {
  KNOT_CHECK(opt.threshold >= 0 && std::isfinite(opt.threshold), "prune: --threshold must be >= 0, got {}",
             opt.threshold);
  KNOT_CHECK(opt.rows >= 1, "prune: --rows must be >= 1, got {}", opt.rows);
  PruneResult res;
  res.out_dir = opt.out_dir.empty() ? fs::path(opt.run_dir).lexically_normal().string() + "-pruned" : opt.out_dir;
  if (!res.out_dir.empty() && res.out_dir.back() == '/') res.out_dir.pop_back();
  KNOT_CHECK(!fs::exists(res.out_dir), "prune: '{}' exists; choose another output directory (-o)", res.out_dir);
  RecordedFit run = record_fit_run(opt.run_dir, opt.rows, "prune", log);
  const Json& cfg = run.config;
  nn::KAN* kan = run.kan;
  auto& layers = run.layers;
  const FitModelSpec spec = read_fit_model(cfg.value("model", Json::object()), "model");
  const std::string basis = spec.basis;
  prune_axes(basis, "");  // an unsupported basis is an error before anything is cut or written
  const size_t nl = layers.size();
  std::vector<std::vector<double>> imp(nl);
  Tensor x0;
  for (size_t l = 0; l < nl; ++l) {
    const Tensor x = recorded_rows(*layers[l].second, layers[l].first, opt.rows);
    if (l == 0) x0 = x;
    imp[l] = edge_importance(*layers[l].second, x);
  }
  // Node scores and the nodes that stay (position b of widths: the inputs of layers.b).
  std::vector<int64_t> widths{layers[0].second->in_features()};
  for (const auto& [n, l] : layers) widths.push_back(l->out_features());
  res.widths_before = widths;
  const double T = opt.threshold;
  auto I = [&](size_t l, int64_t o, int64_t i) { return imp[l][static_cast<size_t>(o * widths[l] + i)]; };
  std::vector<std::vector<int64_t>> keep(widths.size());
  for (int64_t i = 0; i < widths.front(); ++i) keep.front().push_back(i);
  for (int64_t o = 0; o < widths.back(); ++o) keep.back().push_back(o);
  for (size_t b = 1; b + 1 < widths.size(); ++b) {
    std::vector<int64_t> removed;
    int64_t best = 0;
    double best_score = -1;
    for (int64_t j = 0; j < widths[b]; ++j) {
      double in_s = 0, out_s = 0;
      for (int64_t i = 0; i < widths[b - 1]; ++i) in_s = std::max(in_s, I(b - 1, j, i));
      for (int64_t o = 0; o < widths[b + 1]; ++o) out_s = std::max(out_s, I(b, o, j));
      (in_s >= T && out_s >= T ? keep[b] : removed).push_back(j);
      if (std::min(in_s, out_s) > best_score) {
        best_score = std::min(in_s, out_s);
        best = j;
      }
    }
    if (keep[b].empty()) {
      keep[b].push_back(best);
      removed.erase(std::find(removed.begin(), removed.end(), best));
      log(fmt::format("prune: no node of hidden layer {} reaches {}; keeping node {} (score {:.3g})", b, T, best,
                      best_score));
    }
    log(fmt::format("prune: hidden layer {} (outputs of layers.{}): removed {} of {} node{}{}", b, b - 1,
                    removed.size(), widths[b], widths[b] == 1 ? "" : "s",
                    removed.empty() ? std::string() : fmt::format(" ({})", fmt::join(removed, ", "))));
    res.removed_nodes.push_back(removed);
  }
  for (const auto& k : keep) res.widths_after.push_back(static_cast<int64_t>(k.size()));

  // The new state: rows/columns of the kept nodes, cut edges zeroed.
  std::map<std::string, Tensor> old;
  for (const auto& [n, t] : kan->state_dict()) old[n] = t.detach().to(Device::cpu());
  auto ids = [](const std::vector<int64_t>& v) { return from_vector(v, {static_cast<int64_t>(v.size())}); };
  nn::NamedTensors fresh;
  for (size_t l = 0; l < nl; ++l) {
    const std::string p = fmt::format("layers.{}.", l);
    const Tensor ins = ids(keep[l]), outs = ids(keep[l + 1]);
    // Cut edges of the new layer: (o', i') in kept positions below the threshold.
    std::vector<char> cut(static_cast<size_t>(keep[l + 1].size() * keep[l].size()), 0);
    for (size_t a = 0; a < keep[l + 1].size(); ++a)
      for (size_t c = 0; c < keep[l].size(); ++c) {
        const bool below = I(l, keep[l + 1][a], keep[l][c]) < T;
        cut[a * keep[l].size() + c] = below;
        res.edges_after += !below;
      }
    res.edges_before += widths[l] * widths[l + 1];
    // 1 for the kept edges of the new layer, 0 for the cut ones: (out', in').
    std::vector<double> keep_mask(cut.size());
    for (size_t e = 0; e < cut.size(); ++e) keep_mask[e] = cut[e] ? 0.0 : 1.0;
    const Tensor mask = from_vector(keep_mask, {static_cast<int64_t>(keep[l + 1].size()), static_cast<int64_t>(keep[l].size())});
    for (const auto& [name, t] : old) {
      if (name.compare(0, p.size(), p) != 0) continue;
      const std::string key = name.substr(p.size());
      const PruneAxes ax = prune_axes(basis, key);
      // ReLU-KAN's weight (out, 1, nf, in) multiplies the basis flattened as (in, nf): viewed as
      // (out, in, nf), its rows are per edge (kan_relu's edge_values).
      const bool relu_weight = basis == "relu" && key == "equal_size_conv.weight";
      Tensor v = relu_weight ? t.reshape({t.size(0), t.size(3), t.size(2)}) : t;
      if (ax.out >= 0) v = index_select(v, ax.out, outs);
      if (ax.in >= 0) v = index_select(v, ax.in, ins);
      if (ax.edge) {  // a cut edge contributes nothing: its slice [.., o', .., i', ..] is zeroed
        Shape ms(static_cast<size_t>(v.dim()), 1);
        ms[static_cast<size_t>(ax.out)] = v.size(ax.out);
        ms[static_cast<size_t>(ax.in)] = v.size(ax.in);
        const Tensor m2 = ax.out < ax.in ? mask : mask.t().contiguous();
        v = mul(v.to(DType::f64), m2.reshape(ms)).to(t.dtype());
      }
      if (relu_weight) v = v.contiguous().reshape({v.size(0), 1, v.size(2), v.size(1)});
      fresh.emplace_back(name, v.contiguous());
    }
  }
  nn::KAN pruned(res.widths_after, basis, spec.options);
  pruned.load_state_dict(fresh, /*strict=*/true);
  pruned.eval();

  // What it changes: predictions on the recorded rows, and the test RMSE.
  {
    NoGradGuard ng;
    const DType dt = old.begin()->second.dtype();
    const Tensor d = sub(kan->forward(x0.to(dt)), pruned.forward(x0.to(dt))).to(DType::f64);
    for (double v : d.to_vector<double>()) res.max_change = std::max(res.max_change, std::abs(v));
    const auto& dj = cfg.at("data");
    const fs::path generated = fs::path(opt.run_dir) / "test.csv";
    const std::string test_path = fs::exists(generated) ? generated.string() : dj.value("test", std::string());
    if (!test_path.empty()) {
      const data::CsvTable t = data::read_csv(test_path);
      const Tensor xt = t.select(dj.at("inputs").get<std::vector<std::string>>(), dt);
      const Tensor yt = t.select({dj.at("target").get<std::string>()}, dt);
      auto rmse = [&](nn::KAN& k) {
        const Tensor e = sub(k.forward(xt), yt);
        return std::sqrt(mean(mul(e, e)).item());
      };
      res.test_rmse_before = rmse(*kan);
      res.test_rmse_after = rmse(pruned);
    }
  }

  // The new run directory, whole or not at all.
  const fs::path tmp = res.out_dir + ".tmp-prune";
  fs::remove_all(tmp);  // a leftover of an interrupted prune of the same name
  fs::create_directories(tmp);
  try {
    Json ncfg = cfg;
    ncfg["model"]["widths"] = res.widths_after;
    ncfg["run_dir"] = res.out_dir;
    data::write_file_atomic((tmp / "config.json").string(), ncfg.dump(2) + "\n");
    pruned.save((tmp / "model.safetensors").string(), {{"format", "pt"}, {"knot_task", "fit"}});
    for (const char* f : {"train.csv", "test.csv"})
      if (fs::exists(fs::path(opt.run_dir) / f)) fs::copy_file(fs::path(opt.run_dir) / f, tmp / f);
    Json removed = Json::object();
    for (size_t b = 0; b < res.removed_nodes.size(); ++b) removed[fmt::format("layers.{}", b)] = res.removed_nodes[b];
    Json info{{"from", opt.run_dir},
              {"threshold", T},
              {"rows", x0.size(0)},
              {"widths_before", res.widths_before},
              {"widths_after", res.widths_after},
              {"removed_output_nodes", removed},
              {"edges_before", res.edges_before},
              {"edges_after", res.edges_after},
              {"max_prediction_change", res.max_change}};
    if (res.test_rmse_before >= 0) {
      info["test_rmse_before"] = res.test_rmse_before;
      info["test_rmse_after"] = res.test_rmse_after;
    }
    data::write_file_atomic((tmp / "pruned.json").string(), info.dump(1) + "\n");
    fs::rename(tmp, res.out_dir);
  } catch (...) {
    fs::remove_all(tmp);
    throw;
  }
  log(fmt::format("prune: widths {} -> {}, {} of {} edges left (threshold {}); largest prediction change over {} "
                  "recorded rows {:.3g}{}; wrote {}",
                  Json(res.widths_before).dump(), Json(res.widths_after).dump(), res.edges_after, res.edges_before, T,
                  x0.size(0), res.max_change,
                  res.test_rmse_before >= 0
                      ? fmt::format("; test RMSE {:.4e} -> {:.4e}", res.test_rmse_before, res.test_rmse_after)
                      : std::string(),
                  res.out_dir));
  return res;
}

}  // namespace knot::train
