// Config loading, overrides and checked reads (see config.h).
#include "models/config.h"

#include <algorithm>
#include <cmath>
#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_depth.h"

namespace knot::models {
namespace {

const char* type_name(const Json& v) {
  if (v.is_boolean()) return "bool";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  return "null";
}

// A float with an integral value that fits int64 ("1e9", "5.0"), as an integer; otherwise unchanged.
Json integral_as_integer(const Json& v) {
  if (!v.is_number_float()) return v;
  const double d = v.get<double>();
  if (std::isfinite(d) && d == std::trunc(d) && d >= -9.2e18 && d <= 9.2e18) return Json(static_cast<int64_t>(d));
  return v;
}

// JSON text of v for messages; bytes that are not UTF-8 (possible in values built from command-line
// overrides, never in parsed files) print as U+FFFD instead of making dump() throw.
std::string printable(const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::replace); }

bool valid_utf8(const std::string& s) {
  try {
    (void)Json(s).dump();
    return true;
  } catch (const Json::type_error&) {
    return false;
  }
}

// An override may replace a value by one of the same JSON kind (an integer where a float was is fine).
bool same_kind(const Json& old_v, const Json& new_v) {
  if (old_v.is_null()) return true;
  if (old_v.is_number_float()) return new_v.is_number();
  if (old_v.is_number_integer()) return new_v.is_number_integer();
  return std::string(type_name(old_v)) == type_name(new_v);
}

// Levenshtein distance (insertions, deletions, substitutions), for "did you mean" hints.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

Json load_json_file(const std::string& path) {
  std::ifstream in(path);
  KNOT_CHECK(in.good(), "config: cannot open '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json_text(ss.str(), path);
}

Json parse_json_text(std::string_view text, const std::string& name) {
  try {
    return Json::parse(text, json_depth_limit(fmt::format("config: '{}'", name)));
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for a number such as 1e400
    KNOT_FAIL("config: '{}' is not valid JSON: {}", name, e.what());
  }
}

void save_json_file(const std::string& path, const Json& j) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    KNOT_CHECK(out.good(), "config: cannot write '{}'", tmp);
    out << j.dump(2) << "\n";
    KNOT_CHECK(out.good(), "config: writing '{}' failed", tmp);
  }
  std::filesystem::rename(tmp, path);
}

void apply_override(Json& cfg, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  KNOT_CHECK(valid_utf8(assignment), "config override {}: not valid UTF-8", printable(Json(assignment)));
  KNOT_CHECK(eq != std::string::npos && eq > 0, "config override '{}': expected key.sub=value", assignment);
  std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  if (key[0] == '+') key = key.substr(1);  // Hydra's "add a key": accepted, and the same as without it
  KNOT_CHECK(!key.empty(), "config override '{}': empty key", assignment);
  Json value;
  try {
    value = Json::parse(text, json_depth_limit(fmt::format("config override '{}'", assignment.substr(0, eq))));
  } catch (const Json::parse_error&) {
    value = text;  // bare words are strings: ffn_activation=gelu
  } catch (const Json::exception& e) {
    KNOT_FAIL("config override '{}': {}", assignment, e.what());  // a number beyond double, e.g. 1e400
  }
  Json* node = &cfg;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    KNOT_CHECK(!part.empty(), "config override '{}': empty key component", assignment);
    KNOT_CHECK(node->is_object(), "config override '{}': '{}' is not an object", assignment, key.substr(0, start - 1));
    if (dot == std::string::npos) {
      if (!node->contains(part)) {
        (*node)[part] = value;  // a key the file leaves out: the config's reader checks name and type
      } else {
        Json& old_v = (*node)[part];
        if (old_v.is_number_integer()) value = integral_as_integer(value);  // model.embedding_dim=1e3
        KNOT_CHECK(same_kind(old_v, value), "config override '{}': key '{}' has type {} but the new value has type {}",
                   assignment, key, type_name(old_v), type_name(value));
        old_v = value;
      }
      return;
    }
    if (!node->contains(part)) (*node)[part] = Json::object();
    node = &(*node)[part];
    start = dot + 1;
  }
}

void apply_overrides(Json& cfg, const std::vector<std::string>& assignments) {
  for (const auto& a : assignments) apply_override(cfg, a);
}

ConfigReader::ConfigReader(const Json& j, std::string context) : j_(j), ctx_(std::move(context)) {
  KNOT_CHECK(j_.is_object(), "config '{}': expected a JSON object, got a {}", ctx_, type_name(j_));
}

