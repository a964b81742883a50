// Unicode helpers for the tokenizers: UTF-8 decoding that never fails (ill-formed bytes become
// U+FFFD, one per maximal ill-formed subpart as the Unicode standard recommends, §3.9), encoding,
// normalisation forms via libutf8proc, and the character classes BERT's BasicTokenizer uses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace knot::data::unicode {

inline constexpr char32_t kReplacement = 0xFFFD;

// UTF-8 → code points. Never reads past s.end(); overlongs, surrogates, code points above
// U+10FFFF and truncated sequences each become U+FFFD.
std::u32string decode_utf8(std::string_view s);
// Code points → UTF-8. Values that are not scalar values (surrogates, > U+10FFFF) become U+FFFD.
std::string encode_utf8(std::u32string_view cps);
void append_utf8(std::string& out, char32_t cp);

// Normalisation forms (utf8proc, canonical ordering included).
std::u32string nfd(std::u32string_view cps);
std::u32string nfc(std::u32string_view cps);
std::u32string nfkc(std::u32string_view cps);

// Simple (one to one) lower-case mapping; BERT then strips the marks a full mapping would add.
char32_t to_lower(char32_t cp);
// Lower-cases a word as Python's str.lower does (what BERT's tokenizer calls): the simple mapping,
// plus the one context rule, Final_Sigma: a capital sigma that ends a word becomes 'ς', not 'σ'.
std::u32string to_lower_word(std::u32string_view word);

// The Unicode White_Space property (what Rust's char::is_whitespace and Python's str.split use).
bool is_whitespace(char32_t cp);
// Category tests.
bool is_nonspacing_mark(char32_t cp);  // Mn: what BERT's accent stripping removes after NFD
bool is_other(char32_t cp);            // C*: Cc, Cf, Cs, Co, Cn
bool is_regex_word(char32_t cp);       // regex \w: L*, M*, Nd, Pc (Hugging Face's Whitespace splitter)
// BERT: ASCII 33-47, 58-64, 91-96, 123-126 (so $ + < = > ^ ` | ~ count) plus every P* category.
bool is_bert_punctuation(char32_t cp);
// BERT: control characters are dropped, except tab, newline and carriage return (whitespace).
bool is_bert_control(char32_t cp);
// BERT's "Chinese character" blocks: CJK Unified Ideographs, extensions A-E, compatibility.
bool is_cjk_ideograph(char32_t cp);

}  // namespace knot::data::unicode
