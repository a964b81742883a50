// The translation task (see translation.h).
#include "train/translation.h"
#include "core/runtime.h"


#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/bpe.h"
#include "data/jsonl.h"
#include "dist/comm.h"
#include "models/factory.h"
#include "models/memory_estimate.h"
#include "ops/nn_functional.h"
#include "ops/ops.h"
#include "train/batching.h"
#include "train/resume_check.h"
#include "train/run_setup.h"
#include "train/bleu.h"

namespace fs = std::filesystem;

namespace knot::train {

std::pair<std::string, std::string> translation_keys(const models::Json& data) {
  auto text = [&](const char* key, const std::string& fallback) {
    const auto it = data.is_object() ? data.find(key) : data.end();
    if (!data.is_object() || it == data.end()) return fallback;
    KNOT_CHECK(it->is_string(), "config 'data': key '{}' must be a string, got {}", key, it->dump());
    const std::string v = it->get<std::string>();
    return v.empty() ? fallback : v;
  };
  const std::string src_lang = text("src_lang", "en"), tgt_lang = text("tgt_lang", "de");
  const std::string src = text("src_key", src_lang), tgt = text("tgt_key", tgt_lang);
  KNOT_CHECK(src != tgt, "config 'data': the source and target keys are both '{}' (data.src_key / data.tgt_key, "
             "else data.src_lang / data.tgt_lang)", src);
  return {src, tgt};
}

std::vector<TranslationPair> read_translation_pairs(const std::string& path, const std::string& src_lang,
                                                    const std::string& tgt_lang, int64_t max_examples) {
  KNOT_CHECK(fs::exists(path), "translation: data file '{}' does not exist (prepare it with `knot data ende`)", path);
  const auto rows = data::read_jsonl(path);
  std::vector<TranslationPair> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    for (const std::string& k : {src_lang, tgt_lang})
      KNOT_CHECK(r.is_object() && r.contains(k) && r[k].is_string(), "{}:{}: expected a string key '{}'", path, i + 1, k);
    out.push_back({r[src_lang].get<std::string>(), r[tgt_lang].get<std::string>(), {}, {}});
    if (max_examples > 0 && static_cast<int64_t>(out.size()) >= max_examples) break;
  }
  KNOT_CHECK(!out.empty(), "translation: '{}' holds no pairs", path);
  return out;
}

void encode_pairs(std::vector<TranslationPair>& pairs, const data::Tokenizer& tok) {
  for (auto& p : pairs) {
    const auto s = tok.encode(p.src_text), t = tok.encode(p.tgt_text);
    p.src.assign(s.begin(), s.end());
    p.tgt.assign(t.begin(), t.end());
  }
}

SpecialTokens special_tokens(const data::Tokenizer& tok) {
  const auto s = tok.special_ids();
  KNOT_CHECK(s.bos >= 0 && s.eos >= 0 && s.pad >= 0, "translation: the tokenizer needs <sos>, <eos> and <pad> tokens");
  return {s.bos, s.eos, s.pad};
}

