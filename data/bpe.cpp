// BPE training, encoding and the Hugging Face tokenizer.json format (see bpe.h).
//
// Training keeps, per pair of adjacent symbols, its count over the corpus and the words it occurs
// in, plus a max-heap of (count, pair) whose entries may be stale: counts of existing pairs only
// fall when a merge happens (the pairs a merge creates all contain the new symbol and are pushed
// afresh), so a popped entry whose count is out of date is re-pushed with the true count and the
// first up-to-date entry popped is the true maximum. Each merge touches only the words holding
// the pair, never the whole corpus.
#include "data/bpe.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <fstream>
#include <queue>
#include <set>

#include "core/error.h"
#include "core/json_depth.h"
#include "data/unicode.h"

namespace knot::data {

namespace uc = unicode;
using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;

namespace {

constexpr char32_t kMetaspace = U'\u2581';  // '▁', SentencePiece's visible space
const std::vector<std::string> kSpecials = {"<sos>", "<eos>", "<unk>", "<pad>"};

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

std::string utf8(char32_t c) {
  std::string s;
  uc::append_utf8(s, c);
  return s;
}

}  // namespace

// ---- pipeline ---------------------------------------------------------------------------------

std::string BpeTokenizer::normalize(std::string_view text) const {
  std::u32string s = uc::decode_utf8(text);
  for (const auto& step : normalizer_) {
    switch (step.kind) {
      case NormStep::NFC: s = uc::nfc(s); break;
      case NormStep::NFD: s = uc::nfd(s); break;
      case NormStep::NFKC: s = uc::nfkc(s); break;
      case NormStep::Lowercase:
        for (auto& c : s) c = uc::to_lower(c);
        break;
      case NormStep::Strip: {
        size_t b = 0, e = s.size();
        if (step.left)
          while (b < e && uc::is_whitespace(s[b])) ++b;
        if (step.right)
          while (e > b && uc::is_whitespace(s[e - 1])) --e;
        s = s.substr(b, e - b);
        break;
      }
    }
  }
  return uc::encode_utf8(s);
}

namespace {

std::vector<std::u32string> apply_pre_step(const BpeTokenizer::PreStep& step, std::vector<std::u32string> pieces,
                                           bool first_segment) {
  using P = BpeTokenizer::PreStep;
  std::vector<std::u32string> out;
  for (size_t pi = 0; pi < pieces.size(); ++pi) {
    std::u32string& s = pieces[pi];
    if (s.empty()) continue;
    switch (step.kind) {
      case P::Metaspace: {
        for (auto& c : s)
          if (c == U' ') c = step.replacement;
        const bool prepend = step.prepend_scheme == "always" || (step.prepend_scheme == "first" && first_segment && pi == 0);
        if (prepend && s.front() != step.replacement) s.insert(s.begin(), step.replacement);
        if (!step.split) {
          out.push_back(std::move(s));
          break;
        }
        // The replacement starts a new piece and stays with the text after it.
        std::u32string cur;
        for (char32_t c : s) {
          if (c == step.replacement && !cur.empty()) out.push_back(std::move(cur)), cur.clear();
          cur.push_back(c);
        }
        if (!cur.empty()) out.push_back(std::move(cur));
        break;
      }
      case P::Punctuation: {
        std::u32string cur;
        for (char32_t c : s) {
          if (uc::is_bert_punctuation(c)) {
            if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
            out.emplace_back(1, c);
          } else {
            cur.push_back(c);
          }
        }
        if (!cur.empty()) out.push_back(std::move(cur));
        break;
      }
      case P::WhitespaceSplit:
      case P::Whitespace: {
        // WhitespaceSplit: runs of non-space. Whitespace: runs of word characters and runs of
        // other non-space characters, as separate pieces.
        std::u32string cur;
        int cur_class = -1;
        for (char32_t c : s) {
          if (uc::is_whitespace(c)) {
            if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
            cur_class = -1;
            continue;
          }
          const int cls = step.kind == P::Whitespace ? (uc::is_regex_word(c) ? 0 : 1) : 0;
          if (cls != cur_class && !cur.empty()) out.push_back(std::move(cur)), cur.clear();
          cur_class = cls;
          cur.push_back(c);
        }
        if (!cur.empty()) out.push_back(std::move(cur));
        break;
      }
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> BpeTokenizer::pre_tokenize(std::string_view normalized) const {
  std::vector<std::u32string> pieces{uc::decode_utf8(normalized)};
  for (const auto& step : pre_tokenizer_) pieces = apply_pre_step(step, std::move(pieces), true);
  std::vector<std::string> out;
  for (const auto& p : pieces) out.push_back(uc::encode_utf8(p));
  return out;
}

std::vector<int32_t> BpeTokenizer::encode_piece(const std::u32string& piece) const {
  std::vector<int32_t> sym;
  sym.reserve(piece.size());
  for (char32_t c : piece) {
    const auto it = ids_.find(utf8(c));
    if (it != ids_.end()) {
      sym.push_back(it->second);
    } else {
      KNOT_CHECK(specials_.unk >= 0, "bpe: character U+{:04X} is not in the vocabulary and there is no unk token",
                 static_cast<uint32_t>(c));
      sym.push_back(specials_.unk);
    }
  }
  // Apply the lowest-ranked merge present, leftmost first, until none applies.
  while (sym.size() > 1) {
    int32_t best_rank = INT32_MAX, best_id = -1;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      const auto it = merge_rank_.find(pair_key(sym[i], sym[i + 1]));
      if (it != merge_rank_.end() && it->second.first < best_rank)
        best_rank = it->second.first, best_id = it->second.second, best_i = i;
    }
    if (best_id < 0) break;
    sym[best_i] = best_id;
    sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best_i) + 1);
  }
  return sym;
}

std::vector<int32_t> BpeTokenizer::encode_plain(std::string_view text, bool first_segment) const {
  std::vector<int32_t> ids;
  std::vector<std::u32string> pieces{uc::decode_utf8(normalize(text))};
  for (const auto& step : pre_tokenizer_) pieces = apply_pre_step(step, std::move(pieces), first_segment);
  for (const auto& p : pieces) {
    const auto sub = encode_piece(p);
    ids.insert(ids.end(), sub.begin(), sub.end());
  }
  return ids;
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens) {
    KNOT_CHECK(specials_.bos >= 0, "bpe: the vocabulary has no <sos> token");
    ids.push_back(specials_.bos);
  }
  // Added tokens written literally in the text ("<unk>") are matched before normalising, as the
  // Hugging Face tokenizer does; the text between them is encoded on its own.
  size_t start = 0, i = 0;
  while (i < text.size()) {
    size_t match = 0;
    int32_t match_id = -1;
    for (const auto& tok : added_)
      if (tok.size() > match && text.compare(i, tok.size(), tok) == 0) match = tok.size(), match_id = ids_.at(tok);
    if (match == 0) {
      ++i;
      continue;
    }
    const auto plain = encode_plain(text.substr(start, i - start), start == 0);
    ids.insert(ids.end(), plain.begin(), plain.end());
    ids.push_back(match_id);
    i += match;
    start = i;
  }
  const auto plain = encode_plain(text.substr(start), start == 0);
  ids.insert(ids.end(), plain.begin(), plain.end());
  if (add_special_tokens) {
    KNOT_CHECK(specials_.eos >= 0, "bpe: the vocabulary has no <eos> token");
    ids.push_back(specials_.eos);
  }
  return ids;
}

std::vector<std::string> BpeTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (int32_t id : encode(text, false)) out.push_back(id_to_token(id));
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  for (int32_t id : ids) {
    if (skip_special_tokens && (id == specials_.pad || id == specials_.bos || id == specials_.eos)) continue;
    tokens.push_back(id_to_token(id));
  }
  std::string out;
  if (!metaspace_decoder_) {  // Hugging Face joins with spaces when there is no decoder
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (size_t i = 0; i < tokens.size(); ++i)
    for (char32_t c : uc::decode_utf8(tokens[i])) {
      if (c != decoder_replacement_) uc::append_utf8(out, c);
      else if (!(i == 0 && decoder_drops_first_)) out.push_back(' ');
    }
  return out;
}

int32_t BpeTokenizer::token_to_id(std::string_view token) const {
  const auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

const std::string& BpeTokenizer::id_to_token(int32_t id) const {
  KNOT_CHECK(id >= 0 && id < vocab_size(), "bpe: id {} out of range [0, {})", id, vocab_size());
  return vocab_[static_cast<size_t>(id)];
}

// ---- training ---------------------------------------------------------------------------------

void BpeTokenizer::add_token(const std::string& token, int32_t id, const std::string& source) {
  KNOT_CHECK(id >= 0, "bpe: {}: token '{}' has negative id {}", source, token, id);
  KNOT_CHECK(!token.empty(), "bpe: {}: empty token at id {}", source, id);
  if (static_cast<size_t>(id) >= vocab_.size()) vocab_.resize(static_cast<size_t>(id) + 1);
  KNOT_CHECK(vocab_[static_cast<size_t>(id)].empty() || vocab_[static_cast<size_t>(id)] == token,
             "bpe: {}: duplicate vocabulary id {} ('{}' and '{}')", source, id, vocab_[static_cast<size_t>(id)], token);
  const auto [it, fresh] = ids_.emplace(token, id);
  KNOT_CHECK(fresh || it->second == id, "bpe: {}: duplicate vocabulary entry '{}' (ids {} and {})", source, token,
             it->second, id);
  vocab_[static_cast<size_t>(id)] = token;
}

void BpeTokenizer::finish(const std::string& source) {
  specials_ = {};
  specials_.bos = token_to_id("<sos>");
  specials_.eos = token_to_id("<eos>");
  specials_.pad = token_to_id("<pad>");
  specials_.unk = token_to_id(unk_token_);
  merge_rank_.clear();
  merge_rank_.reserve(merges_.size());
  for (size_t r = 0; r < merges_.size(); ++r) {
    const auto& [a, b] = merges_[r];
    const int32_t ia = token_to_id(a), ib = token_to_id(b), iab = token_to_id(a + b);
    KNOT_CHECK(ia >= 0 && ib >= 0, "bpe: {}: merge {} ('{} {}') uses a token that is not in the vocabulary", source, r,
               a, b);
    KNOT_CHECK(iab >= 0, "bpe: {}: merge {} ('{} {}') makes '{}', which is not in the vocabulary", source, r, a, b, a + b);
    merge_rank_.emplace(pair_key(ia, ib), std::make_pair(static_cast<int32_t>(r), iab));  // first rank wins
  }
}

BpeTokenizer BpeTokenizer::train(const std::vector<std::string>& sentences, const BpeTrainOptions& options) {
  KNOT_CHECK(options.vocab_size > static_cast<int>(kSpecials.size()),
             "bpe: vocab_size {} must exceed the {} special tokens", options.vocab_size, kSpecials.size());
  KNOT_CHECK(options.min_frequency >= 1, "bpe: min_frequency must be >= 1, got {}", options.min_frequency);
  BpeTokenizer t;
  t.normalizer_.push_back({NormStep::NFC});
  if (options.lowercase) t.normalizer_.push_back({NormStep::Lowercase});
  t.normalizer_.push_back({NormStep::Strip});
  t.pre_tokenizer_ = {PreStep{PreStep::Metaspace}, PreStep{PreStep::Punctuation}};
  for (size_t i = 0; i < kSpecials.size(); ++i) t.add_token(kSpecials[i], static_cast<int32_t>(i), "train");
  t.added_ = kSpecials;

  // Word (pre-token) counts, then words in sorted order so that nothing depends on hash order.
  std::unordered_map<std::u32string, int64_t> counted;
  for (const auto& s : sentences) {
    std::vector<std::u32string> pieces{uc::decode_utf8(t.normalize(s))};
    for (const auto& step : t.pre_tokenizer_) pieces = apply_pre_step(step, std::move(pieces), true);
    for (auto& p : pieces) ++counted[p];
  }
  std::vector<std::pair<std::u32string, int64_t>> words(counted.begin(), counted.end());
  counted.clear();
  std::sort(words.begin(), words.end());

  // The alphabet, by code point, after the specials.
  std::set<char32_t> alphabet;
  for (const auto& [w, n] : words) alphabet.insert(w.begin(), w.end());
  for (char32_t c : alphabet) t.add_token(utf8(c), static_cast<int32_t>(t.vocab_.size()), "train");

  std::vector<std::vector<int32_t>> syms(words.size());
  std::vector<int64_t> freq(words.size());
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;
  for (size_t w = 0; w < words.size(); ++w) {
    freq[w] = words[w].second;
    for (char32_t c : words[w].first) syms[w].push_back(t.ids_.at(utf8(c)));
    for (size_t i = 0; i + 1 < syms[w].size(); ++i) {
      const uint64_t k = pair_key(syms[w][i], syms[w][i + 1]);
      pair_count[k] += freq[w];
      auto& wl = pair_words[k];
      if (wl.empty() || wl.back() != static_cast<int32_t>(w)) wl.push_back(static_cast<int32_t>(w));
    }
  }

  struct Entry {
    int64_t count;
    int32_t a, b;
  };
  // Highest count first; ties to the smaller (a, b): ids are assigned deterministically.
  auto lower_priority = [](const Entry& x, const Entry& y) {
    if (x.count != y.count) return x.count < y.count;
    if (x.a != y.a) return x.a > y.a;
    return x.b > y.b;
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(lower_priority)> heap(lower_priority);
  for (const auto& [k, n] : pair_count)
    heap.push({n, static_cast<int32_t>(k >> 32), static_cast<int32_t>(k & 0xFFFFFFFFu)});

  const auto target = static_cast<size_t>(options.vocab_size);
  std::vector<uint64_t> touched;
  while (t.vocab_.size() < target && !heap.empty()) {
    const Entry e = heap.top();
    heap.pop();
    const uint64_t key = pair_key(e.a, e.b);
    const auto cit = pair_count.find(key);
    const int64_t actual = cit == pair_count.end() ? 0 : cit->second;
    if (actual != e.count) {
      if (actual > 0 && actual < e.count) heap.push({actual, e.a, e.b});
      continue;
    }
    if (actual < options.min_frequency) break;  // the true maximum is already too rare

    const std::string merged = t.vocab_[static_cast<size_t>(e.a)] + t.vocab_[static_cast<size_t>(e.b)];
    int32_t id = t.token_to_id(merged);
    if (id < 0) {
      id = static_cast<int32_t>(t.vocab_.size());
      t.add_token(merged, id, "train");
    }
    t.merges_.emplace_back(t.vocab_[static_cast<size_t>(e.a)], t.vocab_[static_cast<size_t>(e.b)]);

    std::vector<int32_t> wl = std::move(pair_words[key]);
    pair_words.erase(key);
    pair_count.erase(key);
    std::sort(wl.begin(), wl.end());
    wl.erase(std::unique(wl.begin(), wl.end()), wl.end());
    touched.clear();
    for (int32_t w : wl) {
      auto& s = syms[static_cast<size_t>(w)];
      std::vector<int32_t> merged_syms;
      merged_syms.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == e.a && s[i + 1] == e.b) {
          merged_syms.push_back(id);
          ++i;
        } else {
          merged_syms.push_back(s[i]);
        }
      }
      if (merged_syms.size() == s.size()) continue;  // a stale word-list entry
      const int64_t n = freq[static_cast<size_t>(w)];
      // Replace all of the word's pair counts: simple, and right for overlaps such as "a a a".
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        if (k == key) continue;
        auto it = pair_count.find(k);
        if ((it->second -= n) == 0) pair_count.erase(it);
      }
      for (size_t i = 0; i + 1 < merged_syms.size(); ++i) {
        const uint64_t k = pair_key(merged_syms[i], merged_syms[i + 1]);
        pair_count[k] += n;
        if (merged_syms[i] == id || merged_syms[i + 1] == id) {
          auto& pw = pair_words[k];
          if (pw.empty() || pw.back() != w) pw.push_back(w);
          touched.push_back(k);
        }
      }
      s = std::move(merged_syms);
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t k : touched) {
      const auto it = pair_count.find(k);
      if (it != pair_count.end() && it->second > 0)
        heap.push({it->second, static_cast<int32_t>(k >> 32), static_cast<int32_t>(k & 0xFFFFFFFFu)});
    }
  }
  t.finish("train");
  return t;
}

