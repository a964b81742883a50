// libFuzzer target: the JSON Lines reader (data/jsonl.h); what it accepts must write and read back.
#include "data/jsonl.h"
#include "fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = knot::fuzz::bytes(data, size);
  std::vector<nlohmann::json> rows;
  if (!knot::fuzz::accepts([&] { rows = knot::data::parse_jsonl(in, "fuzz.jsonl"); })) return 0;
  const std::string out = knot::data::to_jsonl(rows);
  const auto again = knot::data::parse_jsonl(out, "written.jsonl");
  FUZZ_CHECK(again == rows);
  return 0;
}
