// ELECTRA pretraining's data, masking, sampling, losses and metrics (see electra_data.h).
#include "train/electra_data.h"
#include "core/runtime.h"


#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/jsonl.h"  // read_file_bytes
#include "data/prepare.h"
#include "nn/init.h"
#include "ops/ops.h"
#include "train/batching.h"

namespace fs = std::filesystem;

namespace knot::train {

namespace {

constexpr double kMaskTokenShare = 0.8;    // of the chosen positions: [MASK]
constexpr double kRandomTokenShare = 0.1;  // a random token; the rest keep theirs

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

models::Json path_or_null(const std::string& p) { return p.empty() ? models::Json() : models::Json(p); }

std::string read_path_or_null(models::ConfigReader& r, const std::string& key, std::string_view doc) {
  const models::Json v = r.get<models::Json>(key, models::Json(), doc);
  KNOT_CHECK(v.is_null() || (v.is_string() && !v.get<std::string>().empty()),
             "config '{}': key '{}' must be a file path or null, got {}", r.context(), key, v.dump());
  return v.is_null() ? std::string() : v.get<std::string>();
}

template <typename T>
void sample_rows(const T* logits, int64_t M, int64_t V, double inv_temperature, uint64_t key, uint64_t draw,
                 const std::vector<uint64_t>& elements, int64_t* out) {
  // Rows are independent, so the result does not depend on the thread count.
  host_parallel_for(M, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(V, 1)), [&](int64_t r0, int64_t r1) {
    std::vector<double> weight(static_cast<size_t>(V));  // exp((l − max) / T) of one row
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = logits + r * V;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < V; ++j) mx = std::max(mx, static_cast<double>(row[j]));
      double total = 0;
      for (int64_t j = 0; j < V; ++j) {
        weight[static_cast<size_t>(j)] = std::exp((static_cast<double>(row[j]) - mx) * inv_temperature);
        total += weight[static_cast<size_t>(j)];
      }
      const double u = uniform_f64(philox_element(key, draw, elements[static_cast<size_t>(r)])) * total;
      double c = 0;
      int64_t pick = V - 1;  // reached only through rounding (or non-finite logits)
      for (int64_t j = 0; j < V; ++j) {
        c += weight[static_cast<size_t>(j)];
        if (u < c) {
          pick = j;
          break;
        }
      }
      out[r] = pick;
    }
  });
}

}  // namespace

// ---- configuration ------------------------------------------------------------------------------

ElectraDataConfig ElectraDataConfig::from_json(const models::Json& j) {
  ElectraDataConfig c;
  models::ConfigReader r(j.is_null() ? models::Json::object() : j, "data");
  const models::Json train = r.get<models::Json>("train", models::Json(c.train), "the training text: a path or a list of paths (one sentence or document per line)");
  c.train.clear();
  if (train.is_string()) {
    c.train.push_back(train.get<std::string>());
  } else if (train.is_array()) {
    for (const auto& p : train) {
      KNOT_CHECK(p.is_string() && !p.get<std::string>().empty(),
                 "config 'data': key 'train' must be a path or a list of paths, got {}", train.dump());
      c.train.push_back(p.get<std::string>());
    }
  }
  KNOT_CHECK(!c.train.empty(), "config 'data': key 'train' must be a path or a non-empty list of paths, got {}",
             train.dump());
  c.val = read_path_or_null(r, "val", "validation text; null = hold out val_fraction of the training lines");
  c.val_fraction = r.get<double>("val_fraction", c.val_fraction, "fraction of the training lines held out for validation when 'val' is null");
  c.test = read_path_or_null(r, "test", "test text for knot eval; null = none");
  c.max_length = r.get<int64_t>("max_length", c.max_length, "tokens per sequence, [CLS] and [SEP] included");
  c.batch_size = r.get<int64_t>("batch_size", c.batch_size, "sequences per batch");
  c.max_train_lines = r.get<int64_t>("max_train_lines", c.max_train_lines, "use the first N training lines (0 = all)");
  c.max_val_sequences = r.get<int64_t>("max_val_sequences", c.max_val_sequences, "validation sequences evaluated (0 = all)");
  r.finish();
  KNOT_CHECK(c.max_length >= 3, "config 'data': key 'max_length' must be >= 3 ([CLS] token [SEP]), got {}",
             c.max_length);
  KNOT_CHECK(c.batch_size > 0, "config 'data': key 'batch_size' must be > 0, got {}", c.batch_size);
  KNOT_CHECK(c.max_train_lines >= 0, "config 'data': key 'max_train_lines' must be >= 0, got {}", c.max_train_lines);
  KNOT_CHECK(c.max_val_sequences >= 0, "config 'data': key 'max_val_sequences' must be >= 0, got {}",
             c.max_val_sequences);
  KNOT_CHECK(c.val_fraction >= 0 && c.val_fraction < 1, "config 'data': key 'val_fraction' must be in [0, 1), got {}",
             c.val_fraction);
  KNOT_CHECK(!c.val.empty() || c.val_fraction > 0,
             "config 'data': key 'val_fraction' must be > 0 when key 'val' is null (the validation lines are held "
             "out of the training files)");
  return c;
}

