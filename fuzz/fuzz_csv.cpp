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
  knot::fuzz::accepts([&] {  // duplicate column names make select pick the first: allowed
    const auto x = t.select({t.columns.front(), t.columns.back()}, knot::DType::f64);
    FUZZ_CHECK(x.shape() == (knot::Shape{static_cast<int64_t>(t.rows.size()), 2}));
  });
  return 0;
}