namespace {

struct BatchTensors {
  Tensor src, tgt_in, tgt_out;  // (B, S), (B, T), (B, T) i64
  int64_t tokens = 0;           // non-pad source + target tokens
};

// Pads to the longest source and target of idx, and to at least min_S / min_T (a data-parallel rank
// pads its rows to the whole batch's lengths, so it computes what one process computes for them).
BatchTensors make_batch(const std::vector<TranslationPair>& pairs, const std::vector<int64_t>& idx,
                        const SpecialTokens& sp, size_t min_S = 1, size_t min_T = 1) {
  size_t S = min_S, T = min_T;
  for (int64_t i : idx) {
    S = std::max(S, pairs[i].src.size());
    T = std::max(T, pairs[i].tgt.size() + 1);
  }
  const size_t B = idx.size();
  std::vector<int64_t> src(B * S, sp.pad), tin(B * T, sp.pad), tout(B * T, sp.pad);
  BatchTensors b;
  for (size_t r = 0; r < B; ++r) {
    const auto& p = pairs[idx[r]];
    std::copy(p.src.begin(), p.src.end(), src.begin() + r * S);
    tin[r * T] = sp.bos;
    std::copy(p.tgt.begin(), p.tgt.end(), tin.begin() + r * T + 1);
    std::copy(p.tgt.begin(), p.tgt.end(), tout.begin() + r * T);
    tout[r * T + p.tgt.size()] = sp.eos;
    b.tokens += static_cast<int64_t>(p.src.size() + p.tgt.size() + 1);
  }
  const int64_t Bi = static_cast<int64_t>(B);
  b.src = from_vector(src, {Bi, static_cast<int64_t>(S)});
  b.tgt_in = from_vector(tin, {Bi, static_cast<int64_t>(T)});
  b.tgt_out = from_vector(tout, {Bi, static_cast<int64_t>(T)});
  return b;
}

Tensor batch_loss(const models::EncoderDecoderTransformer& model, const BatchTensors& b, const SpecialTokens& sp,
                  double label_smoothing, Reduction red) {
  const Tensor logits = model.forward(b.src, b.tgt_in);
  const int64_t V = logits.size(2);
  return cross_entropy(logits.reshape({-1, V}), b.tgt_out.reshape({-1}), sp.pad, label_smoothing, red);
}

// Indices sorted by (source length, target length), then cut into batches.
std::vector<std::vector<int64_t>> length_sorted_batches(const std::vector<TranslationPair>& pairs, int64_t batch_size) {
  std::vector<int64_t> idx(pairs.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    return std::make_pair(pairs[a].src.size(), pairs[a].tgt.size()) < std::make_pair(pairs[b].src.size(), pairs[b].tgt.size());
  });
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < idx.size(); i += static_cast<size_t>(batch_size))
    out.emplace_back(idx.begin() + i, idx.begin() + std::min(idx.size(), i + static_cast<size_t>(batch_size)));
  return out;
}

class TranslationTask : public Task {
 public:
  TranslationTask(std::shared_ptr<models::EncoderDecoderTransformer> model, std::vector<TranslationPair> train,
                  std::vector<TranslationPair> val, const data::Tokenizer& tok, int64_t batch_size,
                  int64_t bucket_batches, double label_smoothing, int64_t val_bleu_examples, int64_t decode_max_length,
                  uint64_t seed)
      : model_(std::move(model)), train_(std::move(train)), val_(std::move(val)), tok_(tok), sp_(special_tokens(tok)),
        batch_size_(batch_size), bucket_(bucket_batches), ls_(label_smoothing), val_bleu_(val_bleu_examples),
        decode_max_(decode_max_length), data_key_(seed ^ 0x9E3779B97F4A7C15ull) {
    num_batches_ = bucketed_batch_count(static_cast<int64_t>(train_.size()), batch_size_, bucket_);
    val_batches_ = length_sorted_batches(val_, batch_size_);
  }

  std::string name() const override { return "translation"; }
  nn::Module& model() override { return *model_; }
  int64_t d_model() const override { return model_->config().embedding_dim; }
  int64_t batches_per_epoch() const override { return num_batches_; }

  int64_t batch_rows() const override { return batch_size_; }

  TaskLoss train_loss(int64_t epoch, int64_t index) override {
    if (epoch != cached_epoch_) build_epoch(epoch);
    const std::vector<int64_t>& all = batches_.at(static_cast<size_t>(index));
    // This rank's rows (all of them in one process), padded to the whole batch's lengths; the loss is
    // their summed token losses over the whole batch's target tokens (trainer.h: data parallelism).
    const dist::Comm& comm = dist::Comm::world();
    const dist::RowRange rows = dist::shard_rows(static_cast<int64_t>(all.size()), comm.rank(), comm.size());
    size_t S = 1, T = 1;
    int64_t targets = 0;
    for (int64_t i : all) {
      S = std::max(S, train_[i].src.size());
      T = std::max(T, train_[i].tgt.size() + 1);
      targets += static_cast<int64_t>(train_[i].tgt.size() + 1);
    }
    set_batch_rows(rows.begin, rows.size());
    if (rows.size() == 0) return {scalar_tensor(0.0), 0, Tensor()};
    const std::vector<int64_t> mine(all.begin() + rows.begin, all.begin() + rows.end);
    const BatchTensors b = make_batch(train_, mine, sp_, S, T);
    const Tensor sum = batch_loss(*model_, b, sp_, ls_, Reduction::sum);
    return {mul(sum, 1.0 / static_cast<double>(targets)), b.tokens, Tensor()};
  }