models::Json ElectraDataConfig::to_json() const {
  return {{"train", train},
          {"val", path_or_null(val)},
          {"val_fraction", val_fraction},
          {"test", path_or_null(test)},
          {"max_length", max_length},
          {"batch_size", batch_size},
          {"max_train_lines", max_train_lines},
          {"max_val_sequences", max_val_sequences}};
}

ElectraOptions ElectraOptions::from_json(const models::Json& j) {
  ElectraOptions o;
  models::ConfigReader r(j.is_null() ? models::Json::object() : j, "electra");
  o.mask_prob = r.get<double>("mask_prob", o.mask_prob, "fraction of the tokens masked for the generator");
  o.rtd_weight = r.get<double>("rtd_weight", o.rtd_weight, "weight of the replaced-token-detection loss (ELECTRA: 50)");
  o.temperature = r.get<double>("temperature", o.temperature, "temperature of the generator's samples");
  o.initializer_range = r.get<double>("initializer_range", o.initializer_range, "std of the embeddings' normal initialisation (0 = keep the model's)");
  r.finish();
  KNOT_CHECK(o.mask_prob > 0 && o.mask_prob < 1, "config 'electra': key 'mask_prob' must be in (0, 1), got {}",
             o.mask_prob);
  KNOT_CHECK(o.rtd_weight >= 0 && std::isfinite(o.rtd_weight),
             "config 'electra': key 'rtd_weight' must be a finite number >= 0, got {}", o.rtd_weight);
  KNOT_CHECK(o.temperature > 0 && std::isfinite(o.temperature),
             "config 'electra': key 'temperature' must be > 0, got {}", o.temperature);
  KNOT_CHECK(o.initializer_range >= 0 && std::isfinite(o.initializer_range),
             "config 'electra': key 'initializer_range' must be >= 0 (0 = keep the model's initialisation), got {}",
             o.initializer_range);
  return o;
}

models::Json ElectraOptions::to_json() const {
  return {{"mask_prob", mask_prob},
          {"rtd_weight", rtd_weight},
          {"temperature", temperature},
          {"initializer_range", initializer_range}};
}

// ---- data ---------------------------------------------------------------------------------------

ElectraVocab electra_vocab(const data::Tokenizer& tok) {
  const data::SpecialIds s = tok.special_ids();
  std::string missing;
  for (const auto& [id, name] :
       {std::pair{s.pad, "[PAD]"}, std::pair{s.bos, "[CLS]"}, std::pair{s.eos, "[SEP]"}, std::pair{s.mask, "[MASK]"}})
    if (id < 0) missing += std::string(missing.empty() ? "" : ", ") + name;
  KNOT_CHECK(missing.empty(),
             "electra: the vocabulary has no {} token; pretraining needs [PAD], [CLS], [SEP] and [MASK]", missing);
  ElectraVocab v;
  v.pad = s.pad;
  v.cls = s.bos;
  v.sep = s.eos;
  v.mask = s.mask;
  const int32_t V = tok.vocab_size();
  v.special.assign(static_cast<size_t>(V), 0);
  for (int32_t id : {s.pad, s.unk, s.bos, s.eos, s.mask})
    if (id >= 0) v.special[static_cast<size_t>(id)] = 1;
  for (int32_t id = 0; id < V; ++id) {
    const std::string& t = tok.id_to_token(id);
    if (t.size() > 8 && t.rfind("[unused", 0) == 0 && t.back() == ']') v.special[static_cast<size_t>(id)] = 1;
    if (!v.special[static_cast<size_t>(id)]) v.random_pool.push_back(id);
  }
  KNOT_CHECK(!v.random_pool.empty(), "electra: the vocabulary holds only special tokens");
  return v;
}

