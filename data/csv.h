// Numeric CSV tables: a header row of column names, then one row of numbers per line.
// Errors name the file, the line and the column (a bad number, a short row, an empty file, a column
// name that appears twice in the header).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace knot::data {

struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;
  // Columns by name as an (rows, names.size()) f32 or f64 tensor; unknown names are errors.
  Tensor select(const std::vector<std::string>& names, DType dtype = DType::f32) const;
  int index_of(const std::string& name) const;  // -1 if absent
};

CsvTable read_csv(const std::string& path);
// Written to PATH.tmp and renamed, so PATH is never half-written; PATH.tmp is removed on failure.
// check_csv_output (called first) names a PATH that cannot be written: a directory, a missing
// parent directory.
void check_csv_output(const std::string& path);
// The same over the text of a file held in memory; `name` stands for the file in errors.
CsvTable parse_csv(std::string_view text, const std::string& name = "<memory>");
void write_csv(const std::string& path, const std::vector<std::string>& columns, const std::vector<std::vector<double>>& rows);

}  // namespace knot::data
