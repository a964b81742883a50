// libFuzzer target: the numeric CSV reader (data/csv.h).
#include <cmath>

#include "data/csv.h"
#include "fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = knot::fuzz::bytes(data, size);
  knot::data::CsvTable t;
  if (!knot::fuzz::accepts([&] { t = knot::data::parse_csv(in, "fuzz.csv"); })) return 0;
  FUZZ_CHECK(!t.columns.empty() && !t.rows.empty());
  for (const auto& r : t.rows) {
    FUZZ_CHECK(r.size() == t.columns.size());
    for (double v : r) FUZZ_CHECK(std::isfinite(v));
  }
  for (size_t i = 0; i < t.columns.size(); ++i) FUZZ_CHECK(t.index_of(t.columns[i]) <= static_cast<int>(i));
  return 0;
}
