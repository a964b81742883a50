// Fused scaled-dot-product attention: float64 gradchecks for every mask kind, fused == composite
// (forward and gradients, dropout included), fully masked rows, strided inputs, errors.
#include <cmath>

#include "ops/attention.h"
#include "tests/helpers.h"

using namespace knot;
using knot::test::all_close;
using knot::test::max_abs_diff;
using knot::test::rand_leaf;

namespace {

// (B, S) mask with the last `pad[b]` keys of batch row b padded, as i64.
Tensor tail_padding(int64_t B, int64_t S, const std::vector<int64_t>& pad) {
  std::vector<int64_t> m(static_cast<size_t>(B * S), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = S - pad[b]; s < S; ++s) m[b * S + s] = 1;
  return from_vector(m, {B, S});
}

struct MaskCase {
  const char* name;
  bool padding;
  bool causal;
};
const MaskCase kMaskCases[] = {{"none", false, false}, {"padding", true, false}, {"causal", false, true},
                               {"padding+causal", true, true}};

AttentionOptions options_for(const MaskCase& mc, int64_t B, int64_t S) {
  AttentionOptions o;
  if (mc.padding) o.key_padding_mask = tail_padding(B, S, {1, 2});
  o.causal = mc.causal;
  return o;
}

std::vector<Tensor> grads_of(const Tensor& out, const Tensor& w, const std::vector<Tensor>& xs) {
  for (const auto& x : xs) x.zero_grad();
  sum(mul(out, w)).backward();
  std::vector<Tensor> g;
  for (const auto& x : xs) g.push_back(x.grad());
  return g;
}

}  // namespace

TEST_CASE("attention: float64 gradcheck in q, k, v for every mask kind", "[attention]") {
  const int64_t B = 2, H = 2, T = 3, S = 4, Dk = 3, Dv = 2;  // S > T: causal uses the S − T offset
  for (const MaskCase& mc : kMaskCases) {
    SECTION(mc.name) {
      const Tensor q = rand_leaf({B, H, T, Dk}, 1), k = rand_leaf({B, H, S, Dk}, 2), v = rand_leaf({B, H, S, Dv}, 3);
      const AttentionOptions opt = options_for(mc, B, S);
      REQUIRE_GRADCHECK([&](const std::vector<Tensor>& x) { return scaled_dot_product_attention(x[0], x[1], x[2], opt); },
                        (std::vector<Tensor>{q, k, v}));
    }
  }
}

TEST_CASE("attention: gradcheck with a given scale and with dropout on the weights", "[attention]") {
  const int64_t B = 1, H = 2, T = 3, S = 3, D = 2;
  const Tensor q = rand_leaf({B, H, T, D}, 4), k = rand_leaf({B, H, S, D}, 5), v = rand_leaf({B, H, S, D}, 6);
  REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& x) {
        AttentionOptions o;
        o.scale = 0.37;
        o.causal = true;
        return scaled_dot_product_attention(x[0], x[1], x[2], o);
      },
      (std::vector<Tensor>{q, k, v}));
  REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& x) {
        Generator g(99);  // the same mask on every evaluation
        AttentionOptions o;
        o.dropout_p = 0.3;
        o.gen = &g;
        o.key_padding_mask = tail_padding(B, S, {1});
        return scaled_dot_product_attention(x[0], x[1], x[2], o);
      },
      (std::vector<Tensor>{q, k, v}));
}

TEST_CASE("attention: fused equals the composite reference, forward and gradients", "[attention]") {
  // T = 70 crosses the 64-row query block of the CPU kernel.
  const int64_t B = 2, H = 3, Dk = 5, Dv = 4;
  for (const auto& [T, S] : std::vector<std::pair<int64_t, int64_t>>{{5, 5}, {3, 7}, {70, 70}, {70, 9}}) {
    for (const MaskCase& mc : kMaskCases) {
      INFO("T=" << T << " S=" << S << " mask=" << mc.name);
      const Tensor q = rand_leaf({B, H, T, Dk}, 10), k = rand_leaf({B, H, S, Dk}, 11), v = rand_leaf({B, H, S, Dv}, 12);
      const Tensor w = rand_leaf({B, H, T, Dv}, 13).detach();
      AttentionOptions opt = options_for(mc, B, S);
      const Tensor fused = scaled_dot_product_attention(q, k, v, opt);
      const Tensor ref = sdpa_ref(q, k, v, opt);
      REQUIRE(max_abs_diff(fused, ref) < 1e-12);
      const auto gf = grads_of(fused, w, {q, k, v});
      const auto gr = grads_of(ref, w, {q, k, v});
      for (int i = 0; i < 3; ++i) {
        INFO("input " << i);
        REQUIRE(max_abs_diff(gf[i], gr[i]) < 1e-11);
      }
    }
  }
}

