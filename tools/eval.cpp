// `knot eval --run DIR [--split test|val|train|FILE]`, by the run's task:
//   translation: teacher-forced loss and perplexity, corpus BLEU (13a, as sacreBLEU) of generated
//                translations, and a few sample translations (FILE: JSON Lines pairs);
//   electra:     generator MLM loss and accuracy at the masked positions, discriminator loss,
//                accuracy, precision, recall and F1 (positive = replaced) over the non-pad tokens,
//                with the fixed validation masking (FILE: a text file, one line per sentence);
//   lm:          next-token loss and perplexity over the split's blocks (FILE: text or JSON Lines,
//                read as the run's data.format / data.text_key).
// The result is also written to RUN/eval-<split>.json.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "data/jsonl.h"
#include "tools/commands.h"
#include "train/bleu.h"
#include "train/electra_pretrain.h"
#include "train/language_model.h"
#include "train/translation.h"

namespace knot::tools {

namespace {

struct Opts {
  std::string run, split = "test";
  int64_t beam = -1, samples = -1, max_examples = 0, batch_size = 0, max_length = 0;
  double length_penalty = -1;
};

std::string run_task(const std::string& run_dir) {
  const std::filesystem::path p = std::filesystem::path(run_dir) / "config.json";
  if (!std::filesystem::exists(p)) return "";
  const models::Json cfg = models::load_json_file(p.string());
  const auto it = cfg.find("task");
  return it != cfg.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string grouped(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0 && s[i - 1] != '-') out += ',';
    out += s[i];
  }
  return out;
}

void eval_electra(const Opts& o) {
  for (const auto& [given, flag] :
       {std::pair{o.beam >= 0, "--beam"}, std::pair{o.length_penalty >= 0, "--length-penalty"},
        std::pair{o.samples >= 0, "--samples"}, std::pair{o.max_length > 0, "--max-length"}})
    if (given)
      throw std::runtime_error(
          fmt::format("eval: {} applies to translation runs; '{}' is an electra run", flag, o.run));
  const auto t0 = std::chrono::steady_clock::now();
  const train::ElectraRun run = train::load_electra_run(o.run);
  const auto dc = train::ElectraDataConfig::from_json(run.config.value("data", models::Json::object()));
  const auto eo = train::ElectraOptions::from_json(run.config.value("electra", models::Json::object()));
  const uint64_t seed = run.config.value("seed", uint64_t{1});
  const train::ElectraVocab vocab = train::electra_vocab(*run.tokenizer);

  std::string split = o.split, source;
  if (split == "test" && dc.test.empty()) {
    fmt::print("eval: the run has no data.test; evaluating the validation split\n");
    split = "val";
  }
  std::vector<std::vector<int32_t>> seqs;
  int64_t cap = o.max_examples;
  if (split == "val" || split == "train") {
    train::ElectraCorpus corpus = train::load_electra_corpus(dc, *run.tokenizer, vocab, split == "train");
    if (split == "val") {
      seqs = std::move(corpus.val);
      source = corpus.val_source;
      if (cap <= 0) cap = dc.max_val_sequences;  // exactly what validation saw
    } else {
      seqs = std::move(corpus.train);
      source = fmt::format("the training lines of {}", models::Json(dc.train).dump());
    }
  } else {
    source = split == "test" ? dc.test : split;
    const auto lines = train::read_text_lines(source);
    seqs = train::encode_and_pack(lines, 0, lines.size(), *run.tokenizer, vocab, dc.max_length);
    if (seqs.empty()) throw std::runtime_error(fmt::format("eval: '{}' holds no text", source));
  }
  if (cap > 0 && seqs.size() > static_cast<size_t>(cap)) seqs.resize(static_cast<size_t>(cap));
  const int64_t batch = o.batch_size > 0 ? o.batch_size : dc.batch_size;
  const train::ElectraMetrics m = train::evaluate_electra(*run.model, seqs, vocab, eo, batch, seed);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!std::isfinite(m.mlm_loss()) || !std::isfinite(m.rtd_loss()))
    throw std::runtime_error(fmt::format("eval: the model's losses on {} are MLM {} and RTD {}: the checkpoint {} gives "
                                         "NaN/Inf (a diverged run?)",
                                         source, m.mlm_loss(), m.rtd_loss(), run.checkpoint));

