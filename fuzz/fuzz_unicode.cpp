// libFuzzer target: UTF-8 decoding, normalisation, lower-casing and BERT's basic tokenizer
// (data/unicode.h, data/wordpiece.h) on arbitrary bytes.
#include "data/unicode.h"
#include "data/wordpiece.h"
#include "fuzz/fuzz.h"

namespace uc = knot::data::unicode;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = knot::fuzz::bytes(data, size);
  const std::u32string cps = uc::decode_utf8(in);
  FUZZ_CHECK(cps.size() <= in.size());
  for (char32_t c : cps) FUZZ_CHECK(c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF));
  // Decoding never fails, and what it produced is well-formed: encoding then decoding is the identity.
  const std::string utf8 = uc::encode_utf8(cps);
  FUZZ_CHECK(uc::decode_utf8(utf8) == cps);
  if (cps.find(uc::kReplacement) == std::u32string::npos) FUZZ_CHECK(utf8 == in);  // valid input passes unchanged
  const auto d = uc::nfd(cps), c = uc::nfc(cps), k = uc::nfkc(cps);
  FUZZ_CHECK(uc::nfc(d) == c);  // Unicode's stability: NFC(NFD(x)) == NFC(x)
  FUZZ_CHECK(uc::nfd(c) == d);
  FUZZ_CHECK(uc::nfkc(k) == k);
  const auto lower = uc::to_lower_word(cps);
  FUZZ_CHECK(lower.size() == cps.size());
  for (char32_t ch : cps) {
    uc::to_lower(ch);
    uc::is_whitespace(ch);
    uc::is_nonspacing_mark(ch);
    uc::is_other(ch);
    uc::is_regex_word(ch);
    uc::is_bert_punctuation(ch);
    uc::is_bert_control(ch);
    uc::is_cjk_ideograph(ch);
  }
  for (const auto& w : knot::data::WordPieceTokenizer::basic_tokenize(in)) FUZZ_CHECK(!w.empty());
  return 0;
}
