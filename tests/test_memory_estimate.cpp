// Memory estimates before a model is built (models/memory_estimate.h): the analytic parameter
// count equals the built model's for every shipped config and every KAN basis; absurd sizes from
// issue 21 (num_encoder_layers=1000000, embedding_dim=30000, grid_size=1e9, max_length=1e9) are a
// clear error within seconds, through the training entry points, without allocating the model; a
// small config passes; byte counts of raw tensor allocations are overflow-checked.
#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/allocator.h"
#include "core/safetensors.h"
#include "models/config.h"
#include "models/decoder_only.h"
#include "models/factory.h"
#include "train/kan_fit.h"
#include "models/memory_estimate.h"
#include "nn/basis_registry.h"
#include "nn/kan.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "train/electra_pretrain.h"
#include "train/finetune.h"
#include "train/trainer.h"
#include "train/translation.h"

namespace fs = std::filesystem;
using knot::models::Json;
using namespace knot;

namespace {

std::string repo_path(const std::string& rel) { return (fs::path(__FILE__).parent_path().parent_path() / rel).string(); }
std::string fixture(const std::string& name) { return test::train_fixture(name); }

Json tiny_translation() { return test::tiny_translation_config(2); }

Json tiny_electra() {
  return Json{{"task", "electra"},
              {"data",
               {{"train", Json::array({fixture("electra-text.txt")})},
                {"val_fraction", 0.1},
                {"max_length", 32},
                {"batch_size", 16},
                {"max_val_sequences", 0}}},
              {"tokenizer", {{"path", fixture("electra-vocab.txt")}}},
              {"model",
               {{"embedding_size", 16},
                {"max_position_embeddings", 32},
                {"generator", {{"hidden_size", 16}, {"num_layers", 1}, {"num_heads", 1}, {"intermediate_size", 32}}},
                {"discriminator", {{"hidden_size", 32}, {"num_layers", 2}, {"num_heads", 2}, {"intermediate_size", 64}}}}},
              {"train", {{"steps", 2}, {"log_every", 1}, {"val_every", 2}, {"threads", 1}, {"progress", false}}}};
}

Json tiny_fit(const std::string& run_dir) {
  return Json{{"task", "fit"},
              {"run_dir", run_dir},
              {"data", {{"generate", {{"function", "exp_sin_sq"}, {"n_train", 50}, {"n_test", 20}}}}},
              {"model", {{"widths", {2, 3, 1}}, {"projection", {{"kind", "kan_bspline"}, {"options", {{"grid_size", 5}}}}}}},
              {"train", {{"steps", 2}, {"log_every", 100}}}};
}

// Runs fn, which must throw the memory check's error, quickly and without growing the tensor
// allocator's peak by more than a few MiB (the model is never built); returns the message.
template <typename F>
std::string refused(F fn) {
  cpu_reset_peak();
  const size_t live0 = cpu_live_bytes();
  const auto t0 = std::chrono::steady_clock::now();
  std::string msg;
  try {
    fn();
  } catch (const std::exception& e) {
    msg = e.what();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(msg);
  REQUIRE(msg.find("memory check: training this") != std::string::npos);
  REQUIRE(msg.find("train.memory_check=false") != std::string::npos);
  REQUIRE(msg.find("is available") != std::string::npos);
  CHECK(secs < 30);
  CHECK(cpu_peak_bytes() - live0 < (size_t{16} << 20));
  return msg;
}

}  // namespace

TEST_CASE("memory estimate: parameter counts equal the built model's for every shipped config",
          "[memory][models]") {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(repo_path("configs"))) {
    if (entry.path().extension() != ".json") continue;
    const Json cfg = models::load_json_file(entry.path().string());
    INFO(entry.path().filename().string());
    manual_seed(0);
    if (cfg.value("task", "") == "fit") {
      const train::FitModelSpec spec = train::read_fit_model(cfg["model"], "model");
      const auto& widths = spec.widths;
      const std::string& basis = spec.basis;
      Json options = spec.options;
      options["dtype"] = "f64";
      const nn::KAN kan(widths, basis, options);
      const auto e = models::estimate_kan_memory(widths, basis, options, {});
      CHECK(e.parameters == static_cast<uint64_t>(kan.num_parameters()));
      CHECK(e.parameter_bytes == static_cast<uint64_t>(kan.num_parameters()) * 8);
      CHECK(e.optimizer == "L-BFGS");
    } else {
      models::TrainingShape shape;
      const Json m = models::resolve_model_config(cfg, &shape);
      const auto e = models::estimate_model_memory(m, shape);
      // The GPT-2 presets up to 1.5 B parameters are not built here (gigabytes); their counts are
      // checked by hand in test_decoder_only.cpp, and the smallest preset is built below.
      if (e.parameters > 50'000'000) {
        ++checked;
        continue;
      }
      const auto model = models::build_model(m);
      CHECK(e.parameters == static_cast<uint64_t>(model->num_parameters()));
      uint64_t param_bytes = 0, buffer_bytes = 0;
      for (const auto& [n, t] : model->named_parameters())
        (t.requires_grad() ? param_bytes : buffer_bytes) += t.nbytes();
      for (const auto& [n, t] : model->named_buffers()) buffer_bytes += t.nbytes();
      CHECK(e.parameter_bytes == param_bytes);
      CHECK(e.gradient_bytes == param_bytes);
      CHECK(e.optimizer_bytes == 2 * param_bytes);
      CHECK(e.activation_bytes > 0);
      // The sinusoidal tables are built at the first forward, so they are not among the buffers yet.
      if (m["model"] == "encoder_decoder") {
        const auto c = models::EncoderDecoderConfig::from_json(m);
        buffer_bytes += 2 * static_cast<uint64_t>(c.max_length * c.embedding_dim) * 4;
      } else if (m["model"] == "decoder_only") {
        const auto c = models::DecoderOnlyConfig::from_json(m);
        if (c.positions == "sinusoidal") buffer_bytes += static_cast<uint64_t>(c.max_length * c.embedding_dim) * 4;
      }
      CHECK(e.buffer_bytes == buffer_bytes);
    }
    ++checked;
  }
  REQUIRE(checked >= 17);
}