std::vector<std::string> read_text_lines(const std::string& path) {
  KNOT_CHECK(fs::is_regular_file(path),
             "electra: text file '{}' does not exist (prepare the corpus with `knot data corpus`)", path);
  const std::string bytes = data::read_file_bytes(path);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string line = bytes.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    KNOT_CHECK(data::is_valid_utf8(line), "{}:{}: not valid UTF-8", path, lines.size() + 1);
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

std::vector<std::vector<int32_t>> pack_sequences(const std::vector<std::vector<int32_t>>& lines, const ElectraVocab& v,
                                                 int64_t max_length, int64_t* cut_lines) {
  KNOT_CHECK(max_length >= 3, "electra: max_length must be >= 3, got {}", max_length);
  const size_t cap = static_cast<size_t>(max_length - 2);
  std::vector<std::vector<int32_t>> out;
  std::vector<int32_t> cur;
  auto flush = [&]() {
    if (cur.empty()) return;
    std::vector<int32_t> seq;
    seq.reserve(cur.size() + 2);
    seq.push_back(v.cls);
    seq.insert(seq.end(), cur.begin(), cur.end());
    seq.push_back(v.sep);
    out.push_back(std::move(seq));
    cur.clear();
  };
  for (const auto& line : lines) {
    if (line.empty()) {
      flush();
      continue;
    }
    size_t n = line.size();
    if (n > cap) {
      n = cap;
      if (cut_lines) ++*cut_lines;
    }
    if (cur.size() + n > cap) flush();
    cur.insert(cur.end(), line.begin(), line.begin() + static_cast<std::ptrdiff_t>(n));
  }
  flush();
  return out;
}

std::vector<std::vector<int32_t>> encode_and_pack(const std::vector<std::string>& lines, size_t begin, size_t end,
                                                  const data::Tokenizer& tok, const ElectraVocab& v, int64_t max_length,
                                                  int64_t* cut_lines) {
  end = std::min(end, lines.size());
  std::vector<std::vector<int32_t>> encoded(end > begin ? end - begin : 0);
  for (size_t i = begin; i < end; ++i) encoded[i - begin] = tok.encode(lines[i]);
  return pack_sequences(encoded, v, max_length, cut_lines);
}

ElectraCorpus load_electra_corpus(const ElectraDataConfig& dc, const data::Tokenizer& tok, const ElectraVocab& v,
                                  bool with_train) {
  ElectraCorpus c;
  const bool hold_out = dc.val.empty();
  if (with_train || hold_out) {
    int64_t budget = dc.max_train_lines > 0 ? dc.max_train_lines : std::numeric_limits<int64_t>::max();
    for (const auto& path : dc.train) {
      const auto lines = read_text_lines(path);
      const size_t n = lines.size();
      size_t n_val = 0;
      if (hold_out && n >= 2)
        n_val = std::min(n - 1, static_cast<size_t>(std::ceil(static_cast<double>(n) * dc.val_fraction)));
      const size_t n_train = n - n_val;
      if (n_val > 0) {
        auto s = encode_and_pack(lines, n_train, n, tok, v, dc.max_length, &c.cut_lines);
        c.val.insert(c.val.end(), std::make_move_iterator(s.begin()), std::make_move_iterator(s.end()));
        c.val_lines += static_cast<int64_t>(n_val);
      }
      if (with_train) {
        const size_t take = std::min(n_train, static_cast<size_t>(std::max<int64_t>(budget, 0)));
        auto s = encode_and_pack(lines, 0, take, tok, v, dc.max_length, &c.cut_lines);
        c.train.insert(c.train.end(), std::make_move_iterator(s.begin()), std::make_move_iterator(s.end()));
        c.train_lines += static_cast<int64_t>(take);
        budget -= static_cast<int64_t>(take);
      }
    }
  }
  std::string files;
  for (const auto& p : dc.train) files += (files.empty() ? "" : ", ") + p;
  if (hold_out) {
    c.val_source = fmt::format("the last {:g} % of the lines of {}", 100.0 * dc.val_fraction, files);
  } else {
    const auto lines = read_text_lines(dc.val);
    c.val = encode_and_pack(lines, 0, lines.size(), tok, v, dc.max_length, &c.cut_lines);
    c.val_lines = static_cast<int64_t>(lines.size());
    c.val_source = dc.val;
  }
  KNOT_CHECK(!with_train || !c.train.empty(), "electra: no training text in {}", files);
  KNOT_CHECK(!c.val.empty(), "electra: the validation split ({}) holds no text", c.val_source);
  return c;
}

// ---- masking, sampling, losses ------------------------------------------------------------------

void init_electra_embeddings(models::Electra& model, double std) {
  if (std <= 0) return;
  NoGradGuard ng;
  for (const auto* e :
       {model.word_embeddings.get(), model.position_embeddings.get(), model.token_type_embeddings.get()}) {
    nn::init::normal_(e->weight, 0.0, std);
    if (e->padding_idx >= 0) e->weight.select(0, e->padding_idx).zero_();
  }
}

ElectraKeys::ElectraKeys(uint64_t seed) {
  const uint64_t base = splitmix64(seed);
  data = splitmix64(base + 1);
  mask = splitmix64(base + 2);
  sample = splitmix64(base + 3);
}

MaskedBatch mask_batch(const std::vector<std::vector<int32_t>>& seqs, const std::vector<int64_t>& idx,
                       const ElectraVocab& v, double mask_prob, uint64_t key, uint64_t draw, size_t min_length) {
  KNOT_CHECK(!idx.empty(), "electra: mask_batch needs at least one sequence");
  MaskedBatch mb;
  mb.batch = static_cast<int64_t>(idx.size());
  size_t T = std::max<size_t>(1, min_length);
  for (int64_t i : idx) {
    KNOT_CHECK(i >= 0 && static_cast<size_t>(i) < seqs.size(), "electra: sequence index {} out of range [0, {})", i,
               seqs.size());
    T = std::max(T, seqs[static_cast<size_t>(i)].size());
  }
  mb.length = static_cast<int64_t>(T);
  mb.original.assign(idx.size() * T, v.pad);
  const size_t pool = v.random_pool.size();
  for (size_t r = 0; r < idx.size(); ++r) {
    const auto& seq = seqs[static_cast<size_t>(idx[r])];
    std::copy(seq.begin(), seq.end(), mb.original.begin() + static_cast<std::ptrdiff_t>(r * T));
    mb.tokens += static_cast<int64_t>(std::count_if(seq.begin(), seq.end(), [&](int32_t id) { return id != v.pad; }));
  }
  mb.input = mb.original;
  for (size_t r = 0; r < idx.size(); ++r) {
    const auto& seq = seqs[static_cast<size_t>(idx[r])];
    const uint64_t seq_bits = static_cast<uint64_t>(idx[r]) << 32;
    auto choose = [&](size_t t, const Philox4& p) {
      const size_t pos = r * T + t;
      const double kind = static_cast<double>(p.v[2]) * (1.0 / 4294967296.0);
      Corruption c = Corruption::keep;
      if (kind < kMaskTokenShare) {
        c = Corruption::mask;
        mb.input[pos] = v.mask;
      } else if (kind < kMaskTokenShare + kRandomTokenShare) {
        c = Corruption::random;
        const size_t k = std::min(pool - 1, static_cast<size_t>(static_cast<double>(p.v[3]) * (1.0 / 4294967296.0) *
                                                                static_cast<double>(pool)));
        mb.input[pos] = v.random_pool[k];
      }
      mb.positions.push_back(static_cast<int64_t>(pos));
      mb.corruption.push_back(c);
      mb.elements.push_back(seq_bits | t);
    };
    bool any = false;
    double best_u = 2.0;
    size_t best_t = 0;
    for (size_t t = 0; t < seq.size(); ++t) {
      const int32_t id = seq[t];
      if (id < 0 || static_cast<size_t>(id) >= v.special.size() || v.special[static_cast<size_t>(id)]) continue;
      const Philox4 p = philox_element(key, draw, seq_bits | t);
      const double u = uniform_f64(p);
      if (u < best_u) {
        best_u = u;
        best_t = t;
      }
      if (u < mask_prob) {
        choose(t, p);
        any = true;
      }
    }
    // A sequence with candidates gets at least one chosen position: its most likely one.
    if (!any && best_u < 2.0) choose(best_t, philox_element(key, draw, seq_bits | best_t));
  }
  return mb;
}

Tensor generator_logits_at(const models::Electra& model, const Tensor& ids, const Tensor& positions) {
  KNOT_CHECK(ids.dim() == 2 && positions.dim() == 1,
             "electra: generator_logits_at needs ids (B, T) and positions (M), got {} and {}", shape_str(ids.shape()),
             shape_str(positions.shape()));
  const Tensor h = model.generator->forward(model.embed(ids), nn::padding_mask(ids, model.config().pad_token_id));
  const Tensor at = index_select(h.reshape({-1, h.size(2)}), 0, positions);            // (M, Hg)
  const Tensor e = model.gen_layer_norm->forward(gelu(model.gen_dense->forward(at)));  // (M, E)
  return linear(e, model.word_embeddings->weight, model.gen_output_bias);              // (M, V), tied
}

std::vector<int64_t> sample_tokens(const Tensor& logits, double temperature, uint64_t key, uint64_t draw,
                                   const std::vector<uint64_t>& elements) {
  KNOT_CHECK(logits.dim() == 2, "electra: sample_tokens needs logits (M, V), got {}", shape_str(logits.shape()));
  KNOT_CHECK(temperature > 0, "electra: sampling temperature must be > 0, got {}", temperature);
  const int64_t M = logits.size(0), V = logits.size(1);
  KNOT_CHECK(static_cast<int64_t>(elements.size()) == M, "electra: sample_tokens got {} rows but {} elements", M,
             elements.size());
  std::vector<int64_t> out(static_cast<size_t>(M));
  if (M == 0) return out;
  NoGradGuard ng;
  Tensor l = logits.detach();
  if (!l.is_cpu()) l = l.to(Device::cpu());
  if (l.dtype() == DType::f32) {
    l = l.contiguous();
    sample_rows(l.data<float>(), M, V, 1.0 / temperature, key, draw, elements, out.data());
  } else {
    l = l.to(DType::f64).contiguous();
    sample_rows(l.data<double>(), M, V, 1.0 / temperature, key, draw, elements, out.data());
  }
  return out;
}

ElectraOutputs electra_forward(const models::Electra& model, const MaskedBatch& mb, const ElectraOptions& o,
                               uint64_t sample_key, uint64_t draw, const ElectraBatchCounts* whole_batch) {
  const int64_t B = mb.batch, T = mb.length, M = static_cast<int64_t>(mb.positions.size());
  ElectraOutputs out;
  out.replaced = mb.original;
  if (M > 0) {
    std::vector<int64_t> targets(static_cast<size_t>(M));
    for (int64_t i = 0; i < M; ++i) targets[static_cast<size_t>(i)] = mb.original[static_cast<size_t>(mb.positions[i])];
    out.gen_logits = generator_logits_at(model, from_vector(mb.input, {B, T}), from_vector(mb.positions, {M}));
    out.mlm_loss =
        whole_batch ? mul(cross_entropy(out.gen_logits, from_vector(targets, {M}), -100, 0.0, Reduction::sum),
                          1.0 / static_cast<double>(std::max<int64_t>(whole_batch->masked, 1)))
                    : cross_entropy(out.gen_logits, from_vector(targets, {M}));
    // The sample is data for the discriminator: no gradient flows back through it.
    const auto sampled = sample_tokens(out.gen_logits, o.temperature, sample_key, draw, mb.elements);
    for (int64_t i = 0; i < M; ++i)
      out.replaced[static_cast<size_t>(mb.positions[i])] = sampled[static_cast<size_t>(i)];
  } else {
    out.mlm_loss = scalar_tensor(0.0);
  }
  const int64_t pad = model.config().pad_token_id;
  out.labels.assign(mb.original.size(), 0.0f);
  out.weights.assign(mb.original.size(), 0.0f);
  for (size_t i = 0; i < mb.original.size(); ++i) {
    if (mb.original[i] == pad) continue;
    out.weights[i] = 1.0f;
    out.labels[i] = out.replaced[i] != mb.original[i] ? 1.0f : 0.0f;
  }
  out.disc_logits = model.discriminator_logits(from_vector(out.replaced, {B, T}));
  const DType dt = out.disc_logits.dtype();
  if (whole_batch) {
    // bce_with_logits' mean, with the whole batch's token count as the denominator.
    const Tensor w = from_vector(out.weights, {B, T}).to(dt), y = from_vector(out.labels, {B, T}).to(dt);
    const double local = std::max(sum(w).item(), 1.0);
    out.rtd_loss = mul(bce_with_logits(out.disc_logits, y, w),
                       local / std::max(static_cast<double>(whole_batch->tokens), 1.0));
  } else {
    out.rtd_loss =
        bce_with_logits(out.disc_logits, from_vector(out.labels, {B, T}).to(dt), from_vector(out.weights, {B, T}).to(dt));
  }
  out.loss = add(out.mlm_loss.to(dt), mul(out.rtd_loss, o.rtd_weight));
  return out;
}

// ---- metrics ------------------------------------------------------------------------------------

void BinaryCounts::add(bool predicted, bool actual) {
  int64_t& cell = predicted ? (actual ? tp : fp) : (actual ? fn : tn);
  ++cell;
}

namespace {
double ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }
}  // namespace

