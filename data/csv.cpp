// Numeric CSV reading and writing (see csv.h).
#include "data/csv.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace knot::data {
namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream is(line);
  while (std::getline(is, cell, ',')) {
    const auto b = cell.find_first_not_of(" \t\r"), e = cell.find_last_not_of(" \t\r");
    out.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
  }
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

// A cell as error messages show it: control bytes (a NUL would end the message) as \xNN.
std::string shown(const std::string& cell) {
  std::string out;
  for (const char c : cell) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) out += fmt::format("\\x{:02X}", u);
    else out += c;
  }
  return out;
}

}  // namespace

int CsvTable::index_of(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return static_cast<int>(i);
  return -1;
}

Tensor CsvTable::select(const std::vector<std::string>& names, DType dtype) const {
  std::vector<int> idx;
  for (const auto& n : names) {
    const int i = index_of(n);
    KNOT_CHECK(i >= 0, "csv: no column '{}' (columns: {})", n, fmt::join(columns, ", "));
    idx.push_back(i);
  }
  std::vector<double> v;
  v.reserve(rows.size() * idx.size());
  for (const auto& r : rows)
    for (int i : idx) v.push_back(r[static_cast<size_t>(i)]);
  return from_vector(v, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(idx.size())}).to(dtype);
}

CsvTable read_csv(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  KNOT_CHECK(f.good(), "csv: cannot open '{}'", path);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  KNOT_CHECK(!f.bad(), "csv: error while reading '{}'", path);
  return parse_csv(text, path);
}

CsvTable parse_csv(std::string_view text, const std::string& path) {
  CsvTable t;
  size_t lineno = 0;
  size_t pos = 0;
  while (pos < text.size()) {  // lines as std::getline splits them: a final '\n' starts no empty line
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(pos, end - pos));
    pos = end + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (t.columns.empty()) {
      t.columns = split(line);
      for (size_t i = 0; i < t.columns.size(); ++i) {
        KNOT_CHECK(!t.columns[i].empty(), "csv: {}:{}: empty column name in the header", path, lineno);
        for (size_t j = 0; j < i; ++j)
          KNOT_CHECK(t.columns[j] != t.columns[i],
                     "csv: {}:{}: column '{}' appears twice in the header (columns {} and {}); column names must be "
                     "unique",
                     path, lineno, t.columns[i], j + 1, i + 1);
      }
      continue;
    }
    const auto cells = split(line);
    KNOT_CHECK(cells.size() == t.columns.size(), "csv: {}:{}: {} values but the header has {} columns", path, lineno,
               cells.size(), t.columns.size());
    std::vector<double> row(cells.size());
    for (size_t i = 0; i < cells.size(); ++i) {
      const char* s = cells[i].c_str();
      char* end = nullptr;
      errno = 0;
      row[i] = std::strtod(s, &end);
      KNOT_CHECK(!cells[i].empty() && end == s + cells[i].size() && errno == 0 && std::isfinite(row[i]),
                 "csv: {}:{}: column '{}' has '{}', not a finite number", path, lineno, shown(t.columns[i]),
                 shown(cells[i]));
    }
    t.rows.push_back(std::move(row));
  }
  KNOT_CHECK(!t.columns.empty(), "csv: '{}' is empty (expected a header row)", path);
  KNOT_CHECK(!t.rows.empty(), "csv: '{}' has a header but no data rows", path);
  return t;
}

void check_csv_output(const std::string& path) {
  std::error_code ec;
  KNOT_CHECK(!path.empty(), "csv: empty output file name");
  KNOT_CHECK(!std::filesystem::is_directory(path, ec), "csv: cannot write '{}': it is a directory; give a file name",
             path);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  KNOT_CHECK(parent.empty() || std::filesystem::is_directory(parent, ec),
             "csv: cannot write '{}': directory '{}' does not exist", path, parent.string());
}

void write_csv(const std::string& path, const std::vector<std::string>& columns, const std::vector<std::vector<double>>& rows) {
  check_csv_output(path);
  const std::string tmp = path + ".tmp";
  try {
    {
      std::ofstream f(tmp);
      KNOT_CHECK(f.good(), "csv: cannot open '{}' for writing", tmp);
      f << fmt::format("{}\n", fmt::join(columns, ","));
      for (const auto& r : rows) f << fmt::format("{}\n", fmt::join(r, ","));
      f.flush();
      KNOT_CHECK(f.good(), "csv: writing '{}' failed", tmp);
    }
    KNOT_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "csv: cannot move '{}' to '{}': {}", tmp, path,
               std::strerror(errno));
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);  // never leave the half-written file behind
    throw;
  }
}

}  // namespace knot::data