TEST_CASE("attention: dropout on the weights matches the composite with the same generator state", "[attention]") {
  const int64_t B = 2, H = 2, T = 6, S = 6, D = 4;
  const Tensor q = rand_leaf({B, H, T, D}, 20), k = rand_leaf({B, H, S, D}, 21), v = rand_leaf({B, H, S, D}, 22);
  const Tensor w = rand_leaf({B, H, T, D}, 23).detach();
  Generator g1(5), g2(5);
  AttentionOptions o1, o2;
  o1.dropout_p = o2.dropout_p = 0.4;
  o1.causal = o2.causal = true;
  o1.gen = &g1;
  o2.gen = &g2;
  const Tensor fused = scaled_dot_product_attention(q, k, v, o1);
  const Tensor ref = sdpa_ref(q, k, v, o2);
  REQUIRE(g1.draws() == 1);
  REQUIRE(g2.draws() == 1);
  REQUIRE(max_abs_diff(fused, ref) < 1e-12);
  const auto gf = grads_of(fused, w, {q, k, v});
  const auto gr = grads_of(ref, w, {q, k, v});
  for (int i = 0; i < 3; ++i) REQUIRE(max_abs_diff(gf[i], gr[i]) < 1e-11);
  // Dropout really dropped something: without it the output differs.
  AttentionOptions o3;
  o3.causal = true;
  REQUIRE(max_abs_diff(scaled_dot_product_attention(q, k, v, o3), fused) > 1e-3);
}

TEST_CASE("attention: fully masked rows give output 0 and gradient 0, never NaN", "[attention]") {
  const int64_t B = 2, H = 2, T = 4, S = 3, D = 3;
  const Tensor q = rand_leaf({B, H, T, D}, 30), k = rand_leaf({B, H, S, D}, 31), v = rand_leaf({B, H, S, D}, 32);
  SECTION("every key of a batch row padded") {
    AttentionOptions o;
    o.key_padding_mask = tail_padding(B, S, {0, 3});  // batch row 1: all keys padded
    const Tensor out = scaled_dot_product_attention(q, k, v, o);
    for (double x : out.to_vector<double>()) REQUIRE(std::isfinite(x));
    for (double x : out.select(0, 1).to_vector<double>()) REQUIRE(x == 0.0);
    REQUIRE(max_abs_diff(out, sdpa_ref(q, k, v, o)) < 1e-12);
    sum(out).backward();
    for (const Tensor& t : {q, k, v}) {
      for (double x : t.grad().to_vector<double>()) REQUIRE(std::isfinite(x));
      for (double x : t.grad().select(0, 1).to_vector<double>()) REQUIRE(x == 0.0);
    }
    REQUIRE(max_abs_diff(q.grad().select(0, 0), zeros({H, T, D}, DType::f64)) > 0);  // row 0 still learns
  }
  SECTION("causal with more queries than keys: the first T − S queries see nothing") {
    AttentionOptions o;
    o.causal = true;
    const Tensor out = scaled_dot_product_attention(q, k, v, o);
    const Tensor first = out.slice(2, 0, T - S);
    for (double x : first.to_vector<double>()) REQUIRE(x == 0.0);
    REQUIRE(max_abs_diff(out, sdpa_ref(q, k, v, o)) < 1e-12);
    REQUIRE_GRADCHECK([&](const std::vector<Tensor>& x) { return scaled_dot_product_attention(x[0], x[1], x[2], o); },
                      (std::vector<Tensor>{q, k, v}));
  }
}

