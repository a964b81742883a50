// JSON Lines files (one JSON object per line, UTF-8, '\n' separated) and atomic file writes.
// The layout kanformer reads for Multi30k: {"en": ..., "de": ...} per line. Errors name the file
// and the 1-based line: "data/ende/train.jsonl:17: not valid JSON: ...".
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace knot::data {

// Reads every non-empty line as a JSON value; a line that is not valid JSON or not valid UTF-8
// is an error naming the file and line.
std::vector<nlohmann::json> read_jsonl(const std::string& path);
// The same over the bytes of a file held in memory; `name` stands for the file in errors.
std::vector<nlohmann::json> parse_jsonl(std::string_view bytes, const std::string& name = "<memory>");

// One compact JSON value per line, non-ASCII kept as UTF-8 (not \u escapes) so files stay
// readable; invalid UTF-8 inside a string is an error (nlohmann refuses it), never written.
// ordered_json keeps keys in insertion order ({"en", "de"} as Multi30k's files have them).
std::string to_jsonl(const std::vector<nlohmann::json>& rows);
std::string to_jsonl(const std::vector<nlohmann::ordered_json>& rows);
void write_jsonl(const std::string& path, const std::vector<nlohmann::json>& rows);
void write_jsonl(const std::string& path, const std::vector<nlohmann::ordered_json>& rows);

// Writes `content` to path.tmp.<pid>, flushes it to disk and renames it over `path`, so a reader
// (or a killed run) never sees half a file. Creates the parent directory.
void write_file_atomic(const std::string& path, std::string_view content);

// The whole file as bytes; a missing or unreadable file is an error naming it.
std::string read_file_bytes(const std::string& path);

}  // namespace knot::data