TEST_CASE("memory estimate: every KAN basis is counted exactly, parameters and buffers", "[memory][kan]") {
  for (const auto& basis : nn::basis_names()) {
    for (const auto& [in, out] : {std::pair<int64_t, int64_t>{3, 2}, {8, 5}, {12, 7}}) {
      for (const char* dtype : {"f32", "f64"}) {
        Json options = nn::basis_spec(basis).test_options;
        options["dtype"] = dtype;
        INFO(basis << " " << in << "x" << out << " " << dtype << " " << options.dump());
        const auto layer = nn::make_kan_layer(basis, in, out, options);
        uint64_t param_bytes = 0, other_bytes = 0;
        for (const auto& [n, t] : layer->named_parameters())
          (t.requires_grad() ? param_bytes : other_bytes) += t.nbytes();
        for (const auto& [n, t] : layer->named_buffers()) other_bytes += t.nbytes();
        const auto c = models::count_kan_layer(basis, in, out, options);
        CHECK(c.parameters == static_cast<uint64_t>(layer->num_parameters()));
        CHECK(c.parameter_bytes == param_bytes);
        CHECK(c.buffer_bytes == other_bytes);
      }
    }
  }
  // Options the tests above leave at their defaults.
  for (const Json& o : {Json{{"enable_standalone_scale_spline", false}, {"bias", true}}, Json{{"grid_size", 9}}}) {
    const auto layer = nn::make_kan_layer("bspline", 4, 3, o);
    CHECK(models::count_kan_layer("kan_bspline", 4, 3, o).parameters == static_cast<uint64_t>(layer->num_parameters()));
  }
  CHECK(models::count_kan_layer("rbf", 4, 3, {{"use_layernorm", false}, {"use_base_update", false}}).parameters ==
        static_cast<uint64_t>(nn::make_kan_layer("rbf", 4, 3, {{"use_layernorm", false}, {"use_base_update", false}})
                                  ->num_parameters()));
  CHECK(models::count_kan_layer("relu", 4, 3, {{"train_ab", false}}).parameters ==
        static_cast<uint64_t>(nn::make_kan_layer("relu", 4, 3, {{"train_ab", false}})->num_parameters()));
  REQUIRE_THROWS_WITH(models::count_kan_layer("bspline", 4, 3, {{"grid_sise", 4}}), Catch::Contains("grid_sise"));
  REQUIRE_THROWS_WITH(models::count_kan_layer("nope", 4, 3, {}), Catch::Contains("unknown basis 'nope'"));
}

TEST_CASE("memory estimate: a small config passes, a tight budget refuses it with the estimate printed",
          "[memory]") {
  models::TrainingShape shape;
  const Json m = models::resolve_model_config(tiny_translation(), &shape);
  CHECK(shape.batch_size == 16);
  CHECK(shape.seq_len == 24);
  const auto e = models::estimate_model_memory(m, shape);
  CHECK(!e.overflow);
  CHECK(e.total() < (uint64_t{64} << 20));
  REQUIRE_NOTHROW(models::check_memory(e, models::available_memory(), "train.memory_check=false"));
  REQUIRE_NOTHROW(models::check_training_memory(m, Json::object(), shape));

  const models::AvailableMemory tight{1024, "a test budget"};
  REQUIRE_THROWS_WITH(models::check_memory(e, tight, "train.memory_check=false"),
                      Catch::Contains("needs an estimated") && Catch::Contains("(parameters ") &&
                          Catch::Contains("gradients + Adam") && Catch::Contains("activations ~") &&
                          Catch::Contains("at batch 16 × 24 tokens") &&
                          Catch::Contains("but 1.0 KiB is available (a test budget)") &&
                          Catch::Contains("model.num_encoder_layers") &&
                          Catch::Contains("or set train.memory_check=false to proceed"));

  // The available memory is a real number of this machine (or its cgroup).
  const auto a = models::available_memory();
  CHECK(a.bytes > (uint64_t{16} << 20));
  CHECK(!a.source.empty());
}

