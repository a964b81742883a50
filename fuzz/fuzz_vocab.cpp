// libFuzzer target: a BERT vocab.txt (data/wordpiece.h), then WordPiece encoding with it.
#include <optional>

#include "data/wordpiece.h"
#include "fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = knot::fuzz::bytes(data, size);
  std::optional<knot::data::WordPieceTokenizer> tok;
  if (!knot::fuzz::accepts([&] { tok.emplace(knot::data::WordPieceTokenizer::from_vocab_text(in, "fuzz.txt")); })) return 0;
  FUZZ_CHECK(tok->vocab_size() > 0 && tok->unk_id() >= 0);
  for (std::string_view text : {std::string_view("Hello, W\xC3\xB6RLD! [MASK] un\xC3\xA4" "ffable \xE4\xB8\xAD\xE6\x96\x87 \xCE\xA3\xCE\xA3"),
                                in.substr(0, 256)}) {
    const auto plain = tok->encode(text, /*add_special_tokens=*/false, /*max_length=*/16);
    for (int32_t id : plain) FUZZ_CHECK(id >= 0 && id < tok->vocab_size());
    FUZZ_CHECK(plain.size() <= 16);
    tok->decode(plain, true);
    tok->decode(plain, false);
    // With special tokens a vocabulary without [CLS] and [SEP] refuses, with a knot::Error.
    knot::fuzz::accepts([&] {
      const auto ids = tok->encode(text, /*add_special_tokens=*/true, /*max_length=*/16);
      FUZZ_CHECK(ids.size() <= 16);
      const auto pair = tok->encode_pair(text, in.substr(0, 64), true, 12);
      FUZZ_CHECK(pair.ids.size() == pair.token_type_ids.size() && pair.ids.size() <= 12);
    });
  }
  return 0;
}
