// `knot translate --run DIR [--beam N | --sample ...] [--verbose] "text" ...`: translates with a
// trained translation run (its latest checkpoint), decoding incrementally with the KV cache.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "tools/commands.h"
#include "train/translation.h"

namespace knot::tools {

void add_translate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("translate", "Translate sentences with a trained translation run");
  struct Opts {
    std::string run;
    std::vector<std::string> texts;
    int64_t beam = 0;
    bool sample = false, verbose = false;
    double temperature = 1.0, top_p = 1.0, length_penalty = 0.6;
    int64_t top_k = 0, max_length = 0, seed = 0, n_best = 1, batch_size = 32;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--run", o->run, "Run directory written by knot train")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("text", o->texts,
                  "Sentences to translate; without any, one sentence per line from stdin. Output keeps the input's "
                  "lines: a blank line in gives a blank line out, and a sentence longer than the model takes "
                  "(model.max_length - 1 tokens) is cut to it with a warning naming its line");
  auto* beam = cmd->add_option("--beam", o->beam, "Beam search with this beam width (default: greedy)")
                   ->check(CLI::PositiveNumber);
  cmd->add_option("--length-penalty", o->length_penalty,
                  "Beam search: GNMT length penalty alpha, score = log p / ((5 + len) / 6)^alpha")
      ->capture_default_str();
  cmd->add_option("--n-best", o->n_best, "Beam search: print the best N hypotheses with their scores")
      ->capture_default_str();
  auto* sample = cmd->add_flag("--sample", o->sample, "Sample instead of searching")->excludes(beam);
  cmd->add_option("--temperature", o->temperature, "Sampling temperature (> 0)")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "Sample among the K most likely tokens (0 = all)")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "Nucleus sampling: the smallest set with probability >= P (1 = all)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Sampling seed (same seed, same samples)")->capture_default_str();
  cmd->add_option("--max-length", o->max_length,
                  "Most tokens generated per sentence (default: the run's translation.decode_max_length)");
  cmd->add_option("--batch-size", o->batch_size,
                  "Greedy and beam search: sentences decoded together (the results do not depend on it beyond "
                  "float rounding)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--verbose,-v", o->verbose, "Also print the source and output token ids");
  (void)sample;
  cmd->footer(
      "Examples:\n"
      "  knot translate --run runs/translate-kan-small \"I see things differently now.\"\n"
      "  knot translate --run runs/translate-kan-small --beam 4 --n-best 3 \"Stop pushing!\"\n"
      "  echo \"Good morning.\" | knot translate --run runs/translate-kan-small --sample --top-p 0.9 --seed 7");
  cmd->callback([o]() {
    const train::TranslationRun run = train::load_translation_run(o->run);
    const train::SpecialTokens sp = train::special_tokens(*run.tokenizer);
    int64_t max_len = o->max_length;
    if (max_len <= 0) {
      max_len = 64;
      if (run.config.contains("translation") && run.config["translation"].contains("decode_max_length"))
        max_len = run.config["translation"]["decode_max_length"].get<int64_t>();
    }
    max_len = std::min<int64_t>(max_len, run.model->config().max_length - 1);
    // Every input line gives output in its place: a blank line (or one of only spaces) gives a
    // blank line, so the output lines up with the input.
    std::vector<std::string> texts = o->texts;
    const bool from_stdin = texts.empty();
    if (from_stdin)
      for (std::string line; std::getline(std::cin, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        texts.push_back(line);
      }
    auto blank = [](const std::string& t) { return t.find_first_not_of(" \t\r\f\v") == std::string::npos; };
    std::vector<size_t> todo;  // indices of the non-blank texts, in order
    for (size_t i = 0; i < texts.size(); ++i)
      if (!blank(texts[i])) todo.push_back(i);
    Generator gen(static_cast<uint64_t>(o->seed));
    auto ids_str = [](const auto& ids) {
      std::string s;
      for (auto i : ids) s += (s.empty() ? "" : " ") + std::to_string(i);
      return s;
    };
    auto print_one = [&](const std::string& text, const std::vector<int64_t>& src,
                         const std::vector<train::Hypothesis>& hyps) {
      const size_t shown = o->beam > 0 ? std::min<size_t>(hyps.size(), static_cast<size_t>(std::max<int64_t>(o->n_best, 1))) : 1;
      if (o->verbose) fmt::print("src: {}\nsrc ids: {}\n", text, ids_str(src));
      for (size_t k = 0; k < shown; ++k) {
        const auto& h = hyps[k];
        const std::string out = run.tokenizer->decode(std::vector<int32_t>(h.ids.begin(), h.ids.end()));
        if (shown > 1)
          fmt::print("{}\t{:.4f}\t{}\n", k + 1, h.score, out);
        else
          fmt::print("{}\n", out);
        if (o->verbose) fmt::print("ids: {}\n", ids_str(h.ids));
      }
    };
    // Greedy and beam search decode batch_size sentences per decoder call; sampling goes sentence by
    // sentence so that its draws follow the input order. Output keeps the input order.
    const size_t chunk = o->sample ? 1 : static_cast<size_t>(o->batch_size);
    size_t printed = 0;  // texts[0, printed) are done
    auto print_blanks_until = [&](size_t end) {
      for (; printed < end; ++printed) {
        if (o->verbose) fmt::print("src: {}\n", texts[printed]);
        fmt::print("\n");
      }
    };
    for (size_t c0 = 0; c0 < todo.size(); c0 += chunk) {
      const size_t c1 = std::min(todo.size(), c0 + chunk);
      std::vector<std::vector<int64_t>> srcs;
      for (size_t k = c0; k < c1; ++k) {
        const auto enc = run.tokenizer->encode(texts[todo[k]]);
        srcs.emplace_back(enc.begin(), enc.end());
        train::cut_to_model_length(srcs.back(), *run.model, from_stdin ? "translate: input" : "translate: argument",
                                   todo[k] + 1);
      }
      std::vector<std::vector<train::Hypothesis>> results;
      if (o->sample) {
        results.push_back({train::sample_decode(*run.model, srcs[0], sp, max_len,
                                                {o->temperature, o->top_k, o->top_p}, gen)});
      } else if (o->beam > 0) {
        results = train::beam_search_batch(*run.model, srcs, sp, o->beam, max_len, o->length_penalty);
      } else {
        for (auto& ids : train::greedy_decode(*run.model, srcs, sp, max_len)) {
          train::Hypothesis h;
          h.ids = std::move(ids);
          results.push_back({std::move(h)});
        }
      }
      for (size_t k = c0; k < c1; ++k) {
        print_blanks_until(todo[k]);
        print_one(texts[todo[k]], srcs[k - c0], results[k - c0]);
        printed = todo[k] + 1;
      }
    }
    print_blanks_until(texts.size());
  });
}

}  // namespace knot::tools
