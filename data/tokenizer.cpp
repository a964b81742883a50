// load_tokenizer: chooses BPE or WordPiece by file name (see tokenizer.h).
#include "data/tokenizer.h"

#include <filesystem>

#include "core/error.h"
#include "data/bpe.h"
#include "data/jsonl.h"  // write_file_atomic
#include "data/wordpiece.h"

namespace knot::data {

void Tokenizer::save(const std::string& path) const { write_file_atomic(path, to_file_text()); }

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p(path);
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "tokenizer.json", ec)) return std::make_unique<BpeTokenizer>(BpeTokenizer::load((p / "tokenizer.json").string()));
    if (fs::exists(p / "vocab.txt", ec)) return std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::load((p / "vocab.txt").string()));
    KNOT_FAIL("tokenizer: directory '{}' holds neither tokenizer.json nor vocab.txt", path);
  }
  KNOT_CHECK(fs::exists(p, ec), "tokenizer: '{}' does not exist", path);
  const std::string ext = p.extension().string();
  if (ext == ".json") return std::make_unique<BpeTokenizer>(BpeTokenizer::load(path));
  if (ext == ".txt") return std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::load(path));
  KNOT_FAIL("tokenizer: cannot tell the kind of '{}': expected a tokenizer.json (BPE) or a vocab.txt (WordPiece)", path);
}

}  // namespace knot::data
