// Activation checkpointing (autograd/checkpoint.h): gradcheck of a checkpointed composite, equality
// with the plain path (input and parameter gradients), dropout replay and the generator state,
// pass-through cases, the models' `activation_checkpointing` key (bit-identical loss and gradients),
// and the allocator peak it saves.
#include <algorithm>
#include <chrono>
#include <functional>
#include <map>

#include "autograd/checkpoint.h"
#include "autograd/grad_mode.h"
#include "core/allocator.h"
#include "core/rng.h"
#include "models/electra.h"
#include "models/encoder_decoder.h"
#include "tests/helpers.h"
#include "tests/op_reference.h"

using namespace knot;
using knot::test::leaf_in;

namespace {

// y = x + tanh(x·W1 + b1)·W2 · s — a residual 2-layer MLP: x is used twice (the gradients of its
// two uses are summed inside the checkpoint), W1, b1, W2 are captured parameters, s is a second
// input that requires grad.   x: (N, D)  W1: (D, H)  b1: (H)  W2: (H, D)  s: (D)
struct Mlp {
  Tensor w1, b1, w2;
  Tensor operator()(const Tensor& x, const Tensor& s) const {
    return add(x, mul(matmul(tanh(add(matmul(x, w1), b1)), w2), s));
  }
};

Mlp make_mlp(uint64_t seed) {
  return {leaf_in({3, 5}, seed, -1, 1), leaf_in({5}, seed + 1, -1, 1), leaf_in({5, 3}, seed + 2, -1, 1)};
}

void zero_grads(const std::vector<Tensor>& ts) {
  for (const auto& t : ts) t.zero_grad();
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

Tensor ids(const std::vector<int64_t>& v, int64_t B) { return from_vector(v, {B, static_cast<int64_t>(v.size()) / B}); }

models::EncoderDecoderConfig tiny_config() {
  models::EncoderDecoderConfig c;
  c.num_encoder_layers = 2;
  c.num_decoder_layers = 2;
  c.vocab_src_size = 11;
  c.vocab_tgt_size = 9;
  c.pad_src_idx = 1;
  c.pad_tgt_idx = 1;
  c.embedding_dim = 8;
  c.query_key_dim = 8;
  c.value_dim = 8;
  c.num_heads = 2;
  c.ffn_hidden_dim = 12;
  c.dropout_rate = 0.2;
  c.attention_dropout_rate = 0.1;
  c.max_length = 32;
  return c;
}

struct StepResult {
  double loss = 0;
  std::map<std::string, std::vector<float>> grads;
  Generator::State rng;
};

// One training forward + backward from a fixed generator state.
StepResult train_step(nn::Module& m, const std::function<Tensor()>& loss_fn) {
  m.train();
  m.zero_grad();
  manual_seed(11);
  default_generator().next_draw();  // a non-zero draw counter, as mid-training
  const Tensor loss = loss_fn();
  loss.backward();
  StepResult r;
  r.loss = loss.item();
  for (const auto& [name, p] : m.named_parameters())
    r.grads[name] = p.grad().defined() ? p.grad().to_vector<float>() : std::vector<float>{};
  r.rng = default_generator().state();
  return r;
}

void require_identical(const StepResult& plain, const StepResult& ckpt) {
  REQUIRE(plain.loss == ckpt.loss);  // bit-identical, not just close
  REQUIRE(plain.grads.size() == ckpt.grads.size());
  for (const auto& [name, g] : plain.grads) {
    INFO(name);
    REQUIRE_FALSE(g.empty());
    REQUIRE(ckpt.grads.at(name) == g);
  }
  CHECK(plain.rng.seed == ckpt.rng.seed);
  CHECK(plain.rng.draw == ckpt.rng.draw);
}

}  // namespace

TEST_CASE("checkpoint: float64 gradcheck of a checkpointed residual MLP", "[checkpoint]") {
  const Mlp mlp = make_mlp(10);
  // The parameters are gradcheck inputs too, so their gradients (accumulated by the recompute's
  // inner backward, not returned by the checkpoint node) are checked as well.
  const Tensor x = leaf_in({4, 3}, 20, -1, 1), s = leaf_in({3}, 21, -1, 1);
  REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return checkpoint([&mlp](const std::vector<Tensor>& a) { return mlp(a[0], a[1]); }, {in[0], in[1]});
      },
      (std::vector<Tensor>{x, s, mlp.w1, mlp.b1, mlp.w2}));
}

