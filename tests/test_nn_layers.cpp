// Transformer layers: LayerNorm, Embedding, Dropout, positional encodings, FeedForward (every
// activation and gated form), MultiHeadAttention (+ KV cache), encoder/decoder blocks.
#include <cmath>

#include "nn/transformer.h"
#include "ops/attention.h"
#include "tests/helpers.h"

using namespace knot;
using knot::test::all_close;
using knot::test::max_abs_diff;
using knot::test::rand_leaf;

namespace {

// x followed by every parameter of m (gradcheck perturbs them in place, so the module sees it).
std::vector<Tensor> with_params(const Tensor& x, const nn::Module& m) {
  std::vector<Tensor> v{x};
  for (const Tensor& p : m.parameters()) v.push_back(p);
  return v;
}

// Moves a module to f64 and gives every parameter non-trivial values (LayerNorm starts at 1/0).
void to_f64_random(nn::Module& m, uint64_t seed) {
  m.to(DType::f64);
  Generator g(seed);
  NoGradGuard ng;
  for (const Tensor& p : m.parameters()) p.copy_(rand(p.shape(), DType::f64, &g, -0.8, 0.8));
}

}  // namespace

TEST_CASE("nn: LayerNorm normalises the last dim and passes gradcheck", "[nn]") {
  nn::LayerNorm ln(5);
  CHECK(ln.num_parameters() == 10);
  CHECK(ln.named_parameters()[0].first == "weight");
  CHECK(ln.named_parameters()[1].first == "bias");
  Generator g(1);
  const Tensor x = rand({3, 5}, DType::f32, &g, -3, 3);
  const auto y = ln.forward(x).to_vector<double>();
  for (int r = 0; r < 3; ++r) {
    double m = 0, v = 0;
    for (int j = 0; j < 5; ++j) m += y[r * 5 + j] / 5;
    for (int j = 0; j < 5; ++j) v += (y[r * 5 + j] - m) * (y[r * 5 + j] - m) / 5;
    CHECK(std::abs(m) < 1e-5);
    CHECK(std::abs(v - 1.0) < 1e-3);
  }
  to_f64_random(ln, 2);
  const Tensor xd = rand_leaf({2, 3, 5}, 3);
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return ln.forward(in[0]); }, with_params(xd, ln));
  REQUIRE_THROWS_WITH(ln.forward(rand_leaf({2, 4}, 4)), Catch::Contains("LayerNorm"));
}

TEST_CASE("nn: Embedding gathers rows, zeroes and freezes the padding row", "[nn]") {
  manual_seed(5);
  nn::Embedding emb(6, 3, /*padding_idx=*/2);
  for (double v : emb.weight.select(0, 2).to_vector<double>()) CHECK(v == 0.0);
  const Tensor ids = from_vector<int64_t>({0, 2, 5, 2}, {2, 2});
  const Tensor y = emb.forward(ids);
  REQUIRE(y.shape() == Shape{2, 2, 3});
  CHECK(max_abs_diff(y.select(0, 1).select(0, 0), emb.weight.select(0, 5).detach()) == 0.0);
  CHECK(max_abs_diff(y.select(0, 1).select(0, 1), zeros({3})) == 0.0);
  emb.to(DType::f64);
  // The padding row is frozen by design (its numeric gradient is not 0), so check other ids.
  const Tensor ids_no_pad = from_vector<int64_t>({0, 3, 5, 0}, {2, 2});
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return emb.forward(ids_no_pad); },
                    (std::vector<Tensor>{emb.weight}));
  emb.zero_grad();
  sum(emb.forward(ids)).backward();
  for (double v : emb.weight.grad().select(0, 2).to_vector<double>()) CHECK(v == 0.0);
  for (double v : emb.weight.grad().select(0, 0).to_vector<double>()) CHECK(v == 1.0);
}

TEST_CASE("nn: Dropout is the identity in eval mode and drops in training", "[nn]") {
  Generator g(6);
  nn::Dropout d(0.5, &g);
  const Tensor x = ones({1000});
  const auto y = d.forward(x).to_vector<float>();
  int zeros_seen = 0;
  for (float v : y) {
    CHECK((v == 0.0f || v == 2.0f));
    zeros_seen += v == 0.0f;
  }
  CHECK(zeros_seen > 400);
  CHECK(zeros_seen < 600);
  CHECK(d.active_p() == 0.5);
  d.eval();
  CHECK(d.forward(x).to_vector<float>() == x.to_vector<float>());
  CHECK(d.active_p() == 0.0);
}