TEST_CASE("memory estimate: train.memory_check is a bool that switches the check off", "[memory][trainer]") {
  const Json m = models::resolve_model_config(tiny_translation(), nullptr);
  Json huge = m;
  huge["num_encoder_layers"] = 1000000;
  REQUIRE_THROWS_WITH(models::check_training_memory(huge, Json::object(), {}), Catch::Contains("memory check"));
  REQUIRE_NOTHROW(models::check_training_memory(huge, Json{{"memory_check", false}}, {}));
  REQUIRE_THROWS_WITH(models::check_training_memory(huge, Json{{"memory_check", "no"}}, {}),
                      Catch::Contains("key 'memory_check' must be a bool"));
  // The trainer's config reader accepts the key.
  REQUIRE_NOTHROW(train::TrainerConfig::from_json(Json{{"memory_check", false}}));
}

TEST_CASE("memory estimate: train.kan_grid_extend is counted at its largest grid size", "[memory][trainer]") {
  Json m = models::resolve_model_config(tiny_translation(), nullptr);
  m["projection"] = Json{{"kind", "kan_bspline"}, {"options", {{"grid_size", 3}}}};
  const Json grown = models::with_kan_grid_size(m, 200);
  REQUIRE(grown["projection"]["options"]["grid_size"] == 200);
  const double small = static_cast<double>(models::estimate_model_memory(m, {}).parameters);
  const double big = static_cast<double>(models::estimate_model_memory(grown, {}).parameters);
  INFO("parameters at G = 3: " << small << ", at G = 200: " << big);
  REQUIRE(big > 10 * small);
  // The string spelling of the spec is grown too; other keys are left alone.
  m["projection"] = "kan_bspline";
  const Json g2 = models::with_kan_grid_size(m, 50);
  REQUIRE(g2["projection"]["options"]["grid_size"] == 50);
  REQUIRE(g2["embedding_dim"] == m["embedding_dim"]);
  // An MLP model is unchanged.
  m["projection"] = Json{{"kind", "mlp"}};
  REQUIRE(models::with_kan_grid_size(m, 50) == m);
}

TEST_CASE("memory estimate: the issue's absurd sizes are refused quickly through the training entry points",
          "[memory][trainer]") {
  const std::string run = test::fresh_run_dir("memory", "absurd");
  const auto hooks = test::quiet_hooks();
  SECTION("translation: model.num_encoder_layers=1000000") {
    Json c = tiny_translation();
    models::apply_override(c, "model.num_encoder_layers=1000000");
    const std::string msg = refused([&] { train::train_translation(c, run, false, hooks); });
    CHECK(msg.find("lower one of data.batch_size, data.max_length, model.num_encoder_layers") != std::string::npos);
  }
  // The sizes are the issue's or larger, so that every estimate is terabytes: refused on any machine.
  SECTION("translation: model.embedding_dim=300000") {
    Json c = tiny_translation();
    models::apply_override(c, "model.embedding_dim=300000");
    refused([&] { train::train_translation(c, run, false, hooks); });
  }
  SECTION("translation: data.max_length=1e9 and model.max_length=1e11") {
    Json c = tiny_translation();
    models::apply_override(c, "data.max_length=1e9");
    refused([&] { train::train_translation(c, run, false, hooks); });
    c = tiny_translation();
    models::apply_override(c, "model.max_length=1e11");
    refused([&] { train::train_translation(c, run, false, hooks); });
  }
  SECTION("translation: sizes past 2^64 bytes saturate instead of wrapping") {
    Json c = tiny_translation();
    models::apply_override(c, "model.embedding_dim=4611686018427387904");
    models::apply_override(c, "model.num_heads=1");
    const std::string msg = refused([&] { train::train_translation(c, run, false, hooks); });
    CHECK(msg.find("more than 16.0 EiB") != std::string::npos);
    CHECK(msg.find("overflow") != std::string::npos);
  }
  SECTION("electra: model.discriminator.num_layers=1000000, model.max_position_embeddings=1e11") {
    Json c = tiny_electra();
    models::apply_override(c, "model.discriminator.num_layers=1000000");
    refused([&] { train::train_electra(c, run, false, hooks); });
    c = tiny_electra();
    models::apply_override(c, "model.max_position_embeddings=1e11");
    refused([&] { train::train_electra(c, run, false, hooks); });
  }
  SECTION("finetune: model.discriminator.hidden_size=300000") {
    train::FinetuneOptions o;
    o.from_scratch = true;
    o.model_config = repo_path("configs/electra-tiny-mlp.json");
    o.vocab = fixture("sentiment-vocab.txt");
    o.out_dir = run;
    o.config = Json{{"data",
                     {{"train", fixture("sentiment-tiny-train.jsonl")},
                      {"val", fixture("sentiment-tiny-val.jsonl")},
                      {"test", fixture("sentiment-tiny-test.jsonl")},
                      {"max_length", 16}}},
                    {"train", {{"steps", 2}, {"threads", 1}, {"progress", false}}}};
    o.overrides = {"model.discriminator.hidden_size=300000", "model.discriminator.num_heads=1"};
    refused([&] { train::finetune(o, hooks); });
  }
  SECTION("fit: model.projection.options.grid_size=1e9") {
    Json c = tiny_fit(run);
    models::apply_override(c, "model.projection.options.grid_size=1e9");
    const std::string msg = refused([&] { train::run_fit(c, [](const std::string&) {}); });
    CHECK(msg.find("kan model") != std::string::npos);
    CHECK(msg.find("L-BFGS") != std::string::npos);
  }
  SECTION("fit: widths [2, 1000000000, 1] with Adam") {
    Json c = tiny_fit(run);
    c["model"]["widths"] = {2, 1000000000, 1};
    c["train"]["optimizer"] = "adam";
    refused([&] { train::run_fit(c, [](const std::string&) {}); });
  }
  fs::remove_all(run);
}

