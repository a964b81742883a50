// `knot eval --run DIR [--split test|val|train|FILE.jsonl]`: teacher-forced loss and perplexity,
// corpus BLEU (13a, as sacreBLEU) of generated translations, and a few sample translations.
// The result is also written to RUN/eval-<split>.json.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "data/jsonl.h"
#include "tools/commands.h"
#include "train/bleu.h"
#include "train/translation.h"

namespace knot::tools {

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a trained translation run: loss, perplexity, BLEU, samples");
  struct Opts {
    std::string run, split = "test";
    int64_t beam = -1, samples = -1, max_examples = 0, batch_size = 0, max_length = 0;
    double length_penalty = -1;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--run", o->run, "Run directory written by knot train")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--split", o->split, "test, val, train (the run's data files) or a FILE.jsonl with the same keys")
      ->capture_default_str();
  cmd->add_option("--beam", o->beam, "Beam width for BLEU (1 = greedy; default: the run's eval.beam)");
  cmd->add_option("--length-penalty", o->length_penalty, "Beam search length penalty alpha (default: eval.length_penalty)");
  cmd->add_option("--samples", o->samples, "Sample translations to print (default: eval.samples)");
  cmd->add_option("--max-examples", o->max_examples, "Evaluate only the first N pairs (0 = all)")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "Batch size for loss and greedy decoding (default: eval.batch_size)");
  cmd->add_option("--max-length", o->max_length, "Most tokens generated per sentence (default: decode_max_length)");
  cmd->footer(
      "Loss and perplexity are per target token (the <eos> included), teacher-forced, without label smoothing.\n"
      "BLEU is corpus BLEU-4 on detokenised output with 13a tokenisation and exp smoothing (sacreBLEU's defaults).\n"
      "Example: knot eval --run runs/translate-kan-small --split test --beam 4");
  cmd->callback([o]() {
    const auto t0 = std::chrono::steady_clock::now();
    const train::TranslationRun run = train::load_translation_run(o->run);
    const auto& cfg = run.config;
    const auto data = cfg.value("data", models::Json::object());
    const auto ev = cfg.value("eval", models::Json::object());
    const auto tr = cfg.value("translation", models::Json::object());
    const std::string src_lang = data.value("src_lang", "en"), tgt_lang = data.value("tgt_lang", "de");
    std::string path = o->split;
    if (o->split == "test" || o->split == "val" || o->split == "train")
      path = data.value(o->split, "data/ende/" + o->split + ".jsonl");
    auto pairs = train::read_translation_pairs(path, src_lang, tgt_lang, o->max_examples);
    train::encode_pairs(pairs, *run.tokenizer);
    const train::SpecialTokens sp = train::special_tokens(*run.tokenizer);
    // Positions past the model's table cannot be encoded: cut such (rare) sources and targets.
    const size_t cap = static_cast<size_t>(run.model->config().max_length - 1);
    for (auto& p : pairs) {
      if (p.src.size() > cap) p.src.resize(cap);
      if (p.tgt.size() > cap) p.tgt.resize(cap);
    }
    const int64_t batch = o->batch_size > 0 ? o->batch_size : ev.value("batch_size", int64_t{64});
    const auto loss = train::teacher_forced_loss(*run.model, pairs, sp, batch);

    train::DecodeSettings ds;
    const int64_t beam = o->beam > 0 ? o->beam : ev.value("beam", int64_t{1});
    ds.method = beam > 1 ? "beam" : "greedy";
    ds.beam = beam;
    ds.length_penalty = o->length_penalty >= 0 ? o->length_penalty : ev.value("length_penalty", 0.6);
    ds.batch_size = batch;
    ds.max_length = std::min<int64_t>(o->max_length > 0 ? o->max_length : tr.value("decode_max_length", int64_t{64}),
                                      run.model->config().max_length - 1);
    std::vector<std::vector<int64_t>> srcs;
    std::vector<std::string> refs, hyps;
    for (const auto& p : pairs) {
      srcs.push_back(p.src);
      refs.push_back(p.tgt_text);
    }
    for (const auto& ids : train::translate_ids(*run.model, srcs, sp, ds))
      hyps.push_back(run.tokenizer->decode(std::vector<int32_t>(ids.begin(), ids.end())));
    const train::BleuScore bleu = train::corpus_bleu(hyps, refs);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    fmt::print("eval: {} ({} pairs), checkpoint {}\n", path, pairs.size(), run.checkpoint);
    fmt::print("loss {:.4f}  perplexity {:.2f}  ({} target tokens)\n", loss.mean(), std::exp(loss.mean()), loss.tokens);
    fmt::print("{} [{}]\n", bleu.str(), beam > 1 ? fmt::format("beam {}", beam) : std::string("greedy"));
    const int64_t n_samples = o->samples >= 0 ? o->samples : ev.value("samples", int64_t{5});
    for (int64_t i = 0; i < n_samples && i < static_cast<int64_t>(pairs.size()); ++i)
      fmt::print("\n  src: {}\n  ref: {}\n  hyp: {}\n", pairs[i].src_text, refs[i], hyps[i]);
    fmt::print("\neval: {:.1f} s\n", secs);

    std::string name = std::filesystem::path(o->split).stem().string();
    const models::Json out{{"split", path},        {"pairs", pairs.size()},      {"checkpoint", run.checkpoint},
                           {"loss", loss.mean()},  {"perplexity", std::exp(loss.mean())},
                           {"bleu", bleu.score},   {"bleu_detail", bleu.str()},  {"beam", beam}};
    data::write_file_atomic((std::filesystem::path(o->run) / ("eval-" + name + ".json")).string(), out.dump(2) + "\n");
  });
}

}  // namespace knot::tools