// ---- tokenizer.json ---------------------------------------------------------------------------

namespace {

OJson norm_step_json(const BpeTokenizer::NormStep& s) {
  using N = BpeTokenizer::NormStep;
  switch (s.kind) {
    case N::NFC: return OJson{{"type", "NFC"}};
    case N::NFD: return OJson{{"type", "NFD"}};
    case N::NFKC: return OJson{{"type", "NFKC"}};
    case N::Lowercase: return OJson{{"type", "Lowercase"}};
    case N::Strip: return OJson{{"type", "Strip"}, {"strip_left", s.left}, {"strip_right", s.right}};
  }
  return nullptr;
}

OJson pre_step_json(const BpeTokenizer::PreStep& s) {
  using P = BpeTokenizer::PreStep;
  switch (s.kind) {
    case P::Metaspace:
      // add_prefix_space is the pre-0.19 spelling of prepend_scheme; writing both keeps the file
      // loadable by old and new releases of tokenizers (new ones check that the two agree).
      return OJson{{"type", "Metaspace"}, {"replacement", utf8(s.replacement)},
                   {"add_prefix_space", s.prepend_scheme != "never"}, {"prepend_scheme", s.prepend_scheme},
                   {"split", s.split}};
    case P::Punctuation: return OJson{{"type", "Punctuation"}, {"behavior", "Isolated"}};
    case P::WhitespaceSplit: return OJson{{"type", "WhitespaceSplit"}};
    case P::Whitespace: return OJson{{"type", "Whitespace"}};
  }
  return nullptr;
}

char32_t single_char(const Json& j, const std::string& what, const std::string& source) {
  KNOT_CHECK(j.is_string(), "bpe: {}: {} must be a string", source, what);
  const auto cps = uc::decode_utf8(j.get<std::string>());
  KNOT_CHECK(cps.size() == 1, "bpe: {}: {} must be one character, got '{}'", source, what, j.get<std::string>());
  return cps[0];
}

// Optional members of a tokenizer.json object, with their types checked (nlohmann's value() would
// throw its own type_error, which names neither the file nor the key).
bool flag(const Json& j, const char* key, bool fallback, const std::string& what, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  KNOT_CHECK(j[key].is_boolean(), "bpe: {}: {}.{} must be true or false, got {}", source, what, key, j[key].dump());
  return j[key].get<bool>();
}

std::string text(const Json& j, const char* key, const std::string& fallback, const std::string& what,
                 const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  KNOT_CHECK(j[key].is_string(), "bpe: {}: {}.{} must be a string, got {}", source, what, key, j[key].dump());
  return j[key].get<std::string>();
}

// A token id: a JSON integer in [0, limit), limit being the number of tokens the file lists (ids are
// contiguous, so a larger one is an error before it sizes the vocabulary).
int32_t token_id(const Json& id, const std::string& token, size_t limit, const std::string& source) {
  KNOT_CHECK(id.is_number_integer(), "bpe: {}: token '{}' has a non-integer id {}", source, token, id.dump());
  // Parsed text holds non-negative integers as unsigned; JSON built in memory (to_json) as signed.
  KNOT_CHECK(id.is_number_unsigned() || id.get<int64_t>() >= 0, "bpe: {}: token '{}' has negative id {}", source,
             token, id.dump());
  const uint64_t v = id.is_number_unsigned() ? id.get<uint64_t>() : static_cast<uint64_t>(id.get<int64_t>());
  KNOT_CHECK(v < limit, "bpe: {}: token '{}' has id {}, but the file lists only {} tokens (ids are 0 to {})", source,
             token, id.dump(), limit, limit - 1);
  return static_cast<int32_t>(v);
}

std::string type_of(const Json& j, const std::string& what, const std::string& source) {
  KNOT_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), "bpe: {}: {} has no \"type\"", source, what);
  return j["type"].get<std::string>();
}