template <typename T>
T ConfigReader::convert(const std::string& key, const Json& v) const {
  auto bad = [&](const char* want) {
    KNOT_FAIL("config '{}': key '{}' must be {}, got {} {}", ctx_, key, want, type_name(v), printable(v));
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) bad("a bool");
    return v.get<bool>();
  } else if constexpr (std::is_same_v<T, int64_t>) {
    const Json i = integral_as_integer(v);  // 1e9 and 5.0 are integers; 2.5 and 1e30 are not
    if (!i.is_number_integer()) bad("an integer");
    if (i.is_number_unsigned() && i.get<uint64_t>() > INT64_MAX) bad("an integer of at most 2^63 - 1");
    return i.get<int64_t>();
  } else if constexpr (std::is_same_v<T, double>) {
    if (!v.is_number()) bad("a number");
    return v.get<double>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) bad("a string");
    return v.get<std::string>();
  } else {
    return v;
  }
}

template <typename T>
T ConfigReader::get(const std::string& key, const T& fallback) {
  known_.insert(key);
  if (!j_.contains(key)) return fallback;
  return convert<T>(key, j_.at(key));
}

template <typename T>
T ConfigReader::require(const std::string& key) {
  known_.insert(key);
  KNOT_CHECK(j_.contains(key), "config '{}': missing required key '{}'", ctx_, key);
  return convert<T>(key, j_.at(key));
}

void ConfigReader::finish() const {
  std::vector<std::string> unknown;
  for (auto it = j_.begin(); it != j_.end(); ++it)
    if (!known_.count(it.key())) unknown.push_back(it.key());
  if (unknown.empty()) return;
  std::vector<std::string> known(known_.begin(), known_.end());
  // A likely typo gets a suggestion: the known key nearest in edit distance, if at most 2 edits away.
  std::string hint;
  size_t best = 3;
  for (const auto& k : known) {
    const size_t d = edit_distance(unknown[0], k);
    if (d < best) best = d, hint = fmt::format("; did you mean '{}'?", k);
  }
  KNOT_FAIL("config '{}': unknown key{} '{}'{} (known keys: {})", ctx_, unknown.size() > 1 ? "s" : "",
            fmt::join(unknown, "', '"), hint, fmt::join(known, ", "));
}

nn::ProjectionSpec read_projection(const Json& j, const std::string& context) {
  nn::ProjectionSpec spec;
  if (j.is_string()) {
    spec.kind = j.get<std::string>();
  } else {
    ConfigReader r(j, context);
    spec.kind = r.require<std::string>("kind");
    spec.options = r.get<Json>("options", Json::object());
    KNOT_CHECK(spec.options.is_object(), "config '{}': key 'options' must be an object, got {}", context,
               printable(spec.options));
    r.finish();
  }
  const std::vector<std::string> kinds = nn::projection_kinds();
  bool known = false;
  for (const auto& k : kinds) known = known || k == spec.kind;
  KNOT_CHECK(known, "config '{}': unknown projection kind '{}' (known: {})", context, spec.kind,
             fmt::join(kinds, ", "));
  return spec;
}

ProjectionSites read_projection_sites(ConfigReader& r) {
  ProjectionSites s;
  const std::string ctx = r.context();
  if (r.has("projection")) s.all = read_projection(r.get<Json>("projection", {}), ctx + ".projection");
  s.attention = s.ffn = s.output = s.all;
  if (r.has("projections")) {
    ConfigReader p(r.get<Json>("projections", Json::object()), ctx + ".projections");
    for (const char* site : {"attention", "ffn", "output"}) p.ignore(site);  // known keys, each optional
    if (p.has("attention")) s.attention = read_projection(p.get<Json>("attention", {}), ctx + ".projections.attention");
    if (p.has("ffn")) s.ffn = read_projection(p.get<Json>("ffn", {}), ctx + ".projections.ffn");
    if (p.has("output")) s.output = read_projection(p.get<Json>("output", {}), ctx + ".projections.output");
    p.finish();
  }
  return s;
}

template bool ConfigReader::get<bool>(const std::string&, const bool&);
template int64_t ConfigReader::get<int64_t>(const std::string&, const int64_t&);
template double ConfigReader::get<double>(const std::string&, const double&);
template std::string ConfigReader::get<std::string>(const std::string&, const std::string&);
template Json ConfigReader::get<Json>(const std::string&, const Json&);
template bool ConfigReader::require<bool>(const std::string&);
template int64_t ConfigReader::require<int64_t>(const std::string&);
template double ConfigReader::require<double>(const std::string&);
template std::string ConfigReader::require<std::string>(const std::string&);
template Json ConfigReader::require<Json>(const std::string&);

}  // namespace knot::models
