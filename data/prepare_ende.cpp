// EN→DE sentence pairs from the Ding dictionary (Debian's trans-de-en, /usr/share/trans/de-en).
// Its lines read "German :: English"; '|' separates parallel sub-entries; most parts are words
// with annotations ({f}, [coll.]), and about 18k parts are example sentences, which we keep.
// The filters were chosen by reading the 2023-01-30 file (docs/data.md lists what each removes).
#include <algorithm>
#include <array>
#include <unordered_set>

#include "core/error.h"
#include "data/jsonl.h"
#include "data/prepare.h"

namespace knot::data {

namespace {

// Splits on every occurrence of `sep`, trimming spaces around each part.
std::vector<std::string_view> split_trim(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (true) {
    const size_t end = s.find(sep, pos);
    std::string_view part = s.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t' || part.back() == '\r')) part.remove_suffix(1);
    parts.push_back(part);
    if (end == std::string_view::npos) break;
    pos = end + sep.size();
  }
  return parts;
}

// "; " that follows . ! or ? separates alternative sentences ("Hör auf!; Lass das!"); a plain
// semicolon inside a sentence does not.
std::vector<std::string> split_alternatives(std::string_view s) {
  std::vector<std::string> out;
  size_t begin = 0;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    if (s[i] == ';' && s[i + 1] == ' ' && (s[i - 1] == '.' || s[i - 1] == '!' || s[i - 1] == '?')) {
      out.push_back(collapse_spaces(s.substr(begin, i - begin)));
      begin = i + 1;
    }
  }
  out.push_back(collapse_spaces(s.substr(begin)));
  return out;
}

// First code point of a UTF-8 string (0 if empty); the string is known to be valid UTF-8.
char32_t first_code_point(std::string_view s) {
  if (s.empty()) return 0;
  const auto c = static_cast<unsigned char>(s[0]);
  if (c < 0x80) return c;
  if ((c & 0xE0) == 0xC0 && s.size() >= 2) return (char32_t(c & 0x1F) << 6) | (s[1] & 0x3F);
  if ((c & 0xF0) == 0xE0 && s.size() >= 3) return (char32_t(c & 0x0F) << 12) | (char32_t(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  return 0xFFFF;  // outside the Latin scripts the pairs use: not upper-case for our purpose
}

// Upper-case letters of the scripts in the dictionary: ASCII, Latin-1 (Ä Ö Ü É ...) and Latin
// Extended-A, where upper-case letters sit on even code points with a few odd exceptions we ignore.
bool is_upper_letter(char32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return true;
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return true;
  if (cp >= 0x100 && cp <= 0x17F) return cp % 2 == 0;
  return false;
}

const std::unordered_set<std::string_view>& placeholders() {
  // Ding's templates for "somebody/something" in both languages; a sentence with one is a pattern
  // ("Er hat jdm. etw. gegeben."), not a sentence.
  static const std::unordered_set<std::string_view> set = {
      "etw.", "etw", "jd.", "jdn.", "jdm.", "jds.", "jdn", "jdm", "jds", "jmd.", "jmdn.", "jmdm.", "jmds.",
      "sb.", "sb", "sth.", "sth", "sb's", "sth's", "sb.'s", "sth.'s", "sbd."};  // not "so.": "I think so."
  return set;
}

}  // namespace

std::string strip_ding_annotations(std::string_view s) {
  // Balanced check first: stripping inside unbalanced brackets would eat half a sentence.
  std::string stack;
  for (const char c : s) {
    if (c == '{' || c == '[' || c == '<' || c == '(') {
      stack += c;
    } else if (c == '}' || c == ']' || c == '>' || c == ')') {
      const char open = c == '}' ? '{' : c == ']' ? '[' : c == '>' ? '<' : '(';
      if (stack.empty() || stack.back() != open) return collapse_spaces(s);
      stack.pop_back();
    }
  }
  if (!stack.empty()) return collapse_spaces(s);
  std::string kept;
  kept.reserve(s.size());
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '{' || c == '[' || c == '<' || c == '(') { ++depth; continue; }
    if (c == '}' || c == ']' || c == '>' || c == ')') { --depth; continue; }
    if (depth > 0) continue;
    // U+2019 and U+2018 (E2 80 99 / E2 80 98) → ASCII apostrophe: the file mixes both spellings.
    if (c == '\xE2' && i + 2 < s.size() && s[i + 1] == '\x80' && (s[i + 2] == '\x99' || s[i + 2] == '\x98')) {
      kept += '\'';
      i += 2;
      continue;
    }
    kept += c;
  }
  std::string out = collapse_spaces(kept);
  // "Er war nicht (ganz) bei der Sache ." after removal → no space before punctuation.
  std::string tidy;
  tidy.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == ' ' && i + 1 < out.size() && std::string_view(".,!?;:").find(out[i + 1]) != std::string_view::npos)
      continue;
    tidy += out[i];
  }
  return tidy;
}

