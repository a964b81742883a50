// WordPiece tokenizer with BERT's uncased rules (see wordpiece.h).
#include "data/wordpiece.h"

#include <fstream>

#include "core/error.h"
#include "data/unicode.h"

namespace knot::data {

namespace uc = unicode;

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, std::string source)
    : vocab_(std::move(vocab)), source_(std::move(source)) {
  KNOT_CHECK(!vocab_.empty(), "wordpiece: vocabulary '{}' is empty", source_);
  ids_.reserve(vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i) {
    KNOT_CHECK(!vocab_[i].empty(), "wordpiece: {}:{}: empty token", source_, i + 1);
    const auto [it, fresh] = ids_.emplace(vocab_[i], static_cast<int32_t>(i));
    KNOT_CHECK(fresh, "wordpiece: {}:{}: duplicate token '{}' (first on line {})", source_, i + 1, vocab_[i],
               it->second + 1);
  }
  specials_.pad = token_to_id("[PAD]");
  specials_.unk = token_to_id("[UNK]");
  specials_.mask = token_to_id("[MASK]");
  cls_ = specials_.bos = token_to_id("[CLS]");
  sep_ = specials_.eos = token_to_id("[SEP]");
  KNOT_CHECK(specials_.unk >= 0, "wordpiece: vocabulary '{}' has no [UNK] token", source_);
}

WordPieceTokenizer WordPieceTokenizer::load(const std::string& vocab_txt) {
  std::ifstream f(vocab_txt, std::ios::binary);
  KNOT_CHECK(f.good(), "wordpiece: cannot open vocabulary '{}'", vocab_txt);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return from_vocab_text(text, vocab_txt);
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_text(std::string_view text, const std::string& source) {
  std::vector<std::string> vocab;
  size_t pos = 0;
  while (pos < text.size()) {  // lines as std::getline splits them: a final '\n' starts no empty line
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(pos, end - pos));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab.push_back(std::move(line));
    pos = end + 1;
  }
  KNOT_CHECK(!vocab.empty(), "wordpiece: vocabulary '{}' is empty", source);
  return WordPieceTokenizer(std::move(vocab), source);
}

std::string WordPieceTokenizer::to_file_text() const {
  std::string out;
  for (const auto& t : vocab_) out += t + '\n';
  return out;
}

int32_t WordPieceTokenizer::token_to_id(std::string_view token) const {
  const auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

const std::string& WordPieceTokenizer::id_to_token(int32_t id) const {
  KNOT_CHECK(id >= 0 && id < vocab_size(), "wordpiece: id {} out of range [0, {})", id, vocab_size());
  return vocab_[static_cast<size_t>(id)];
}

std::vector<std::string> WordPieceTokenizer::basic_tokenize(std::string_view text) {
  // 1. Clean and space out CJK ideographs: after this, whitespace is a plain space.
  std::u32string cleaned;
  for (char32_t c : uc::decode_utf8(text)) {
    if (c == 0 || c == uc::kReplacement || uc::is_bert_control(c)) continue;
    if (uc::is_whitespace(c)) {
      cleaned.push_back(U' ');
    } else if (uc::is_cjk_ideograph(c)) {
      cleaned += U' ';
      cleaned += c;
      cleaned += U' ';
    } else {
      cleaned.push_back(c);
    }
  }
  // 2. Per whitespace-separated word: lower-case, NFD, drop Mn, split punctuation off.
  std::vector<std::string> out;
  std::string current;
  auto flush = [&]() {
    if (!current.empty()) out.push_back(std::move(current));
    current.clear();
  };
  size_t i = 0;
  while (i < cleaned.size()) {
    if (cleaned[i] == U' ') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cleaned.size() && cleaned[j] != U' ') ++j;
    const std::u32string word = uc::to_lower_word(std::u32string_view(cleaned).substr(i, j - i));
    for (char32_t c : uc::nfd(word)) {
      if (uc::is_nonspacing_mark(c)) continue;
      if (uc::is_bert_punctuation(c)) {
        flush();
        std::string p;
        uc::append_utf8(p, c);
        out.push_back(std::move(p));
      } else {
        uc::append_utf8(current, c);
      }
    }
    flush();
    i = j;
  }
  return out;
}

