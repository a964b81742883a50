// The `lm` task and generation (see language_model.h).
#include "train/language_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/runtime.h"
#include "data/bpe.h"
#include "data/jsonl.h"
#include "data/prepare.h"
#include "dist/comm.h"
#include "core/rng.h"
#include "models/factory.h"
#include "models/memory_estimate.h"
#include "ops/nn_functional.h"
#include "ops/ops.h"
#include "train/batching.h"
#include "train/resume_check.h"
#include "train/run_setup.h"

namespace fs = std::filesystem;

namespace knot::train {

std::vector<std::string> read_lm_documents(const std::string& path, const std::string& format,
                                           const std::string& text_key, int64_t max_lines) {
  KNOT_CHECK(fs::is_regular_file(path), "lm: data file '{}' does not exist{}", path,
             path.rfind("data/corpus", 0) == 0 ? " (prepare it with `knot data corpus`)" : "");
  const std::string ext = fs::path(path).extension().string();
  const bool jsonl = format == "jsonl" || (format == "auto" && (ext == ".jsonl" || ext == ".json"));
  KNOT_CHECK(format == "auto" || format == "text" || format == "jsonl",
             "config 'data': key 'format' must be auto, text or jsonl, got '{}'", format);
  std::vector<std::string> docs;
  auto full = [&]() { return max_lines > 0 && static_cast<int64_t>(docs.size()) >= max_lines; };
  if (jsonl) {
    const auto rows = data::read_jsonl(path);  // errors name the file and line
    for (size_t i = 0; i < rows.size() && !full(); ++i) {
      const auto& r = rows[i];
      KNOT_CHECK(r.is_object() && r.contains(text_key) && r[text_key].is_string(),
                 "{}: record {}: expected an object with a string field '{}' (data.text_key)", path, i + 1, text_key);
      std::string t = r[text_key].get<std::string>();
      if (!t.empty()) docs.push_back(std::move(t));
    }
  } else {
    const std::string bytes = data::read_file_bytes(path);
    size_t start = 0, line = 0;
    while (start < bytes.size() && !full()) {
      size_t end = bytes.find('\n', start);
      if (end == std::string::npos) end = bytes.size();
      ++line;
      std::string s = bytes.substr(start, end - start);
      if (!s.empty() && s.back() == '\r') s.pop_back();
      KNOT_CHECK(data::is_valid_utf8(s), "{}:{}: not valid UTF-8", path, line);
      if (!s.empty()) docs.push_back(std::move(s));
      start = end + 1;
    }
  }
  KNOT_CHECK(!docs.empty(), "lm: '{}' holds no text", path);
  return docs;
}

LmDataConfig LmDataConfig::from_json(const models::Json& j) {
  models::ConfigReader d(j, "data");
  LmDataConfig c;
  c.train = d.get<std::string>("train", c.train, "the training text: a .txt file (one document per line) or JSON lines");
  c.val = d.get<std::string>("val", c.val, "validation text; \"\" = the last val_fraction of the training documents");
  c.val_fraction = d.get<double>("val_fraction", c.val_fraction, "fraction of the training documents held out when 'val' is \"\"");
  c.format = d.get<std::string>("format", c.format, "\"auto\" (by extension), \"text\" or \"jsonl\"");
  c.text_key = d.get<std::string>("text_key", c.text_key, "the text's key in JSON lines");
  c.block_size = d.get<int64_t>("block_size", c.block_size, "tokens per training sequence (blocks of the packed token stream)");
  c.batch_size = d.get<int64_t>("batch_size", c.batch_size, "sequences per batch");
  c.max_train_lines = d.get<int64_t>("max_train_lines", c.max_train_lines, "use the first N training documents (0 = all)");
  c.max_val_blocks = d.get<int64_t>("max_val_blocks", c.max_val_blocks, "validation blocks evaluated (0 = all)");
  d.finish();
  KNOT_CHECK(c.block_size >= 1 && c.batch_size >= 1, "config 'data': keys 'block_size' and 'batch_size' must be >= 1");
  KNOT_CHECK(c.val_fraction > 0 && c.val_fraction < 1, "config 'data': key 'val_fraction' must be in (0, 1), got {}",
             c.val_fraction);
  KNOT_CHECK(c.format == "auto" || c.format == "text" || c.format == "jsonl",
             "config 'data': key 'format' must be auto, text or jsonl, got '{}'", c.format);
  KNOT_CHECK(c.max_train_lines >= 0 && c.max_val_blocks >= 0,
             "config 'data': keys 'max_train_lines' and 'max_val_blocks' must be >= 0");
  return c;
}

LmDocuments read_lm_data(const LmDataConfig& c) {
  LmDocuments d;
  d.train = read_lm_documents(c.train, c.format, c.text_key, c.max_train_lines);
  if (!c.val.empty()) {
    d.val = read_lm_documents(c.val, c.format, c.text_key);
    d.val_source = c.val;
  } else {
    KNOT_CHECK(d.train.size() >= 2, "lm: '{}' holds one document; give data.val or more text", c.train);
    const size_t n_val = std::clamp<size_t>(
        static_cast<size_t>(std::ceil(static_cast<double>(d.train.size()) * c.val_fraction)), 1, d.train.size() - 1);
    d.val.assign(d.train.end() - static_cast<std::ptrdiff_t>(n_val), d.train.end());
    d.train.resize(d.train.size() - n_val);
    d.val_source = fmt::format("the last {} documents of {}", n_val, c.train);
  }
  return d;
}

int32_t document_separator(const data::Tokenizer& tok) {
  const int32_t eos = tok.eos_id();
  KNOT_CHECK(eos >= 0, "lm: the tokenizer has no end-of-text token (<eos> for BPE, [SEP] for WordPiece)");
  return eos;
}

std::vector<int32_t> pack_token_stream(const std::vector<std::string>& docs, const data::Tokenizer& tok,
                                       int32_t separator) {
  std::vector<int32_t> stream;
  for (const auto& d : docs) {
    const auto ids = tok.encode(d);
    stream.insert(stream.end(), ids.begin(), ids.end());
    stream.push_back(separator);
  }
  return stream;
}

int64_t lm_block_count(int64_t n, int64_t block_size) { return n > block_size ? (n - 1) / block_size : 0; }

namespace {

// Inputs and next-token targets of the given blocks: two (B, L) i64 tensors.
std::pair<Tensor, Tensor> make_blocks(const std::vector<int32_t>& stream, const std::vector<int64_t>& blocks,
                                      int64_t L) {
  const int64_t B = static_cast<int64_t>(blocks.size());
  std::vector<int64_t> in(static_cast<size_t>(B * L)), out(in.size());
  for (int64_t r = 0; r < B; ++r) {
    const size_t s = static_cast<size_t>(blocks[r] * L);
    for (int64_t t = 0; t < L; ++t) {
      in[r * L + t] = stream[s + t];
      out[r * L + t] = stream[s + t + 1];
    }
  }
  return {from_vector(in, {B, L}), from_vector(out, {B, L})};
}

Tensor block_loss(const models::DecoderOnlyTransformer& model, const std::pair<Tensor, Tensor>& b, Reduction red) {
  const Tensor logits = model.forward(b.first);
  const int64_t V = logits.size(2);
  return cross_entropy(logits.reshape({-1, V}), b.second.reshape({-1}), -100, 0.0, red);
}

class LanguageModelTask : public Task {
 public:
  LanguageModelTask(std::shared_ptr<models::DecoderOnlyTransformer> model, std::vector<int32_t> train,
                    std::vector<int32_t> val, int64_t block_size, int64_t batch_size, int64_t max_val_blocks, uint64_t seed)
      : model_(std::move(model)), train_(std::move(train)), val_(std::move(val)), L_(block_size), bs_(batch_size),
        max_val_blocks_(max_val_blocks), key_(seed ^ 0x6A09E667F3BCC909ull) {
    n_blocks_ = lm_block_count(static_cast<int64_t>(train_.size()), L_);
    num_batches_ = (n_blocks_ + bs_ - 1) / bs_;
  }