TEST_CASE("memory estimate: a small fit passes the check, train.memory_check is a known fit key", "[memory][fit]") {
  const std::string run = test::fresh_run_dir("memory", "fit-ok");
  Json c = tiny_fit(run);
  c["train"]["memory_check"] = true;
  REQUIRE_NOTHROW(train::run_fit(c, [](const std::string&) {}));
  c["train"]["memory_check"] = "yes";
  REQUIRE_THROWS_WITH(train::run_fit(c, [](const std::string&) {}), Catch::Contains("memory_check"));
  fs::remove_all(run);
}

TEST_CASE("allocation: byte counts are overflow-checked and name the shape", "[core][memory]") {
  const int64_t big = int64_t{1} << 62;  // 4611686018427387904
  REQUIRE_THROWS_WITH(empty({big, big}, DType::f32),
                      Catch::Contains("empty: shape (4611686018427387904, 4611686018427387904) x 4 bytes overflows 64 bits"));
  // 2^62 elements x 4 bytes = 2^64: also past 64 bits, not 0.
  REQUIRE_THROWS_WITH(empty({big}, DType::f32), Catch::Contains("(4611686018427387904,) x 4 bytes overflows 64 bits"));
  // 2^61 x 4 = 2^63 bytes: fits in 64 bits but not in int64 offsets.
  REQUIRE_THROWS_WITH(empty({big / 2}, DType::f32), Catch::Contains("overflows 63 bits"));
  REQUIRE_THROWS_WITH(shape_numel({big, big}), Catch::Contains("more elements than fit in 64 bits"));
  CHECK(shape_nbytes({3, 5}, 8, "t") == 120);
  CHECK(shape_nbytes({0, big, big}, 4, "t") == 0);
  // An allocation the machine cannot serve names its size instead of a bare std::bad_alloc (not
  // under AddressSanitizer, whose malloc aborts on a 2 EiB request instead of returning null).
#if !defined(__SANITIZE_ADDRESS__)
  REQUIRE_THROWS_WITH(empty({big / 8}, DType::f32),
                      Catch::Contains("cpu_alloc: out of memory allocating 2305843009213693952 bytes (2.0 EiB"));
#endif
  REQUIRE_THROWS_WITH(cpu_alloc(SIZE_MAX), Catch::Contains("cannot allocate 18446744073709551615 bytes"));
  CHECK(bytes_str(1536) == "1.5 KiB");
  CHECK(bytes_str(100) == "100 bytes");

  // A safetensors header with a (2^62, 2^62) tensor: the true problem, not "needs 0 bytes".
  const std::string path =
      (fs::temp_directory_path() / fmt::format("knot-overflow-{}.safetensors", ::getpid())).string();
  {
    const std::string header =
        R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})";
    std::ofstream f(path, std::ios::binary);
    const uint64_t n = header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header;
  }
  REQUIRE_THROWS_WITH(load_safetensors(path),
                      Catch::Contains("tensor 'w' F32: shape (4611686018427387904, 4611686018427387904) x 4 bytes "
                                      "overflows 64 bits") &&
                          !Catch::Contains("needs 0 bytes"));
  fs::remove(path);
}
