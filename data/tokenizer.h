// The tokenizer interface shared by BPE (bpe.h, a Hugging Face tokenizer.json) and WordPiece
// (wordpiece.h, BERT's vocab.txt), and load_tokenizer, which picks the kind by file.
// Ids are int32 (what the embedding tables index with); an id that is absent is -1.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace knot::data {

// Ids of the special tokens; -1 where a tokenizer has none. For WordPiece bos is [CLS] and eos is
// [SEP]; for BPE they are <sos> and <eos> and there is no mask token.
struct SpecialIds {
  int32_t pad = -1, unk = -1, bos = -1, eos = -1, mask = -1;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::string kind() const = 0;  // "bpe" or "wordpiece"
  // Token strings of text, without special tokens.
  virtual std::vector<std::string> tokenize(std::string_view text) const = 0;
  // Ids of text; add_special_tokens wraps them as bos ... eos ([CLS] ... [SEP] for WordPiece).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const = 0;
  // Text of ids. skip_special_tokens drops pad, bos and eos (they carry no text); unk and mask
  // are written as their token strings so that a reader sees where they were.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = true) const = 0;
  // The tokenizer in its own file format (tokenizer.json for BPE, vocab.txt for WordPiece).
  virtual std::string to_file_text() const = 0;
  // Writes to_file_text() to `path` atomically (temp file, fsync, rename).
  void save(const std::string& path) const;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t token_to_id(std::string_view token) const = 0;  // -1 when absent
  virtual const std::string& id_to_token(int32_t id) const = 0;   // throws for an id out of range
  virtual SpecialIds special_ids() const = 0;

  int32_t pad_id() const { return special_ids().pad; }
  int32_t unk_id() const { return special_ids().unk; }
  int32_t bos_id() const { return special_ids().bos; }
  int32_t eos_id() const { return special_ids().eos; }
  int32_t mask_id() const { return special_ids().mask; }
};

// A tokenizer from a file: tokenizer.json (or any *.json) → BPE, vocab.txt (or *.txt) → WordPiece.
// A directory is searched for tokenizer.json, then vocab.txt (a run directory holds one of them).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace knot::data
