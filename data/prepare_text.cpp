// Text helpers for data preparation: UTF-8 validation and Latin-1 conversion, whitespace,
// English sentence splitting, and a platform-independent shuffle/split.
#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/error.h"
#include "data/prepare.h"

namespace knot::data {

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    int len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte (Unicode Table 3-7)
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }          // no overlongs
    else if (c == 0xED) { len = 3; hi = 0x9F; }          // no surrogates
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }          // no overlongs
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }          // nothing above U+10FFFF
    else return false;
    if (i + len > n) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (int k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

std::string to_utf8(std::string_view s) { return is_valid_utf8(s) ? std::string(s) : latin1_to_utf8(s); }

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

std::string collapse_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending = false;
  for (const char c : s) {
    if (is_space(c)) {
      pending = !out.empty();
    } else {
      if (pending) out += ' ';
      pending = false;
      out += c;
    }
  }
  return out;
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    const size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) words.emplace_back(s.substr(start, i - start));
  }
  return words;
}

// ---- sentences ------------------------------------------------------------------------------------

// Words after which a period does not end a sentence in the addresses (titles, months, common
// abbreviations); compared without the trailing period, case-sensitively.
static const std::unordered_set<std::string_view>& abbreviations() {
  static const std::unordered_set<std::string_view> set = {
      "Mr", "Mrs", "Ms", "Messrs", "Dr", "St", "Jr", "Sr", "Gen", "Col", "Capt", "Lt", "Maj", "Adm",
      "Gov", "Sen", "Rep", "Hon", "Rev", "Prof", "Sec", "Gov't", "No", "Nos", "Art", "Sec", "vs", "viz",
      "etc", "cf", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sept", "Sep", "Oct", "Nov", "Dec",
      "Co", "Corp", "Inc", "Ltd", "Bros", "Ft", "Mt", "Vol", "Ch", "pp", "ca", "approx"};
  return set;
}

static bool is_closer(char c) { return c == '"' || c == '\'' || c == ')' || c == ']'; }

// Whether the word ending just before the period at `dot` is an abbreviation: a known one, a single
// letter (an initial: "Harry S. Truman"), or one with inner periods ("U.S.", "e.g.").
static bool ends_with_abbreviation(std::string_view text, size_t dot) {
  size_t start = dot;
  while (start > 0 && !is_space(text[start - 1]) && text[start - 1] != '(' && text[start - 1] != '"') --start;
  const std::string_view word = text.substr(start, dot - start);
  if (word.empty()) return false;
  if (word.size() == 1 && std::isalpha(static_cast<unsigned char>(word[0]))) return true;
  if (word.find('.') != std::string_view::npos) return true;
  return abbreviations().count(word) > 0;
}

std::vector<std::string> split_sentences(std::string_view text) {
  std::vector<std::string> out;
  size_t begin = 0;
  const size_t n = text.size();
  auto flush = [&](size_t end) {
    std::string s = collapse_spaces(text.substr(begin, end - begin));
    if (!s.empty()) out.push_back(std::move(s));
    begin = end;
  };
  for (size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (c != '.' && c != '!' && c != '?') continue;
    size_t j = i + 1;
    while (j < n && (text[j] == '.' || text[j] == '!' || text[j] == '?')) ++j;  // "?!" and "..."
    while (j < n && is_closer(text[j])) ++j;
    if (j >= n || !is_space(text[j])) continue;
    size_t k = j;
    while (k < n && is_space(text[k])) ++k;
    if (k >= n) break;
    const unsigned char next = static_cast<unsigned char>(text[k]);
    const bool starts_sentence = std::isupper(next) || std::isdigit(next) || next == '"' || next == '\'' ||
                                 next == '(' || next >= 0x80;
    if (!starts_sentence) continue;
    if (c == '.' && j == i + 1 && ends_with_abbreviation(text, i)) continue;
    // List numbers ("2. The Treasury ...") and figures ("200.") are not sentences of their own.
    const std::string_view piece = text.substr(begin, j - begin);
    if (std::none_of(piece.begin(), piece.end(), [](char ch) { return std::isalpha(static_cast<unsigned char>(ch)); }))
      continue;
    flush(j);
    i = j - 1;
  }
  flush(n);
  return out;
}

// ---- shuffle and split ----------------------------------------------------------------------------

static uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void shuffle_indices(std::vector<size_t>& idx, uint64_t seed) {
  uint64_t state = seed;
  for (size_t i = idx.size(); i > 1; --i) {
    // The modulo bias is below 2^-40 for any realistic size; not worth rejection sampling.
    const size_t j = static_cast<size_t>(splitmix64(state) % i);
    std::swap(idx[i - 1], idx[j]);
  }
}

SplitIndices split_indices(size_t n, double val_fraction, double test_fraction, uint64_t seed) {
  KNOT_CHECK(val_fraction >= 0 && test_fraction >= 0 && val_fraction + test_fraction < 1,
             "split: fractions must be non-negative and leave a training part, got val {} test {}", val_fraction,
             test_fraction);
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  shuffle_indices(idx, seed);
  size_t n_test = static_cast<size_t>(std::llround(static_cast<double>(n) * test_fraction));
  size_t n_val = static_cast<size_t>(std::llround(static_cast<double>(n) * val_fraction));
  // Small data sets still get a non-empty val and test part when they ask for one.
  if (n >= 3 && test_fraction > 0 && n_test == 0) n_test = 1;
  if (n >= 3 && val_fraction > 0 && n_val == 0) n_val = 1;
  SplitIndices s;
  s.test.assign(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n_test));
  s.val.assign(idx.begin() + static_cast<std::ptrdiff_t>(n_test), idx.begin() + static_cast<std::ptrdiff_t>(n_test + n_val));
  s.train.assign(idx.begin() + static_cast<std::ptrdiff_t>(n_test + n_val), idx.end());
  return s;
}

}  // namespace knot::data