  const auto& d = m.disc;
  fmt::print("eval: electra run {}, checkpoint {}\n", o.run, run.checkpoint);
  fmt::print("split {}{} ({} sequences, {} tokens; mask_prob {}, fixed masking)\n", split,
             source == split ? std::string() : ": " + source, grouped(m.sequences), grouped(m.tokens), eo.mask_prob);
  fmt::print("generator MLM      loss {:.4f}  accuracy {:.2f} %  ({} masked positions)\n", m.mlm_loss(),
             100.0 * m.mlm_accuracy(), grouped(m.masked));
  fmt::print("discriminator RTD  loss {:.4f}  accuracy {:.2f} %  precision {:.4f}  recall {:.4f}  F1 {:.4f}\n",
             m.rtd_loss(), 100.0 * d.accuracy(), d.precision(), d.recall(), d.f1());
  fmt::print("                   ({} replaced of {} tokens; tp {} fp {} fn {} tn {}; positive = replaced)\n",
             grouped(d.tp + d.fn), grouped(d.total()), d.tp, d.fp, d.fn, d.tn);
  fmt::print("loss (MLM + {:g} x RTD) {:.4f}\n", eo.rtd_weight, m.mlm_loss() + eo.rtd_weight * m.rtd_loss());
  fmt::print("eval: {:.1f} s\n", secs);

  models::Json out = m.to_json(eo.rtd_weight, "");
  out["split"] = split;
  out["source"] = source;
  out["checkpoint"] = run.checkpoint;
  out["sequences"] = m.sequences;
  out["tokens"] = m.tokens;
  out["masked"] = m.masked;
  out["confusion"] = {{"tp", d.tp}, {"fp", d.fp}, {"fn", d.fn}, {"tn", d.tn}};
  out["mask_prob"] = eo.mask_prob;
  out["rtd_weight"] = eo.rtd_weight;
  const std::string name = split == "val" || split == "train" || split == "test"
                               ? split
                               : std::filesystem::path(split).stem().string();
  data::write_file_atomic((std::filesystem::path(o.run) / ("eval-" + name + ".json")).string(), out.dump(2) + "\n");
}