double BinaryCounts::accuracy() const { return ratio(tp + tn, total()); }
double BinaryCounts::precision() const { return ratio(tp, tp + fp); }
double BinaryCounts::recall() const { return ratio(tp, tp + fn); }
double BinaryCounts::f1() const { return ratio(2 * tp, 2 * tp + fp + fn); }  // = 2PR / (P + R)

BinaryCounts count_predictions(const std::vector<float>& logits, const std::vector<float>& labels,
                               const std::vector<float>& weights) {
  KNOT_CHECK(logits.size() == labels.size() && logits.size() == weights.size(),
             "electra: count_predictions got {} logits, {} labels and {} weights", logits.size(), labels.size(),
             weights.size());
  BinaryCounts c;
  for (size_t i = 0; i < logits.size(); ++i)
    if (weights[i] != 0) c.add(logits[i] > 0, labels[i] > 0.5f);
  return c;
}

models::Json ElectraMetrics::to_json(double rtd_weight, const std::string& p) const {
  return {{p + "loss", mlm_loss() + rtd_weight * rtd_loss()},
          {p + "mlm_loss", mlm_loss()},
          {p + "mlm_acc", mlm_accuracy()},
          {p + "rtd_loss", rtd_loss()},
          {p + "disc_acc", disc.accuracy()},
          {p + "disc_precision", disc.precision()},
          {p + "disc_recall", disc.recall()},
          {p + "disc_f1", disc.f1()}};
}

