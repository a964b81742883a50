// Unicode helpers (see unicode.h). Normalisation and categories come from libutf8proc.
#include "data/unicode.h"

#include <utf8proc.h>

#include <vector>

#include "core/error.h"

namespace knot::data::unicode {

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b0 = p[i];
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    // Sequence length and the allowed range of the second byte (Table 3-7 of the standard):
    // the narrowed ranges exclude overlongs (E0, F0), surrogates (ED) and > U+10FFFF (F4).
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    char32_t cp = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, cp = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, cp = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {  // continuation byte without a lead, C0/C1 (always overlong) or F5..FF
      out.push_back(kReplacement);
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool ok = true;
    for (int k = 1; k < len; ++k, ++j) {
      const unsigned char lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;
      if (j >= n || p[j] < lo_k || p[j] > hi_k) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (p[j] & 0x3F);
    }
    // On failure the bytes consumed so far are one maximal subpart → one U+FFFD; the offending
    // byte is looked at again as a possible lead.
    out.push_back(ok ? cp : kReplacement);
    i = j;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacement;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

namespace {

// utf8proc normalises UTF-8 input into a code point buffer; going through UTF-8 (always valid
// here, built by encode_utf8) gets its canonical reordering, which the per-character API skips.
std::u32string normalize(std::u32string_view cps, utf8proc_option_t options) {
  if (cps.empty()) return {};
  const std::string utf8 = encode_utf8(cps);
  const auto* src = reinterpret_cast<const utf8proc_uint8_t*>(utf8.data());
  const auto len = static_cast<utf8proc_ssize_t>(utf8.size());
  const auto decompose = static_cast<utf8proc_option_t>(options & ~UTF8PROC_COMPOSE);
  std::vector<utf8proc_int32_t> buf(cps.size() * 4 + 16);
  utf8proc_ssize_t n = utf8proc_decompose(src, len, buf.data(), static_cast<utf8proc_ssize_t>(buf.size()), decompose);
  if (n > static_cast<utf8proc_ssize_t>(buf.size())) {  // the buffer was too small: n is the size needed
    buf.resize(static_cast<size_t>(n));
    n = utf8proc_decompose(src, len, buf.data(), n, decompose);
  }
  KNOT_CHECK(n >= 0, "unicode: utf8proc normalisation failed: {}", utf8proc_errmsg(n));
  if (options & UTF8PROC_COMPOSE) {
    n = utf8proc_normalize_utf32(buf.data(), n, options);
    KNOT_CHECK(n >= 0, "unicode: utf8proc composition failed: {}", utf8proc_errmsg(n));
  }
  return std::u32string(buf.begin(), buf.begin() + n);
}

}  // namespace

std::u32string nfd(std::u32string_view cps) {
  return normalize(cps, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
}
std::u32string nfc(std::u32string_view cps) {
  return normalize(cps, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPOSE));
}
std::u32string nfkc(std::u32string_view cps) {
  return normalize(cps, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPOSE |
                                                       UTF8PROC_COMPAT));
}

char32_t to_lower(char32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
}

namespace {
bool is_cased_letter(char32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}
bool is_case_ignorable(char32_t cp) {
  const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME || c == UTF8PROC_CATEGORY_CF ||
         c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_SK || cp == '\'' || cp == U'\u2019' || cp == '.' || cp == ':';
}
}  // namespace

std::u32string to_lower_word(std::u32string_view word) {
  std::u32string out(word);
  for (size_t i = 0; i < word.size(); ++i) {
    if (word[i] != U'\u03A3') {
      out[i] = to_lower(word[i]);
      continue;
    }
    // Final_Sigma (Unicode §3.13): a cased letter before (case-ignorables skipped), none after.
    size_t b = i;
    while (b > 0 && is_case_ignorable(word[b - 1])) --b;
    size_t a = i + 1;
    while (a < word.size() && is_case_ignorable(word[a])) ++a;
    const bool final_sigma = b > 0 && is_cased_letter(word[b - 1]) && !(a < word.size() && is_cased_letter(word[a]));
    out[i] = final_sigma ? U'\u03C2' : U'\u03C3';
  }
  return out;
}

bool is_whitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

namespace {
utf8proc_category_t category(char32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}
}  // namespace

bool is_nonspacing_mark(char32_t cp) { return category(cp) == UTF8PROC_CATEGORY_MN; }

bool is_other(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN: return true;
    default: return false;
  }
}

bool is_regex_word(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC: return true;
    default: return false;
  }
}

bool is_bert_punctuation(char32_t cp) {
  // BERT counts every non-alphanumeric printable ASCII character, symbols included, so that
  // "$5" and "a+b" split the way its vocabulary expects.
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126))
    return true;
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF: case UTF8PROC_CATEGORY_PO: return true;
    default: return false;
  }
}

bool is_bert_control(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  // Hugging Face's BERT normaliser drops every C* code point; Google's original only Cc and Cf.
  // They differ on unassigned and private-use characters only, which no vocabulary holds.
  return is_other(cp);
}

bool is_cjk_ideograph(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

}  // namespace knot::data::unicode
