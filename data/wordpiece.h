// WordPiece with BERT's uncased rules (Devlin et al. 2018; the BasicTokenizer + WordpieceTokenizer
// pair): clean the text (drop NUL, U+FFFD and control characters, whitespace → space), put spaces
// around CJK ideographs, lower-case, NFD and strip Mn accents, split on whitespace and punctuation,
// then greedy longest-match-first pieces with "##" continuations; a word with no full segmentation
// or longer than 100 code points becomes [UNK]. Special tokens written in the text ([MASK]) stay whole. The vocabulary is BERT's vocab.txt: one token per
// line, id = line number (0-based).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"

namespace knot::data {

// ids and token_type_ids of a sentence pair: [CLS] a [SEP] b [SEP] with types 0...0 1...1.
struct EncodedPair {
  std::vector<int32_t> ids;
  std::vector<int32_t> token_type_ids;
};

class WordPieceTokenizer : public Tokenizer {
 public:
  static constexpr int kMaxWordChars = 100;  // BERT's max_input_chars_per_word

  explicit WordPieceTokenizer(std::vector<std::string> vocab, std::string source = "<memory>");
  static WordPieceTokenizer load(const std::string& vocab_txt);
  // load() over the text of a vocab.txt held in memory; `source` names it in errors.
  static WordPieceTokenizer from_vocab_text(std::string_view text, const std::string& source = "<memory>");

  std::string kind() const override { return "wordpiece"; }
  std::vector<std::string> tokenize(std::string_view text) const override;
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const override;
  // max_length > 0 truncates: the content keeps max_length - 2 ids when specials are added.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens, int max_length) const;
  // [CLS] a [SEP] b [SEP]; max_length > 0 truncates the longer side one token at a time (BERT's
  // "longest_first"; on a tie the second side gives way).
  EncodedPair encode_pair(std::string_view a, std::string_view b, bool add_special_tokens = true, int max_length = 0) const;
  // Joins tokens with spaces and glues "##" continuations to the token before them.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = true) const override;
  std::string to_file_text() const override;  // vocab.txt: one token a line

  int32_t vocab_size() const override { return static_cast<int32_t>(vocab_.size()); }
  int32_t token_to_id(std::string_view token) const override;
  const std::string& id_to_token(int32_t id) const override;
  SpecialIds special_ids() const override { return specials_; }

  // The BasicTokenizer half alone: normalised words and punctuation, before WordPiece.
  static std::vector<std::string> basic_tokenize(std::string_view text);
  // The WordpieceTokenizer half alone: the pieces of one basic token.
  std::vector<std::string> wordpiece(const std::string& word) const;

 private:
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  SpecialIds specials_;
  int32_t cls_ = -1, sep_ = -1;
  std::string source_;  // file name for error messages
};

}  // namespace knot::data