std::vector<std::string> WordPieceTokenizer::wordpiece(const std::string& word) const {
  const std::u32string chars = uc::decode_utf8(word);
  const std::string& unk = vocab_[static_cast<size_t>(specials_.unk)];
  if (chars.size() > static_cast<size_t>(kMaxWordChars)) return {unk};
  std::vector<std::string> pieces;
  size_t start = 0;
  while (start < chars.size()) {
    // Longest vocabulary entry that starts here; "##" marks a piece inside a word.
    size_t end = chars.size();
    std::string found;
    while (start < end) {
      std::string candidate = start > 0 ? "##" : "";
      candidate += uc::encode_utf8(std::u32string_view(chars).substr(start, end - start));
      if (ids_.count(candidate)) {
        found = std::move(candidate);
        break;
      }
      --end;
    }
    if (found.empty()) return {unk};  // one unmatched position spoils the whole word
    pieces.push_back(std::move(found));
    start = end;
  }
  return pieces;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  auto plain = [&](std::string_view segment) {
    for (const auto& word : basic_tokenize(segment))
      for (auto& piece : wordpiece(word)) out.push_back(std::move(piece));
  };
  // Special tokens written in the text ("a [MASK] b") stay whole, as in Hugging Face's BERT
  // tokenizers; everything between them goes through the BERT rules.
  static const char* const kSpecials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  size_t start = 0, i = 0;
  while ((i = text.find('[', i)) != std::string_view::npos) {
    const char* hit = nullptr;
    for (const char* s : kSpecials)
      if (text.substr(i).starts_with(s) && ids_.count(s)) hit = s;
    if (!hit) {
      ++i;
      continue;
    }
    plain(text.substr(start, i - start));
    out.emplace_back(hit);
    i += std::string_view(hit).size();
    start = i;
  }
  plain(text.substr(start));
  return out;
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return encode(text, add_special_tokens, 0);
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, bool add_special_tokens, int max_length) const {
  std::vector<int32_t> ids;
  for (const auto& t : tokenize(text)) ids.push_back(ids_.at(t));
  if (add_special_tokens) {
    KNOT_CHECK(cls_ >= 0 && sep_ >= 0, "wordpiece: vocabulary '{}' lacks [CLS] or [SEP], needed for special tokens",
               source_);
    KNOT_CHECK(max_length <= 0 || max_length >= 2, "wordpiece: max_length {} leaves no room for [CLS] and [SEP]",
               max_length);
    if (max_length > 0 && ids.size() > static_cast<size_t>(max_length - 2)) ids.resize(static_cast<size_t>(max_length - 2));
    ids.insert(ids.begin(), cls_);
    ids.push_back(sep_);
  } else if (max_length > 0 && ids.size() > static_cast<size_t>(max_length)) {
    ids.resize(static_cast<size_t>(max_length));
  }
  return ids;
}

EncodedPair WordPieceTokenizer::encode_pair(std::string_view a, std::string_view b, bool add_special_tokens,
                                            int max_length) const {
  std::vector<int32_t> ia = encode(a, false), ib = encode(b, false);
  const int extra = add_special_tokens ? 3 : 0;
  if (add_special_tokens)
    KNOT_CHECK(cls_ >= 0 && sep_ >= 0, "wordpiece: vocabulary '{}' lacks [CLS] or [SEP], needed for special tokens",
               source_);
  if (max_length > 0) {
    KNOT_CHECK(max_length >= extra, "wordpiece: max_length {} leaves no room for the special tokens", max_length);
    while (ia.size() + ib.size() + static_cast<size_t>(extra) > static_cast<size_t>(max_length)) {
      if (ia.size() > ib.size()) ia.pop_back();
      else ib.pop_back();
    }
  }
  EncodedPair r;
  if (add_special_tokens) r.ids.push_back(cls_);
  r.ids.insert(r.ids.end(), ia.begin(), ia.end());
  if (add_special_tokens) r.ids.push_back(sep_);
  r.token_type_ids.assign(r.ids.size(), 0);
  r.ids.insert(r.ids.end(), ib.begin(), ib.end());
  if (add_special_tokens) r.ids.push_back(sep_);
  r.token_type_ids.resize(r.ids.size(), 1);
  return r;
}

std::string WordPieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string out;
  for (int32_t id : ids) {
    if (skip_special_tokens && (id == specials_.pad || id == cls_ || id == sep_)) continue;
    const std::string& t = id_to_token(id);
    if (t.size() > 2 && t[0] == '#' && t[1] == '#') {
      out.append(t, 2);
    } else {
      if (!out.empty()) out.push_back(' ');
      out += t;
    }
  }
  return out;
}

}  // namespace knot::data
