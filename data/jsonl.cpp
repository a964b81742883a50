// JSON Lines reading/writing and atomic writes (temporary file, fsync, rename).
#include "data/jsonl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_depth.h"

namespace knot::data {

namespace fs = std::filesystem;

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  KNOT_CHECK(in.good(), "read_file: cannot open {}: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  KNOT_CHECK(!in.bad(), "read_file: error while reading {}", path);
  return ss.str();
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) { return parse_jsonl(read_file_bytes(path), path); }

std::vector<nlohmann::json> parse_jsonl(std::string_view bytes, const std::string& path) {
  std::vector<nlohmann::json> rows;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find('\n', pos);
    if (end == std::string::npos) end = bytes.size();
    ++line_no;
    std::string_view line(bytes.data() + pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    try {
      rows.push_back(nlohmann::json::parse(line, json_depth_limit(fmt::format("read_jsonl: {}:{}", path, line_no))));
    } catch (const nlohmann::json::exception& e) {
      KNOT_FAIL("read_jsonl: {}:{}: not valid JSON: {}", path, line_no, e.what());
    }
  }
  return rows;
}

namespace {

template <class Json>
std::string to_jsonl_impl(const std::vector<Json>& rows) {
  std::string out;
  for (size_t i = 0; i < rows.size(); ++i) {
    try {
      out += rows[i].dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::strict);
    } catch (const nlohmann::json::exception& e) {
      KNOT_FAIL("to_jsonl: row {} cannot be written: {}", i, e.what());
    }
    out += '\n';
  }
  return out;
}

}  // namespace

std::string to_jsonl(const std::vector<nlohmann::json>& rows) { return to_jsonl_impl(rows); }
std::string to_jsonl(const std::vector<nlohmann::ordered_json>& rows) { return to_jsonl_impl(rows); }

void write_jsonl(const std::string& path, const std::vector<nlohmann::json>& rows) {
  write_file_atomic(path, to_jsonl(rows));
}
void write_jsonl(const std::string& path, const std::vector<nlohmann::ordered_json>& rows) {
  write_file_atomic(path, to_jsonl(rows));
}

void write_file_atomic(const std::string& path, std::string_view content) {
  const fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    KNOT_CHECK(!ec, "write_file: cannot create directory {}: {}", target.parent_path().string(), ec.message());
  }
  const std::string tmp = fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  KNOT_CHECK(fd >= 0, "write_file: cannot create {}: {}", tmp, std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      KNOT_FAIL("write_file: cannot write {}: {}", tmp, why);
    }
    done += static_cast<size_t>(n);
  }
  // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    KNOT_FAIL("write_file: cannot move {} to {}: {}", tmp, path, why);
  }
}

}  // namespace knot::data