TEST_CASE("checkpoint: input and parameter gradients equal the plain path exactly", "[checkpoint]") {
  const Mlp mlp = make_mlp(30);
  const Tensor x = leaf_in({4, 3}, 40, -1, 1), s = leaf_in({3}, 41, -1, 1);
  const Tensor w = leaf_in({4, 3}, 42, -1, 1);  // output weights, so every element matters
  const std::vector<Tensor> all{x, s, mlp.w1, mlp.b1, mlp.w2};
  auto ckpt_fn = [mlp](const std::vector<Tensor>& a) { return mlp(a[0], a[1]); };

  const Tensor y_plain = mlp(x, s);
  sum(mul(y_plain, w)).backward();
  std::vector<Tensor> plain;
  for (const auto& t : all) plain.push_back(t.grad().clone());
  zero_grads(all);

  const Tensor y_ckpt = checkpoint(ckpt_fn, {x, s});
  REQUIRE(same_values(y_ckpt, y_plain));
  REQUIRE(y_ckpt.grad_fn() != nullptr);
  CHECK(std::string(y_ckpt.grad_fn()->name()) == "checkpoint");
  sum(mul(y_ckpt, w)).backward();
  for (size_t i = 0; i < all.size(); ++i) {
    INFO("tensor " << i);
    REQUIRE(all[i].grad().defined());
    REQUIRE(same_values(all[i].grad(), plain[i]));
  }

  // x also used outside the checkpoint: the node's gradient is added to the outer one. The node
  // sums fn's two uses of x first, the plain path adds all three in one slot, so the two can differ
  // in the last bit (floating-point addition is not associative) but not more.
  zero_grads(all);
  sum(add(mul(mlp(x, s), w), x)).backward();
  const Tensor gx_plain = x.grad().clone();
  zero_grads(all);
  sum(add(mul(checkpoint(ckpt_fn, {x, s}), w), x)).backward();
  CHECK(test::max_abs_diff(x.grad(), gx_plain) < 1e-14);
}

TEST_CASE("checkpoint: dropout masks are replayed and the generator ends where the plain path leaves it",
          "[checkpoint]") {
  const Tensor x = leaf_in({64}, 50, -1, 1), w = leaf_in({64}, 51, -1, 1);
  // Two draws inside fn and one after it; backward draws nothing.
  auto fn = [w](const std::vector<Tensor>& a) { return dropout(mul(dropout(a[0], 0.5, true), w), 0.3, true); };
  auto step = [&](bool ckpt, int backwards) {
    x.zero_grad();
    w.zero_grad();
    manual_seed(5);
    const Tensor y = ckpt ? checkpoint(fn, {x}) : fn({x});
    const Tensor loss = sum(dropout(y, 0.5, true));
    const Generator::State after_forward = default_generator().state();
    loss.backward(Tensor(), /*retain_graph=*/backwards > 1);
    for (int b = 1; b < backwards; ++b) loss.backward();  // the checkpoint recomputes again
    CHECK(default_generator().state().draw == after_forward.draw);
    CHECK(after_forward.draw == 3);
    return std::pair<std::vector<double>, std::vector<double>>{x.grad().to_vector<double>(),
                                                               w.grad().to_vector<double>()};
  };
  const auto plain = step(false, 1), ckpt = step(true, 1);
  REQUIRE(ckpt.first == plain.first);
  REQUIRE(ckpt.second == plain.second);
  // Some elements were dropped (a zero gradient), so the masks really mattered.
  CHECK(std::count(plain.first.begin(), plain.first.end(), 0.0) > 0);
  // retain_graph: a second backward recomputes with the same masks and accumulates the same again.
  const auto plain2 = step(false, 2), ckpt2 = step(true, 2);
  REQUIRE(ckpt2.first == plain2.first);
  REQUIRE(ckpt2.second == plain2.second);
}

TEST_CASE("checkpoint: inputs without grad pass through, and under no_grad or with constant inputs fn is just called",
          "[checkpoint]") {
  const Mlp mlp = make_mlp(60);
  const Tensor x = leaf_in({4, 3}, 70, -1, 1);
  const Tensor mask = from_vector(std::vector<double>{1, 0, 1}, {3});  // no grad, like a padding mask
  const Tensor idx = from_vector(std::vector<int64_t>{2, 0}, {2});      // integer, like token ids
  auto fn = [mlp](const std::vector<Tensor>& a) {
    return index_select(mlp(a[0], a[1]), 0, a[2]);  // uses every input, the integer one included
  };
  const Tensor want = fn({x, mask, idx});

  SECTION("a mixed input list: only x gets a gradient") {
    const Tensor y = checkpoint(fn, {x, mask, idx});
    REQUIRE(same_values(y, want));
    sum(y).backward();
    REQUIRE(x.grad().defined());
    CHECK_FALSE(mask.grad().defined());
    CHECK_FALSE(mask.requires_grad());
    CHECK(mlp.w1.grad().defined());
  }
  SECTION("under NoGradGuard: fn's output, no graph") {
    NoGradGuard ng;
    const Tensor y = checkpoint(fn, {x, mask, idx});
    REQUIRE(same_values(y, want));
    CHECK_FALSE(y.requires_grad());
  }
  SECTION("no input requires grad: fn runs with grad on, so its parameters still get gradients") {
    const Tensor xc = x.detach();
    const Tensor y = checkpoint(fn, {xc, mask, idx});
    REQUIRE(same_values(y, want));
    REQUIRE(y.requires_grad());
    sum(y).backward();
    CHECK(mlp.w2.grad().defined());
  }
  SECTION("fn returning its input unchanged does not disturb the input's graph") {
    const Tensor h = mul(x, 2.0);
    const Tensor y = checkpoint([](const std::vector<Tensor>& a) { return a[0]; }, {h});
    CHECK(h.grad_fn() != y.grad_fn());
    sum(y).backward();
    REQUIRE(same_values(x.grad(), full(x.shape(), 2.0, DType::f64)));
  }
}