  models::Json validate() override {
    model_->eval();
    NoGradGuard ng;
    LossSum ls;
    for (const auto& idx : val_batches_) {
      const BatchTensors b = make_batch(val_, idx, sp_);
      ls.sum += batch_loss(*model_, b, sp_, 0.0, Reduction::sum).item();
      for (int64_t i : idx) ls.tokens += static_cast<int64_t>(val_[i].tgt.size() + 1);
    }
    models::Json j{{"val_loss", ls.mean()}, {"val_ppl", std::exp(std::min(ls.mean(), 50.0))}};
    if (val_bleu_ > 0) {
      const size_t n = std::min(val_.size(), static_cast<size_t>(val_bleu_));
      std::vector<std::vector<int64_t>> srcs;
      std::vector<std::string> refs, hyps;
      for (size_t i = 0; i < n; ++i) {
        srcs.push_back(val_[i].src);
        refs.push_back(val_[i].tgt_text);
      }
      DecodeSettings s;
      s.max_length = decode_max_;
      for (const auto& ids : translate_ids(*model_, srcs, sp_, s))
        hyps.push_back(tok_.decode(std::vector<int32_t>(ids.begin(), ids.end())));
      j["val_bleu"] = corpus_bleu(hyps, refs).score;
    }
    model_->train();
    return j;
  }

  double probe_loss() override {
    model_->eval();
    NoGradGuard ng;
    const BatchTensors b = make_batch(val_, val_batches_.at(0), sp_);
    const double loss = batch_loss(*model_, b, sp_, 0.0, Reduction::mean).item();
    model_->train();
    return loss;
  }

 private:
  void build_epoch(int64_t epoch) {
    batches_ = bucketed_batches(static_cast<int64_t>(train_.size()), batch_size_, bucket_, data_key_, epoch,
                                [&](int64_t a, int64_t b) {
                                  return std::make_pair(train_[a].src.size(), train_[a].tgt.size()) <
                                         std::make_pair(train_[b].src.size(), train_[b].tgt.size());
                                });
    cached_epoch_ = epoch;
  }

  std::shared_ptr<models::EncoderDecoderTransformer> model_;
  std::vector<TranslationPair> train_, val_;
  const data::Tokenizer& tok_;
  SpecialTokens sp_;
  int64_t batch_size_, bucket_;
  double ls_;
  int64_t val_bleu_, decode_max_;
  uint64_t data_key_;
  int64_t num_batches_ = 0;
  std::vector<std::vector<int64_t>> val_batches_, batches_;
  int64_t cached_epoch_ = -1;
};

// Keeps the pairs that fit max_length (one special added on each side).
std::vector<TranslationPair> fit_length(std::vector<TranslationPair> pairs, int64_t max_length, int64_t* dropped) {
  std::vector<TranslationPair> out;
  for (auto& p : pairs) {
    if (!p.src.empty() && !p.tgt.empty() && static_cast<int64_t>(p.src.size()) + 1 <= max_length &&
        static_cast<int64_t>(p.tgt.size()) + 1 <= max_length)
      out.push_back(std::move(p));
    else
      ++*dropped;
  }
  return out;
}

}  // namespace

LossSum teacher_forced_loss(const models::EncoderDecoderTransformer& model, const std::vector<TranslationPair>& pairs,
                            const SpecialTokens& sp, int64_t batch_size) {
  NoGradGuard ng;
  LossSum ls;
  for (const auto& idx : length_sorted_batches(pairs, batch_size)) {
    const BatchTensors b = make_batch(pairs, idx, sp);
    ls.sum += batch_loss(model, b, sp, 0.0, Reduction::sum).item();
    for (int64_t i : idx) ls.tokens += static_cast<int64_t>(pairs[i].tgt.size() + 1);
  }
  return ls;
}

