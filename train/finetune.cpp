// Fine-tuning ELECTRA for sentence classification (see finetune.h).
#include "train/finetune.h"
#include "core/runtime.h"


#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "data/jsonl.h"
#include "data/prepare.h"
#include "dist/comm.h"
#include "ops/ops.h"
#include "models/memory_estimate.h"
#include "ops/nn_functional.h"
#include "train/batching.h"
#include "train/electra_pretrain.h"

namespace fs = std::filesystem;

namespace knot::train {

namespace {

constexpr int64_t kSentimentLabels = 2;

struct ClassBatch {
  Tensor ids;     // (B, T) i64, [PAD]-padded
  Tensor labels;  // (B) i64
  int64_t tokens = 0;  // non-pad tokens
};

// Pads to the longest text of idx and to at least min_T (a data-parallel rank pads its rows to the
// whole batch's length).
ClassBatch make_batch(const std::vector<LabelledText>& ex, const std::vector<size_t>& idx, int64_t pad,
                      size_t min_T = 1) {
  size_t T = min_T;
  for (size_t i : idx) T = std::max(T, ex[i].ids.size());
  const size_t B = idx.size();
  std::vector<int64_t> ids(B * T, pad), labels(B);
  ClassBatch b;
  for (size_t r = 0; r < B; ++r) {
    const auto& e = ex[idx[r]];
    std::copy(e.ids.begin(), e.ids.end(), ids.begin() + static_cast<std::ptrdiff_t>(r * T));
    labels[r] = e.label;
    b.tokens += static_cast<int64_t>(e.ids.size());
  }
  b.ids = from_vector(ids, {static_cast<int64_t>(B), static_cast<int64_t>(T)});
  b.labels = from_vector(labels, {static_cast<int64_t>(B)});
  return b;
}

// Indices sorted by length, cut into batches (evaluation: least padding, order irrelevant).
std::vector<std::vector<size_t>> length_sorted_batches(const std::vector<LabelledText>& ex, int64_t batch_size) {
  std::vector<size_t> idx(ex.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return ex[a].ids.size() < ex[b].ids.size(); });
  std::vector<std::vector<size_t>> out;
  for (size_t i = 0; i < idx.size(); i += static_cast<size_t>(batch_size))
    out.emplace_back(idx.begin() + static_cast<std::ptrdiff_t>(i),
                     idx.begin() + static_cast<std::ptrdiff_t>(std::min(idx.size(), i + static_cast<size_t>(batch_size))));
  return out;
}

class SentimentTask : public Task {
 public:
  SentimentTask(std::shared_ptr<models::Electra> model, std::vector<LabelledText> train, std::vector<LabelledText> val,
                int64_t pad_id, int64_t batch_size, int64_t bucket_batches, int64_t eval_batch_size, uint64_t seed)
      : model_(std::move(model)), train_(std::move(train)), val_(std::move(val)), pad_(pad_id), batch_size_(batch_size),
        bucket_(bucket_batches), eval_batch_(eval_batch_size), data_key_(seed * 0x9E3779B97F4A7C15ull + 0x5E47) {
    num_batches_ = bucketed_batch_count(static_cast<int64_t>(train_.size()), batch_size_, bucket_);
  }

  std::string name() const override { return "sentiment"; }
  nn::Module& model() override { return *model_; }
  int64_t d_model() const override { return model_->config().discriminator.hidden_size; }
  int64_t batches_per_epoch() const override { return num_batches_; }