void eval_lm(const Opts& o) {
  for (const auto& [given, flag] :
       {std::pair{o.beam >= 0, "--beam"}, std::pair{o.length_penalty >= 0, "--length-penalty"},
        std::pair{o.samples >= 0, "--samples"}, std::pair{o.max_length > 0, "--max-length"}})
    if (given)
      throw std::runtime_error(fmt::format("eval: {} applies to translation runs; '{}' is an lm run (see knot generate)",
                                           flag, o.run));
  const auto t0 = std::chrono::steady_clock::now();
  const train::LmRun run = train::load_lm_run(o.run);
  const train::LmDataConfig dc = train::LmDataConfig::from_json(run.config.value("data", models::Json::object()));
  std::string split = o.split, source;
  if (split == "test") {
    fmt::print("eval: lm runs have no test split; evaluating the validation split (or give --split FILE)\n");
    split = "val";
  }
  std::vector<std::string> docs;
  int64_t cap = o.max_examples;
  if (split == "val" || split == "train") {
    train::LmDocuments d = train::read_lm_data(dc);
    docs = split == "val" ? std::move(d.val) : std::move(d.train);
    source = split == "val" ? d.val_source : dc.train;
    if (split == "val" && cap <= 0) cap = dc.max_val_blocks;  // exactly what validation saw
  } else {
    source = split;
    docs = train::read_lm_documents(split, dc.format, dc.text_key);
  }
  const std::vector<int32_t> stream =
      train::pack_token_stream(docs, *run.tokenizer, train::document_separator(*run.tokenizer));
  const int64_t batch = o.batch_size > 0 ? o.batch_size : dc.batch_size;
  const train::LmLoss l = train::lm_stream_loss(*run.model, stream, dc.block_size, batch, cap);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!std::isfinite(l.loss))
    throw std::runtime_error(fmt::format("eval: the model's loss on {} is {}: the checkpoint {} gives NaN/Inf (a "
                                         "diverged run?)", source, l.loss, run.checkpoint));
  fmt::print("eval: lm run {}, checkpoint {}\n", o.run, run.checkpoint);
  fmt::print("split {}{} ({} documents, {} blocks of {} tokens)\n", split, source == split ? std::string() : ": " + source,
             grouped(static_cast<int64_t>(docs.size())), grouped(l.blocks), dc.block_size);
  fmt::print("loss {:.4f}  perplexity {:.2f}  ({} predicted tokens)\n", l.loss, l.perplexity, grouped(l.tokens));
  fmt::print("eval: {:.1f} s\n", secs);
  const models::Json out{{"split", split},   {"source", source},         {"checkpoint", run.checkpoint},
                         {"loss", l.loss},   {"perplexity", l.perplexity}, {"tokens", l.tokens},
                         {"blocks", l.blocks}, {"block_size", dc.block_size}};
  const std::string name =
      split == "val" || split == "train" ? split : std::filesystem::path(split).stem().string();
  data::write_file_atomic((std::filesystem::path(o.run) / ("eval-" + name + ".json")).string(), out.dump(2) + "\n");
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate a trained run: translation (loss, perplexity, BLEU, samples), electra (MLM accuracy, "
              "discriminator accuracy/precision/recall/F1) or lm (loss, perplexity)");
  auto o = std::make_shared<Opts>();
  cmd->add_option("--run", o->run, "Run directory written by knot train")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--split", o->split,
                  "test, val, train (the run's data) or a FILE (translation: JSON Lines with the run's keys; electra: "
                  "text, one sentence or paragraph per line; lm: text or JSON Lines as the run's data.format)")
      ->capture_default_str();
  cmd->add_option("--beam", o->beam, "Beam width for BLEU (1 = greedy; default: the run's eval.beam)");
  cmd->add_option("--length-penalty", o->length_penalty, "Beam search length penalty alpha (default: eval.length_penalty)");
  cmd->add_option("--samples", o->samples, "Sample translations to print (default: eval.samples)");
  cmd->add_option("--max-examples", o->max_examples,
                  "Evaluate only the first N pairs / electra sequences / lm blocks (0 = all; electra's val: "
                  "data.max_val_sequences; lm's val: data.max_val_blocks)")
      ->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size,
                  "Batch size for loss and decoding; beam search decodes this many sentences x beam rows at once (default: eval.batch_size; electra: data.batch_size)");
  cmd->add_option("--max-length", o->max_length, "Most tokens generated per sentence (default: decode_max_length)");
  cmd->footer(
      "Loss and perplexity are per target token (the <eos> included), teacher-forced, without label smoothing.\n"
      "BLEU is corpus BLEU-4 on detokenised output with 13a tokenisation and exp smoothing (sacreBLEU's defaults).\n"
      "Electra runs: the masking and generator sampling are the fixed ones of validation (seeded by the run's\n"
      "seed), so --split val reproduces the val_* metrics logged at the checkpoint's step; MLM accuracy is the\n"
      "generator's argmax at the masked positions; the discriminator predicts 'replaced' where its logit is > 0\n"
      "(docs/training.md).\n"
      "Examples: knot eval --run runs/translate-kan-small --split test --beam 4\n"
      "          knot eval --run runs/pretrain-electra-tiny --split val\n"
      "          knot eval --run runs/lm-nano-mlp --split val");
  cmd->callback([o]() {
    if (run_task(o->run) == "electra") {
      eval_electra(*o);
      return;
    }
    if (run_task(o->run) == "lm") {
      eval_lm(*o);
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const train::TranslationRun run = train::load_translation_run(o->run);
    const auto& cfg = run.config;
    const auto data = cfg.value("data", models::Json::object());
    models::ConfigReader ev_reader(cfg.value("eval", models::Json::object()), "eval");
    const train::EvalDefaults ev = train::read_eval_defaults(ev_reader);
    const auto tr = cfg.value("translation", models::Json::object());
    const auto [src_lang, tgt_lang] = train::translation_keys(data);  // the JSON keys of the pairs
    std::string path = o->split;
    if (o->split == "test" || o->split == "val" || o->split == "train")
      path = data.value(o->split, "data/ende/" + o->split + ".jsonl");
    auto pairs = train::read_translation_pairs(path, src_lang, tgt_lang, o->max_examples);
    train::encode_pairs(pairs, *run.tokenizer);
    const train::SpecialTokens sp = train::special_tokens(*run.tokenizer);
    // Positions past the model's table cannot be encoded: such (rare) sources and targets are cut,
    // each with a warning naming its line, as knot translate does.
    for (size_t i = 0; i < pairs.size(); ++i) {
      train::cut_to_model_length(pairs[i].src, *run.model, fmt::format("eval: {} (source)", path), i + 1);
      train::cut_to_model_length(pairs[i].tgt, *run.model, fmt::format("eval: {} (target)", path), i + 1);
    }
    const int64_t batch = o->batch_size > 0 ? o->batch_size : ev.batch_size;
    const auto loss = train::teacher_forced_loss(*run.model, pairs, sp, batch);
    if (!std::isfinite(loss.mean()))
      throw std::runtime_error(fmt::format(
          "eval: the model's loss on {} is {}: the checkpoint {} gives NaN/Inf (a diverged run?)", path, loss.mean(),
          run.checkpoint));

    train::DecodeSettings ds;
    const int64_t beam = o->beam > 0 ? o->beam : ev.beam;
    ds.method = beam > 1 ? "beam" : "greedy";
    ds.beam = beam;
    ds.length_penalty = o->length_penalty >= 0 ? o->length_penalty : ev.length_penalty;
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
    const int64_t n_samples = o->samples >= 0 ? o->samples : ev.samples;
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