TEST_CASE("nn: sinusoidal positional encoding follows the formula and is not a parameter", "[nn]") {
  const int64_t d = 6;
  const Tensor pe = nn::sinusoidal_positional_encoding(10, d, 0, DType::f64);
  const auto v = pe.to_vector<double>();
  for (int64_t pos : {0, 3, 9})
    for (int64_t i = 0; i < d / 2; ++i) {
      const double angle = pos / std::pow(10000.0, 2.0 * i / d);
      CHECK(std::abs(v[pos * d + 2 * i] - std::sin(angle)) < 1e-12);
      CHECK(std::abs(v[pos * d + 2 * i + 1] - std::cos(angle)) < 1e-12);
    }
  // An offset gives the later rows (what incremental decoding uses).
  CHECK(max_abs_diff(nn::sinusoidal_positional_encoding(4, d, 6, DType::f64), pe.slice(0, 6, 10)) < 1e-15);
  nn::SinusoidalPositionalEncoding mod(d, 10);
  CHECK(mod.num_parameters() == 0);
  CHECK(mod.state_dict().empty());
  const Tensor x = zeros({2, 4, d}, DType::f64);
  CHECK(max_abs_diff(mod.forward(x, 3).select(0, 1), pe.slice(0, 3, 7)) < 1e-15);
  REQUIRE_THROWS_WITH(mod.forward(x, 7), Catch::Contains("max_length"));
  // Odd widths keep the last sin column.
  CHECK(nn::sinusoidal_positional_encoding(2, 5).shape() == Shape{2, 5});
}

TEST_CASE("nn: learned position ids and padding masks", "[nn]") {
  CHECK(nn::position_ids(4, 2).to_vector<int64_t>() == std::vector<int64_t>{2, 3, 4, 5});
  const Tensor ids = from_vector<int64_t>({5, 1, 1, 7}, {2, 2});
  CHECK(nn::padding_mask(ids, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1, 0});
  CHECK_FALSE(nn::padding_mask(ids, -1).defined());
}

TEST_CASE("nn: FeedForward passes gradcheck for every activation and gated form", "[nn]") {
  for (const char* act : {"relu", "gelu", "silu", "swish", "sigmoid", "tanh", "elu", "leaky_relu", "glu", "reglu",
                          "geglu", "swiglu"}) {
    INFO("activation " << act);
    nn::FeedForward ffn(3, 4, act, 0.0);
    const bool gated = nn::is_gated_activation(act);
    CHECK((ffn.gate_proj != nullptr) == gated);
    CHECK(ffn.num_parameters() == (gated ? 2 : 1) * (3 * 4 + 4) + 4 * 3 + 3);
    to_f64_random(ffn, 7);
    const Tensor x = rand_leaf({2, 3}, 8, -2, 2);
    REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return ffn.forward(in[0]); }, with_params(x, ffn));
  }
  nn::FeedForward nob(3, 4, "swiglu", 0.0, {}, false, false);
  CHECK(nob.num_parameters() == 3 * (3 * 4));
  const auto names = nob.named_parameters();
  CHECK(names[0].first == "in_proj.weight");
  CHECK(names[1].first == "gate_proj.weight");
  CHECK(names[2].first == "out_proj.weight");
  REQUIRE_THROWS_WITH(nn::FeedForward(3, 4, "nope"), Catch::Contains("unknown activation 'nope'"));
}