  TaskLoss train_loss(int64_t epoch, int64_t index) override {
    if (epoch != cached_epoch_) build_epoch(epoch);
    const std::vector<size_t>& all = batches_.at(static_cast<size_t>(index));
    // This rank's texts, padded to the whole batch's length; the loss is their summed losses over the
    // whole batch's texts (trainer.h: data parallelism).
    const dist::Comm& comm = dist::Comm::world();
    const dist::RowRange rows = dist::shard_rows(static_cast<int64_t>(all.size()), comm.rank(), comm.size());
    size_t T = 1;
    for (size_t i : all) T = std::max(T, train_[i].ids.size());
    set_batch_rows(rows.begin, rows.size());
    if (rows.size() == 0) return {scalar_tensor(0.0), 0, Tensor()};
    const std::vector<size_t> mine(all.begin() + rows.begin, all.begin() + rows.end);
    const ClassBatch b = make_batch(train_, mine, pad_, T);
    const Tensor sum = cross_entropy(model_->classify(b.ids), b.labels, -100, 0.0, Reduction::sum);
    return {mul(sum, 1.0 / static_cast<double>(all.size())), b.tokens, Tensor()};
  }

  int64_t batch_rows() const override { return batch_size_; }

  models::Json validate() override {
    const ClassificationEval e = evaluate_classifier(*model_, val_, pad_, eval_batch_);
    model_->train();
    return {{"val_loss", e.loss()}, {"val_acc", e.accuracy()}, {"val_error", 1.0 - e.accuracy()}};
  }

  double probe_loss() override {
    const std::vector<LabelledText> first(val_.begin(), val_.begin() + std::min<std::ptrdiff_t>(
                                                                          static_cast<std::ptrdiff_t>(val_.size()), eval_batch_));
    const ClassificationEval e = evaluate_classifier(*model_, first, pad_, eval_batch_);
    model_->train();
    return e.loss();
  }

 private:
  // Shuffle, bucket by length, batch, shuffle the batches: a pure function of (seed, epoch).
  void build_epoch(int64_t epoch) {
    batches_.clear();
    for (const auto& b : bucketed_batches(static_cast<int64_t>(train_.size()), batch_size_, bucket_, data_key_, epoch,
                                          [&](int64_t a, int64_t c) { return train_[a].ids.size() < train_[c].ids.size(); }))
      batches_.emplace_back(b.begin(), b.end());
    cached_epoch_ = epoch;
  }

  std::shared_ptr<models::Electra> model_;
  std::vector<LabelledText> train_, val_;
  int64_t pad_, batch_size_, bucket_, eval_batch_;
  uint64_t data_key_;
  int64_t num_batches_ = 0;
  std::vector<std::vector<size_t>> batches_;
  int64_t cached_epoch_ = -1;
};

// The Electra model JSON inside a config file: a run config's "model" object, or the file itself.
models::Json model_json_of(const models::Json& j, const std::string& path) {
  const models::Json m = j.is_object() && j.contains("model") && j["model"].is_object() ? j["model"] : j;
  KNOT_CHECK(m.is_object() && m.value("model", "") == "electra",
             "finetune: '{}' holds no Electra model config (expected \"model\": \"electra\" or a \"model\" object "
             "with it)",
             path);
  return m;
}

void check_task(const std::string& task) {
  const auto known = finetune_tasks();
  KNOT_CHECK(std::find(known.begin(), known.end(), task) != known.end(), "finetune: unknown task '{}' (known: {})",
             task, fmt::join(known, ", "));
}

std::string default_out_dir(const FinetuneOptions& opt) {
  if (!opt.out_dir.empty()) return opt.out_dir;
  KNOT_CHECK(!opt.pretrained_run.empty(), "finetune: no output directory: give --out DIR (or --run RUN for RUN/finetune-{})",
             opt.task);
  return (fs::path(opt.pretrained_run) / ("finetune-" + opt.task)).string();
}

}  // namespace

std::vector<std::string> finetune_tasks() { return {"sentiment"}; }

