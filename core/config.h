// Config files: JSON (nlohmann/json) with Hydra-like `key.sub=value` overrides, read by one checked
// reader class whose reads are also the configs' schema.
//
//   load_json_file("configs/kanformer-mlp.json")      parse errors name the file, line and column
//   apply_override(cfg, "projection.kind=kan_bspline")  value parsed as JSON (else taken as a
//                                                      string); an existing key keeps its JSON type
//   apply_override(cfg, "activation_checkpointing=true") a key the file leaves out is added (Hydra's
//                                                      '+key=...' is accepted too): the configs are
//                                                      checked by their readers, which know every
//                                                      key, as Hydra's structured configs do
//
//   Reader r(cfg, "train");
//   int64_t steps = r.get<int64_t>("steps", 1000, "optimizer steps to train");
//   Reader opt = r.child("optimizer", "AdamW settings");  // a nested object; {} when absent
//   r.finish();                                           // unknown keys are errors naming them
//
// A read is the key's declaration: its name, type (T), default (the fallback) and meaning (the doc)
// are written once, where the value is used. While a Recorder is alive, every read on its thread is
// recorded, which is how `knot config --schema TASK` lists every key of a task and `knot config
// --check CONFIG` checks a whole config without running it (tools/config.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace knot::config {

using Json = nlohmann::json;

Json load_json_file(const std::string& path);
// The same parse over text in memory; `name` stands for the file in errors.
Json parse_json_text(std::string_view text, const std::string& name = "<memory>");
// Written to path + ".tmp", then renamed over `path`.
void save_json_file(const std::string& path, const Json& j);
void apply_override(Json& cfg, const std::string& assignment);
void apply_overrides(Json& cfg, const std::vector<std::string>& assignments);

// The JSON kind of v in messages: "bool", "integer", "number", "string", "object", "array", "null".
const char* type_name(const Json& v);
// JSON text of v for messages; bytes that are not UTF-8 (possible in values built from overrides)
// print as U+FFFD instead of making dump() throw.
std::string printable(const Json& v);

// One key as a read declared it.
struct KeyInfo {
  std::string path;     // dotted, from the file's top level: "train.optimizer.beta1"
  std::string type;     // "bool", "integer", "number", "string", "object", "list" or "JSON" (any)
  Json fallback;        // the default (null for a required key)
  bool required = false;
  std::string doc;      // what the key means; "" when the read gave none
  Json value;           // the value in effect: the config's, else the default
  bool filled_by_task = false;  // a task sets it (a vocabulary size from its tokenizer): Reader::filled_by_task
};

// While alive, records every Reader read on this thread (nested Recorders: the innermost records).
class Recorder {
 public:
  // stop_at_reading_done: reading_done() throws ReadingDone, so that a task's entry point can be
  // run for its config alone (`knot config --check/--schema`): it stops before any work.
  explicit Recorder(bool stop_at_reading_done = false);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Reads in context `context` are recorded under `path` ("" = the top level): the model readers
  // name their context after the model kind ("encoder_decoder"), which a task file holds under
  // "model". The context "config" always means the top level.
  void alias(const std::string& context, const std::string& path);
  void unalias(const std::string& context) { aliases_.erase(context); }
  const std::vector<KeyInfo>& keys() const { return keys_; }

  void record(const std::string& context, const std::string& key, KeyInfo info);  // for Reader
  void mark_filled_by_task(const std::string& context, const std::string& key);   // for Reader
  bool stops() const { return stop_; }
  static Recorder* active();

 private:
  std::vector<KeyInfo> keys_;
  std::string path_of(const std::string& context, const std::string& key) const;
  std::map<std::string, size_t> index_;  // path -> position in keys_
  std::map<std::string, std::string> aliases_;
  bool stop_;
  Recorder* outer_;
};

// While alive, the active Recorder (if any) records the reads in `contexts` under `path`: a task
// checks its "model" object with the model's own reader, whose context names the model kind.
class ContextAlias {
 public:
  ContextAlias(std::vector<std::string> contexts, const std::string& path);
  ~ContextAlias();
  ContextAlias(const ContextAlias&) = delete;
  ContextAlias& operator=(const ContextAlias&) = delete;

 private:
  std::vector<std::string> contexts_;
  Recorder* rec_;
};

// The deprecation warning of an old key (stderr, once per process for each context and key): "config
// 'train': key 'lamb' is deprecated ...; it is now 'kan_regularization'". `now` says what replaces it.
void warn_deprecated(const std::string& context, const std::string& old_key, const std::string& now);

// The config as recorded reads resolved it: every key with the value in effect, nested by path.
// Keys a task fills in are left out, and so are keys inside lists and basis options ("kan_<basis>."),
// which stay inside their list's or object's own value. Read again, it resolves to itself.
Json resolved_config(const std::vector<KeyInfo>& keys);

// Thrown by reading_done() under a stopping Recorder; not a std::exception, so that no error
// handler of a task mistakes it for a failure.
struct ReadingDone {};
// A task calls this once it has read and checked its whole config, before any work (reading data,
// training a tokenizer, building the model).
void reading_done();

// Typed, checked reads from one JSON object. `context` names the object in errors ("train",
// "train.optimizer"); "config" is the file's top level.
class Reader {
 public:
  Reader(const Json& j, std::string context);
  // Value of `key`, or `fallback` when absent. T: bool, int64_t, double, std::string, Json.
  template <typename T> T get(const std::string& key, const T& fallback, std::string_view doc = {});
  template <typename T> T require(const std::string& key, std::string_view doc = {});
  // The object under `key` ({} when absent) as a reader in context "<context>.<key>"; an error
  // naming the key when it holds something else.
  Reader child(const std::string& key, std::string_view doc = {});
  // `old_key`, an earlier spelling of `new_key`: when the object holds it, a deprecation warning
  // (stderr, once per process and key) and the value moves to `new_key`; both at once is an error.
  // Call before reading `new_key`.
  void renamed(const std::string& old_key, const std::string& new_key);
  bool has(const std::string& key) const { return j_.contains(key); }
  // The object as read (after renamed()).
  const Json& raw() const { return j_; }
  // Throws when the object holds a key that no get/require/child/ignore asked for.
  void finish() const;
  void ignore(const std::string& key) { known_.insert(key); }
  // Marks `key` (already read) as one the task fills in from elsewhere (a model's vocabulary size, set
  // from the tokenizer): the schema still lists it, a resolved config leaves it out.
  void filled_by_task(const std::string& key) const;
  const std::string& context() const { return ctx_; }

 private:
  template <typename T> T convert(const std::string& key, const Json& v) const;
  void record(const std::string& key, const char* type, const Json& fallback, bool required, std::string_view doc,
              const Json& value) const;
  Json j_;  // a copy: readers are often built from temporaries (r.get<Json>("sub"))
  std::string ctx_;
  std::set<std::string> known_;
};

}  // namespace knot::config