TEST_CASE("nn: MultiHeadAttention matches its composite and passes gradcheck", "[nn][attention]") {
  nn::MultiHeadAttentionConfig c;
  c.d_model = 4;
  c.num_heads = 2;
  c.query_key_dim = 6;  // differs from d_model and from value_dim
  c.value_dim = 2;
  c.out_bias = true;
  nn::MultiHeadAttention mha(c);
  CHECK(mha.num_parameters() == 4 * 6 + 4 * 6 + 4 * 2 + 2 * 4 + 4);  // no q/k/v bias
  const auto names = mha.named_parameters();
  REQUIRE(names.size() == 5);
  CHECK(names[0].first == "q_proj.weight");
  CHECK(names[3].first == "out_proj.weight");
  CHECK(names[4].first == "out_proj.bias");
  to_f64_random(mha, 9);
  const Tensor x = rand_leaf({2, 3, 4}, 10), mem = rand_leaf({2, 5, 4}, 11);
  const Tensor pad = from_vector<int64_t>({0, 0, 0, 0, 1, 0, 0, 1, 1, 1}, {2, 5});
  // Composite: the same projections around sdpa_ref, scale 1/sqrt(head_dim) = 1/sqrt(3).
  auto heads = [](const Tensor& t, int64_t H) { return t.view({t.size(0), t.size(1), H, t.size(2) / H}).transpose(1, 2); };
  AttentionOptions o;
  o.key_padding_mask = pad;
  o.scale = 1.0 / std::sqrt(3.0);
  const Tensor ref_o = sdpa_ref(heads(mha.q_proj->forward(x), 2), heads(mha.k_proj->forward(mem), 2),
                                heads(mha.v_proj->forward(mem), 2), o);
  const Tensor ref = mha.out_proj->forward(ref_o.transpose(1, 2).reshape({2, 3, 2}));
  CHECK(max_abs_diff(mha.forward(x, mem, pad), ref) < 1e-12);
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return mha.forward(in[0], mem, pad); }, with_params(x, mha));
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return mha.forward(in[0], in[0], Tensor(), true); },
                    (std::vector<Tensor>{x}));
}

TEST_CASE("nn: MultiHeadAttention KV cache gives the same outputs as the full causal pass", "[nn][attention]") {
  nn::MultiHeadAttentionConfig c;
  c.d_model = 4;
  c.num_heads = 2;
  nn::MultiHeadAttention mha(c);
  to_f64_random(mha, 12);
  const Tensor x = rand_leaf({2, 5, 4}, 13).detach(), mem = rand_leaf({2, 3, 4}, 14).detach();
  NoGradGuard ng;
  const Tensor full = mha.forward(x, x, Tensor(), true);
  nn::KVCache self_cache, cross_cache{Tensor(), Tensor(), true};
  const Tensor cross_full = mha.forward(x, mem);
  // Steps of 2, 1 and 2 new positions.
  int64_t t = 0;
  for (int64_t step : {2, 1, 2}) {
    const Tensor xs = x.slice(1, t, t + step);
    const Tensor y = mha.forward(xs, xs, Tensor(), true, &self_cache);
    CHECK(self_cache.length() == t + step);
    CHECK(max_abs_diff(y, full.slice(1, t, t + step)) < 1e-12);
    // Cross-attention: memory projected once, then reused (a wrong memory would be ignored).
    const Tensor yc = mha.forward(xs, t == 0 ? mem : Tensor(), Tensor(), false, &cross_cache);
    CHECK(cross_cache.length() == 3);
    CHECK(max_abs_diff(yc, cross_full.slice(1, t, t + step)) < 1e-12);
    t += step;
  }
}

TEST_CASE("nn: encoder and decoder blocks pass gradcheck, post-LN and pre-LN", "[nn]") {
  for (bool pre_ln : {false, true}) {
    INFO("pre_ln " << pre_ln);
    nn::TransformerBlockConfig c;
    c.d_model = 4;
    c.num_heads = 2;
    c.ffn_hidden_dim = 5;
    c.ffn_activation = "gelu";
    c.dropout = 0.0;
    c.pre_layer_norm = pre_ln;
    nn::EncoderBlock enc(c);
    nn::DecoderBlock dec(c);
    CHECK(enc.named_parameters()[0].first == "self_attn.q_proj.weight");
    CHECK(dec.named_parameters()[4].first == "self_attn_layer_norm.weight");
    CHECK(dec.named_parameters()[6].first == "encoder_attn.q_proj.weight");
    to_f64_random(enc, 15);
    to_f64_random(dec, 16);
    const Tensor x = rand_leaf({2, 3, 4}, 17), mem = rand_leaf({2, 4, 4}, 18);
    const Tensor pad = from_vector<int64_t>({0, 0, 0, 1, 0, 0, 1, 1}, {2, 4});
    const Tensor tpad = from_vector<int64_t>({0, 0, 0, 0, 0, 1}, {2, 3});
    GradcheckOptions opt;
    opt.max_full = 16;  // bigger tensors along random directions: keeps the test fast
    REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return enc.forward(in[0], tpad); }, with_params(x, enc), opt);
    std::vector<Tensor> dec_in = with_params(x, dec);
    dec_in.push_back(mem);
    REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return dec.forward(in[0], in.back(), tpad, pad); }, dec_in,
                      opt);
  }
}
