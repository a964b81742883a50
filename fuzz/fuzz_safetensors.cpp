// libFuzzer target: the safetensors reader (core/safetensors.h) over a whole file's bytes.
#include "core/safetensors.h"
#include "fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = knot::fuzz::bytes(data, size);
  knot::SafetensorsFile f;
  if (!knot::fuzz::accepts([&] { f = knot::parse_safetensors(in, "fuzz.safetensors"); })) return 0;
  // Accepted: every tensor's bytes came from the data section, which the tensors may not overlap in.
  uint64_t total = 0;
  for (const auto& [name, t] : f.tensors) {
    FUZZ_CHECK(name != "__metadata__");
    total += t.nbytes();
  }
  FUZZ_CHECK(total <= size);
  return 0;
}