void parse_normalizer(const Json& j, std::vector<BpeTokenizer::NormStep>& out, const std::string& source) {
  using N = BpeTokenizer::NormStep;
  if (j.is_null()) return;
  const std::string type = type_of(j, "normalizer", source);
  if (type == "Sequence") {
    KNOT_CHECK(j.contains("normalizers") && j["normalizers"].is_array(), "bpe: {}: Sequence normalizer without \"normalizers\"", source);
    for (const auto& s : j["normalizers"]) parse_normalizer(s, out, source);
  } else if (type == "NFC") {
    out.push_back({N::NFC});
  } else if (type == "NFD") {
    out.push_back({N::NFD});
  } else if (type == "NFKC") {
    out.push_back({N::NFKC});
  } else if (type == "Lowercase") {
    out.push_back({N::Lowercase});
  } else if (type == "Strip") {
    out.push_back({N::Strip, flag(j, "strip_left", true, "Strip", source), flag(j, "strip_right", true, "Strip", source)});
  } else {
    KNOT_FAIL("bpe: {}: unsupported normalizer type '{}' (supported: Sequence, NFC, NFD, NFKC, Lowercase, Strip)", source, type);
  }
}

void parse_pre_tokenizer(const Json& j, std::vector<BpeTokenizer::PreStep>& out, const std::string& source) {
  using P = BpeTokenizer::PreStep;
  if (j.is_null()) return;
  const std::string type = type_of(j, "pre_tokenizer", source);
  if (type == "Sequence") {
    KNOT_CHECK(j.contains("pretokenizers") && j["pretokenizers"].is_array(), "bpe: {}: Sequence pre_tokenizer without \"pretokenizers\"", source);
    for (const auto& s : j["pretokenizers"]) parse_pre_tokenizer(s, out, source);
  } else if (type == "Metaspace") {
    P step{P::Metaspace};
    if (j.contains("replacement")) step.replacement = single_char(j["replacement"], "Metaspace replacement", source);
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) step.prepend_scheme = j["prepend_scheme"].get<std::string>();
    else if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean())  // files older than tokenizers 0.19
      step.prepend_scheme = j["add_prefix_space"].get<bool>() ? "always" : "never";
    KNOT_CHECK(step.prepend_scheme == "always" || step.prepend_scheme == "first" || step.prepend_scheme == "never",
               "bpe: {}: Metaspace prepend_scheme '{}' is not always, first or never", source, step.prepend_scheme);
    step.split = flag(j, "split", true, "Metaspace", source);
    out.push_back(step);
  } else if (type == "Punctuation") {
    const std::string behavior = text(j, "behavior", "Isolated", "Punctuation", source);
    KNOT_CHECK(behavior == "Isolated", "bpe: {}: Punctuation behavior '{}' is not supported (only Isolated)", source, behavior);
    out.push_back({P::Punctuation});
  } else if (type == "WhitespaceSplit") {
    out.push_back({P::WhitespaceSplit});
  } else if (type == "Whitespace") {
    out.push_back({P::Whitespace});
  } else {
    KNOT_FAIL("bpe: {}: unsupported pre_tokenizer type '{}' (supported: Sequence, Metaspace, Punctuation, "
              "WhitespaceSplit, Whitespace)", source, type);
  }
}

}  // namespace

