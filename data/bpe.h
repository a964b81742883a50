// Byte-pair encoding (Sennrich et al. 2016) over Unicode characters, trained on sentences and
// stored as a Hugging Face tokenizer.json that the `tokenizers` library loads unchanged.
//
// Pipeline (the same one the JSON describes, so Hugging Face gives the same ids):
//   normaliser    NFC, optional lower-case, strip surrounding whitespace
//   pre-tokeniser Metaspace (' ' → '▁', a '▁' prepended, split before each '▁'), then
//                 Punctuation (each punctuation character its own piece)
//   model         BPE: characters, then merges by rank; a character not in the vocabulary → <unk>
//   decoder       Metaspace: '▁' → ' ', the first one dropped
// so decode(encode(s)) == normalize(s) whenever every character of s is in the vocabulary.
// Specials come first: <sos>=0, <eos>=1, <unk>=2, <pad>=3 (kanformer's order).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/tokenizer.h"

namespace knot::data {

struct BpeTrainOptions {
  int vocab_size = 8000;   // specials + alphabet + merges; the alphabet is always kept whole
  int min_frequency = 2;   // a pair seen fewer times than this is never merged
  bool lowercase = false;  // adds a Lowercase step to the normaliser
};

class BpeTokenizer : public Tokenizer {
 public:
  // One step of the normaliser / pre-tokeniser as the JSON names them (the subset we run).
  struct NormStep {
    enum Kind { NFC, NFD, NFKC, Lowercase, Strip } kind;
    bool left = true, right = true;  // Strip only
  };
  struct PreStep {
    enum Kind { Metaspace, Punctuation, WhitespaceSplit, Whitespace } kind;
    char32_t replacement = U'\u2581';
    std::string prepend_scheme = "always";  // Metaspace: always | first | never
    bool split = true;
  };

  // Learns merges from sentences (deterministic: ties go to the smaller pair of ids).
  static BpeTokenizer train(const std::vector<std::string>& sentences, const BpeTrainOptions& options = {});
  static BpeTokenizer load(const std::string& tokenizer_json);
  static BpeTokenizer from_json(const nlohmann::json& j, const std::string& source = "<json>");
  // load() over the text of a tokenizer.json held in memory; `source` names it in errors.
  static BpeTokenizer from_json_text(std::string_view text, const std::string& source = "<memory>");
  nlohmann::ordered_json to_json() const;

  std::string kind() const override { return "bpe"; }
  std::vector<std::string> tokenize(std::string_view text) const override;
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = true) const override;
  std::string to_file_text() const override;  // tokenizer.json

  int32_t vocab_size() const override { return static_cast<int32_t>(vocab_.size()); }
  int32_t token_to_id(std::string_view token) const override;
  const std::string& id_to_token(int32_t id) const override;
  SpecialIds special_ids() const override { return specials_; }

  // The stages on their own (for tests and for `knot tokenizer encode --tokens`).
  std::string normalize(std::string_view text) const;
  std::vector<std::string> pre_tokenize(std::string_view normalized) const;
  const std::vector<std::pair<std::string, std::string>>& merges() const { return merges_; }

 private:
  BpeTokenizer() = default;
  void add_token(const std::string& token, int32_t id, const std::string& source);
  void finish(const std::string& source);  // specials and the merge table from vocab_/merges_
  std::vector<int32_t> encode_piece(const std::u32string& piece) const;
  // Text without added tokens; first_segment: it starts the input (Metaspace's "first" scheme).
  std::vector<int32_t> encode_plain(std::string_view text, bool first_segment) const;

  std::vector<std::string> vocab_;  // id → token ("" for an id the file leaves out)
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::pair<std::string, std::string>> merges_;               // by rank
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merge_rank_;  // (a, b) → (rank, merged id)
  std::vector<std::string> added_;  // added (special) tokens, matched in raw text before normalising
  std::string unk_token_ = "<unk>";
  SpecialIds specials_;
  std::vector<NormStep> normalizer_;
  std::vector<PreStep> pre_tokenizer_;
  bool metaspace_decoder_ = true;
  char32_t decoder_replacement_ = U'\u2581';
  bool decoder_drops_first_ = true;
};

}  // namespace knot::data