  std::string name() const override { return "lm"; }
  nn::Module& model() override { return *model_; }
  int64_t d_model() const override { return model_->config().embedding_dim; }
  int64_t batch_rows() const override { return bs_; }
  int64_t batches_per_epoch() const override { return num_batches_; }

  TaskLoss train_loss(int64_t epoch, int64_t index) override {
    if (epoch != cached_epoch_) {
      order_.resize(static_cast<size_t>(n_blocks_));
      std::iota(order_.begin(), order_.end(), 0);
      shuffle_counter(order_, key_, static_cast<uint64_t>(epoch));
      cached_epoch_ = epoch;
    }
    const size_t b0 = static_cast<size_t>(index * bs_);
    const std::vector<int64_t> all(order_.begin() + b0, order_.begin() + std::min(order_.size(), b0 + bs_));
    // This rank's blocks; the loss is their summed token losses over the whole batch's tokens (trainer.h).
    const dist::Comm& comm = dist::Comm::world();
    const dist::RowRange rows = dist::shard_rows(static_cast<int64_t>(all.size()), comm.rank(), comm.size());
    set_batch_rows(rows.begin, rows.size());
    if (rows.size() == 0) return {scalar_tensor(0.0), 0, Tensor()};
    const std::vector<int64_t> blocks(all.begin() + rows.begin, all.begin() + rows.end);
    const auto b = make_blocks(train_, blocks, L_);
    const double tokens = static_cast<double>(all.size()) * static_cast<double>(L_);
    TaskLoss tl{mul(block_loss(*model_, b, Reduction::sum), 1.0 / tokens), static_cast<int64_t>(blocks.size()) * L_,
                Tensor()};
    if (model_->config().moe.enabled()) {
      tl.aux = model_->moe_aux_loss();
      const auto stats = model_->moe_stats();
      if (load_.empty()) load_.assign(stats.size(), std::vector<int64_t>(stats.empty() ? 0 : stats[0].load.size(), 0));
      for (size_t l = 0; l < stats.size(); ++l) {
        for (size_t e = 0; e < stats[l].load.size(); ++e) load_[l][e] += stats[l].load[e];
        dropped_ += stats[l].dropped;
        balance_ += stats[l].balance / static_cast<double>(stats.size());
        z_ += stats[l].z / static_cast<double>(stats.size());
      }
      ++moe_batches_;
    }
    return tl;
  }

