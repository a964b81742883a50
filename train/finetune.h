// Fine-tuning a pretrained ELECTRA discriminator for sentence classification (Clark et al. 2020,
// §3.1 and appendix B: the GLUE recipe — the discriminator plus a classification head on the
// first token, AdamW, linear warm-up then linear decay). Task today: "sentiment", the labelled
// sentences of `knot data sentiment` (data/sentiment/{train,val,test}.jsonl, {"text", "label"}).
//
// Inputs: [CLS] wordpiece ids [SEP], the ids cut to data.max_length - 2 (so every sentence fits),
// padded with [PAD] (which attention masks out). Logits: Electra::classify, (B, 2). Loss: mean
// cross-entropy over the batch. Prediction: the larger logit (label 0 on a tie).
// Batches: the training sentences are shuffled (splitmix64 Fisher–Yates keyed by seed and epoch,
// so the order is a pure function of (seed, epoch)), cut into chunks of batch_size ·
// bucket_batches, sorted by length inside each chunk (less padding), cut into batches, and the
// batches shuffled. validate(): val_loss, val_acc and val_error = 1 - val_acc; "best" is val_loss.
//
// Weights: the model is an Electra built from the pretraining run's model config with
// num_labels = 2. Every tensor of the pretraining checkpoint must exist in it with the same shape
// (else an error naming each offending tensor); only classifier.* may be absent from the
// checkpoint and keeps its fresh initialisation. The generator and the replaced-token-detection
// head are kept in the fine-tuned model but get no gradient, so their own tensors stay exactly as
// pretrained (Adam skips parameters without a gradient, weight decay included; the embeddings they
// share with the discriminator are fine-tuned): the fine-tuned checkpoint is a complete Electra
// that loads with the run's config.json.
// From scratch (--from-scratch): the same model, randomly initialised as ELECTRA pretraining starts
// it (embedding tables N(0, 0.02²) with the pad row zero, train/electra_pretrain.h), to measure
// what pretraining buys.
//
// Config (configs/finetune-sentiment.json; unknown keys and wrong types are errors naming the key):
//   {"task": "sentiment", "seed": 1, "description": "...",
//    "data": {"train": "data/sentiment/train.jsonl", "val": ..., "test": ..., "max_length": 128,
//             "batch_size": 32, "eval_batch_size": 64, "bucket_batches": 20, "max_train_examples": 0},
//    "model": {...},  a patch over the pretraining run's model config (e.g. {"hidden_dropout": 0.1});
//                     the resolved config holds the whole Electra config
//    "train": {...train/trainer.h...}}
// Written by finetune: "run_dir" (the output directory) and "pretrained" ({"run", "checkpoint",
// "from_scratch"}, where the weights came from).
// The output directory gets config.json (resolved: a run that loads by itself), vocab.txt,
// metrics.jsonl, checkpoints/ (train/checkpoint.h) and result.json (test accuracy, loss, n).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "models/config.h"
#include "models/electra.h"
#include "train/trainer.h"

namespace knot::train {

// The tasks `knot finetune --task` knows.
std::vector<std::string> finetune_tasks();

struct LabelledText {
  std::string text;
  int64_t label = 0;
  std::vector<int64_t> ids;  // [CLS] ... [SEP], after encode_labelled
};

// Reads {"text": ..., "label": 0|1, ...} lines (other keys are ignored); errors name the file, line
// and key. max_examples > 0 keeps the first ones.
std::vector<LabelledText> read_labelled_texts(const std::string& path, int64_t num_labels, int64_t max_examples = 0);

// [CLS] ids [SEP] with the ids cut to max_length - 2; returns how many sentences were cut.
int64_t encode_labelled(std::vector<LabelledText>& examples, const data::Tokenizer& tok, int64_t max_length);

// Per row of logits (B, C): the index of the largest value (the first one on a tie).
std::vector<int64_t> predict_labels(const Tensor& logits);

struct ClassificationEval {
  double loss_sum = 0;  // Σ cross-entropy (natural log) over the examples
  int64_t correct = 0, n = 0;
  double loss() const { return n > 0 ? loss_sum / static_cast<double>(n) : 0.0; }
  double accuracy() const { return n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : 0.0; }
};
// Loss and accuracy of model.classify over examples (eval mode, no graph), in length-sorted
// batches of batch_size; padding does not change any result. Leaves the model in eval mode.
ClassificationEval evaluate_classifier(models::Electra& model, const std::vector<LabelledText>& examples,
                                       int64_t pad_id, int64_t batch_size);

// Loads pretrained weights (an Electra state dict in safetensors) into model: every tensor of the
// file must be in the model with the same shape, and every model tensor the file lacks must be
// under "classifier."; all violations are listed, each naming its tensor, before anything is
// copied. Returns the names of the model tensors left at their initialisation.
std::vector<std::string> load_pretrained_weights(models::Electra& model, const std::string& safetensors_path);

struct FinetuneOptions {
  std::string task = "sentiment";
  std::string pretrained_run;  // RUN: config.json ("model"), vocab.txt, checkpoints/latest
  std::string out_dir;         // "" = RUN/finetune-<task>
  bool from_scratch = false;   // random initialisation; RUN (if given) only supplies config and vocab
  // From scratch without a pretraining run: a model config (an Electra model JSON such as
  // configs/electra-small-mlp.json, or a run config with a "model" object) and a vocab.txt.
  std::string model_config, vocab;
  bool resume = false;                 // continue out_dir from its latest checkpoint and config.json
  models::Json config;                 // the fine-tuning config (ignored on resume: out_dir's rules)
  std::vector<std::string> overrides;  // key.sub=value, applied after the model config is merged in
};

struct FinetuneResult {
  std::string out_dir;
  TrainResult train;
  ClassificationEval test;
  models::Json result;  // what result.json holds
};

// The resolved config of a fresh (not resumed) run and the tokenizer source, without side effects:
// the fine-tuning config with "model" = pretraining model config + the config's patch + overrides,
// num_labels = 2 and vocab_size = the vocabulary's size (checked against the pretraining run's).
struct ResolvedFinetune {
  models::Json config;
  std::string out_dir, vocab_path, checkpoint;  // checkpoint "" when from scratch
};
ResolvedFinetune resolve_finetune(const FinetuneOptions& opt);

// A sentiment run's config (every key checked, the model against its Electra reader; no file is
// read): what finetune_sentiment reads before any work.
struct SentimentSettings {
  uint64_t seed = 1;
  models::Json pretrained, model;
  std::string train_path, val_path, test_path;
  int64_t max_length = 128, batch_size = 32, eval_batch = 64, bucket = 20, max_train = 0;
  models::ElectraConfig model_config;
  TrainerConfig trainer;
};
SentimentSettings read_sentiment_config(const models::Json& cfg);

// `knot finetune`: checks the task, then runs it (today: finetune_sentiment).
FinetuneResult finetune(const FinetuneOptions& opt, const TrainerHooks& hooks = {});
// Builds the model, loads the pretrained weights (unless from scratch or resuming), trains with
// run_trainer in out_dir, evaluates the final model on the test split and writes result.json.
FinetuneResult finetune_sentiment(const FinetuneOptions& opt, const TrainerHooks& hooks = {});

}  // namespace knot::train