std::vector<LabelledText> read_labelled_texts(const std::string& path, int64_t num_labels, int64_t max_examples) {
  KNOT_CHECK(fs::exists(path), "sentiment: data file '{}' does not exist (prepare it with `knot data sentiment`)", path);
  const auto rows = data::read_jsonl(path);
  std::vector<LabelledText> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    KNOT_CHECK(r.is_object() && r.contains("text") && r["text"].is_string(), "{}:{}: expected a string key 'text'", path,
               i + 1);
    KNOT_CHECK(r.contains("label") && r["label"].is_number_integer() && r["label"].get<int64_t>() >= 0 &&
                   r["label"].get<int64_t>() < num_labels,
               "{}:{}: key 'label' must be an integer in [0, {}), got {}", path, i + 1, num_labels,
               r.contains("label") ? r["label"].dump() : "nothing");
    out.push_back({r["text"].get<std::string>(), r["label"].get<int64_t>(), {}});
    if (max_examples > 0 && static_cast<int64_t>(out.size()) >= max_examples) break;
  }
  KNOT_CHECK(!out.empty(), "sentiment: '{}' holds no labelled sentences", path);
  return out;
}

int64_t encode_labelled(std::vector<LabelledText>& examples, const data::Tokenizer& tok, int64_t max_length) {
  const int32_t cls = tok.bos_id(), sep = tok.eos_id();
  KNOT_CHECK(cls >= 0 && sep >= 0, "finetune: the tokenizer has no [CLS]/[SEP] (bos/eos) tokens");
  KNOT_CHECK(max_length >= 3, "finetune: max_length must be >= 3 ([CLS], a token, [SEP]), got {}", max_length);
  int64_t cut = 0;
  for (auto& e : examples) {
    const auto ids = tok.encode(e.text);
    const size_t keep = std::min(ids.size(), static_cast<size_t>(max_length - 2));
    cut += keep < ids.size();
    e.ids.clear();
    e.ids.reserve(keep + 2);
    e.ids.push_back(cls);
    e.ids.insert(e.ids.end(), ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep));
    e.ids.push_back(sep);
  }
  return cut;
}

std::vector<int64_t> predict_labels(const Tensor& logits) {
  KNOT_CHECK(logits.dim() == 2 && logits.size(1) > 0, "predict_labels: logits must be (B, C), got {}",
             shape_str(logits.shape()));
  const int64_t B = logits.size(0), C = logits.size(1);
  const auto v = logits.to_vector<double>();
  std::vector<int64_t> out(static_cast<size_t>(B));
  for (int64_t r = 0; r < B; ++r) {
    int64_t best = 0;
    for (int64_t c = 1; c < C; ++c)
      if (v[r * C + c] > v[r * C + best]) best = c;
    out[r] = best;
  }
  return out;
}

ClassificationEval evaluate_classifier(models::Electra& model, const std::vector<LabelledText>& examples,
                                       int64_t pad_id, int64_t batch_size) {
  KNOT_CHECK(batch_size > 0, "evaluate_classifier: batch_size must be > 0, got {}", batch_size);
  model.eval();
  NoGradGuard ng;
  ClassificationEval e;
  for (const auto& idx : length_sorted_batches(examples, batch_size)) {
    const ClassBatch b = make_batch(examples, idx, pad_id);
    const Tensor logits = model.classify(b.ids);
    e.loss_sum += cross_entropy(logits, b.labels, -100, 0.0, Reduction::sum).item();
    const auto pred = predict_labels(logits);
    for (size_t r = 0; r < idx.size(); ++r) e.correct += pred[r] == examples[idx[r]].label;
    e.n += static_cast<int64_t>(idx.size());
  }
  return e;
}

