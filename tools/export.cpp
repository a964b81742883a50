// `knot export onnx --run DIR -o FILE [--part P]`: a trained run as an ONNX model of standard
// operators (export/models.h lists the parts, their inputs and outputs; export/onnx.h writes it).
// With --reference, also a JSON file of sample inputs and knot's own outputs for them, at two batch
// sizes and sequence lengths (plus real sentences and knot's greedy translations with
// --reference-sentences), so any runtime can be checked against knot (tests/onnx/check.js does it
// with ONNX Runtime).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>

#include <unistd.h>

#include "autograd/grad_mode.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "data/jsonl.h"
#include "export/models.h"
#include "export/onnx.h"
#include "export/torch_names.h"
#include "models/config.h"
#include "models/factory.h"
#include "train/kan_fit.h"
#include "nn/kan.h"
#include "ops/ops.h"
#include "tools/commands.h"
#include "train/decode.h"
#include "train/electra_pretrain.h"
#include "train/finetune.h"
#include "train/language_model.h"
#include "train/translation.h"

namespace knot::tools {
namespace fs = std::filesystem;
using models::Json;

namespace {

Json tensor_json(const Tensor& t) {
  const bool is_int = !is_floating(t.dtype());
  Json j{{"dtype", is_int ? "int64" : "float32"}, {"dims", t.shape()}};
  if (is_int)
    j["data"] = t.to_vector<int64_t>();
  else
    j["data"] = t.to_vector<double>();
  return j;
}

// Random ids in [lo, V) of shape (B, L); with pad >= 0 and `padded`, row b > 0 ends in b pad ids
// (never the whole row), so masks are exercised.
Tensor random_ids(std::mt19937_64& gen, int64_t B, int64_t L, int64_t lo, int64_t V, int64_t pad, bool padded) {
  std::vector<int64_t> v(static_cast<size_t>(B * L));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) {
      int64_t id = lo + static_cast<int64_t>(gen() % static_cast<uint64_t>(std::max<int64_t>(1, V - lo)));
      if (id == pad) id = lo == pad ? pad + 1 : lo;
      if (padded && pad >= 0 && b > 0 && t >= L - std::min(b, L - 1)) id = pad;
      v[static_cast<size_t>(b * L + t)] = id;
    }
  return from_vector(v, {B, L});
}

// (B, S) int64 ids, rows padded at the end with pad (as knot batches sentences).
Tensor pad_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad) {
  size_t S = 1;
  for (const auto& r : rows) S = std::max(S, r.size());
  std::vector<int64_t> v(rows.size() * S, pad);
  for (size_t b = 0; b < rows.size(); ++b) std::copy(rows[b].begin(), rows[b].end(), v.begin() + b * S);
  return from_vector(v, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(S)});
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path);
  KNOT_CHECK(f, "export: cannot read '{}'", path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) lines.push_back(line);
  KNOT_CHECK(!lines.empty(), "export: '{}' has no sentences (one per line)", path);
  return lines;
}

// The default part of each kind of run.
std::string default_part(const std::string& task) {
  if (task == "fit") return "fit";
  if (task == "translation") return "seq2seq";
  if (task == "electra") return "discriminator";
  if (task == "lm") return "lm";
  for (const std::string& t : train::finetune_tasks())
    if (task == t) return "classifier";
  return "";
}

// A decoder's self-attention caches as reference tensors named <name>_key_N and <name>_value_N
// ("past" before a step, "present" after it); a cache not filled yet is (B, heads, 0, head size).
void cache_json(Json& j, const std::string& name, const std::vector<nn::DecoderBlockCache>& caches,
                const nn::ModuleList& layers, int64_t B) {
  for (size_t i = 0; i < caches.size(); ++i) {
    const auto& a = layers.at<nn::DecoderBlock>(i).self_attn->config();
    const auto& kv = caches[i].self_attn;
    const int64_t H = a.num_heads;
    j[fmt::format("{}_key_{}", name, i)] = tensor_json(kv.k.defined() ? kv.k : zeros({B, H, 0, a.query_key_dim / H}));
    j[fmt::format("{}_value_{}", name, i)] = tensor_json(kv.v.defined() ? kv.v : zeros({B, H, 0, a.value_dim / H}));
  }
}

