// `knot plot RUN... -o FILE.png [--metric M ...]` (see plot.h).
#include "tools/plot.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "tools/commands.h"
#include "train/gnuplot.h"

namespace knot::tools {
namespace {
namespace fs = std::filesystem;

std::string metrics_path(const std::string& run) {
  return fs::is_directory(run) ? (fs::path(run) / "metrics.jsonl").string() : run;
}

template <typename F>
void for_each_line(const std::string& run, F&& f) {
  const std::string path = metrics_path(run);
  std::ifstream in(path);
  KNOT_CHECK(in.good(), "plot: cannot open '{}' (expected a run directory holding metrics.jsonl)", path);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      KNOT_FAIL("plot: {}:{}: not a JSON line ({})", path, n, e.what());
    }
    if (j.is_object()) f(j);
  }
}

}  // namespace

Series read_metric(const std::string& run, const std::string& metric) {
  Series s{fs::path(run).filename().string(), {}};
  if (s.run.empty() || s.run == "metrics.jsonl") s.run = fs::path(run).parent_path().filename().string();
  for_each_line(run, [&](const nlohmann::json& j) {
    if (j.contains("step") && j["step"].is_number() && j.contains(metric) && j[metric].is_number()) {
      const double v = j[metric].get<double>();
      if (std::isfinite(v)) s.xy.emplace_back(j["step"].get<double>(), v);
    }
  });
  return s;
}

std::vector<std::string> available_metrics(const std::vector<std::string>& runs) {
  static const std::set<std::string> skip{"step", "epoch", "time", "elapsed", "tokens", "seconds"};
  std::set<std::string> found;
  for (const auto& r : runs)
    for_each_line(r, [&](const nlohmann::json& j) {
      for (auto it = j.begin(); it != j.end(); ++it)
        if (it->is_number() && !skip.count(it.key())) found.insert(it.key());
    });
  std::vector<std::string> out;
  for (const char* k : {"loss", "val_loss", "val_ppl", "val_bleu", "lr"})
    if (found.erase(k)) out.emplace_back(k);
  out.insert(out.end(), found.begin(), found.end());
  return out;
}

std::string gnuplot_script(const std::vector<std::pair<std::string, std::vector<Series>>>& panels, const std::string& png,
                           const std::string& title) {
  const size_t n = panels.size();
  const size_t cols = n > 1 ? 2 : 1, rows = (n + cols - 1) / cols;
  std::string s;
  s += fmt::format("set terminal pngcairo size {},{} font 'sans,10'\n", 640 * cols, 400 * rows);
  s += fmt::format("set output {}\n", train::gnuplot_quote(png));
  s += "set termoption noenhanced\nset grid\nset key top right\nset xlabel 'step'\n";
  s += fmt::format("set multiplot layout {},{} title {}\n", rows, cols, train::gnuplot_quote(title));
  for (const auto& [metric, series] : panels) {
    s += fmt::format("set title {}\n", train::gnuplot_quote(metric));
    // Losses and perplexities span decades; BLEU and learning rates read better linearly.
    const bool logy = metric.find("loss") != std::string::npos || metric.find("ppl") != std::string::npos;
    s += logy ? "set logscale y\n" : "unset logscale y\n";
    std::vector<std::string> plots;
    for (const auto& se : series) plots.push_back(fmt::format("'-' using 1:2 with lines lw 2 title {}", train::gnuplot_quote(se.run)));
    s += "plot " + fmt::format("{}", fmt::join(plots, ", ")) + "\n";
    for (const auto& se : series) {
      for (const auto& [x, y] : se.xy) s += fmt::format("{} {}\n", x, y);
      s += "e\n";
    }
  }
  s += "unset multiplot\n";
  return s;
}

std::vector<std::string> plot_runs(const std::vector<std::string>& runs, const std::string& png,
                                   const std::vector<std::string>& metrics, const std::string& title,
                                   const std::string& who) {
  const std::vector<std::string> ms = metrics.empty() ? available_metrics(runs) : metrics;
  KNOT_CHECK(!ms.empty(), "{}: no numeric metrics found in {}", who, fmt::join(runs, ", "));
  std::vector<std::pair<std::string, std::vector<Series>>> panels;
  for (const auto& m : ms) {
    std::vector<Series> series;
    for (const auto& r : runs) {
      Series s = read_metric(r, m);
      if (!s.xy.empty()) series.push_back(std::move(s));
    }
    KNOT_CHECK(!series.empty(), "{}: no run has values for metric '{}'", who, m);
    panels.emplace_back(m, std::move(series));
  }
  train::run_gnuplot(gnuplot_script(panels, png, title), who);
  fmt::print("{}: wrote {} ({} panel{}: {})\n", who, png, panels.size(), panels.size() == 1 ? "" : "s", fmt::join(ms, ", "));
  return ms;
}

void add_plot_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plot", "Draw loss/perplexity/BLEU curves of one or more runs to a PNG (needs gnuplot)");
  auto runs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto metrics = std::make_shared<std::vector<std::string>>();
  auto title = std::make_shared<std::string>("knot runs");
  cmd->add_option("runs", *runs, "Run directories (each with metrics.jsonl) or metrics.jsonl files")->required();
  cmd->add_option("-o,--output", *out, "PNG file to write")->required();
  cmd->add_option("--metric,-m", *metrics, "Metrics to plot (default: every numeric one found, e.g. loss val_loss val_bleu)");
  cmd->add_option("--title", *title, "Chart title")->capture_default_str();
  cmd->footer("Example: knot plot runs/translate-kan runs/translate-mlp -o kan-vs-mlp.png -m loss -m val_bleu");
  cmd->callback([runs, out, metrics, title]() { plot_runs(*runs, *out, *metrics, *title, "plot"); });
}

}  // namespace knot::tools