std::vector<std::vector<int64_t>> translate_ids(const models::EncoderDecoderTransformer& model,
                                                const std::vector<std::vector<int64_t>>& srcs,
                                                const SpecialTokens& sp, const DecodeSettings& s) {
  std::vector<std::vector<int64_t>> out(srcs.size());
  // Length-sorted batches of batch_size sources: less padding, and the results go back to their
  // positions. fn(chunk) returns the chunk's translations in order.
  auto batched = [&](auto&& fn) {
    std::vector<size_t> order(srcs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return srcs[a].size() < srcs[b].size(); });
    const size_t bs = static_cast<size_t>(std::max<int64_t>(s.batch_size, 1));
    for (size_t i = 0; i < order.size(); i += bs) {
      std::vector<std::vector<int64_t>> chunk;
      const size_t end = std::min(order.size(), i + bs);
      for (size_t k = i; k < end; ++k) chunk.push_back(srcs[order[k]]);
      auto res = fn(chunk);
      for (size_t k = i; k < end; ++k) out[order[k]] = std::move(res[k - i]);
    }
  };
  if (s.method == "greedy") {
    batched([&](const auto& chunk) { return greedy_decode(model, chunk, sp, s.max_length); });
  } else if (s.method == "beam") {
    batched([&](const auto& chunk) {
      std::vector<std::vector<int64_t>> best;
      for (auto& hyps : beam_search_batch(model, chunk, sp, s.beam, s.max_length, s.length_penalty))
        best.push_back(std::move(hyps.at(0).ids));
      return best;
    });
  } else if (s.method == "sample") {
    Generator gen(s.seed);
    for (size_t i = 0; i < srcs.size(); ++i) out[i] = sample_decode(model, srcs[i], sp, s.max_length, s.sample, gen).ids;
  } else {
    KNOT_FAIL("translate: unknown decoding method '{}' (greedy, beam, sample)", s.method);
  }
  return out;
}

TranslationRun load_translation_run(const std::string& run_dir) {
  TranslationRun r;
  r.run_dir = run_dir;
  r.config = load_run_config(run_dir, {"translation"}, "a translation run");
  r.tokenizer = data::load_tokenizer((fs::path(run_dir) / "tokenizer.json").string());
  r.model = std::dynamic_pointer_cast<models::EncoderDecoderTransformer>(models::build_model(r.config.at("model")));
  KNOT_CHECK(r.model, "'{}': the model is not an encoder_decoder", run_dir);
  r.checkpoint = load_latest_weights(run_dir, *r.model, r.config.at("model"));
  return r;
}

bool cut_to_model_length(std::vector<int64_t>& ids, const models::EncoderDecoderTransformer& model,
                         const std::string& where, size_t line) {
  const size_t cap = static_cast<size_t>(std::max<int64_t>(model.config().max_length - 1, 1));
  if (ids.size() <= cap) return false;
  std::fprintf(stderr, "%s line %zu: %zu tokens, more than the model's limit of %zu (model.max_length - 1); cut to %zu\n",
               where.c_str(), line, ids.size(), cap, cap);
  ids.resize(cap);
  return true;
}

EvalDefaults read_eval_defaults(config::Reader& r) {
  EvalDefaults e;
  e.beam = r.get<int64_t>("beam", e.beam, "beam width of BLEU decoding (1 = greedy)");
  e.length_penalty = r.get<double>("length_penalty", e.length_penalty, "beam search length penalty alpha (GNMT)");
  e.batch_size = r.get<int64_t>("batch_size", e.batch_size, "sentences per batch for loss and decoding");
  e.samples = r.get<int64_t>("samples", e.samples, "sample translations printed");
  r.finish();
  KNOT_CHECK(e.beam >= 1 && e.batch_size >= 1 && e.samples >= 0 && e.length_penalty >= 0,
             "config '{}': 'beam' and 'batch_size' must be >= 1, 'samples' and 'length_penalty' >= 0, got {}, {}, {}, {}",
             r.context(), e.beam, e.batch_size, e.samples, e.length_penalty);
  return e;
}

