// `knot generate --run DIR [options] "prompt" ...`: continues prompts with a trained `lm` run (its
// latest checkpoint), one token at a time with the KV cache (train/language_model.h).
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "tools/commands.h"
#include "train/language_model.h"

namespace knot::tools {

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate text with a trained language-model (task lm) run");
  struct Opts {
    std::string run;
    std::vector<std::string> prompts;
    int64_t max_new_tokens = -1, top_k = -1, samples = 1, seed = 0;
    double temperature = -1, top_p = -1;
    bool greedy = false, no_cache = false, no_stop = false, verbose = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--run", o->run, "Run directory written by knot train (task lm)")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("prompt", o->prompts,
                  "Prompts to continue; without any, one prompt per line from stdin. An empty prompt generates from "
                  "the start of a document");
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "Most tokens generated per prompt (default: the run's generate.max_new_tokens)");
  cmd->add_flag("--greedy", o->greedy, "Take the most likely token each step (no sampling)");
  cmd->add_option("--temperature", o->temperature, "Sampling temperature > 0 (default: generate.temperature)");
  cmd->add_option("--top-k", o->top_k, "Sample among the K most likely tokens, 0 = all (default: generate.top_k)");
  cmd->add_option("--top-p", o->top_p, "Nucleus sampling: the smallest set with probability >= P, 1 = all (default: generate.top_p)");
  cmd->add_option("--seed", o->seed, "Sampling seed (same seed, same text)")->capture_default_str();
  cmd->add_option("--samples", o->samples, "Continuations per prompt (seeds seed, seed + 1, ...)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--no-cache", o->no_cache,
                "Recompute the whole prefix every step instead of using the KV cache (the same tokens, slower; for "
                "comparison)");
  cmd->add_flag("--no-stop", o->no_stop, "Do not stop at the end-of-document token");
  cmd->add_flag("--verbose,-v", o->verbose, "Also print the token ids and the speed");
  cmd->footer(
      "Every prompt starts with the end-of-document token, which precedes each document in training.\n"
      "Generation stops at the end-of-document token, at --max-new-tokens, or when the model's context\n"
      "(model.max_length positions) is full; a prompt longer than the context keeps its last tokens.\n"
      "Examples:\n"
      "  knot generate --run runs/lm-nano-mlp \"And God said\"\n"
      "  knot generate --run runs/lm-nano-mlp --greedy --max-new-tokens 40 \"The Congress\"\n"
      "  knot generate --run runs/lm-nano-mlp --temperature 0.8 --top-p 0.9 --samples 3 --seed 7 \"\"");
  cmd->callback([o]() {
    const train::LmRun run = train::load_lm_run(o->run);
    models::ConfigReader g_reader(run.config.value("generate", models::Json::object()), "generate");
    const train::GenerateOptions g = train::read_generate_defaults(g_reader);  // the run's defaults
    train::GenerateOptions opt;
    opt.max_new_tokens = o->max_new_tokens >= 0 ? o->max_new_tokens : g.max_new_tokens;
    opt.greedy = o->greedy;
    opt.sample.temperature = o->temperature >= 0 ? o->temperature : g.sample.temperature;
    opt.sample.top_k = o->top_k >= 0 ? o->top_k : g.sample.top_k;
    opt.sample.top_p = o->top_p >= 0 ? o->top_p : g.sample.top_p;
    opt.use_cache = !o->no_cache;
    opt.stop_id = o->no_stop ? -1 : train::document_separator(*run.tokenizer);
    if (!opt.greedy) train::check_sample_options(opt.sample);  // a bad flag fails before any work
    std::vector<std::string> prompts = o->prompts;
    if (prompts.empty()) {
      std::string line;
      while (std::getline(std::cin, line)) prompts.push_back(line);
    }
    for (const auto& p : prompts) {
      for (int64_t s = 0; s < o->samples; ++s) {
        opt.seed = static_cast<uint64_t>(o->seed + s);
        const auto t0 = std::chrono::steady_clock::now();
        const train::Generation gen = train::generate_ids(*run.model, train::lm_prompt_ids(*run.tokenizer, p), opt);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const std::string text = run.tokenizer->decode(std::vector<int32_t>(gen.ids.begin(), gen.ids.end()));
        fmt::print("{}{}{}\n", p, p.empty() || text.empty() ? "" : " ", text);
        if (o->verbose) {
          fmt::print(stderr, "  ids: {}\n", fmt::join(gen.ids, " "));
          fmt::print(stderr, "  {} prompt tokens, {} new tokens in {:.3f} s ({:.1f} tokens/s, {}); ended by {}\n",
                     gen.prompt_tokens, gen.ids.size(), secs, secs > 0 ? static_cast<double>(gen.ids.size()) / secs : 0.0,
                     opt.use_cache ? "KV cache" : "no cache",
                     gen.stopped ? "the end-of-document token" : gen.context_full ? "the full context" : "max_new_tokens");
        }
        std::fflush(stdout);
      }
    }
  });
}

}  // namespace knot::tools