OJson BpeTokenizer::to_json() const {
  OJson j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  OJson added = OJson::array();
  for (const auto& tok : added_)
    added.push_back(OJson{{"id", ids_.at(tok)}, {"content", tok}, {"single_word", false}, {"lstrip", false},
                          {"rstrip", false}, {"normalized", false}, {"special", true}});
  j["added_tokens"] = std::move(added);
  if (normalizer_.empty()) {
    j["normalizer"] = nullptr;
  } else {
    OJson seq = OJson::array();
    for (const auto& s : normalizer_) seq.push_back(norm_step_json(s));
    j["normalizer"] = seq.size() == 1 ? seq[0] : OJson{{"type", "Sequence"}, {"normalizers", seq}};
  }
  if (pre_tokenizer_.empty()) {
    j["pre_tokenizer"] = nullptr;
  } else {
    OJson seq = OJson::array();
    for (const auto& s : pre_tokenizer_) seq.push_back(pre_step_json(s));
    j["pre_tokenizer"] = seq.size() == 1 ? seq[0] : OJson{{"type", "Sequence"}, {"pretokenizers", seq}};
  }
  j["post_processor"] = nullptr;
  if (metaspace_decoder_)
    j["decoder"] = OJson{{"type", "Metaspace"}, {"replacement", utf8(decoder_replacement_)},
                         {"add_prefix_space", decoder_drops_first_},
                         {"prepend_scheme", decoder_drops_first_ ? "always" : "never"}, {"split", true}};
  else
    j["decoder"] = nullptr;

  OJson model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = unk_token_;
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  model["ignore_merges"] = false;
  OJson vocab = OJson::object();
  for (size_t i = 0; i < vocab_.size(); ++i)
    if (!vocab_[i].empty()) vocab[vocab_[i]] = static_cast<int32_t>(i);
  model["vocab"] = std::move(vocab);
  // "a b" strings are read by every tokenizers release; pairs are only needed when a token holds
  // a space, which the Metaspace pre-tokeniser never lets through.
  bool spaced = false;
  for (const auto& [a, b] : merges_) spaced = spaced || a.find(' ') != std::string::npos || b.find(' ') != std::string::npos;
  OJson merges = OJson::array();
  for (const auto& [a, b] : merges_) merges.push_back(spaced ? OJson::array({a, b}) : OJson(a + " " + b));
  model["merges"] = std::move(merges);
  j["model"] = std::move(model);
  return j;
}