bool is_clean_sentence(std::string_view s, std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  if (s.size() < 2) return fail("too short");
  if (!is_valid_utf8(s)) return fail("not valid UTF-8");
  if (!is_upper_letter(first_code_point(s))) return fail("does not start with a capital letter");
  const char last = s.back();
  if (last != '.' && last != '!' && last != '?') return fail("does not end with . ! or ?");
  if (s.find("...") != std::string_view::npos || s.find("\xE2\x80\xA6") != std::string_view::npos)
    return fail("has an ellipsis (a placeholder)");
  for (const char c : std::string_view("{}[]<>()/~|=")) {
    if (s.find(c) != std::string_view::npos) return fail(fmt::format("has '{}' (an alternative or annotation)", c));
  }
  const auto words = split_words(s);
  if (static_cast<int>(words.size()) > kMaxSentenceWords)
    return fail(fmt::format("has {} words (more than {})", words.size(), kMaxSentenceWords));
  for (const auto& w : words) {
    std::string lower;
    for (const char c : w) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // Trailing , ; : ! ? " belong to the sentence, not to the placeholder; a trailing '.' is
    // part of "etw." so it stays.
    while (!lower.empty() && std::string_view(",;:!?\"").find(lower.back()) != std::string_view::npos) lower.pop_back();
    if (placeholders().count(lower)) return fail(fmt::format("has the placeholder '{}'", w));
  }
  return true;
}

std::vector<SentencePair> parse_ding_line(std::string_view line, EndeStats* stats) {
  std::vector<SentencePair> out;
  const size_t sep = line.find("::");
  if (sep == std::string_view::npos) return out;
  const auto de_parts = split_trim(line.substr(0, sep), "|");
  const auto en_parts = split_trim(line.substr(sep + 2), "|");
  if (de_parts.size() != en_parts.size()) {
    if (stats) ++stats->mismatched_lines;
    return out;
  }
  for (size_t i = 0; i < de_parts.size(); ++i) {
    auto de_alts = split_alternatives(de_parts[i]);
    auto en_alts = split_alternatives(en_parts[i]);
    if (de_alts.size() != en_alts.size()) {
      de_alts.resize(1);
      en_alts.resize(1);
    }
    for (size_t k = 0; k < de_alts.size(); ++k) {
      const std::string de = strip_ding_annotations(de_alts[k]);
      const std::string en = strip_ding_annotations(en_alts[k]);
      const auto ends_sentence = [](const std::string& s) {
        return !s.empty() && (s.back() == '.' || s.back() == '!' || s.back() == '?');
      };
      // Only sentence-like parts count as candidates; dictionary words are the vast majority.
      if (!ends_sentence(de) || !ends_sentence(en)) continue;
      if (stats) ++stats->candidates;
      if (!is_clean_sentence(de) || !is_clean_sentence(en)) {
        if (stats) ++stats->rejected;
        continue;
      }
      out.push_back({en, de});
    }
  }
  return out;
}