TrainResult train_translation(const models::Json& cfg_in, const std::string& run_dir_arg, bool resume,
                              const TrainerHooks& hooks) {
  models::Json cfg = cfg_in;
  models::ConfigReader top(cfg, "config");
  const PreparedRun run = prepare_run(top, "translation", "runs/translation", run_dir_arg, hooks);
  const auto& log = run.log;
  const uint64_t seed = run.seed;
  const std::string& run_dir = run.run_dir;
  models::ConfigReader d = top.child("data", "the sentence pairs (JSON lines; knot data ende)");
  models::ConfigReader t = top.child("tokenizer", "the BPE tokenizer trained on the training pairs (or loaded)");
  models::ConfigReader tr = top.child("translation", "the task's loss and decoding");
  models::Json model_j = top.require<models::Json>(
      "model", "the encoder_decoder model (its keys are model.*); its vocabulary comes from the tokenizer");
  const models::Json train_j = top.get<models::Json>("train", models::Json::object(), "the trainer (knot config --schema train)");
  models::ConfigReader e = top.child("eval", "defaults of knot eval for this run");
  top.finish();

  const std::string train_path = d.get<std::string>("train", "data/ende/train.jsonl", "training pairs (JSON lines)");
  const std::string val_path = d.get<std::string>("val", "data/ende/val.jsonl", "validation pairs");
  d.get<std::string>("test", "data/ende/test.jsonl", "test pairs (knot eval)");
  d.get<std::string>("src_lang", "en", "the source language's key in each line");  // also read by translation_keys
  d.get<std::string>("tgt_lang", "de", "the target language's key");
  d.get<std::string>("src_key", "", "the source text's key when it is not src_lang");
  d.get<std::string>("tgt_key", "", "the target text's key when it is not tgt_lang");
  const auto [src_key, tgt_key] = translation_keys(d.raw());
  const int64_t max_length =
      d.get<int64_t>("max_length", 32, "longest pair kept, in tokens (longer pairs are left out and counted)");
  const int64_t batch_size = d.get<int64_t>("batch_size", 32, "pairs per batch");
  const int64_t bucket = d.get<int64_t>("bucket_batches", 50, "batches sorted by length together (less padding)");
  const int64_t max_train = d.get<int64_t>("max_train_examples", 0, "use the first N training pairs (0 = all)");
  const int64_t max_val = d.get<int64_t>("max_val_examples", 0, "use the first N validation pairs (0 = all)");
  d.finish();
  KNOT_CHECK(max_length >= 2, "config 'data': key 'max_length' must be >= 2, got {}", max_length);
  KNOT_CHECK(batch_size > 0 && bucket > 0, "config 'data': keys 'batch_size' and 'bucket_batches' must be > 0");

  data::BpeTrainOptions bpe;
  t.renamed("file", "path");
  bpe.vocab_size = static_cast<int>(t.get<int64_t>("vocab_size", 4000, "BPE vocabulary size, special tokens included"));
  bpe.min_frequency = static_cast<int>(t.get<int64_t>("min_frequency", 2, "a merge needs this many occurrences"));
  bpe.lowercase = t.get<bool>("lowercase", false, "lowercase the text before tokenizing");
  // An existing tokenizer.json (e.g. the one a kanformer model was trained with, so that imported
  // weights keep their token ids) instead of training one.
  const std::string tok_file =
      t.get<std::string>("path", "", "an existing tokenizer.json to use instead of training one");
  t.finish();
  const models::Json tok_j = t.raw();
  KNOT_CHECK(tok_file.empty() || !(tok_j.contains("vocab_size") || tok_j.contains("min_frequency") ||
                                   tok_j.contains("lowercase")),
             "config 'tokenizer': key 'path' loads a trained tokenizer, so 'vocab_size', 'min_frequency' and "
             "'lowercase' (settings for training one) cannot be set with it");

  const double label_smoothing = tr.get<double>("label_smoothing", 0.1, "label smoothing of the cross-entropy");
  const int64_t val_bleu =
      tr.get<int64_t>("val_bleu_examples", 0, "validation pairs translated (greedy) for val_bleu at each validation; 0 = none");
  const int64_t decode_max = tr.get<int64_t>("decode_max_length", 64, "longest translation generated, in tokens");
  tr.finish();
  KNOT_CHECK(label_smoothing >= 0 && label_smoothing < 1,
             "config 'translation': key 'label_smoothing' must be in [0, 1), got {}", label_smoothing);
  read_eval_defaults(e);
  const TrainerConfig tcfg = TrainerConfig::from_json(train_j);  // checks the train keys before any work
  // The model's keys (basis options included) are checked before the tokenizer is trained: a typo
  // costs no BPE run. The vocabulary is tokenizer.vocab_size here, an upper bound of the trained one.
  {
    config::ContextAlias as_model({"encoder_decoder"}, "model");
    models::TrainingShape shape;
    (void)models::estimate_model_memory(models::resolve_model_config(cfg, &shape), shape);
  }
  config::reading_done();
  // Nothing is written into run_dir here: run_trainer writes config.json and tokenizer.json once
  // it holds the run's lock and every check has passed.
  start_run(run, tcfg, resume);
  const fs::path tok_path = fs::path(run_dir) / "tokenizer.json";
  auto train_pairs = read_translation_pairs(train_path, src_key, tgt_key, max_train);
  auto val_pairs = read_translation_pairs(val_path, src_key, tgt_key, max_val);
  std::unique_ptr<data::Tokenizer> tok;
  if (resume) {
    tok = data::load_tokenizer(tok_path.string());
  } else if (!tok_file.empty()) {
    tok = data::load_tokenizer(tok_file);
    log(fmt::format("translation: tokenizer of {} tokens from {}", tok->vocab_size(), tok_file));
  } else {
    std::vector<std::string> sentences;
    for (const auto& p : train_pairs) {
      sentences.push_back(p.src_text);
      sentences.push_back(p.tgt_text);
    }
    auto trained = std::make_unique<data::BpeTokenizer>(data::BpeTokenizer::train(sentences, bpe));
    log(fmt::format("translation: trained a BPE tokenizer of {} tokens on {} sentences (for {})", trained->vocab_size(),
                    sentences.size(), tok_path.string()));
    tok = std::move(trained);
  }
  const SpecialTokens sp = special_tokens(*tok);
  encode_pairs(train_pairs, *tok);
  encode_pairs(val_pairs, *tok);
  int64_t dropped_train = 0, dropped_val = 0;
  train_pairs = fit_length(std::move(train_pairs), max_length, &dropped_train);
  val_pairs = fit_length(std::move(val_pairs), max_length, &dropped_val);
  KNOT_CHECK(!train_pairs.empty(), "translation: no training pair fits data.max_length = {}", max_length);
  KNOT_CHECK(!val_pairs.empty(), "translation: no validation pair fits data.max_length = {}", max_length);
  log(fmt::format("translation: {} training pairs ({} longer than {} tokens left out), {} validation pairs",
                  train_pairs.size(), dropped_train, max_length, val_pairs.size()));

  // The model config takes its vocabulary and padding from the tokenizer.
  KNOT_CHECK(model_j.is_object(), "config: key 'model' must be an object");
  model_j["model"] = "encoder_decoder";
  model_j["vocab_src_size"] = tok->vocab_size();
  model_j["vocab_tgt_size"] = tok->vocab_size();
  model_j["pad_src_idx"] = sp.pad;
  model_j["pad_tgt_idx"] = sp.pad;
  if (!model_j.contains("max_length")) model_j["max_length"] = std::max<int64_t>(max_length + 1, decode_max + 1);
  models::check_training_memory(model_j, train_j, {batch_size, max_length});  // before anything is allocated
  manual_seed(seed);  // initialisation; dropout then continues from the same generator
  auto model = std::dynamic_pointer_cast<models::EncoderDecoderTransformer>(models::build_model(model_j));
  KNOT_CHECK(model, "config: key 'model' must describe an encoder_decoder model");

  models::Json resolved = run.resolved(cfg, model_j);
  resolved["tokenizer"] = tok_j;  // spelled as it is read now (tokenizer.file is tokenizer.path)
  if (resume) check_resume_tokenizer_settings(run_dir, tok_j);  // the run keeps its tokenizer
  const models::EncoderDecoderConfig& mc = model->config();
  log(fmt::format("translation: model {} parameters ({}), run directory {}", model->num_parameters(),
                  mc.uniform_projection()
                      ? mc.projection.to_json().dump()
                      : fmt::format("attention {}, ffn {}, output {}", mc.attention_proj.to_json().dump(),
                                    mc.ffn_proj.to_json().dump(), mc.output_proj.to_json().dump()),
                  run_dir));

  TranslationTask task_obj(model, std::move(train_pairs), std::move(val_pairs), *tok, batch_size, bucket,
                           label_smoothing, val_bleu, decode_max, seed);
  RunSetup setup;
  setup.model_config = model_j;
  setup.files.emplace_back("config.json", resolved.dump(2) + "\n");
  if (!resume) setup.files.emplace_back("tokenizer.json", tok->to_file_text());
  return run_trainer(task_obj, tcfg, run_dir, resume, hooks, setup);
}

}  // namespace knot::train
