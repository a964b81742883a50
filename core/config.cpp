// Config loading, overrides and the checked reader (see config.h).
#include "core/config.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "core/json_depth.h"

namespace knot::config {

// JSON text of v for messages; bytes that are not UTF-8 (possible in values built from command-line
// overrides, never in parsed files) print as U+FFFD instead of making dump() throw.
std::string printable(const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::replace); }

const char* type_name(const Json& v) {
  if (v.is_boolean()) return "bool";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  return "null";
}

namespace {

// A float with an integral value that fits int64 ("1e9", "5.0"), as an integer; otherwise unchanged.
Json integral_as_integer(const Json& v) {
  if (!v.is_number_float()) return v;
  const double d = v.get<double>();
  if (std::isfinite(d) && d == std::trunc(d) && d >= -9.2e18 && d <= 9.2e18) return Json(static_cast<int64_t>(d));
  return v;
}

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


// ---- the recorder (schema and resolved config) -------------------------------------------------

namespace {
thread_local Recorder* g_recorder = nullptr;

}  // namespace

Recorder::Recorder(bool stop_at_reading_done) : stop_(stop_at_reading_done), outer_(g_recorder) { g_recorder = this; }
Recorder::~Recorder() { g_recorder = outer_; }
Recorder* Recorder::active() { return g_recorder; }

void Recorder::alias(const std::string& context, const std::string& path) { aliases_[context] = path; }

std::string Recorder::path_of(const std::string& context, const std::string& key) const {
  // The longest aliased prefix of the context names its place in the file.
  std::string prefix = context == "config" ? "" : context;
  size_t best = 0;
  for (const auto& [ctx, path] : aliases_) {
    const bool match = context == ctx || (context.size() > ctx.size() && context.compare(0, ctx.size(), ctx) == 0 &&
                                          context[ctx.size()] == '.');
    if (match && ctx.size() > best) {
      best = ctx.size();
      const std::string rest = context.substr(ctx.size());  // "" or ".sub"
      prefix = path.empty() ? (rest.empty() ? "" : rest.substr(1)) : path + rest;
    }
  }
  return prefix.empty() ? key : prefix + "." + key;
}

void Recorder::record(const std::string& context, const std::string& key, KeyInfo info) {
  info.path = path_of(context, key);
  const auto it = index_.find(info.path);
  if (it == index_.end()) {
    index_.emplace(info.path, keys_.size());
    keys_.push_back(std::move(info));
    return;
  }
  KeyInfo& k = keys_[it->second];  // read again (a second reader of the same object): keep what is known
  if (k.doc.empty()) k.doc = info.doc;
  if (k.type == "JSON") k.type = info.type;
  k.value = info.value;
}

ContextAlias::ContextAlias(std::vector<std::string> contexts, const std::string& path)
    : contexts_(std::move(contexts)), rec_(Recorder::active()) {
  if (rec_)
    for (const auto& c : contexts_) rec_->alias(c, path);
}

ContextAlias::~ContextAlias() {
  if (rec_)
    for (const auto& c : contexts_) rec_->unalias(c);
}

void warn_deprecated(const std::string& context, const std::string& old_key, const std::string& now) {
  static std::mutex mu;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(mu);
  if (!warned.insert(context + "." + old_key).second) return;
  std::fprintf(stderr,
               "warning: config '%s': key '%s' is deprecated and will be removed in the next release; it is now %s\n",
               context.c_str(), old_key.c_str(), now.c_str());
}

void Recorder::mark_filled_by_task(const std::string& context, const std::string& key) {
  const auto it = index_.find(path_of(context, key));
  if (it != index_.end()) keys_[it->second].filled_by_task = true;
}

namespace {
// Sets `value` at the dotted `path` under `root`, creating objects on the way. An object read whole
// and then key by key (a child reader) keeps the keys its reads set and gains the rest.
void set_path(Json& root, const std::string& path, const Json& value) {
  Json* node = &root;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (dot == std::string::npos) {
      Json& slot = (*node)[part];
      if (slot.is_object() && value.is_object()) {
        for (auto it = value.begin(); it != value.end(); ++it)
          if (!slot.contains(it.key())) slot[it.key()] = *it;
      } else {
        slot = value;
      }
      return;
    }
    Json& next = (*node)[part];
    if (!next.is_object()) next = Json::object();
    node = &next;
    start = dot + 1;
  }
}
}  // namespace