std::vector<std::string> load_pretrained_weights(models::Electra& model, const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  std::map<std::string, Tensor> mine;
  for (const auto& [n, t] : model.state_dict()) mine[n] = t;
  std::set<std::string> in_file;
  std::vector<std::string> problems, fresh;
  for (const auto& [n, t] : f.tensors) {
    in_file.insert(n);
    const auto it = mine.find(n);
    if (it == mine.end())
      problems.push_back(fmt::format("tensor '{}' {} is not in the model", n, shape_str(t.shape())));
    else if (it->second.shape() != t.shape())
      problems.push_back(fmt::format("tensor '{}' has shape {} in the checkpoint but {} in the model", n,
                                     shape_str(t.shape()), shape_str(it->second.shape())));
  }
  for (const auto& [n, t] : model.state_dict()) {
    if (in_file.count(n)) continue;
    if (n.rfind("classifier.", 0) == 0)
      fresh.push_back(n);
    else
      problems.push_back(fmt::format("tensor '{}' {} is missing from the checkpoint (only classifier.* may be)", n,
                                     shape_str(t.shape())));
  }
  KNOT_CHECK(problems.empty(), "finetune: pretrained weights '{}' do not fit the model: {}", path,
             fmt::join(problems, "; "));
  model.load_state_dict(f.tensors, /*strict=*/false);  // names and shapes checked above; converts dtypes
  return fresh;
}

ResolvedFinetune resolve_finetune(const FinetuneOptions& opt) {
  check_task(opt.task);
  ResolvedFinetune r;
  models::Json base;
  std::string base_source;
  double init_range = ElectraOptions{}.initializer_range;  // electra.initializer_range of the pretraining run
  const bool have_run = !opt.pretrained_run.empty();
  if (!opt.model_config.empty()) {
    KNOT_CHECK(opt.from_scratch, "finetune: a model config file (--model) is for --from-scratch; a pretrained model "
               "takes its config from the pretraining run");
    KNOT_CHECK(!have_run, "finetune: give either a pretraining run (--run) or a model config (--model), not both");
    base = model_json_of(models::load_json_file(opt.model_config), opt.model_config);
    base_source = opt.model_config;
    r.vocab_path = opt.vocab.empty() ? "data/vocab/vocab.txt" : opt.vocab;
  } else {
    KNOT_CHECK(have_run,
               "finetune: needs a pretraining run (--run DIR), or --from-scratch with a model config (--model FILE)");
    const fs::path cfg_path = fs::path(opt.pretrained_run) / "config.json";
    KNOT_CHECK(fs::exists(cfg_path), "finetune: '{}' has no config.json; is it an ELECTRA pretraining run directory?",
               opt.pretrained_run);
    const models::Json pre = models::load_json_file(cfg_path.string());
    base = model_json_of(pre, cfg_path.string());
    base_source = cfg_path.string();
    // --from-scratch starts the embeddings as this run's pretraining started them.
    if (pre.contains("electra")) init_range = ElectraOptions::from_json(pre["electra"]).initializer_range;
    r.vocab_path = opt.vocab.empty() ? (fs::path(opt.pretrained_run) / "vocab.txt").string() : opt.vocab;
    if (!opt.from_scratch) {
      r.checkpoint = latest_checkpoint(opt.pretrained_run);
      KNOT_CHECK(!r.checkpoint.empty(), "finetune: '{}' has no checkpoint yet (checkpoints/latest is missing); pretrain "
                 "first, or pass --from-scratch", opt.pretrained_run);
    }
  }
  r.out_dir = default_out_dir(opt);
  KNOT_CHECK(fs::exists(r.vocab_path), "finetune: vocabulary '{}' does not exist", r.vocab_path);
  const auto tok = data::load_tokenizer(r.vocab_path);
  const int64_t vocab_size = tok->vocab_size();
  // A pretrained model's vocabulary is fixed by its embeddings; a model config file takes the vocab's size.
  if (!have_run) base["vocab_size"] = vocab_size;

  models::Json cfg = opt.config.is_null() ? models::Json::object() : opt.config;
  KNOT_CHECK(cfg.is_object(), "finetune: the config must be a JSON object");
  const models::Json patch = cfg.value("model", models::Json::object());
  KNOT_CHECK(patch.is_object(), "config: key 'model' must be an object (a patch over the pretraining model config)");
  models::Json model_j = base;
  model_j.merge_patch(patch);
  model_j["num_labels"] = kSentimentLabels;
  cfg["model"] = model_j;
  models::apply_overrides(cfg, opt.overrides);
  const models::ElectraConfig ec = models::ElectraConfig::from_json(cfg["model"]);  // names any bad key or type
  KNOT_CHECK(ec.num_labels == kSentimentLabels, "finetune: task '{}' has {} labels; model.num_labels must be {}, got {}",
             opt.task, kSentimentLabels, kSentimentLabels, ec.num_labels);
  KNOT_CHECK(ec.vocab_size == vocab_size,
             "finetune: model.vocab_size is {} (from '{}') but the vocabulary '{}' holds {} tokens", ec.vocab_size, base_source, r.vocab_path, vocab_size);
  KNOT_CHECK(ec.pad_token_id == tok->pad_id(), "finetune: model.pad_token_id is {} but [PAD] is id {} in '{}'",
             ec.pad_token_id, tok->pad_id(), r.vocab_path);
  cfg["model"] = ec.to_json();
  cfg["task"] = opt.task;
  cfg["run_dir"] = r.out_dir;
  cfg["pretrained"] = {{"run", have_run ? models::Json(opt.pretrained_run) : models::Json()},
                       {"model_config", opt.model_config.empty() ? models::Json() : models::Json(opt.model_config)},
                       {"checkpoint", r.checkpoint.empty() ? models::Json() : models::Json(r.checkpoint)},
                       {"from_scratch", opt.from_scratch},
                       {"initializer_range", init_range}};
  r.config = cfg;
  return r;
}

