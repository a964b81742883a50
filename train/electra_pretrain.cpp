// The ELECTRA pretraining task for knot train (see electra_pretrain.h; its data and losses: electra_data.cpp).
#include "train/electra_pretrain.h"
#include "core/runtime.h"


#include <algorithm>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "dist/comm.h"
#include "models/memory_estimate.h"
#include "ops/ops.h"
#include "train/batching.h"
#include "train/run_setup.h"

namespace fs = std::filesystem;

namespace knot::train {

// ---- the task -----------------------------------------------------------------------------------

namespace {

class ElectraTask : public Task {
 public:
  ElectraTask(std::shared_ptr<models::Electra> model, std::vector<std::vector<int32_t>> train,
              std::vector<std::vector<int32_t>> val, ElectraVocab vocab, ElectraOptions options, int64_t batch_size,
              uint64_t seed)
      : model_(std::move(model)), train_(std::move(train)), val_(std::move(val)), vocab_(std::move(vocab)),
        opt_(options), batch_size_(batch_size), seed_(seed), keys_(seed) {}

  std::string name() const override { return "electra"; }
  nn::Module& model() override { return *model_; }
  int64_t d_model() const override { return model_->config().discriminator.hidden_size; }
  int64_t batch_rows() const override { return batch_size_; }
  int64_t batches_per_epoch() const override {
    return (static_cast<int64_t>(train_.size()) + batch_size_ - 1) / batch_size_;
  }

  TaskLoss train_loss(int64_t epoch, int64_t index) override {
    if (epoch != cached_epoch_) {
      perm_.resize(train_.size());
      std::iota(perm_.begin(), perm_.end(), 0);
      shuffle_counter(perm_, keys_.data, static_cast<uint64_t>(epoch));
      cached_epoch_ = epoch;
    }
    const size_t first = static_cast<size_t>(index * batch_size_);
    KNOT_CHECK(index >= 0 && first < perm_.size(), "electra: batch {} out of range (epoch of {} batches)", index,
               batches_per_epoch());
    const size_t last = std::min(perm_.size(), first + static_cast<size_t>(batch_size_));
    const std::vector<int64_t> idx(perm_.begin() + static_cast<std::ptrdiff_t>(first),
                                   perm_.begin() + static_cast<std::ptrdiff_t>(last));
    // Masks and samples of sequence i in this epoch: Philox elements of (key, epoch), see mask_batch.
    // A data-parallel rank masks the whole batch (cheap: ids only) for its counts and length, then
    // runs its rows; a sequence's masks and samples do not depend on its batch (mask_batch).
    const dist::Comm& comm = dist::Comm::world();
    const dist::RowRange rows = dist::shard_rows(static_cast<int64_t>(idx.size()), comm.rank(), comm.size());
    const MaskedBatch whole = mask_batch(train_, idx, vocab_, opt_.mask_prob, keys_.mask, static_cast<uint64_t>(epoch));
    const ElectraBatchCounts counts{static_cast<int64_t>(whole.positions.size()), whole.tokens};
    set_batch_rows(rows.begin, rows.size());
    if (rows.size() == 0) return {scalar_tensor(0.0), 0, Tensor()};
    const std::vector<int64_t> mine(idx.begin() + rows.begin, idx.begin() + rows.end);
    const MaskedBatch mb = comm.distributed() ? mask_batch(train_, mine, vocab_, opt_.mask_prob, keys_.mask,
                                                           static_cast<uint64_t>(epoch), static_cast<size_t>(whole.length))
                                              : whole;
    ElectraOutputs out = electra_forward(*model_, mb, opt_, keys_.sample, static_cast<uint64_t>(epoch), &counts);
    return {out.loss, mb.tokens, Tensor()};
  }

  models::Json validate() override {
    model_->eval();
    const ElectraMetrics m = evaluate_electra(*model_, val_, vocab_, opt_, batch_size_, seed_);
    model_->train();
    return m.to_json(opt_.rtd_weight, "val_");
  }

  double probe_loss() override {
    const std::vector<std::vector<int32_t>> first(
        val_.begin(), val_.begin() + std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(val_.size()), batch_size_));
    model_->eval();
    const ElectraMetrics m = evaluate_electra(*model_, first, vocab_, opt_, batch_size_, seed_);
    model_->train();
    return m.mlm_loss() + opt_.rtd_weight * m.rtd_loss();
  }

 private:
  std::shared_ptr<models::Electra> model_;
  std::vector<std::vector<int32_t>> train_, val_;
  ElectraVocab vocab_;
  ElectraOptions opt_;
  int64_t batch_size_;
  uint64_t seed_;
  ElectraKeys keys_;
  std::vector<int64_t> perm_;
  int64_t cached_epoch_ = -1;
};

std::unique_ptr<data::WordPieceTokenizer> load_vocab(const std::string& path, const std::string& hint) {
  KNOT_CHECK(fs::is_regular_file(path), "electra: vocabulary '{}' does not exist ({})", path, hint);
  return std::make_unique<data::WordPieceTokenizer>(data::WordPieceTokenizer::load(path));
}

}  // namespace

ElectraRun load_electra_run(const std::string& run_dir, const std::vector<std::string>& tasks) {
  ElectraRun r;
  r.run_dir = run_dir;
  r.config = load_run_config(run_dir, tasks, fmt::format("an {} run", fmt::join(tasks, " or ")));
  r.tokenizer = load_vocab((fs::path(run_dir) / "vocab.txt").string(), "every electra run directory holds one");
  r.model = std::make_shared<models::Electra>(models::ElectraConfig::from_json(r.config.at("model")));
  KNOT_CHECK(r.model->config().vocab_size == r.tokenizer->vocab_size(),
             "'{}': the model's vocab_size {} differs from vocab.txt's {} tokens", run_dir,
             r.model->config().vocab_size, r.tokenizer->vocab_size());
  r.checkpoint = load_latest_weights(run_dir, *r.model, r.model->config().to_json());
  return r;
}