// The run tasks whose directories hold an ELECTRA model: pretraining and every fine-tuning task.
std::vector<std::string> electra_run_tasks() {
  std::vector<std::string> tasks = train::finetune_tasks();
  tasks.insert(tasks.begin(), "electra");
  return tasks;
}

// Median wall time of f() in milliseconds over n runs, after one warm-up run.
double median_ms(int64_t n, const std::function<void()>& f) {
  f();
  std::vector<double> ms;
  for (int64_t i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

void add_export_commands(CLI::App& app) {
  auto* exp = app.add_subcommand("export", "Export a trained run for other runtimes (ONNX)");
  exp->require_subcommand(1);
  auto* cmd = exp->add_subcommand("onnx", "Write a trained run as an ONNX model (standard operators only)");
  struct Opts {
    std::string run, out, part, dtype = "f32", reference, sentences;
    int64_t opset = 17, max_length = 32, timing = 0;
    std::vector<int64_t> shape;
    bool kv_cache = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--run", o->run, "Run directory (knot fit, or knot train with task translation, electra or lm)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("-o,--output", o->out, "The .onnx file to write")->required();
  cmd->add_option("--part", o->part,
                  "What to export: fit (knot fit runs); seq2seq (default), encoder or decoder (translation runs); "
                  "discriminator (default) or generator (electra runs); classifier (default), discriminator or "
                  "generator (fine-tuned electra runs); lm (lm runs)");
  cmd->add_flag("--kv-cache", o->kv_cache,
               "Parts decoder and lm: also take every layer's cached self-attention keys and values (past_key_N, "
               "past_value_N) and return them extended (present_key_N, present_value_N), for incremental decoding");
  cmd->add_option("--opset", o->opset, "ONNX operator set (17)")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "Float type of the exported model: f32 or f64")->capture_default_str();
  cmd->add_option("--reference", o->reference,
                  "Also write sample inputs and knot's outputs for them to this JSON file (two batch sizes and "
                  "sequence lengths), to check a runtime against knot (tests/onnx/check.js)");
  cmd->add_option("--reference-sentences", o->sentences,
                  "Translation, electra and lm runs: a text file of sentences (one per line) for --reference: a case "
                  "of real inputs and, for translation, knot's greedy translation of each sentence (lm: knot's "
                  "greedy continuation of each line as a prompt)");
  cmd->add_option("--reference-shape", o->shape,
                  "BATCH,LENGTH: one reference case of this shape instead of the two default ones (fit: BATCH rows)")
      ->delimiter(',')
      ->expected(2);
  cmd->add_option("--reference-timing", o->timing,
                  "Also time knot's forward on each reference case: the median of N runs, stored as knot_ms (for "
                  "tests/onnx/latency.js; not for the KV-cache cases)")
      ->capture_default_str();
  cmd->add_option("--reference-max-length", o->max_length,
                  "Most tokens of a greedy translation (lm: continuation) in --reference")
      ->capture_default_str();
  cmd->footer(
      "Inputs and outputs (ids int64; batch and sequence axes are dynamic):\n"
      "  fit            x (batch, in) -> y (batch, out)\n"
      "  encoder        src_ids (batch, src_seq) -> memory (batch, src_seq, d)\n"
      "  decoder        tgt_ids (batch, tgt_seq), memory, src_ids -> logits (batch, tgt_seq, vocab)\n"
      "    --kv-cache     + past_key_N, past_value_N (batch, heads, past_seq, head size) -> logits of the\n"
      "                   new positions (batch, tgt_seq - past_seq, vocab), present_key_N, present_value_N;\n"
      "                   tgt_ids is the whole prefix, the cached positions included\n"
      "  seq2seq        src_ids, tgt_ids -> logits (batch, tgt_seq, vocab)\n"
      "  discriminator  input_ids, attention_mask, token_type_ids (batch, seq) -> logits (batch, seq)\n"
      "  generator      input_ids, attention_mask, token_type_ids (batch, seq) -> logits (batch, seq, vocab)\n"
      "  classifier     input_ids, attention_mask, token_type_ids (batch, seq) -> logits (batch, labels)\n"
      "  lm             input_ids (batch, seq) -> logits (batch, seq, vocab); with --kv-cache input_ids are\n"
      "                 the new tokens, + past_key_N, past_value_N -> + present_key_N, present_value_N\n"
      "Every KAN basis is written as standard operators (opset 17), so no custom operator or plugin is\n"
      "needed (ONNX Runtime is tested; TensorRT is not, here). The model is checked (ONNX checker and\n"
      "strict shape inference) before it is written.\n"
      "Examples:\n"
      "  knot export onnx --run runs/fit -o fit.onnx\n"
      "  knot export onnx --run runs/kanformer-kan --part encoder -o encoder.onnx\n"
      "  knot export onnx --run runs/electra-small -o discriminator.onnx --reference ref.json");
  cmd->callback([o]() {
    KNOT_CHECK(o->dtype == "f32" || o->dtype == "f64", "export: --dtype must be f32 or f64, got '{}'", o->dtype);
    KNOT_CHECK(!fs::is_directory(o->out), "export: the output '{}' is a directory; give a file name", o->out);
    KNOT_CHECK(o->max_length >= 1, "export: --reference-max-length must be >= 1, got {}", o->max_length);
    KNOT_CHECK(o->sentences.empty() || !o->reference.empty(), "export: --reference-sentences needs --reference FILE");
    KNOT_CHECK((o->shape.empty() && o->timing == 0) || !o->reference.empty(),
               "export: --reference-shape and --reference-timing need --reference FILE");
    KNOT_CHECK(o->shape.empty() || (o->shape[0] >= 1 && o->shape[1] >= 1 && o->shape[0] * o->shape[1] <= (int64_t{1} << 24)),
               "export: --reference-shape needs BATCH,LENGTH >= 1 (and at most 2^24 tokens)");
    KNOT_CHECK(o->timing >= 0, "export: --reference-timing must be >= 0, got {}", o->timing);
    // Reference shapes: (batch, length) pairs; the second default one is padded where padding exists.
    const std::vector<std::pair<int64_t, int64_t>> shapes =
        o->shape.empty() ? std::vector<std::pair<int64_t, int64_t>>{} : std::vector<std::pair<int64_t, int64_t>>{{o->shape[0], o->shape[1]}};
    // With --reference-timing, the median time of knot's forward for the case just added.
    auto timed = [&](Json& c, const std::function<void()>& forward) {
      if (o->timing > 0) c["knot_ms"] = median_ms(o->timing, forward);
    };
    KNOT_CHECK(!o->kv_cache || o->part == "decoder" || o->part.empty() || o->part == "lm",
               "export: --kv-cache is an option of the parts decoder and lm, not '{}'", o->part);
    const std::string cfg_path = (fs::path(o->run) / "config.json").string();
    KNOT_CHECK(fs::exists(cfg_path), "export: '{}' has no config.json; is it a knot run directory?", o->run);
    const std::string task = models::load_json_file(cfg_path).value("task", "");
    const std::string part = o->part.empty() ? default_part(task) : o->part;
    KNOT_CHECK(!part.empty(),
               "export: runs of task '{}' have no export yet (fit, translation, electra, fine-tuned electra and lm runs do)", task);
    const bool want_ref = !o->reference.empty();
    nn::ExportGraph g(o->dtype == "f64" ? DType::f64 : DType::f32);
    Json ref{{"part", part}, {"cases", Json::array()}};
    Generator gen(20261203);    // KAN inputs
    std::mt19937_64 ids_gen(7);  // token ids
    NoGradGuard ng;

    if (task == "fit") {
      KNOT_CHECK(part == "fit", "export: a knot fit run exports as part 'fit', not '{}'", part);
      KNOT_CHECK(o->sentences.empty(), "export: --reference-sentences is for translation, electra and lm runs");
      const std::shared_ptr<nn::KAN> model = train::load_fit_model(o->run, "export");
      exporting::kan_graph(g, *model);
      if (want_ref) {
        const int64_t in = model->layer(0).in_features();
        const DType dt = model->layer(0).parameters()[0].dtype();
        // Inside the usual [-1, 1] input range, and a wider one that leaves the grid.
        std::vector<std::pair<int64_t, double>> fit_shapes{{5, 1.0}, {17, 2.5}};
        if (!shapes.empty()) fit_shapes = {{shapes[0].first, 1.0}};
        for (auto [B, lim] : fit_shapes) {
          const Tensor x = rand({B, in}, dt, &gen, -lim, lim);
          ref["cases"].push_back({{"inputs", {{"x", tensor_json(x)}}}, {"outputs", {{"y", tensor_json(model->forward(x))}}}});
          timed(ref["cases"].back(), [&] { model->forward(x); });
        }
      }
    } else if (task == "translation") {
      const train::TranslationRun run = train::load_translation_run(o->run);
      const models::EncoderDecoderTransformer& model = *run.model;
      exporting::encoder_decoder_graph(g, model, part, o->kv_cache);
      if (want_ref) {
        const auto& c = model.config();
        auto add_case = [&](const Tensor& src, const Tensor& tgt) {
          const Tensor memory = part == "decoder" ? model.encode(src) : Tensor();  // the decoder's input
          if (part == "decoder" && o->kv_cache) {
            // Two steps of knot's cached decoding: the first third of tgt without a cache (past 0),
            // then the rest with the cache the first step left.
            const int64_t T = tgt.size(1), P = std::max<int64_t>(1, T / 3);
            models::DecoderCache cache = model.new_cache();
            const auto& layers = *model.decoder->layers;
            for (const auto& [from, to] : {std::pair<int64_t, int64_t>{0, P}, {P, T}}) {
              Json in{{"tgt_ids", tensor_json(tgt.slice(1, 0, to).contiguous())}, {"memory", tensor_json(memory)},
                      {"src_ids", tensor_json(src)}};
              cache_json(in, "past", cache.layers, layers, tgt.size(0));
              Json out{{"logits", tensor_json(model.decode(tgt.slice(1, from, to).contiguous(), memory, src, &cache))}};
              cache_json(out, "present", cache.layers, layers, tgt.size(0));
              ref["cases"].push_back({{"inputs", in}, {"outputs", out}});
            }
            return;
          }
          // The part's forward: its output for the reference, and what --reference-timing times.
          auto forward = [&]() {
            if (part == "encoder") return model.encode(src);
            if (part == "decoder") return model.decode(tgt, memory, src);
            return model.forward(src, tgt);
          };
          Json in{{"src_ids", tensor_json(src)}};
          if (part != "encoder") in["tgt_ids"] = tensor_json(tgt);
          if (part == "decoder") in["memory"] = tensor_json(memory);
          ref["cases"].push_back({{"inputs", in}, {"outputs", {{part == "encoder" ? "memory" : "logits", tensor_json(forward())}}}});
          timed(ref["cases"].back(), [&] { forward(); });
        };
        std::vector<std::tuple<int64_t, int64_t, int64_t>> tr_shapes{{2, 5, 4}, {3, 9, 7}};
        if (!shapes.empty()) tr_shapes = {{shapes[0].first, shapes[0].second, shapes[0].second}};
        for (auto [B, S, T] : tr_shapes) {
          const bool padded = B > 2;
          add_case(random_ids(ids_gen, B, S, 0, c.vocab_src_size, c.pad_src_idx, padded),
                   random_ids(ids_gen, B, T, 0, c.vocab_tgt_size, c.pad_tgt_idx, padded));
        }
        if (!o->sentences.empty()) {
          const train::SpecialTokens sp = train::special_tokens(*run.tokenizer);
          std::vector<std::vector<int64_t>> srcs;
          for (const std::string& line : read_lines(o->sentences)) {
            const std::vector<int32_t> enc = run.tokenizer->encode(line);
            std::vector<int64_t> ids(enc.begin(), enc.end());
            train::cut_to_model_length(ids, model, o->sentences, srcs.size() + 1);
            srcs.push_back(ids);
          }
          // A real batch (padded with <pad>, as knot batches it), teacher-forced on its own source ids.
          const Tensor src = pad_rows(srcs, sp.pad);
          add_case(src, src.slice(1, 0, std::min<int64_t>(src.size(1), c.max_length)).contiguous());
          Json greedy = Json::array();
          for (const auto& s : srcs)
            greedy.push_back({{"src_ids", s}, {"ids", train::greedy_decode(model, {s}, sp, o->max_length)[0]}});
          ref["greedy"] = {{"bos", sp.bos}, {"eos", sp.eos}, {"max_length", o->max_length}, {"sentences", greedy}};
        }
      }
    } else if (task == "electra" || part == "classifier" || default_part(task) == "classifier") {
      const train::ElectraRun run = train::load_electra_run(o->run, electra_run_tasks());
      const models::Electra& model = *run.model;
      exporting::electra_graph(g, model, part);
      if (want_ref) {
        const auto& c = model.config();
        auto add_case = [&](const Tensor& ids, const Tensor& types) {
          const Tensor mask = ne(ids, full(ids.shape(), static_cast<double>(c.pad_token_id), ids.dtype())).to(DType::i64);
          auto forward = [&]() {  // the part's logits (also what --reference-timing times)
            if (part == "discriminator") return model.discriminator_logits(ids, types);
            if (part == "generator") return model.generator_logits(ids, types);
            return model.classify(ids, types);
          };
          ref["cases"].push_back({{"inputs", {{"input_ids", tensor_json(ids)}, {"attention_mask", tensor_json(mask)},
                                              {"token_type_ids", tensor_json(types)}}},
                                  {"outputs", {{"logits", tensor_json(forward())}}}});
          timed(ref["cases"].back(), [&] { forward(); });
        };
        std::vector<std::pair<int64_t, int64_t>> el_shapes{{2, 6}, {3, 11}};
        if (!shapes.empty()) el_shapes = shapes;
        for (auto [B, T] : el_shapes) {
          const Tensor ids = random_ids(ids_gen, B, T, 0, c.vocab_size, c.pad_token_id, B > 2);
          add_case(ids, random_ids(ids_gen, B, T, 0, c.type_vocab_size, -1, false));
        }
        if (!o->sentences.empty()) {
          std::vector<std::vector<int64_t>> rows;
          for (const std::string& line : read_lines(o->sentences)) {
            std::vector<int64_t> ids;
            for (int32_t id : run.tokenizer->encode(line, /*add_special_tokens=*/true, static_cast<int>(c.max_position_embeddings)))
              ids.push_back(id);
            rows.push_back(ids);
          }
          const Tensor ids = pad_rows(rows, c.pad_token_id);
          add_case(ids, zeros(ids.shape(), DType::i64));
        }
      }
    } else if (task == "lm") {
      KNOT_CHECK(part == "lm", "export: a language-model run exports as part 'lm', not '{}'", part);
      const train::LmRun run = train::load_lm_run(o->run);
      const models::DecoderOnlyTransformer& model = *run.model;
      exporting::decoder_only_graph(g, model, o->kv_cache);
      if (want_ref) {
        const auto& c = model.config();
        std::vector<std::pair<int64_t, int64_t>> lm_shapes{{2, 5}, {3, 9}};
        if (!shapes.empty()) lm_shapes = shapes;
        for (auto [B, T] : lm_shapes) {
          const Tensor ids = random_ids(ids_gen, B, T, 0, c.vocab_size, -1, false);
          if (!o->kv_cache) {
            ref["cases"].push_back({{"inputs", {{"input_ids", tensor_json(ids)}}},
                                    {"outputs", {{"logits", tensor_json(model.forward(ids))}}}});
            timed(ref["cases"].back(), [&] { model.forward(ids); });
            continue;
          }
          // Two cached steps, as knot's generation runs them: a first part from an empty cache, then the rest.
          models::DecoderOnlyCache cache = model.new_cache();
          const int64_t P = std::max<int64_t>(1, T / 3);
          for (const auto& [from, to] : {std::pair<int64_t, int64_t>{0, P}, {P, T}}) {
            Json in{{"input_ids", tensor_json(ids.slice(1, from, to).contiguous())}};
            cache_json(in, "past", cache.layers, *model.layers, B);
            Json out{{"logits", tensor_json(model.forward(ids.slice(1, from, to).contiguous(), &cache))}};
            cache_json(out, "present", cache.layers, *model.layers, B);
            ref["cases"].push_back({{"inputs", in}, {"outputs", out}});
          }
        }
        if (!o->sentences.empty()) {  // prompts: knot's greedy continuation of each
          train::GenerateOptions opt;
          opt.greedy = true;
          opt.max_new_tokens = o->max_length;
          opt.stop_id = train::document_separator(*run.tokenizer);
          Json prompts = Json::array();
          for (const std::string& line : read_lines(o->sentences)) {
            const std::vector<int64_t> prompt = train::lm_prompt_ids(*run.tokenizer, line);
            prompts.push_back({{"prompt_ids", prompt}, {"ids", train::generate_ids(model, prompt, opt).ids}});
          }
          ref["generate"] = {{"stop_id", opt.stop_id}, {"max_new_tokens", o->max_length}, {"max_length", c.max_length},
                             {"prompts", prompts}};
        }
      }
    } else {
      KNOT_FAIL("export: runs of task '{}' have no export yet (fit, translation, electra, fine-tuned electra and lm runs do)", task);
    }

    exporting::OnnxOptions opt;
    opt.opset = o->opset;
    opt.graph_name = fmt::format("knot_{}", part);
    opt.metadata = {{"knot.run", fs::absolute(o->run).string()}, {"knot.task", task}, {"knot.part", part}};
    const int64_t bytes = exporting::write_onnx(g, o->out, opt);
    std::cout << fmt::format("export: wrote {} ({} of {} run '{}'): {} nodes, {} initializers, {:.1f} MB\n", o->out,
                             part, task, o->run, g.nodes().size(), g.initializers().size(), bytes / 1e6);
    if (want_ref) {
      data::write_file_atomic(o->reference, ref.dump());
      std::cout << fmt::format("export: wrote {} ({} cases{})\n", o->reference, ref["cases"].size(),
                               ref.contains("greedy")     ? ", greedy translations"
                               : ref.contains("generate") ? ", greedy continuations"
                                                          : "");
    }
  });

  // ---- knot export torch ----
  auto* tc = exp->add_subcommand("torch", "Write a trained run's weights under a PyTorch project's state_dict names");
  struct TorchOpts {
    std::string run, out, format, part = "discriminator";
    bool untied_output = false;
  };
  auto t = std::make_shared<TorchOpts>();
  tc->add_option("--run", t->run,
                 "Run directory (knot fit with basis bspline; knot train with task translation or electra; knot finetune)")
      ->required()
      ->check(CLI::ExistingDirectory);
  tc->add_option("--format", t->format,
                 "efficient-kan (fit runs), kanformer (translation runs) or hf-electra (electra and fine-tuned runs: "
                 "Hugging Face's ElectraForPreTraining / ElectraForMaskedLM)")
      ->required()
      ->check(CLI::IsMember({"efficient-kan", "kanformer", "hf-electra"}));
  tc->add_option("--part", t->part, "hf-electra: discriminator (ElectraForPreTraining) or generator (ElectraForMaskedLM)")
      ->capture_default_str();
  tc->add_option("-o,--output", t->out, "The .safetensors file to write")->required();
  tc->add_flag("--untied-output", t->untied_output,
               "kanformer: export a model with its own output Linear (tie_output_embedding false) as linear.weight, "
               "for a kanformer version whose output layer is not tied to tgt_emb");
  tc->footer(
      "efficient-kan: load with KAN(layers_hidden, grid_size, spline_order) (the file's metadata lists\n"
      "them) and load_state_dict(safetensors.torch.load_file(FILE), strict=True).\n"
      "kanformer: TransformerSeq2Seq(...) with the arguments in the file's metadata; the names follow\n"
      "kanformer's modules (src_emb, encoder_blocks.N.mha.q_proj, ..., linear) and its scale buffers are\n"
      "included. A setting kanformer cannot express (pre-LN, two FFN bias flags that differ, ...) is an\n"
      "error naming it. docs/export.md lists the names.\n"
      "hf-electra: ElectraForPreTraining (--part discriminator) or ElectraForMaskedLM (--part generator)\n"
      "with an ElectraConfig of the metadata's hf.* values; MLP models only.\n"
      "Examples:\n"
      "  knot export torch --run runs/fit-exp-sin --format efficient-kan -o kan.safetensors\n"
      "  knot export torch --run runs/kanformer-kan --format kanformer -o kanformer.safetensors\n"
      "  knot export torch --run runs/electra-small-mlp --format hf-electra -o discriminator.safetensors");
  tc->callback([t]() {
    KNOT_CHECK(!fs::is_directory(t->out), "export: the output '{}' is a directory; give a file name", t->out);
    const std::string cfg_path = (fs::path(t->run) / "config.json").string();
    KNOT_CHECK(fs::exists(cfg_path), "export: '{}' has no config.json; is it a knot run directory?", t->run);
    const std::string task = models::load_json_file(cfg_path).value("task", "");
    exporting::TorchState st;
    if (t->format == "efficient-kan") {
      KNOT_CHECK(task == "fit", "export: --format efficient-kan is for knot fit runs; '{}' is a {} run", t->run, task);
      st = exporting::efficient_kan_state(*train::load_fit_model(t->run, "export"));
    } else if (t->format == "hf-electra") {
      st = exporting::hf_electra_state(*train::load_electra_run(t->run, electra_run_tasks()).model, t->part);
    } else {
      KNOT_CHECK(task == "translation", "export: --format kanformer is for translation runs; '{}' is a {} run", t->run,
                 task);
      const train::TranslationRun run = train::load_translation_run(t->run);
      st = exporting::kanformer_state(*run.model, t->untied_output);
    }
    st.metadata["knot.run"] = fs::absolute(t->run).string();
    save_safetensors(t->out, st.tensors, st.metadata);
    std::cout << fmt::format("export: wrote {} ({} tensors, {} names) from '{}'\n", t->out, st.tensors.size(),
                             t->format, t->run);
  });
}

void add_import_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("import", "Read weights saved under a PyTorch project's names into knot");
  struct Opts {
    std::string format, config, run, out;
    std::vector<std::string> in;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--format", o->format, "efficient-kan, kanformer or hf-electra")
      ->required()
      ->check(CLI::IsMember({"efficient-kan", "kanformer", "hf-electra"}));
  cmd->add_option("-i,--input", o->in,
                  "The .safetensors file (efficient-kan KAN, kanformer TransformerSeq2Seq state); hf-electra: two, "
                  "the ElectraForPreTraining and the ElectraForMaskedLM state")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--config", o->config,
                  "efficient-kan: a knot fit config (model.widths, model.options, data.inputs, data.target); "
                  "kanformer: a model config (configs/kanformer-*.json) or a translation config with one; hf-electra: "
                  "an electra config (its model object gives the sizes)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--run", o->run, "efficient-kan: the new fit run directory to create (predict, inspect, fit's init_from)");
  cmd->add_option("-o,--output", o->out, "kanformer, hf-electra: the knot-named .safetensors file to write");
  cmd->footer(
      "Every tensor is checked (names, shapes, finite B-spline grids) before anything is written.\n"
      "Examples:\n"
      "  knot import --format efficient-kan -i kan.safetensors --config fit.json --run runs/imported\n"
      "  knot import --format kanformer -i kanformer.safetensors --config configs/kanformer-kan.json -o knot.safetensors\n"
      "  knot import --format hf-electra -i discriminator.safetensors -i generator.safetensors \\\n"
      "      --config configs/pretrain-electra-small-mlp.json -o knot.safetensors\n"
      "The knot-named files start a run with train.init_from=FILE (docs/training.md).");
  cmd->callback([o]() {
    KNOT_CHECK(o->format == "hf-electra" ? o->in.size() == 2 : o->in.size() == 1,
               "import: --format {} reads {} (-i), got {}", o->format,
               o->format == "hf-electra" ? "two files, the discriminator's and the generator's" : "one file", o->in.size());
    const Json cfg = models::load_json_file(o->config);
    if (o->format == "hf-electra") {
      KNOT_CHECK(!o->out.empty() && o->run.empty(), "import: --format hf-electra writes a knot-named file: give -o FILE");
      const Json mj = cfg.contains("model") && cfg["model"].is_object() ? cfg["model"] : cfg;
      models::Electra model(models::ElectraConfig::from_json(mj));
      std::vector<nn::NamedTensors> files;
      for (const std::string& path : o->in) files.push_back(load_safetensors(path).tensors);
      model.load_state_dict(exporting::hf_electra_to_knot(files, model), /*strict=*/true);
      model.save(o->out, {{"knot.imported_from", fmt::format("{}", fmt::join(o->in, ", "))}});
      std::cout << fmt::format("import: wrote '{}' ({} parameters, knot names) from '{}'\n", o->out,
                               model.num_parameters(false), fmt::join(o->in, "', '"));
      return;
    }
    const SafetensorsFile f = load_safetensors(o->in[0]);
    if (o->format == "efficient-kan") {
      KNOT_CHECK(!o->run.empty() && o->out.empty(), "import: --format efficient-kan writes a fit run: give --run DIR");
      KNOT_CHECK(!fs::exists(o->run) || fs::is_empty(o->run), "import: '{}' exists and is not empty; choose a new run directory",
                 o->run);
      KNOT_CHECK(cfg.value("task", "fit") == "fit" && cfg.contains("model") && cfg["model"].contains("widths"),
                 "import: '{}' is not a knot fit config (task fit with model.widths)", o->config);
      KNOT_CHECK(cfg.contains("data") && cfg["data"].contains("inputs") && cfg["data"].contains("target"),
                 "import: '{}' needs data.inputs and data.target (the columns the model reads and predicts)", o->config);
      const train::FitModelSpec m = train::read_fit_model(cfg["model"], "model");
      KNOT_CHECK(m.basis == "bspline", "import: efficient-kan's KAN is B-spline; the config's basis is '{}'", m.basis);
      nn::KAN model(m.widths, "bspline", m.options);
      model.load_state_dict(exporting::efficient_kan_to_knot(f.tensors, model), /*strict=*/true);
      Json out = cfg;
      out["task"] = "fit";
      out["run_dir"] = o->run;
      // Both files go into a temporary directory renamed into place: the run appears whole or not at all.
      const fs::path dest = fs::absolute(o->run);
      const fs::path tmp = dest.parent_path() / fmt::format(".{}.import-{}", dest.filename().string(), ::getpid());
      fs::remove_all(tmp);
      fs::create_directories(tmp);
      try {
        model.save((tmp / "model.safetensors").string(), {{"knot.imported_from", o->in[0]}});
        models::save_json_file((tmp / "config.json").string(), out);
        if (fs::exists(dest)) fs::remove(dest);  // empty (checked above)
        fs::rename(tmp, dest);
      } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
      }
      std::cout << fmt::format("import: wrote the fit run '{}' ({} parameters) from '{}'\n", o->run,
                               model.num_parameters(false), o->in[0]);
    } else {
      KNOT_CHECK(!o->out.empty() && o->run.empty(), "import: --format kanformer writes a knot-named file: give -o FILE");
      const Json mj = cfg.contains("model") && cfg["model"].is_object() ? cfg["model"] : cfg;
      auto model = std::dynamic_pointer_cast<models::EncoderDecoderTransformer>(models::build_model(mj));
      KNOT_CHECK(model, "import: '{}' is not an encoder_decoder model config", o->config);
      model->load_state_dict(exporting::kanformer_to_knot(f.tensors, *model), /*strict=*/true);
      model->save(o->out, {{"knot.imported_from", o->in[0]}});
      std::cout << fmt::format("import: wrote '{}' ({} parameters, knot names) from '{}'\n", o->out,
                               model->num_parameters(false), o->in[0]);
    }
  });
}

}  // namespace knot::tools