SentimentSettings read_sentiment_config(const models::Json& cfg) {
  SentimentSettings s;
  models::ConfigReader top(cfg, "config");
  const std::string task = top.get<std::string>("task", "sentiment", "the fine-tuning task (knot finetune --task)");
  KNOT_CHECK(task == "sentiment", "config: key 'task' is '{}', expected 'sentiment'", task);
  s.seed = static_cast<uint64_t>(
      top.get<int64_t>("seed", 1, "seeds the classifier's initialisation, batch order and dropout"));
  top.get<std::string>("description", "", "free text, kept with the run");
  top.get<std::string>("run_dir", "", "the output directory (written by knot finetune: --out)");
  s.pretrained = top.get<models::Json>(
      "pretrained", models::Json::object(),
      "where the model came from (written by knot finetune: run, model_config, checkpoint, from_scratch, "
      "initializer_range)");
  models::ConfigReader d = top.child("data", "the labelled sentences (JSON lines {\"text\", \"label\"}; knot data sentiment)");
  s.model = top.require<models::Json>(
      "model", "a patch over the pretraining run's Electra model config (its keys are model.*)");
  const models::Json train_j =
      top.get<models::Json>("train", models::Json::object(), "the trainer (knot config --schema train)");
  top.finish();

  s.train_path = d.get<std::string>("train", "data/sentiment/train.jsonl", "training sentences");
  s.val_path = d.get<std::string>("val", "data/sentiment/val.jsonl", "validation sentences");
  s.test_path = d.get<std::string>("test", "data/sentiment/test.jsonl", "test sentences (result.json)");
  s.max_length = d.get<int64_t>("max_length", 128, "tokens per sentence, [CLS] and [SEP] included (longer ones are cut)");
  s.batch_size = d.get<int64_t>("batch_size", 32, "sentences per batch");
  s.eval_batch = d.get<int64_t>("eval_batch_size", 64, "sentences per batch when evaluating");
  s.bucket = d.get<int64_t>("bucket_batches", 20, "batches sorted by length together (less padding)");
  s.max_train = d.get<int64_t>("max_train_examples", 0, "use the first N training sentences (0 = all)");
  d.finish();
  KNOT_CHECK(s.max_length >= 3, "config 'data': key 'max_length' must be >= 3, got {}", s.max_length);
  KNOT_CHECK(s.batch_size > 0 && s.eval_batch > 0 && s.bucket > 0,
             "config 'data': keys 'batch_size', 'eval_batch_size' and 'bucket_batches' must be > 0");
  {
    config::ContextAlias as_model({"electra"}, "model");
    s.model_config = models::ElectraConfig::from_json(s.model);
    (void)models::estimate_model_memory(s.model, {s.batch_size, s.max_length, /*classify=*/true});  // basis options too
  }
  const models::ElectraConfig& ec = s.model_config;
  KNOT_CHECK(ec.num_labels == kSentimentLabels, "config 'model': key 'num_labels' must be {} for sentiment, got {}",
             kSentimentLabels, ec.num_labels);
  KNOT_CHECK(s.max_length <= ec.max_position_embeddings,
             "config 'data': key 'max_length' ({}) exceeds model.max_position_embeddings ({}); override it: "
             "data.max_length={}",
             s.max_length, ec.max_position_embeddings, ec.max_position_embeddings);
  s.trainer = TrainerConfig::from_json(train_j);  // checks the train keys before any work
  {
    config::ContextAlias as_model({"electra"}, "model");  // (the estimate reads the model config again)
    models::check_training_memory(s.model, train_j, {s.batch_size, s.max_length, /*classify=*/true});
  }
  return s;
}