BpeTokenizer BpeTokenizer::from_json(const Json& j, const std::string& source) {
  KNOT_CHECK(j.is_object(), "bpe: {}: not a tokenizer.json (the top level is not an object)", source);
  KNOT_CHECK(j.contains("model") && j["model"].is_object(), "bpe: {}: no \"model\" object", source);
  const Json& m = j["model"];
  const std::string type = text(m, "type", "BPE", "model", source);
  KNOT_CHECK(type == "BPE", "bpe: {}: model type is '{}', expected 'BPE'", source, type);
  KNOT_CHECK(m.contains("vocab") && m["vocab"].is_object(), "bpe: {}: model has no \"vocab\" object", source);
  KNOT_CHECK(m.contains("merges") && m["merges"].is_array(), "bpe: {}: model has no \"merges\" array", source);
  for (const char* unsupported : {"continuing_subword_prefix", "end_of_word_suffix"})
    KNOT_CHECK(!m.contains(unsupported) || m[unsupported].is_null() || m[unsupported] == "",
               "bpe: {}: model.{} is not supported", source, unsupported);
  KNOT_CHECK(!flag(m, "byte_fallback", false, "model", source), "bpe: {}: model.byte_fallback is not supported", source);
  const Json added = j.contains("added_tokens") ? j["added_tokens"] : Json();
  KNOT_CHECK(added.is_null() || added.is_array(), "bpe: {}: added_tokens must be an array, got {}", source,
             added.dump());
  const size_t listed = std::min<size_t>(m["vocab"].size() + added.size(), INT32_MAX);

  BpeTokenizer t;
  for (const auto& [tok, id] : m["vocab"].items()) t.add_token(tok, token_id(id, tok, listed, source), source);
  for (const auto& a : added) {
    KNOT_CHECK(a.is_object() && a.contains("id") && a.contains("content"), "bpe: {}: an added token lacks id or content", source);
    KNOT_CHECK(a["content"].is_string(), "bpe: {}: an added token's content must be a string, got {}", source,
               a["content"].dump());
    const auto content = a["content"].get<std::string>();
    t.add_token(content, token_id(a["id"], content, listed, source), source);
    t.added_.push_back(content);
  }
  for (size_t i = 0; i < t.vocab_.size(); ++i)
    KNOT_CHECK(!t.vocab_[i].empty(), "bpe: {}: vocabulary ids are not contiguous: no token has id {}", source, i);
  t.unk_token_ = text(m, "unk_token", t.unk_token_, "model", source);

  size_t r = 0;
  for (const auto& e : m["merges"]) {
    if (e.is_string()) {
      const auto s = e.get<std::string>();
      const auto sp = s.find(' ');
      KNOT_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos,
                 "bpe: {}: merge {} '{}' is not two tokens separated by one space", source, r, s);
      t.merges_.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      KNOT_CHECK(e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string(),
                 "bpe: {}: merge {} is neither \"a b\" nor [\"a\", \"b\"]", source, r);
      t.merges_.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    }
    ++r;
  }
  parse_normalizer(j.value("normalizer", Json()), t.normalizer_, source);
  parse_pre_tokenizer(j.value("pre_tokenizer", Json()), t.pre_tokenizer_, source);
  const Json dec = j.value("decoder", Json());
  if (dec.is_null()) {
    t.metaspace_decoder_ = false;
  } else {
    const std::string dtype = type_of(dec, "decoder", source);
    KNOT_CHECK(dtype == "Metaspace", "bpe: {}: unsupported decoder type '{}' (supported: Metaspace or null)", source, dtype);
    if (dec.contains("replacement")) t.decoder_replacement_ = single_char(dec["replacement"], "decoder replacement", source);
    std::string scheme = "always";
    if (dec.contains("prepend_scheme") && dec["prepend_scheme"].is_string()) scheme = dec["prepend_scheme"].get<std::string>();
    else if (dec.contains("add_prefix_space") && dec["add_prefix_space"].is_boolean())
      scheme = dec["add_prefix_space"].get<bool>() ? "always" : "never";
    t.decoder_drops_first_ = scheme != "never";
  }
  t.finish(source);
  return t;
}

BpeTokenizer BpeTokenizer::load(const std::string& tokenizer_json) {
  std::ifstream f(tokenizer_json, std::ios::binary);
  KNOT_CHECK(f.good(), "bpe: cannot open '{}'", tokenizer_json);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return from_json_text(text, tokenizer_json);
}

BpeTokenizer BpeTokenizer::from_json_text(std::string_view text, const std::string& source) {
  Json j;
  try {
    j = Json::parse(text, json_depth_limit(fmt::format("bpe: '{}'", source)));
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for a number such as 1e400
    KNOT_FAIL("bpe: '{}' is not valid JSON: {}", source, e.what());
  }
  return from_json(j, source);
}

std::string BpeTokenizer::to_file_text() const { return to_json().dump(2) + "\n"; }

}  // namespace knot::data
