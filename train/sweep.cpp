// knot sweep's grid and table (see sweep.h).
#include "train/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/error.h"
#include "core/safetensors.h"
#include "train/checkpoint.h"

namespace knot::train {
namespace fs = std::filesystem;

std::vector<std::string> split_sweep_values(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  std::vector<char> open;  // the closers we wait for
  bool quoted = false, escaped = false;
  for (char c : text) {
    if (quoted) {
      cur += c;
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    else if (c == '[') open.push_back(']');
    else if (c == '{') open.push_back('}');
    else if (c == ']' || c == '}') {
      KNOT_CHECK(!open.empty() && open.back() == c, "sweep: '{}' has a '{}' without its opening bracket", text, c);
      open.pop_back();
    } else if (c == ',' && open.empty()) {
      KNOT_CHECK(!cur.empty(), "sweep: '{}' has an empty value (two commas, or one at an end)", text);
      out.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  KNOT_CHECK(!quoted, "sweep: '{}' has an unclosed '\"'", text);
  KNOT_CHECK(open.empty(), "sweep: '{}' has an unclosed '{}'", text, open.empty() ? ' ' : (open.back() == ']' ? '[' : '{'));
  KNOT_CHECK(!cur.empty(), "sweep: '{}' has an empty value (two commas, or one at an end)", text);
  out.push_back(cur);
  return out;
}

SweepPlan parse_sweep(const std::vector<std::string>& assignments, const std::vector<int64_t>& seeds) {
  SweepPlan plan;
  std::set<std::string> keys;
  for (const auto& a : assignments) {
    const size_t eq = a.find('=');
    KNOT_CHECK(eq != std::string::npos && eq > 0, "sweep: '{}' is not an override key=value (or key=a,b,c)", a);
    std::string key = a.substr(0, eq);
    if (key[0] == '+') key = key.substr(1);  // Hydra's "add a key" spelling, as knot train takes it
    KNOT_CHECK(keys.insert(key).second, "sweep: the key '{}' is given twice", key);
    const std::vector<std::string> values = split_sweep_values(a.substr(eq + 1));
    if (values.size() == 1) plan.fixed.push_back(key + "=" + values[0]);
    else plan.axes.push_back({key, values});
  }
  if (!seeds.empty()) {
    KNOT_CHECK(!keys.count("seed"), "sweep: 'seed' is given both as an override and with --seeds; give one");
    SweepAxis s{"seed", {}};
    std::set<int64_t> seen;
    for (int64_t v : seeds) {
      KNOT_CHECK(seen.insert(v).second, "sweep: --seeds names seed {} twice", v);
      s.values.push_back(std::to_string(v));
    }
    plan.axes.push_back(s);
  }
  return plan;
}

namespace {
std::string safe_name(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-' || c == '=' || c == '+';
    out += ok ? c : '_';
  }
  return out;
}
}  // namespace

std::vector<SweepPoint> expand_sweep(const SweepPlan& plan) {
  size_t total = 1;
  for (const auto& ax : plan.axes) {
    KNOT_CHECK(!ax.values.empty(), "sweep: the key '{}' has no values", ax.key);
    total *= ax.values.size();
    KNOT_CHECK(total <= 10000, "sweep: the grid has more than 10,000 points; sweep fewer values at once");
  }
  std::vector<SweepPoint> points;
  std::set<std::string> names;
  for (size_t idx = 0; idx < total; ++idx) {
    SweepPoint p;
    p.overrides = plan.fixed;
    // Mixed radix, the last axis fastest.
    size_t rest = idx, stride = total;
    std::vector<std::string> parts;
    for (const auto& ax : plan.axes) {
      stride /= ax.values.size();
      const std::string& v = ax.values[rest / stride];
      rest %= stride;
      p.values.emplace_back(ax.key, v);
      p.overrides.push_back(ax.key + "=" + v);
      parts.push_back(safe_name(ax.key + "=" + v));
    }
    p.name = parts.empty() ? "base" : fmt::format("{}", fmt::join(parts, "__"));
    KNOT_CHECK(names.insert(p.name).second,
               "sweep: two points would share the run directory '{}' (their values differ only in characters a "
               "directory name cannot hold); spell the values differently",
               p.name);
    points.push_back(std::move(p));
  }
  return points;
}

namespace {

models::Json read_json_or_null(const fs::path& p) {
  if (!fs::exists(p)) return models::Json();
  return models::load_json_file(p.string());
}

std::optional<double> number(const models::Json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

std::optional<double> median(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

SweepResult read_sweep_result(const std::string& run_dir, const SweepPoint& point, const std::vector<int64_t>& val_at,
                              int64_t target_steps) {
  SweepResult r;
  r.name = point.name;
  r.values = point.values;
  r.val_loss_at.assign(val_at.size(), std::nullopt);
  const fs::path dir(run_dir);
  const models::Json cfg = read_json_or_null(dir / "config.json");
  if (cfg.is_object()) {
    const auto train = cfg.value("train", models::Json::object());
    if (train.is_object() && train.contains("steps") && train["steps"].is_number_integer())
      r.target_steps = train["steps"].get<int64_t>();
  }
  if (target_steps > 0) r.target_steps = target_steps;
  const std::string latest = fs::exists(dir / "checkpoints") ? latest_checkpoint(run_dir) : std::string();
  if (!latest.empty()) {
    r.steps = checkpoint_dir_step(latest);
    const SafetensorsFile f = load_safetensors((fs::path(latest) / "model.safetensors").string());
    const auto it = f.metadata.find("num_parameters");
    if (it != f.metadata.end()) {
      try {
        r.parameters = std::stoll(it->second);
      } catch (const std::exception&) {
        KNOT_FAIL("sweep: {}/model.safetensors: metadata 'num_parameters' is '{}', not a number", latest, it->second);
      }
    }
  }

  // metrics.jsonl: the last row logged for each step wins (a resumed run logs again what came after
  // its checkpoint).
  std::map<int64_t, models::Json> val_rows, step_rows;
  const fs::path metrics = dir / "metrics.jsonl";
  if (fs::exists(metrics)) {
    std::ifstream in(metrics);
    std::string line;
    int64_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const models::Json row = models::parse_json_text(line, fmt::format("{}:{}", metrics.string(), lineno));
      if (!row.is_object() || !row.contains("step") || !row["step"].is_number_integer()) continue;
      const int64_t step = row["step"].get<int64_t>();
      if (row.contains("val_loss")) val_rows[step] = row;
      else if (row.contains("tokens_per_s")) step_rows[step] = row;
    }
  }
  if (r.steps > 0) {  // rows past the checkpoint belong to a run that was cut short and will be redone
    val_rows.erase(val_rows.upper_bound(r.steps), val_rows.end());
    step_rows.erase(step_rows.upper_bound(r.steps), step_rows.end());
  }
  for (const auto& [step, row] : val_rows) {
    const auto v = number(row, "val_loss");
    if (!v) continue;
    r.final_val_loss = v;
    if (auto b = number(row, "val_bleu")) r.final_val_bleu = b;
    if (!r.best_val_loss || *v < *r.best_val_loss) {
      r.best_val_loss = v;
      r.best_val_step = step;
    }
    for (size_t i = 0; i < val_at.size(); ++i)
      if (step <= val_at[i]) r.val_loss_at[i] = v;
  }
  std::vector<double> per_step, tps;
  int64_t prev = -1;
  for (const auto& [step, row] : step_rows) {
    const auto rate = number(row, "tokens_per_s"), tokens = number(row, "tokens");
    if (rate && *rate > 0) {
      tps.push_back(*rate);
      if (tokens && prev >= 0 && step > prev) per_step.push_back(*tokens / *rate / static_cast<double>(step - prev));
    }
    prev = step;
  }
  r.seconds_per_step = median(per_step);
  r.tokens_per_second = median(tps);

  const models::Json sp = read_json_or_null(dir / "sweep-point.json");
  if (sp.is_object()) {
    r.peak_rss_mib = number(sp, "peak_rss_mib");
    const auto test = sp.value("test", models::Json::object());
    if (test.is_object()) {
      r.test_bleu = number(test, "bleu");
      r.test_loss = number(test, "loss");
    }
    const auto beam = sp.value("test_beam", models::Json::object());
    if (beam.is_object() && beam.contains("beam") && beam["beam"].is_number_integer()) {
      r.test_bleu_beam = number(beam, "bleu");
      r.beam = beam["beam"].get<int64_t>();
    }
  }
  // The checkpoints decide whether the point is done; a failure recorded by knot sweep names what
  // went wrong with a point that is not.
  if (!latest.empty() && (r.target_steps <= 0 || r.steps >= r.target_steps)) r.status = "done";
  else if (sp.is_object() && sp.contains("status") && sp["status"].is_string() &&
           sp["status"].get<std::string>().rfind("failed", 0) == 0)
    r.status = sp["status"].get<std::string>();
  else r.status = latest.empty() ? "not run" : "partial";
  return r;
}

namespace {

std::string fmt_opt(const std::optional<double>& v, const char* spec) {
  return v ? fmt::format(fmt::runtime(spec), *v) : std::string("-");
}

struct Column {
  std::string head;
  std::vector<std::string> cells;
};

std::vector<Column> columns(const std::vector<SweepResult>& rows, const std::vector<std::string>& axis_keys,
                            const std::vector<int64_t>& val_at) {
  std::vector<Column> cols;
  for (size_t a = 0; a < axis_keys.size(); ++a) {
    Column c{axis_keys[a], {}};
    for (const auto& r : rows) c.cells.push_back(a < r.values.size() ? r.values[a].second : "-");
    cols.push_back(std::move(c));
  }
  auto add = [&](const std::string& head, auto&& cell) {
    Column c{head, {}};
    for (const auto& r : rows) c.cells.push_back(cell(r));
    cols.push_back(std::move(c));
  };
  add("parameters", [](const SweepResult& r) { return r.parameters >= 0 ? std::to_string(r.parameters) : "-"; });
  add("steps", [](const SweepResult& r) {
    return r.target_steps > 0 ? fmt::format("{}/{}", r.steps, r.target_steps) : std::to_string(r.steps);
  });
  add("final val_loss", [](const SweepResult& r) { return fmt_opt(r.final_val_loss, "{:.4f}"); });
  add("best val_loss (step)", [](const SweepResult& r) {
    return r.best_val_loss ? fmt::format("{:.4f} ({})", *r.best_val_loss, r.best_val_step) : std::string("-");
  });
  for (size_t i = 0; i < val_at.size(); ++i)
    add(fmt::format("val_loss@{}", val_at[i]), [i](const SweepResult& r) {
      return i < r.val_loss_at.size() ? fmt_opt(r.val_loss_at[i], "{:.4f}") : std::string("-");
    });
  add("val_bleu", [](const SweepResult& r) { return fmt_opt(r.final_val_bleu, "{:.2f}"); });
  add("test BLEU greedy", [](const SweepResult& r) { return fmt_opt(r.test_bleu, "{:.2f}"); });
  int64_t beam = 0;
  for (const auto& r : rows) beam = std::max(beam, r.beam);
  if (beam > 0)
    add(fmt::format("test BLEU beam {}", beam), [](const SweepResult& r) { return fmt_opt(r.test_bleu_beam, "{:.2f}"); });
  add("s/step", [](const SweepResult& r) { return fmt_opt(r.seconds_per_step, "{:.4f}"); });
  add("tokens/s", [](const SweepResult& r) { return fmt_opt(r.tokens_per_second, "{:.0f}"); });
  add("peak MiB", [](const SweepResult& r) { return fmt_opt(r.peak_rss_mib, "{:.0f}"); });
  add("status", [](const SweepResult& r) { return r.status; });
  return cols;
}

}  // namespace

std::string sweep_markdown(const std::vector<SweepResult>& rows, const std::vector<std::string>& axis_keys,
                           const std::vector<int64_t>& val_at) {
  const auto cols = columns(rows, axis_keys, val_at);
  std::string out = "|";
  for (const auto& c : cols) out += " " + c.head + " |";
  out += "\n|";
  for (size_t i = 0; i < cols.size(); ++i) out += " --- |";
  out += "\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    out += "|";
    for (const auto& c : cols) {
      std::string cell = c.cells[r];
      std::replace(cell.begin(), cell.end(), '|', '/');  // a value must not open a new column
      out += " " + cell + " |";
    }
    out += "\n";
  }
  return out;
}

std::string sweep_csv(const std::vector<SweepResult>& rows, const std::vector<std::string>& axis_keys,
                      const std::vector<int64_t>& val_at) {
  const auto cols = columns(rows, axis_keys, val_at);
  auto quote = [](const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  std::string out;
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i) out += ',';
    out += quote(cols[i].head);
  }
  out += '\n';
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t i = 0; i < cols.size(); ++i) {
      if (i) out += ',';
      out += quote(cols[i].cells[r]);
    }
    out += '\n';
  }
  return out;
}

}  // namespace knot::train