TEST_CASE("attention: strided (transposed) inputs and f32 agree with the contiguous f64 result", "[attention]") {
  const int64_t B = 2, T = 5, H = 2, D = 4;
  Generator g(40);
  const Tensor x = rand({B, T, H, D}, DType::f64, &g);  // the (B, T, H, D) layout attention modules produce
  const Tensor q = x.transpose(1, 2);                    // (B, H, T, D) view, not contiguous
  REQUIRE_FALSE(q.is_contiguous());
  AttentionOptions o;
  o.causal = true;
  o.key_padding_mask = tail_padding(B, T, {0, 2});
  const Tensor a = scaled_dot_product_attention(q, q, q, o);
  const Tensor b = scaled_dot_product_attention(q.contiguous(), q.contiguous(), q.contiguous(), o);
  REQUIRE(max_abs_diff(a, b) < 1e-14);
  const Tensor qf = q.to(DType::f32);
  const Tensor c = scaled_dot_product_attention(qf, qf, qf, o);
  REQUIRE(c.dtype() == DType::f32);
  REQUIRE(all_close(c.to(DType::f64), a, 1e-5, 1e-5));
}

TEST_CASE("attention: bad shapes and options are errors naming the op", "[attention]") {
  const Tensor q = zeros({1, 2, 3, 4}), k = zeros({1, 2, 5, 4}), v = zeros({1, 2, 5, 6});
  REQUIRE_NOTHROW(scaled_dot_product_attention(q, k, v));
  REQUIRE(scaled_dot_product_attention(q, k, v).shape() == Shape{1, 2, 3, 6});
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, zeros({1, 2, 5, 3}), v),
                      Catch::Contains("scaled_dot_product_attention") && Catch::Contains("head widths"));
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, k, zeros({1, 2, 4, 6})), Catch::Contains("key counts"));
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(zeros({2, 3, 4}), k, v), Catch::Contains("(B, H, T, Dk)"));
  AttentionOptions o;
  o.key_padding_mask = zeros({1, 4});
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, k, v, o), Catch::Contains("key_padding_mask"));
  AttentionOptions d;
  d.dropout_p = 1.0;
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, k, v, d), Catch::Contains("dropout_p"));
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, k.to(DType::f64), v), Catch::Contains("dtype"));
}

TEST_CASE("attention: f32 (vectorised softmax rows) agrees with f64, padded keys get exactly zero gradient",
          "[attention]") {
  // Rows longer than a vector, with a tail, so the f32 softmax's Eigen exp path and its explicit
  // zeroing of padded keys both run; forward and gradients against the f64 kernel.
  const int64_t B = 2, H = 2, T = 21, S = 37, D = 8;
  const Tensor q = rand_leaf({B, H, T, D}, 50, -2, 2), k = rand_leaf({B, H, S, D}, 51, -2, 2),
               v = rand_leaf({B, H, S, D}, 52);
  const Tensor w = rand_leaf({B, H, T, D}, 53).detach();
  for (const bool causal : {false, true}) {
    AttentionOptions o;
    o.key_padding_mask = tail_padding(B, S, {0, 5});
    o.causal = causal;
    const Tensor out64 = scaled_dot_product_attention(q, k, v, o);
    const auto g64 = grads_of(out64, w, {q, k, v});
    Tensor qf = q.detach().to(DType::f32), kf = k.detach().to(DType::f32), vf = v.detach().to(DType::f32);
    for (Tensor* t : {&qf, &kf, &vf}) t->requires_grad_();
    const Tensor out32 = scaled_dot_product_attention(qf, kf, vf, o);
    REQUIRE(out32.dtype() == DType::f32);
    REQUIRE(all_close(out32.to(DType::f64), out64, 1e-5, 1e-5));
    const auto g32 = grads_of(out32, w.to(DType::f32), {qf, kf, vf});
    for (int i = 0; i < 3; ++i) REQUIRE(all_close(g32[i].to(DType::f64), g64[i], 1e-4, 1e-4));
    // Batch row 1's last 5 keys are padded: their probabilities are exactly 0, so dK and dV are too.
    for (int i = 1; i < 3; ++i)
      for (double x : g32[i].select(0, 1).slice(2, S - 5, S).to_vector<double>()) REQUIRE(x == 0.0);
  }
}
