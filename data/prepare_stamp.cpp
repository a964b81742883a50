// The "prepared" stamp of a data step: data/<name>/prepared.json lists the step, its source and
// each output with its line count. It is written after all outputs, so its presence with matching
// files means a complete run; `knot data` then does nothing unless --force.
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/jsonl.h"
#include "data/prepare.h"

namespace knot::data {

namespace fs = std::filesystem;

static const char* kStampName = "prepared.json";

int64_t count_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  KNOT_CHECK(in.good(), "count_lines: cannot open {}", path);
  int64_t n = 0;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    for (std::streamsize i = 0; i < in.gcount(); ++i) n += buf[i] == '\n';
  }
  return n;
}

bool is_prepared(const std::string& dir, std::string* why_not) {
  auto no = [&](const std::string& why) {
    if (why_not) *why_not = why;
    return false;
  };
  const std::string stamp = dir + "/" + kStampName;
  if (!fs::exists(stamp)) return no(fmt::format("{} does not exist", stamp));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_bytes(stamp));
  } catch (const std::exception& e) {
    return no(fmt::format("{} is unreadable: {}", stamp, e.what()));
  }
  if (!j.contains("files") || !j["files"].is_object() || j["files"].empty()) return no(fmt::format("{} lists no files", stamp));
  for (const auto& [name, lines] : j["files"].items()) {
    const std::string path = dir + "/" + name;
    if (!fs::exists(path)) return no(fmt::format("{} is missing", path));
    if (!lines.is_number_integer() || count_lines(path) != lines.get<int64_t>())
      return no(fmt::format("{} does not have the {} lines recorded in {}", path, lines.dump(), stamp));
  }
  return true;
}

void write_stamp(const std::string& dir, const std::string& step, const std::string& source,
                 const std::vector<std::pair<std::string, int64_t>>& files) {
  nlohmann::json j;
  j["step"] = step;
  j["source"] = source;
  j["files"] = nlohmann::json::object();
  for (const auto& [path, lines] : files) {
    // The written count must be what is on disk, or the next run would think the data broken.
    const int64_t on_disk = count_lines(path);
    KNOT_CHECK(on_disk == lines, "{}: {} has {} lines, expected {}", step, path, on_disk, lines);
    j["files"][fs::path(path).filename().string()] = lines;
  }
  write_file_atomic(dir + "/" + kStampName, j.dump(2) + "\n");
}

void check_overwrite(const std::string& dir, const std::vector<std::string>& names, bool force) {
  if (force || fs::exists(dir + "/" + kStampName)) return;
  for (const auto& name : names) {
    const std::string path = dir + "/" + name;
    KNOT_CHECK(!fs::exists(path),
               "{} exists but was not written by `knot data` ({} has no {}); pass --force to replace it", path, dir,
               kStampName);
  }
}

}  // namespace knot::data