FinetuneResult finetune(const FinetuneOptions& opt, const TrainerHooks& hooks) {
  check_task(opt.task);
  return finetune_sentiment(opt, hooks);  // the only task so far
}

FinetuneResult finetune_sentiment(const FinetuneOptions& opt, const TrainerHooks& hooks) {
  // Rank 0 alone speaks in a data-parallel run.
  auto log = hooks.log ? hooks.log : [](const std::string& s) {
    if (dist::Comm::world().rank() == 0) std::fprintf(stderr, "%s\n", s.c_str());
  };
  KNOT_CHECK(opt.task == "sentiment", "finetune_sentiment: task is '{}'", opt.task);
  ResolvedFinetune rf;
  if (opt.resume) {
    rf.out_dir = default_out_dir(opt);
    const fs::path cfg_path = fs::path(rf.out_dir) / "config.json";
    KNOT_CHECK(fs::exists(cfg_path), "finetune --resume: '{}' has no config.json; is it a fine-tuning run?", rf.out_dir);
    rf.config = models::load_json_file(cfg_path.string());
    models::apply_overrides(rf.config, opt.overrides);
    rf.vocab_path = (fs::path(rf.out_dir) / "vocab.txt").string();
  } else {
    rf = resolve_finetune(opt);
  }
  const std::string& out = rf.out_dir;

  const SentimentSettings st = read_sentiment_config(rf.config);
  config::reading_done();
  const uint64_t seed = st.seed;
  const models::Json& pretrained = st.pretrained;
  const std::string &train_path = st.train_path, &val_path = st.val_path, &test_path = st.test_path;
  const int64_t max_length = st.max_length, batch_size = st.batch_size, eval_batch = st.eval_batch,
                bucket = st.bucket, max_train = st.max_train;
  const models::ElectraConfig& ec = st.model_config;
  const TrainerConfig& tcfg = st.trainer;
  apply_thread_setting(tcfg.threads, "train.threads");
  if (!opt.resume)
    KNOT_CHECK(latest_checkpoint(out).empty(),
               "finetune: '{}' already holds checkpoints; continue it with --resume or choose another --out", out);

  const auto tok = data::load_tokenizer(rf.vocab_path);
  KNOT_CHECK(tok->vocab_size() == ec.vocab_size, "finetune: '{}' holds {} tokens but model.vocab_size is {}",
             rf.vocab_path, tok->vocab_size(), ec.vocab_size);
  auto train_ex = read_labelled_texts(train_path, kSentimentLabels, max_train);
  auto val_ex = read_labelled_texts(val_path, kSentimentLabels);
  auto test_ex = read_labelled_texts(test_path, kSentimentLabels);
  const int64_t cut = encode_labelled(train_ex, *tok, max_length) + encode_labelled(val_ex, *tok, max_length) +
                      encode_labelled(test_ex, *tok, max_length);
  log(fmt::format("sentiment: {} training, {} validation, {} test sentences ({} cut to {} tokens)", train_ex.size(),
                  val_ex.size(), test_ex.size(), cut, max_length));

  manual_seed(seed);  // initialisation (the classifier's when pretrained); dropout continues from it
  auto model = std::make_shared<models::Electra>(ec);
  const std::string checkpoint = pretrained.value("checkpoint", models::Json()).is_string()
                                     ? pretrained["checkpoint"].get<std::string>()
                                     : std::string();
  if (!opt.resume) {
    if (!rf.checkpoint.empty()) {
      const auto fresh = load_pretrained_weights(*model, (fs::path(rf.checkpoint) / "model.safetensors").string());
      log(fmt::format("sentiment: pretrained weights from {}; freshly initialised: {}", rf.checkpoint,
                      fresh.empty() ? std::string("none") : fmt::format("{}", fmt::join(fresh, ", "))));
    } else {
      // The embeddings start where the run's ELECTRA pretraining started them (N(0, r²) with
      // r = electra.initializer_range, 0.02 by default, pad row zero; see train/electra_pretrain.h),
      // not at the layer default N(0, 1), so "from scratch" differs from "pretrained" only by the
      // pretraining.
      init_electra_embeddings(*model, pretrained.value("initializer_range", ElectraOptions{}.initializer_range));
      log("sentiment: training from scratch (random initialisation, no pretrained weights)");
    }
  }
  log(fmt::format("sentiment: model {} parameters (discriminator {} x {}), run directory {}", model->num_parameters(),
                  ec.discriminator.num_layers, ec.discriminator.hidden_size, out));

  const int64_t pad = ec.pad_token_id;
  SentimentTask task_obj(model, std::move(train_ex), std::move(val_ex), pad, batch_size, bucket, eval_batch, seed);
  FinetuneResult res;
  res.out_dir = out;
  // run_trainer writes these once it holds the lock on `out` and every check has passed.
  RunSetup setup;
  setup.writer = "finetune";
  setup.model_config = ec.to_json();
  if (!opt.resume) {
    setup.files.emplace_back("vocab.txt", data::read_file_bytes(rf.vocab_path));
    setup.files.emplace_back("config.json", rf.config.dump(2) + "\n");
  }
  res.train = run_trainer(task_obj, tcfg, out, opt.resume, hooks, setup);
  // A failed run has no result: its model is not what the last checkpoint holds.
  if (res.train.stopped_on_nan || res.train.diverged) return res;
  if (dist::Comm::world().rank() != 0) return res;  // the test set is evaluated once, on rank 0

  const auto t0 = std::chrono::steady_clock::now();
  res.test = evaluate_classifier(*model, test_ex, pad, eval_batch);
  const double eval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.result = {{"task", "sentiment"},
                {"test", test_path},
                {"n", res.test.n},
                {"correct", res.test.correct},
                {"test_accuracy", res.test.accuracy()},
                {"test_loss", res.test.loss()},
                {"steps", res.train.steps},
                {"checkpoint", latest_checkpoint(out)},
                {"from_scratch", pretrained.value("from_scratch", false)},
                {"pretrained_run", pretrained.value("run", models::Json())},
                {"pretrained_checkpoint", checkpoint.empty() ? models::Json() : models::Json(checkpoint)},
                {"last_validation", res.train.last_validation},
                {"train_seconds", res.train.seconds},
                {"eval_seconds", eval_s}};
  data::write_file_atomic((fs::path(out) / "result.json").string(), res.result.dump(2) + "\n");
  log(fmt::format("sentiment: test accuracy {:.4f} ({}/{}), loss {:.4f} -> {}", res.test.accuracy(), res.test.correct,
                  res.test.n, res.test.loss(), (fs::path(out) / "result.json").string()));
  return res;
}

}  // namespace knot::train