std::vector<SentencePair> parse_ding(std::string_view text, EndeStats* stats) {
  EndeStats local;
  EndeStats& st = stats ? *stats : local;
  std::vector<SentencePair> all;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(pos, end - pos);
    pos = end + 1;
    if (raw.empty() || raw[0] == '#') continue;
    ++st.lines;
    std::string line;
    if (is_valid_utf8(raw)) {
      line.assign(raw);
    } else {
      line = latin1_to_utf8(raw);
      ++st.latin1_lines;
    }
    for (auto& p : parse_ding_line(line, &st)) all.push_back(std::move(p));
  }
  // Dedup in dictionary order, so the result does not depend on hashing.
  std::unordered_set<std::string> seen_pair, seen_en, seen_de;
  std::vector<SentencePair> kept;
  for (auto& p : all) {
    if (!seen_pair.insert(p.en + '\x1f' + p.de).second) { ++st.duplicates; continue; }
    if (seen_en.count(p.en)) { ++st.same_en; continue; }
    if (seen_de.count(p.de)) { ++st.same_de; continue; }
    seen_en.insert(p.en);
    seen_de.insert(p.de);
    kept.push_back(std::move(p));
  }
  st.kept = static_cast<int64_t>(kept.size());
  return kept;
}

PrepareResult prepare_ende_from_file(const std::string& dict_path, const PrepareOptions& opt) {
  const std::string dir = opt.data_dir + "/ende";
  const std::vector<std::string> names = {"train.jsonl", "val.jsonl", "test.jsonl"};
  PrepareResult res;
  if (!opt.force && is_prepared(dir)) {
    res.already_prepared = true;
    res.summary = fmt::format("ende: already prepared in {} (use --force to rebuild)", dir);
    return res;
  }
  check_overwrite(dir, names, opt.force);
  opt.log(fmt::format("ende: reading the dictionary {}", dict_path));
  const std::string text = read_file_bytes(dict_path);
  KNOT_CHECK(!text.empty(), "ende: the dictionary {} is empty", dict_path);
  EndeStats st;
  const auto pairs = parse_ding(text, &st);
  opt.log(fmt::format("ende: {} entry lines ({} Latin-1), {} sentence-like parts, {} rejected by the filters, "
                      "{} duplicate pairs, {} extra translations of an English sentence, {} of a German one",
                      st.lines, st.latin1_lines, st.candidates, st.rejected, st.duplicates, st.same_en, st.same_de));
  KNOT_CHECK(static_cast<int64_t>(pairs.size()) >= opt.min_ende_pairs,
             "ende: only {} sentence pairs in {} (expected at least {}); is it the Ding de-en dictionary?", pairs.size(),
             dict_path, opt.min_ende_pairs);
  const auto split = split_indices(pairs.size(), 0.05, 0.05, opt.seed);
  auto rows = [&](const std::vector<size_t>& idx) {
    std::vector<nlohmann::ordered_json> r;
    r.reserve(idx.size());
    for (const size_t i : idx) r.push_back({{"en", pairs[i].en}, {"de", pairs[i].de}});
    return r;
  };
  const std::vector<std::pair<std::string, const std::vector<size_t>*>> parts = {
      {"train.jsonl", &split.train}, {"val.jsonl", &split.val}, {"test.jsonl", &split.test}};
  for (const auto& [name, idx] : parts) {
    KNOT_CHECK(!idx->empty(), "ende: the {} split would be empty ({} pairs in all)", name, pairs.size());
    write_jsonl(dir + "/" + name, rows(*idx));
    res.files.emplace_back(dir + "/" + name, static_cast<int64_t>(idx->size()));
  }
  write_stamp(dir, "ende", opt.source_label.empty() ? dict_path : opt.source_label, res.files);
  res.summary = fmt::format("ende: {} pairs → train {}, val {}, test {} in {}", pairs.size(), split.train.size(),
                            split.val.size(), split.test.size(), dir);
  return res;
}

}  // namespace knot::data