  // Mixture of experts: tokens per expert per layer summed over the window's micro-batches, the
  // choices dropped for capacity, and the mean (over layers and micro-batches) of the two
  // auxiliary losses before weighting.
  models::Json log_extras() override {
    models::Json j = models::Json::object();
    if (moe_batches_ == 0) return j;
    j["moe_load"] = load_;
    j["moe_dropped"] = dropped_;
    j["moe_balance_loss"] = balance_ / static_cast<double>(moe_batches_);
    j["moe_z_loss"] = z_ / static_cast<double>(moe_batches_);
    load_.clear();
    dropped_ = 0;
    balance_ = z_ = 0;
    moe_batches_ = 0;
    return j;
  }

  models::Json validate() override {
    model_->eval();
    const LmLoss l = lm_stream_loss(*model_, val_, L_, bs_, max_val_blocks_);
    model_->train();
    return {{"val_loss", l.loss}, {"val_ppl", l.perplexity}};
  }

  double probe_loss() override {
    model_->eval();
    NoGradGuard ng;
    std::vector<int64_t> blocks;
    for (int64_t i = 0; i < std::min<int64_t>(bs_, lm_block_count(static_cast<int64_t>(val_.size()), L_)); ++i)
      blocks.push_back(i);
    const double loss = block_loss(*model_, make_blocks(val_, blocks, L_), Reduction::mean).item();
    model_->train();
    return loss;
  }

