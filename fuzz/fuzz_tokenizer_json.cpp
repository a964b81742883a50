// libFuzzer target: a Hugging Face tokenizer.json (data/bpe.h), then encode/decode with it.
#include <optional>

#include "data/bpe.h"
#include "fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = knot::fuzz::bytes(data, size);
  std::optional<knot::data::BpeTokenizer> tok;
  if (!knot::fuzz::accepts([&] { tok.emplace(knot::data::BpeTokenizer::from_json_text(in, "fuzz.json")); })) return 0;
  // What a loaded tokenizer would save must load again, with the same vocabulary.
  knot::data::BpeTokenizer again = knot::data::BpeTokenizer::from_json(tok->to_json(), "saved");
  FUZZ_CHECK(again.vocab_size() == tok->vocab_size());
  for (std::string_view text : {std::string_view("Hello w\xC3\xB6rld, ein Haus!  \xE6\x97\xA5\xE6\x9C\xAC \xE2\x96\x81x\n"),
                                in.substr(0, 256)}) {
    // Encoding may refuse (no unk token for an unknown character, no <sos> for special tokens):
    // with a knot::Error, like the loader.
    for (bool specials : {false, true}) {
      knot::fuzz::accepts([&] {
        const auto ids = tok->encode(text, specials);
        for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < tok->vocab_size());
        tok->decode(ids, true);
        tok->decode(ids, false);
      });
    }
    knot::fuzz::accepts([&] { tok->tokenize(text); });
  }
  return 0;
}
