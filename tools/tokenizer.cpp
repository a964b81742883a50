// `knot tokenizer train|encode|decode`: train a BPE tokenizer on sentences (saved as a Hugging
// Face tokenizer.json), and apply or invert any tokenizer that load_tokenizer reads (BPE
// tokenizer.json or WordPiece vocab.txt).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "data/bpe.h"
#include "data/tokenizer.h"
#include "tools/commands.h"

namespace knot::tools {
namespace {

// One sentence per line (.txt), or the string field `field` of each JSON object (.jsonl).
std::vector<std::string> read_sentences(const std::string& path, const std::string& field) {
  std::ifstream f(path, std::ios::binary);
  KNOT_CHECK(f.good(), "tokenizer train: cannot open '{}'", path);
  const bool jsonl = path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  KNOT_CHECK(!jsonl || !field.empty(), "tokenizer train: '{}' is JSON lines; say which field to read with --field (e.g. en)", path);
  std::vector<std::string> out;
  std::string line;
  size_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (!jsonl) {
      out.push_back(line);
      continue;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      KNOT_FAIL("tokenizer train: {}:{}: not valid JSON: {}", path, lineno, e.what());
    }
    KNOT_CHECK(j.is_object() && j.contains(field) && j[field].is_string(), "tokenizer train: {}:{}: no string field '{}'",
               path, lineno, field);
    out.push_back(j[field].get<std::string>());
  }
  KNOT_CHECK(!out.empty(), "tokenizer train: '{}' holds no sentences", path);
  return out;
}

// Command-line arguments, or else the lines of standard input.
std::vector<std::string> inputs_or_stdin(const std::vector<std::string>& args) {
  if (!args.empty()) return args;
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

}  // namespace

void add_tokenizer_commands(CLI::App& app) {
  auto* tok = app.add_subcommand("tokenizer", "Train, apply and invert tokenizers (BPE tokenizer.json, WordPiece vocab.txt)");
  tok->require_subcommand(1);
  tok->footer(
      "BPE tokenizers are Hugging Face tokenizer.json files (normaliser NFC + strip, Metaspace + punctuation\n"
      "pre-tokeniser, specials <sos>=0 <eos>=1 <unk>=2 <pad>=3); `tokenizers.Tokenizer.from_file` loads them.\n"
      "WordPiece tokenizers are BERT vocab.txt files (uncased rules).");

  {
    auto* cmd = tok->add_subcommand("train", "Train a BPE tokenizer on sentences and save it as tokenizer.json");
    auto input = std::make_shared<std::string>(), field = std::make_shared<std::string>();
    auto output = std::make_shared<std::string>("tokenizer.json");
    auto options = std::make_shared<data::BpeTrainOptions>();
    cmd->add_option("--input,-i", *input, "Sentences: .txt (one per line) or .jsonl (one JSON object per line, see --field)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--field", *field, "JSON field to read from each .jsonl line (e.g. en or de)");
    cmd->add_option("--vocab-size", options->vocab_size, "Vocabulary size, specials and alphabet included")
        ->capture_default_str()
        ->check(CLI::Range(5, 1 << 24));
    cmd->add_option("--min-frequency", options->min_frequency, "Smallest pair count that is still merged")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 30));
    cmd->add_flag("--lowercase", options->lowercase, "Lower-case the text before everything else");
    cmd->add_option("--output,-o", *output, "Where to write tokenizer.json")->capture_default_str();
    cmd->footer("Example: knot tokenizer train --input data/ende/train.jsonl --field de --vocab-size 8000 -o de.json");
    cmd->callback([input, field, output, options]() {
      const auto sentences = read_sentences(*input, *field);
      const auto t0 = std::chrono::steady_clock::now();
      const auto t = data::BpeTokenizer::train(sentences, *options);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      t.save(*output);
      fmt::print("tokenizer: trained BPE on {} sentences in {:.2f} s: {} tokens ({} merges) -> {}\n", sentences.size(),
                 secs, t.vocab_size(), t.merges().size(), *output);
    });
  }
  {
    auto* cmd = tok->add_subcommand("encode", "Print the token ids of each text (arguments, or lines of stdin)");
    auto path = std::make_shared<std::string>();
    auto texts = std::make_shared<std::vector<std::string>>();
    auto show_tokens = std::make_shared<bool>(false), special = std::make_shared<bool>(false);
    cmd->add_option("--tokenizer,-t", *path, "tokenizer.json (BPE), vocab.txt (WordPiece) or a run directory holding one")
        ->required();
    cmd->add_option("text", *texts, "Texts to encode; without any, each line of standard input is one text");
    cmd->add_flag("--tokens", *show_tokens, "Also print the token strings, on a second line per text");
    cmd->add_flag("--special", *special, "Add the special tokens (<sos> ... <eos>, or [CLS] ... [SEP])");
    cmd->footer("Output: one line of space-separated ids per text.\nExample: knot tokenizer encode -t tokenizer.json --tokens \"A dog runs.\"");
    cmd->callback([path, texts, show_tokens, special]() {
      const auto t = data::load_tokenizer(*path);
      for (const auto& text : inputs_or_stdin(*texts)) {
        const auto ids = t->encode(text, *special);
        fmt::print("{}\n", fmt::join(ids, " "));
        if (*show_tokens) {
          std::vector<std::string> tokens;
          for (int32_t id : ids) tokens.push_back(t->id_to_token(id));
          fmt::print("{}\n", fmt::join(tokens, " "));
        }
      }
    });
  }
  {
    auto* cmd = tok->add_subcommand("decode", "Print the text of token ids (arguments, or one sequence per line of stdin)");
    auto path = std::make_shared<std::string>();
    auto ids = std::make_shared<std::vector<int32_t>>();
    auto keep = std::make_shared<bool>(false);
    cmd->add_option("--tokenizer,-t", *path, "tokenizer.json (BPE), vocab.txt (WordPiece) or a run directory holding one")
        ->required();
    cmd->add_option("ids", *ids, "Token ids; without any, each line of standard input is one space-separated sequence");
    cmd->add_flag("--keep-special", *keep, "Keep padding and begin/end tokens in the text");
    cmd->footer("Example: knot tokenizer decode -t tokenizer.json 0 45 812 9 1");
    cmd->callback([path, ids, keep]() {
      const auto t = data::load_tokenizer(*path);
      if (!ids->empty()) {
        fmt::print("{}\n", t->decode(*ids, !*keep));
        return;
      }
      std::string line;
      size_t lineno = 0;
      while (std::getline(std::cin, line)) {
        ++lineno;
        std::vector<int32_t> seq;
        std::istringstream is(line);
        std::string word;
        while (is >> word) {
          size_t used = 0;
          long v = 0;
          try {
            v = std::stol(word, &used);
          } catch (const std::exception&) {
            used = 0;
          }
          KNOT_CHECK(used == word.size(), "tokenizer decode: stdin line {}: '{}' is not an integer id", lineno, word);
          seq.push_back(static_cast<int32_t>(v));
        }
        fmt::print("{}\n", t->decode(seq, !*keep));
      }
    });
  }
}

}  // namespace knot::tools