ElectraMetrics evaluate_electra(const models::Electra& model, const std::vector<std::vector<int32_t>>& seqs,
                                const ElectraVocab& v, const ElectraOptions& o, int64_t batch_size, uint64_t seed) {
  KNOT_CHECK(batch_size > 0, "electra: evaluation batch size must be > 0, got {}", batch_size);
  NoGradGuard ng;
  const ElectraKeys keys(seed);
  ElectraMetrics m;
  for (size_t start = 0; start < seqs.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<int64_t> idx(std::min(seqs.size() - start, static_cast<size_t>(batch_size)));
    std::iota(idx.begin(), idx.end(), static_cast<int64_t>(start));
    const MaskedBatch mb = mask_batch(seqs, idx, v, o.mask_prob, keys.mask, kElectraEvalDraw);
    const ElectraOutputs out = electra_forward(model, mb, o, keys.sample, kElectraEvalDraw);
    const int64_t M = static_cast<int64_t>(mb.positions.size());
    if (M > 0) {
      m.mlm_loss_sum += out.mlm_loss.item() * static_cast<double>(M);
      const auto pred = argmax(out.gen_logits, 1).to_vector<int64_t>();
      for (int64_t i = 0; i < M; ++i)
        m.mlm_correct += pred[static_cast<size_t>(i)] == mb.original[static_cast<size_t>(mb.positions[i])] ? 1 : 0;
    }
    m.masked += M;
    m.tokens += mb.tokens;
    m.rtd_loss_sum += out.rtd_loss.item() * static_cast<double>(mb.tokens);
    m.sequences += mb.batch;
    const BinaryCounts c = count_predictions(out.disc_logits.to_vector<float>(), out.labels, out.weights);
    m.disc.tp += c.tp;
    m.disc.fp += c.fp;
    m.disc.tn += c.tn;
    m.disc.fn += c.fn;
  }
  return m;
}

}  // namespace knot::train