TEST_CASE("models: activation_checkpointing config key parses, round-trips and is type-checked", "[checkpoint]") {
  models::Json j = tiny_config().to_json();
  CHECK(j.at("activation_checkpointing") == false);
  j["activation_checkpointing"] = true;
  const auto c = models::EncoderDecoderConfig::from_json(j);
  CHECK(c.activation_checkpointing);
  CHECK(models::EncoderDecoderConfig::from_json(c.to_json()).to_json() == c.to_json());
  j["activation_checkpointing"] = "yes";
  REQUIRE_THROWS_WITH(models::EncoderDecoderConfig::from_json(j), Catch::Contains("activation_checkpointing"));
  models::ElectraConfig e;
  models::Json je = e.to_json();
  je["activation_checkpointing"] = true;
  CHECK(models::ElectraConfig::from_json(je).activation_checkpointing);
}

TEST_CASE("models: encoder-decoder with activation_checkpointing gives bit-identical loss and gradients",
          "[checkpoint]") {
  // Padding in both sides (masks as pass-through inputs), residual and attention dropout on.
  const Tensor src = ids({3, 4, 5, 6, 7, 8, 2, 1, 1, 1}, 2), tgt = ids({2, 3, 4, 5, 6, 7, 1, 1}, 2);
  const Tensor labels = ids({3, 4, 5, 6, 7, 8, 1, 1}, 2).reshape({8});
  auto variant = GENERATE(0, 1, 2);
  models::EncoderDecoderConfig cfg = tiny_config();
  if (variant == 1) cfg.pre_layer_norm = true;
  if (variant == 2) cfg.projection = nn::ProjectionSpec{"kan_bspline", nlohmann::json::object()};
  INFO("variant " << variant);
  auto run = [&](bool ckpt) {
    cfg.activation_checkpointing = ckpt;
    manual_seed(3);  // same initial weights
    models::EncoderDecoderTransformer m(cfg);
    return train_step(m, [&] {
      return cross_entropy(m.forward(src, tgt).reshape({8, 9}), labels, /*ignore_index=*/1, 0.1);
    });
  };
  require_identical(run(false), run(true));
}

TEST_CASE("models: Electra with activation_checkpointing gives bit-identical loss and gradients", "[checkpoint]") {
  models::ElectraConfig cfg;
  cfg.vocab_size = 20;
  cfg.embedding_size = 8;
  cfg.max_position_embeddings = 16;
  cfg.hidden_dropout = 0.2;
  cfg.attention_dropout = 0.1;
  cfg.generator = {8, 2, 2, 16};
  cfg.discriminator = {12, 2, 2, 24};
  const Tensor x = ids({2, 5, 7, 9, 3, 4, 6, 0}, 2);
  auto run = [&](bool ckpt) {
    cfg.activation_checkpointing = ckpt;
    manual_seed(4);
    models::Electra m(cfg);
    return train_step(m, [&] { return add(sum(m.generator_logits(x)), sum(m.discriminator_logits(x))); });
  };
  require_identical(run(false), run(true));
}

TEST_CASE("models: activation checkpointing lowers the allocator peak of a training step", "[checkpoint]") {
  // d = 128, 4 + 4 layers, batch 16 × 32 tokens; a small vocabulary so the block activations, not
  // the logits, dominate.
  models::EncoderDecoderConfig cfg;
  cfg.num_encoder_layers = 4;
  cfg.num_decoder_layers = 4;
  cfg.vocab_src_size = 256;
  cfg.vocab_tgt_size = 256;
  cfg.embedding_dim = 128;
  cfg.num_heads = 4;
  cfg.ffn_hidden_dim = 512;
  cfg.max_length = 64;
  manual_seed(9);
  const Tensor src = randint(2, 256, {16, 32}), tgt = randint(2, 256, {16, 32});
  const Tensor labels = randint(2, 256, {16 * 32});
  auto peak_mib = [&](bool ckpt, double* seconds) {
    cfg.activation_checkpointing = ckpt;
    manual_seed(1);
    models::EncoderDecoderTransformer m(cfg);
    m.train();
    const size_t base = cpu_live_bytes();
    cpu_reset_peak();
    const auto t0 = std::chrono::steady_clock::now();
    {
      const Tensor loss = cross_entropy(m.forward(src, tgt).reshape({16 * 32, 256}), labels);
      loss.backward();
    }
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(cpu_peak_bytes() - base) / (1024.0 * 1024.0);
  };
  double t_plain = 0, t_ckpt = 0;
  const double plain = peak_mib(false, &t_plain), ckpt = peak_mib(true, &t_ckpt);
  INFO("peak above baseline: plain " << plain << " MiB (" << t_plain << " s), checkpointed " << ckpt << " MiB ("
                                     << t_ckpt << " s)");
  REQUIRE(ckpt < 0.8 * plain);
}