 private:
  std::shared_ptr<models::DecoderOnlyTransformer> model_;
  std::vector<int32_t> train_, val_;
  int64_t L_, bs_, max_val_blocks_;
  uint64_t key_;
  int64_t n_blocks_ = 0, num_batches_ = 0, cached_epoch_ = -1;
  std::vector<int64_t> order_;
  std::vector<std::vector<int64_t>> load_;  // mixture-of-experts statistics since the last log row
  int64_t dropped_ = 0, moe_batches_ = 0;
  double balance_ = 0, z_ = 0;
};

}  // namespace

LmLoss lm_stream_loss(const models::DecoderOnlyTransformer& model, const std::vector<int32_t>& stream,
                      int64_t block_size, int64_t batch_size, int64_t max_blocks) {
  KNOT_CHECK(block_size > 0 && batch_size > 0, "lm: block_size and batch_size must be > 0");
  KNOT_CHECK(!model.is_training(), "lm: the model must be in eval mode to measure a loss (call eval())");
  NoGradGuard ng;
  int64_t n = lm_block_count(static_cast<int64_t>(stream.size()), block_size);
  if (max_blocks > 0) n = std::min(n, max_blocks);
  KNOT_CHECK(n > 0, "lm: the text holds {} tokens, fewer than one block of {} + 1", stream.size(), block_size);
  LmLoss out;
  double sum = 0;
  for (int64_t b0 = 0; b0 < n; b0 += batch_size) {
    std::vector<int64_t> blocks;
    for (int64_t b = b0; b < std::min(n, b0 + batch_size); ++b) blocks.push_back(b);
    sum += block_loss(model, make_blocks(stream, blocks, block_size), Reduction::sum).item();
    out.tokens += static_cast<int64_t>(blocks.size()) * block_size;
  }
  out.blocks = n;
  out.loss = sum / static_cast<double>(out.tokens);
  out.perplexity = std::exp(std::min(out.loss, 50.0));
  return out;
}

Generation generate_ids(const models::DecoderOnlyTransformer& model, std::vector<int64_t> prompt,
                        const GenerateOptions& opt) {
  KNOT_CHECK(opt.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got {}", opt.max_new_tokens);
  if (!opt.greedy) check_sample_options(opt.sample);
  KNOT_CHECK(!prompt.empty(), "generate: the prompt holds no token (start it with the document separator)");
  const int64_t ctx = model.config().max_length;
  Generation g;
  if (static_cast<int64_t>(prompt.size()) > ctx - 1) {
    std::fprintf(stderr, "generate: the prompt has %zu tokens, more than the model's context of %lld minus one; kept "
                 "the last %lld\n", prompt.size(), static_cast<long long>(ctx), static_cast<long long>(ctx - 1));
    prompt.erase(prompt.begin(), prompt.end() - (ctx - 1));
  }
  g.prompt_tokens = static_cast<int64_t>(prompt.size());
  KNOT_CHECK(!model.is_training(), "generate: the model must be in eval mode (call eval())");
  NoGradGuard ng;
  Generator gen(opt.seed);
  models::DecoderOnlyCache cache = model.new_cache();
  std::vector<int64_t> all = prompt;
  Tensor logits = opt.use_cache ? model.forward(from_vector(prompt, {1, static_cast<int64_t>(prompt.size())}), &cache)
                                : model.forward(from_vector(prompt, {1, static_cast<int64_t>(prompt.size())}));
  for (int64_t t = 0; t < opt.max_new_tokens; ++t) {
    const int64_t T = logits.size(1);
    const std::vector<float> lp = last_log_probs(slice(logits, 1, T - 1, T));
    const int64_t tok = opt.greedy ? argmax_row(lp.data(), static_cast<int64_t>(lp.size())) : sample_token(lp, opt.sample, gen);
    if (tok == opt.stop_id) {
      g.stopped = true;
      break;
    }
    g.ids.push_back(tok);
    all.push_back(tok);
    if (t + 1 == opt.max_new_tokens) break;
    if (static_cast<int64_t>(all.size()) >= ctx) {
      g.context_full = true;
      break;
    }
    if (opt.use_cache)
      logits = model.forward(from_vector(std::vector<int64_t>{tok}, {1, 1}), &cache);
    else
      logits = model.forward(from_vector(all, {1, static_cast<int64_t>(all.size())}));
  }
  return g;
}

std::vector<int64_t> lm_prompt_ids(const data::Tokenizer& tok, const std::string& text) {
  std::vector<int64_t> ids{document_separator(tok)};
  for (int32_t id : tok.encode(text)) ids.push_back(id);
  return ids;
}

LmRun load_lm_run(const std::string& run_dir) {
  LmRun r;
  r.run_dir = run_dir;
  r.config = load_run_config(run_dir, {"lm"}, "a language-model run");
  r.tokenizer = data::load_tokenizer(run_dir);  // tokenizer.json (BPE) or vocab.txt (WordPiece)
  r.model = std::dynamic_pointer_cast<models::DecoderOnlyTransformer>(models::build_model(r.config.at("model")));
  KNOT_CHECK(r.model, "'{}': the model is not a decoder_only", run_dir);
  r.checkpoint = load_latest_weights(run_dir, *r.model, r.config.at("model"));
  return r;
}

GenerateOptions read_generate_defaults(config::Reader& g) {
  GenerateOptions o;
  o.max_new_tokens = g.get<int64_t>("max_new_tokens", o.max_new_tokens, "tokens generated per prompt");
  o.sample.temperature =
      g.get<double>("temperature", o.sample.temperature, "sampling temperature (> 0; lower is more conservative)");
  o.sample.top_k = g.get<int64_t>("top_k", o.sample.top_k, "sample from the k likeliest tokens (0 = all)");
  o.sample.top_p = g.get<double>("top_p", o.sample.top_p, "nucleus sampling: the smallest set with this probability (1 = all)");
  g.finish();
  KNOT_CHECK(o.max_new_tokens >= 0, "config '{}': key 'max_new_tokens' must be >= 0, got {}", g.context(), o.max_new_tokens);
  try {
    check_sample_options(o.sample);
  } catch (const Error& e) {
    KNOT_FAIL("config '{}': {}", g.context(), e.what());
  }
  return o;
}

TrainResult train_language_model(const models::Json& cfg_in, const std::string& run_dir_arg, bool resume,
                                 const TrainerHooks& hooks) {
  const models::Json cfg = cfg_in;
  models::ConfigReader top(cfg, "config");
  const PreparedRun run = prepare_run(top, "lm", "runs/lm", run_dir_arg, hooks);
  const auto& log = run.log;
  const uint64_t seed = run.seed;
  const std::string& run_dir = run.run_dir;
  const models::Json data_j = top.get<models::Json>("data", models::Json::object(), "where the data comes from and how it is batched");
  const models::Json tok_j = top.get<models::Json>("tokenizer", models::Json::object(), "the tokenizer: trained on the training text, or loaded from 'path'");
  models::Json model_j = top.require<models::Json>("model", "the model (its keys are model.*); its vocabulary comes from the tokenizer");
  const models::Json train_j = top.get<models::Json>("train", models::Json::object(), "the trainer: steps, optimizer, schedule, checkpoints (knot config --schema train)");
  const models::Json gen_j = top.get<models::Json>("generate", models::Json::object(), "defaults of knot generate for this run");
  top.finish();
  KNOT_CHECK(model_j.is_object(), "config: key 'model' must be an object");

  const LmDataConfig dc = LmDataConfig::from_json(data_j);
  const int64_t block_size = dc.block_size, batch_size = dc.batch_size;

  models::ConfigReader t(tok_j, "tokenizer");
  data::BpeTrainOptions bpe;
  const int64_t model_vocab = model_j.contains("vocab_size") && model_j["vocab_size"].is_number_integer()
                                  ? model_j["vocab_size"].get<int64_t>()
                                  : 8000;
  const int64_t want_vocab = t.get<int64_t>("vocab_size", model_vocab, "BPE vocabulary size (default: the model's vocab_size, else 8000)");
  bpe.min_frequency = static_cast<int>(t.get<int64_t>("min_frequency", 2, "a merge needs this many occurrences"));
  bpe.lowercase = t.get<bool>("lowercase", false, "lowercase the text before tokenizing");
  const std::string tok_file = t.get<std::string>("path", "", "an existing tokenizer (tokenizer.json or vocab.txt) instead of training a BPE");
  t.finish();
  KNOT_CHECK(want_vocab >= 8 && want_vocab <= (int64_t{1} << 24),
             "config 'tokenizer': key 'vocab_size' must be in [8, 16777216], got {}", want_vocab);
  bpe.vocab_size = static_cast<int>(want_vocab);
  {
    models::ConfigReader g(gen_j, "generate");
    (void)read_generate_defaults(g);
  }
  const TrainerConfig tcfg = TrainerConfig::from_json(train_j);
  // The model's keys (basis options included) are checked before the tokenizer is trained: a typo
  // costs no BPE run.
  {
    config::ContextAlias as_model({"decoder_only"}, "model");
    models::Json probe = model_j;
    probe["model"] = "decoder_only";
    probe["vocab_size"] = want_vocab;
    (void)models::estimate_model_memory(probe, {batch_size, block_size});
  }
  config::reading_done();
  start_run(run, tcfg, resume);

  LmDocuments docs = read_lm_data(dc);
  const std::vector<std::string>& train_docs = docs.train;

  std::unique_ptr<data::Tokenizer> tok;
  if (resume) {
    tok = data::load_tokenizer(run_dir);
  } else if (!tok_file.empty()) {
    tok = data::load_tokenizer(tok_file);
    log(fmt::format("lm: tokenizer {} ({} tokens)", tok_file, tok->vocab_size()));
  } else {
    auto trained = std::make_unique<data::BpeTokenizer>(data::BpeTokenizer::train(train_docs, bpe));
    log(fmt::format("lm: trained a BPE tokenizer of {} tokens (asked for {}) on {} documents", trained->vocab_size(),
                    bpe.vocab_size, train_docs.size()));
    tok = std::move(trained);
  }
  const int32_t sep = document_separator(*tok);
  std::vector<int32_t> train_stream = pack_token_stream(train_docs, *tok, sep);
  std::vector<int32_t> val_stream = pack_token_stream(docs.val, *tok, sep);
  const int64_t n_train_blocks = lm_block_count(static_cast<int64_t>(train_stream.size()), block_size);
  const int64_t n_val_blocks = lm_block_count(static_cast<int64_t>(val_stream.size()), block_size);
  KNOT_CHECK(n_train_blocks > 0, "lm: the training text holds {} tokens, fewer than one block of data.block_size {} + 1",
             train_stream.size(), block_size);
  KNOT_CHECK(n_val_blocks > 0,
             "lm: the validation text holds {} tokens, fewer than one block of data.block_size {} + 1 (raise "
             "data.val_fraction or give data.val)",
             val_stream.size(), block_size);
  log(fmt::format("lm: {} training tokens ({} blocks of {}), {} validation tokens ({} blocks)", train_stream.size(),
                  n_train_blocks, block_size, val_stream.size(), n_val_blocks));

  model_j["model"] = "decoder_only";
  model_j["vocab_size"] = tok->vocab_size();
  if (!model_j.contains("max_length")) model_j["max_length"] = std::max<int64_t>(block_size, 1024);
  KNOT_CHECK(model_j["max_length"].is_number_integer() && model_j["max_length"].get<int64_t>() >= block_size,
             "config: model.max_length ({}) must be at least data.block_size ({})", model_j["max_length"].dump(),
             block_size);
  models::check_training_memory(model_j, train_j, {batch_size, block_size});
  manual_seed(seed);
  auto model = std::dynamic_pointer_cast<models::DecoderOnlyTransformer>(models::build_model(model_j));
  KNOT_CHECK(model, "config: key 'model' must describe a decoder_only model");

  const models::Json resolved = run.resolved(cfg, model_j);
  if (resume) check_resume_tokenizer_settings(run_dir, tok_j);  // the run keeps its tokenizer
  log(fmt::format("lm: model {} parameters, run directory {}", model->num_parameters(), run_dir));

  LanguageModelTask task_obj(model, std::move(train_stream), std::move(val_stream), block_size, batch_size,
                             dc.max_val_blocks, seed);
  RunSetup setup;
  setup.model_config = model_j;
  setup.files.emplace_back("config.json", resolved.dump(2) + "\n");
  // The run keeps its tokenizer in the tokenizer's own format, where load_tokenizer(run_dir) finds it.
  if (!resume) setup.files.emplace_back(tok->kind() == "bpe" ? "tokenizer.json" : "vocab.txt", tok->to_file_text());
  return run_trainer(task_obj, tcfg, run_dir, resume, hooks, setup);
}

}  // namespace knot::train