TrainResult train_electra(const models::Json& cfg, const std::string& run_dir_arg, bool resume,
                          const TrainerHooks& hooks) {
  models::ConfigReader top(cfg, "config");
  const PreparedRun run = prepare_run(top, "electra", "runs/electra", run_dir_arg, hooks);
  const auto& log = run.log;
  const uint64_t seed = run.seed;
  const std::string& run_dir = run.run_dir;
  const models::Json data_j = top.get<models::Json>("data", models::Json::object(), "where the data comes from and how it is batched");
  const models::Json tok_j = top.get<models::Json>("tokenizer", models::Json::object(), "the tokenizer: trained on the training text, or loaded from 'path'");
  const models::Json electra_j = top.get<models::Json>("electra", models::Json::object(), "ELECTRA's masking and loss weights");
  models::Json model_j = top.require<models::Json>("model", "the model (its keys are model.*); its vocabulary comes from the tokenizer");
  const models::Json train_j = top.get<models::Json>("train", models::Json::object(), "the trainer: steps, optimizer, schedule, checkpoints (knot config --schema train)");
  top.finish();

  // Every key is checked before any file is read or written.
  const ElectraDataConfig dc = ElectraDataConfig::from_json(data_j);
  models::ConfigReader t(tok_j, "tokenizer");
  t.renamed("vocab", "path");
  const std::string vocab_path = t.get<std::string>("path", "data/vocab/vocab.txt", "BERT's WordPiece vocab.txt (knot data vocab)");
  t.finish();
  const ElectraOptions eo = ElectraOptions::from_json(electra_j);
  KNOT_CHECK(model_j.is_object(), "config: key 'model' must be an object");
  if (!model_j.contains("model")) model_j["model"] = "electra";
  const TrainerConfig tcfg = TrainerConfig::from_json(train_j);
  // The model's keys (basis options included) are checked now, not after reading the corpus.
  {
    config::ContextAlias as_model({"electra"}, "model");
    (void)models::ElectraConfig::from_json(model_j);  // an ELECTRA model, every key known
    (void)models::estimate_model_memory(model_j, {dc.batch_size, dc.max_length});  // and the basis options
  }
  config::reading_done();
  start_run(run, tcfg, resume);

  const fs::path run_vocab = fs::path(run_dir) / "vocab.txt";
  const auto tok = resume ? load_vocab(run_vocab.string(), "the run directory's copy of the vocabulary")
                          : load_vocab(vocab_path, "prepare BERT's vocabulary with `knot data vocab`");
  const ElectraVocab vocab = electra_vocab(*tok);
  model_j["vocab_size"] = tok->vocab_size();
  model_j["pad_token_id"] = vocab.pad;
  const models::ElectraConfig mc = models::ElectraConfig::from_json(model_j);
  KNOT_CHECK(mc.max_position_embeddings >= dc.max_length,
             "config: key 'model.max_position_embeddings' ({}) must be >= key 'data.max_length' ({})",
             mc.max_position_embeddings, dc.max_length);
  models::check_training_memory(model_j, train_j, {dc.batch_size, dc.max_length});  // before anything is allocated

  ElectraCorpus corpus = load_electra_corpus(dc, *tok, vocab);
  const size_t all_val = corpus.val.size();
  if (dc.max_val_sequences > 0 && corpus.val.size() > static_cast<size_t>(dc.max_val_sequences))
    corpus.val.resize(static_cast<size_t>(dc.max_val_sequences));
  int64_t train_tokens = 0;
  for (const auto& s : corpus.train) train_tokens += static_cast<int64_t>(s.size());
  log(
      fmt::format("electra: {} training sequences ({} tokens) from {} lines ({} lines longer than {} tokens cut); "
                  "{} of {} validation sequences from {} ({} lines)",
                  corpus.train.size(), train_tokens, corpus.train_lines, corpus.cut_lines, dc.max_length - 2,
                  corpus.val.size(), all_val, corpus.val_source, corpus.val_lines));

  manual_seed(seed);  // initialisation; dropout then continues from the same generator
  auto model = std::make_shared<models::Electra>(mc);
  init_electra_embeddings(*model, eo.initializer_range);

  models::Json resolved = run.resolved(cfg, mc.to_json());
  resolved["data"] = dc.to_json();
  resolved["tokenizer"] = {{"path", vocab_path}};
  resolved["electra"] = eo.to_json();
  log(fmt::format("electra: model {} parameters (generator {}, discriminator {}; kan {}), run directory {}",
                  model->num_parameters(), model->generator->num_parameters(), model->discriminator->num_parameters(),
                  mc.kan.kind, run_dir));

  ElectraTask task_obj(model, std::move(corpus.train), std::move(corpus.val), vocab, eo, dc.batch_size, seed);
  // run_trainer writes these once it holds the run's lock and every check has passed.
  RunSetup setup;
  setup.model_config = mc.to_json();
  setup.files.emplace_back("config.json", resolved.dump(2) + "\n");
  if (!resume) setup.files.emplace_back("vocab.txt", tok->to_file_text());
  return run_trainer(task_obj, tcfg, run_dir, resume, hooks, setup);
}

}  // namespace knot::train