Json resolved_config(const std::vector<KeyInfo>& keys) {
  Json root = Json::object();
  for (const KeyInfo& k : keys) {
    if (k.filled_by_task || k.path.find("[]") != std::string::npos || k.path.rfind("kan_", 0) == 0) continue;
    set_path(root, k.path, k.value);
  }
  return root;
}

void reading_done() {
  if (g_recorder && g_recorder->stops()) throw ReadingDone{};
}

// ---- the reader ------------------------------------------------------------------------------

Reader::Reader(const Json& j, std::string context) : j_(j), ctx_(std::move(context)) {
  KNOT_CHECK(j_.is_object(), "config '{}': expected a JSON object, got a {}", ctx_, type_name(j_));
}

void Reader::record(const std::string& key, const char* type, const Json& fallback, bool required,
                    std::string_view doc, const Json& value) const {
  Recorder* rec = Recorder::active();
  if (!rec) return;
  KeyInfo info;
  info.type = type;
  info.fallback = fallback;
  info.required = required;
  info.doc = std::string(doc);
  info.value = value;
  rec->record(ctx_, key, std::move(info));
}

template <typename T>
T Reader::convert(const std::string& key, const Json& v) const {
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

namespace {
template <typename T>
const char* type_of(const Json& fallback) {
  if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_same_v<T, int64_t>) return "integer";
  else if constexpr (std::is_same_v<T, double>) return "number";
  else if constexpr (std::is_same_v<T, std::string>) return "string";
  else return fallback.is_array() ? "list" : fallback.is_object() ? "object" : "JSON";
}
}  // namespace

template <typename T>
T Reader::get(const std::string& key, const T& fallback, std::string_view doc) {
  known_.insert(key);
  if (!j_.contains(key)) {
    record(key, type_of<T>(Json(fallback)), Json(fallback), false, doc, Json(fallback));
    return fallback;
  }
  T v = convert<T>(key, j_.at(key));
  record(key, type_of<T>(Json(fallback)), Json(fallback), false, doc, Json(v));
  return v;
}

template <typename T>
T Reader::require(const std::string& key, std::string_view doc) {
  known_.insert(key);
  // A required object (a task's "model") shows as one.
  const char* type = std::is_same_v<T, Json> && j_.contains(key) && j_.at(key).is_object() ? "object" : type_of<T>(Json());
  if (!j_.contains(key)) record(key, type, Json(), true, doc, Json());
  KNOT_CHECK(j_.contains(key), "config '{}': missing required key '{}'", ctx_, key);
  T v = convert<T>(key, j_.at(key));
  record(key, type, Json(), true, doc, Json(v));
  return v;
}

Reader Reader::child(const std::string& key, std::string_view doc) {
  known_.insert(key);
  const Json v = j_.contains(key) ? j_.at(key) : Json::object();
  KNOT_CHECK(v.is_object(), "config '{}': key '{}' must be an object, got {} {}", ctx_, key, type_name(v),
             printable(v));
  record(key, "object", Json::object(), false, doc, Json::object());
  return Reader(v, ctx_ == "config" ? key : ctx_ + "." + key);
}

void Reader::renamed(const std::string& old_key, const std::string& new_key) {
  known_.insert(old_key);
  if (!j_.contains(old_key)) return;
  KNOT_CHECK(!j_.contains(new_key), "config '{}': keys '{}' and '{}' are the same setting ('{}' is its old name); keep '{}'",
             ctx_, old_key, new_key, old_key, new_key);
  warn_deprecated(ctx_, old_key, "'" + new_key + "'");
  j_[new_key] = j_.at(old_key);
  j_.erase(old_key);
}

void Reader::filled_by_task(const std::string& key) const {
  if (Recorder* rec = Recorder::active()) rec->mark_filled_by_task(ctx_, key);
}

void Reader::finish() const {
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

template bool Reader::get<bool>(const std::string&, const bool&, std::string_view);
template int64_t Reader::get<int64_t>(const std::string&, const int64_t&, std::string_view);
template double Reader::get<double>(const std::string&, const double&, std::string_view);
template std::string Reader::get<std::string>(const std::string&, const std::string&, std::string_view);
template Json Reader::get<Json>(const std::string&, const Json&, std::string_view);
template bool Reader::require<bool>(const std::string&, std::string_view);
template int64_t Reader::require<int64_t>(const std::string&, std::string_view);
template double Reader::require<double>(const std::string&, std::string_view);
template std::string Reader::require<std::string>(const std::string&, std::string_view);
template Json Reader::require<Json>(const std::string&, std::string_view);

}  // namespace knot::config
