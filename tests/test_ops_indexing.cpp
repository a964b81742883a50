// Per-op tests for cat, stack, index_select, where, masked_fill, dropout and embedding: forward
// against naive host references, float64 finite-difference gradients, negative dims, strided
// inputs, broadcasting, scatter-add of repeated indices, padding rows, dropout masks (seeded,
// thread-count independent, kept fraction, scaling) and errors that name the op.
#include "kernels/cpu/gcc12_avx512.h"  // first: AVX-512 intrinsics (philox16.h)
#include <algorithm>
#include <cmath>

#include "kernels/cpu/loops.h"
#include "kernels/cpu/philox16.h"
#include "kernels/dropout.h"
#include "kernels/indexing.h"
#include "tests/helpers.h"

using namespace knot;
using knot::test::all_close;
using knot::test::rand_leaf;

namespace {

std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

// Restores the thread count when a test that changes it ends (pass or fail).
struct ThreadCountGuard {
  int saved = num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

Tensor ids_i64(const std::vector<int64_t>& v, const Shape& s) { return from_vector(v, s); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// cat / stack

TEST_CASE("cat: forward matches a naive reference along a negative dim", "[ops]") {
  const Tensor a = rand_leaf({2, 1, 3}, 1), b = rand_leaf({2, 4, 3}, 2), c = rand_leaf({2, 2, 3}, 3);
  const Tensor out = cat({a, b, c}, -2);
  REQUIRE(out.shape() == Shape{2, 7, 3});
  const auto va = vals(a), vb = vals(b), vc = vals(c), vo = vals(out);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 7; ++j)
      for (int64_t k = 0; k < 3; ++k) {
        double want;
        if (j < 1) want = va[(i * 1 + j) * 3 + k];
        else if (j < 5) want = vb[(i * 4 + (j - 1)) * 3 + k];
        else want = vc[(i * 2 + (j - 5)) * 3 + k];
        REQUIRE(vo[(i * 7 + j) * 3 + k] == want);
      }
}

TEST_CASE("cat: strided inputs and gradients of every input", "[ops]") {
  // a is a transposed view, b a strided slice: the copies must honour their strides.
  const Tensor a0 = rand_leaf({3, 2}, 4), b0 = rand_leaf({2, 6}, 5);
  const Tensor a = a0.t();                 // (2, 3), non-contiguous
  const Tensor b = b0.slice(1, 0, 6, 2);   // (2, 3), stride 2
  REQUIRE_FALSE(a.is_contiguous());
  REQUIRE_FALSE(b.is_contiguous());
  const Tensor out = cat({a, b}, 0);
  REQUIRE(out.shape() == Shape{4, 3});
  REQUIRE(all_close(out.slice(0, 0, 2), a.contiguous(), 0, 0));
  REQUIRE(all_close(out.slice(0, 2, 4), b.contiguous(), 0, 0));

  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return cat({in[0].t(), in[1], in[2]}, 1); },
                    std::vector<Tensor>({rand_leaf({3, 2}, 6), rand_leaf({2, 4}, 7), rand_leaf({2, 1}, 8)}));
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, -1); },
                    std::vector<Tensor>({rand_leaf({2, 2, 3}, 9), rand_leaf({2, 2, 2}, 10)}));
}

TEST_CASE("cat: an input that needs no gradient gets none, the others get their slice", "[ops]") {
  Tensor a = rand_leaf({2, 2}, 11);
  Tensor b = ones({2, 3}, DType::f64);  // constant
  Tensor w = from_values({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {2, 5}, DType::f64);
  sum(mul(cat({a, b}, 1), w)).backward();
  REQUIRE(vals(a.grad()) == std::vector<double>{1, 2, 6, 7});
  REQUIRE_FALSE(b.grad().defined());
}

TEST_CASE("cat: bad inputs name the op and the shapes", "[ops]") {
  const Tensor a = zeros({2, 3}), b = zeros({3, 3}), c = zeros({2, 3}, DType::f64);
  REQUIRE_THROWS_WITH(cat({a, b}, 1), Catch::Contains("cat") && Catch::Contains("(3, 3)") &&
                                          Catch::Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(cat({a, c}, 0), Catch::Contains("cat") && Catch::Contains("f64"));
  REQUIRE_THROWS_WITH(cat({}, 0), Catch::Contains("cat"));
  REQUIRE_THROWS_WITH(cat({a, a}, 2), Catch::Contains("cat"));
  REQUIRE_THROWS_WITH(cat({a, zeros({2, 3, 1})}, 0), Catch::Contains("cat"));
}

TEST_CASE("stack: forward, negative dim and gradients", "[ops]") {
  const Tensor a = rand_leaf({2, 3}, 12), b = rand_leaf({2, 3}, 13);
  const Tensor out = stack({a, b}, -1);  // (2, 3, 2): out[i, j, k] = xs[k][i, j]
  REQUIRE(out.shape() == Shape{2, 3, 2});
  const auto va = vals(a), vb = vals(b), vo = vals(out);
  for (int64_t i = 0; i < 6; ++i) {
    REQUIRE(vo[i * 2 + 0] == va[i]);
    REQUIRE(vo[i * 2 + 1] == vb[i]);
  }
  REQUIRE(stack({a, b}, 0).shape() == Shape{2, 2, 3});
  REQUIRE(all_close(stack({a, b}, 0).select(0, 1), b, 0, 0));

  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return stack({in[0], in[1].t(), in[2]}, 1); },
                    std::vector<Tensor>({rand_leaf({2, 3}, 14), rand_leaf({3, 2}, 15), rand_leaf({2, 3}, 16)}));
  REQUIRE_THROWS_WITH(stack({a, zeros({3, 2}, DType::f64)}, 0), Catch::Contains("stack") && Catch::Contains("(3, 2)"));
}

// ---------------------------------------------------------------------------------------------
// index_select

TEST_CASE("index_select: forward matches a naive gather for i32 and i64, any dim", "[ops]") {
  const Tensor x = rand_leaf({3, 4, 2}, 20);
  const auto vx = vals(x);
  const std::vector<int64_t> idx = {3, 0, 3, 1, 3};
  for (DType it : {DType::i64, DType::i32}) {
    const Tensor index = from_vector(idx, {5}).to(it);
    for (int64_t dim : {1, -2}) {
      const Tensor out = index_select(x, dim, index);
      REQUIRE(out.shape() == Shape{3, 5, 2});
      const auto vo = vals(out);
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 5; ++j)
          for (int64_t k = 0; k < 2; ++k) REQUIRE(vo[(i * 5 + j) * 2 + k] == vx[(i * 4 + idx[j]) * 2 + k]);
    }
  }
  // last dim, on a transposed (non-contiguous) input
  const Tensor xt = x.transpose(0, 2);  // (2, 4, 3)
  const Tensor out = index_select(xt, -1, ids_i64({2, 2, 0}, {3}));
  const auto vo = vals(out);
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t src = std::vector<int64_t>{2, 2, 0}[c];
        REQUIRE(vo[(a * 4 + b) * 3 + c] == vx[(src * 4 + b) * 2 + a]);
      }
}

TEST_CASE("index_select: repeated indices sum their gradients", "[ops]") {
  Tensor x = rand_leaf({4, 3}, 21);
  sum(index_select(x, 0, ids_i64({2, 0, 2, 2}, {4}))).backward();
  const auto g = vals(x.grad());
  for (int64_t j = 0; j < 3; ++j) {
    REQUIRE(g[0 * 3 + j] == 1.0);
    REQUIRE(g[1 * 3 + j] == 0.0);
    REQUIRE(g[2 * 3 + j] == 3.0);
    REQUIRE(g[3 * 3 + j] == 0.0);
  }
}

TEST_CASE("index_select: gradcheck on every dim, strided input, repeated indices", "[ops]") {
  const Tensor index = from_vector(std::vector<int32_t>{1, 1, 0, 2, 1}, {5});
  for (int64_t dim : {0, 1, -1}) {
    REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return index_select(in[0], dim, index); },
                      std::vector<Tensor>({rand_leaf({3, 3, 3}, 22)}));
  }
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return index_select(in[0].permute({2, 0, 1}), 1, index); },
                    std::vector<Tensor>({rand_leaf({3, 4, 2}, 23)}));
}

TEST_CASE("index_select: backward is bitwise identical for any thread count", "[ops]") {
  ThreadCountGuard guard;
  // Many repeats of few rows in f32, so a different summation order would show in the bits.
  Generator gen(24);
  const Tensor index = randint(0, 7, {60000}, DType::i64, &gen);
  const Tensor g = randn({2, 60000, 3}, DType::f32, &gen);
  std::vector<std::vector<float>> results;
  for (int nt : {1, 2, 3}) {
    set_num_threads(nt);
    Tensor x = zeros({2, 7, 3});
    x.requires_grad_();
    index_select(x, 1, index).backward(g);
    results.push_back(x.grad().to_vector<float>());
  }
  REQUIRE(results[0] == results[1]);
  REQUIRE(results[0] == results[2]);
  // and it is the scatter-add: compare with a double-precision host sum
  const auto vi = index.to_vector<int64_t>();
  const auto vg = vals(g);
  std::vector<double> want(2 * 7 * 3, 0.0);
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t i = 0; i < 60000; ++i)
      for (int64_t c = 0; c < 3; ++c) want[(o * 7 + vi[i]) * 3 + c] += vg[(o * 60000 + i) * 3 + c];
  for (size_t k = 0; k < want.size(); ++k) REQUIRE(results[0][k] == Approx(want[k]).margin(2e-2));
}

TEST_CASE("index_select: bad index gives an error naming the op, index and size", "[ops]") {
  const Tensor x = zeros({4, 3});
  REQUIRE_THROWS_WITH(index_select(x, 0, ids_i64({0, 4}, {2})),
                      Catch::Contains("index_select") && Catch::Contains("index 4") && Catch::Contains("size 4"));
  REQUIRE_THROWS_WITH(index_select(x, 1, ids_i64({-1}, {1})),
                      Catch::Contains("index_select") && Catch::Contains("index -1") && Catch::Contains("size 3"));
  REQUIRE_THROWS_WITH(index_select(x, 0, ids_i64({0, 1}, {1, 2})),
                      Catch::Contains("index_select") && Catch::Contains("1-D"));
  REQUIRE_THROWS_WITH(index_select(x, 0, from_values({0, 1}, {2})),
                      Catch::Contains("index_select") && Catch::Contains("f32"));
  REQUIRE_THROWS_WITH(index_select(x, 2, ids_i64({0}, {1})), Catch::Contains("index_select"));
}

// ---------------------------------------------------------------------------------------------
// where / masked_fill

TEST_CASE("where: broadcasts cond, a and b and matches a naive reference", "[ops]") {
  const Tensor a = rand_leaf({1, 4}, 30), b = rand_leaf({4}, 31);
  const std::vector<double> cv = {0, 2, -1};  // any non-zero is true
  for (DType ct : {DType::f32, DType::f64, DType::i32, DType::i64}) {
    const Tensor cond = from_values({0, 2, -1}, {3, 1}, ct);
    const Tensor out = where(cond, a, b);
    REQUIRE(out.shape() == Shape{3, 4});
    const auto va = vals(a), vb = vals(b), vo = vals(out);
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) REQUIRE(vo[i * 4 + j] == (cv[i] != 0 ? va[j] : vb[j]));
  }
  // elementwise condition on strided operands
  const Tensor x = rand_leaf({3, 2}, 32), y = rand_leaf({2, 3}, 33);
  const Tensor c = gt(x.t(), y);  // (2, 3)
  const Tensor out = where(c, x.t(), y);
  const auto vxt = vals(x.t().contiguous()), vy = vals(y), vo = vals(out);
  for (int64_t k = 0; k < 6; ++k) REQUIRE(vo[k] == std::max(vxt[k], vy[k]));
}

TEST_CASE("where: gradients route to the chosen side and sum over broadcast dims", "[ops]") {
  // Three-way broadcast: cond (3, 1, 1), a (1, 2, 4), b (4), a strided a.
  const Tensor cond = from_values({1, 0, 1}, {3, 1, 1}, DType::i64);
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return where(cond, in[0].transpose(1, 2), in[1]); },
                    std::vector<Tensor>({rand_leaf({1, 4, 2}, 34), rand_leaf({4}, 35)}));
  const Tensor mixed = from_values({1, 0, 0, 1, 1, 0}, {2, 3}, DType::f32);
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return where(mixed, in[0], in[1]); },
                    std::vector<Tensor>({rand_leaf({2, 3}, 36), rand_leaf({2, 1}, 37)}));

  // exact counts: a gets the gradient where cond is true (summed over broadcast), b elsewhere
  Tensor a = rand_leaf({1, 4}, 38), b = rand_leaf({3, 4}, 39);
  sum(where(from_values({1, 0, 1}, {3, 1}), a, b)).backward();
  REQUIRE(vals(a.grad()) == std::vector<double>{2, 2, 2, 2});
  REQUIRE(vals(b.grad()) == std::vector<double>{0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0});
}

TEST_CASE("where: bad inputs name the op", "[ops]") {
  const Tensor c = ones({2, 3}), a = zeros({2, 3}), b64 = zeros({2, 3}, DType::f64);
  REQUIRE_THROWS_WITH(where(c, a, b64), Catch::Contains("where") && Catch::Contains("f64"));
  REQUIRE_THROWS_WITH(where(c, a, zeros({4})), Catch::Contains("where") && Catch::Contains("(4,)"));
  REQUIRE_THROWS_WITH(where(ones({5}), a, a), Catch::Contains("where") && Catch::Contains("(5,)"));
}

TEST_CASE("masked_fill: forward with a broadcast mask, strided input", "[ops]") {
  const Tensor x0 = rand_leaf({4, 3}, 40);
  const Tensor x = x0.t();  // (3, 4), non-contiguous
  const Tensor mask = from_values({1, 0, 0, 1}, {1, 4}, DType::i32);
  const Tensor out = masked_fill(x, mask, -7.5);
  REQUIRE(out.shape() == Shape{3, 4});
  const auto vx = vals(x.contiguous()), vo = vals(out);
  const std::vector<int> m = {1, 0, 0, 1};
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) REQUIRE(vo[i * 4 + j] == (m[j] ? -7.5 : vx[i * 4 + j]));
  // a full-shape float mask, the attention-mask use: -inf where masked
  const Tensor fmask = from_values({0, 1, 0, 0, 0, 1}, {2, 3});
  const auto vf = vals(masked_fill(zeros({2, 3}), fmask, -INFINITY));
  REQUIRE(std::isinf(vf[1]));
  REQUIRE(std::isinf(vf[5]));
  REQUIRE(vf[0] == 0.0);
}

TEST_CASE("masked_fill: gradient is zero where filled and passes through elsewhere", "[ops]") {
  Tensor x = rand_leaf({2, 3}, 41);
  const Tensor mask = from_values({0, 1, 1}, {3}, DType::i64);
  const Tensor w = from_values({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  sum(mul(masked_fill(x, mask, 3.0), w)).backward();
  REQUIRE(vals(x.grad()) == std::vector<double>{1, 0, 0, 4, 0, 0});

  const Tensor m2 = from_values({1, 0, 0, 1, 0, 1}, {2, 1, 3});
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return masked_fill(in[0].permute({1, 0, 2}), m2, 0.25); },
                    std::vector<Tensor>({rand_leaf({4, 2, 3}, 42)}));
}

TEST_CASE("masked_fill: a mask that does not broadcast to x is an error naming the op", "[ops]") {
  REQUIRE_THROWS_WITH(masked_fill(zeros({4}), ones({3, 4}), 0.0),
                      Catch::Contains("masked_fill") && Catch::Contains("(3, 4)") && Catch::Contains("(4,)"));
  REQUIRE_THROWS_WITH(masked_fill(zeros({2, 4}), ones({3}), 0.0), Catch::Contains("masked_fill"));
}

// ---------------------------------------------------------------------------------------------
// dropout

TEST_CASE("dropout: eval mode and p == 0 are the identity and consume no draw", "[ops]") {
  const Tensor x = rand_leaf({3, 5}, 50);
  Generator gen(1);
  REQUIRE(dropout(x, 0.5, false, &gen).is_same(x));
  REQUIRE(dropout(x, 0.0, true, &gen).is_same(x));
  REQUIRE(gen.draws() == 0);
  dropout(x, 0.5, true, &gen);
  REQUIRE(gen.draws() == 1);
}

TEST_CASE("dropout: the mask is the Philox keep-decision and kept values are scaled by 1/(1-p)", "[ops]") {
  const double p = 0.3;
  Generator gen(77);
  gen.next_draw();  // start at a non-zero draw so the draw counter really matters
  const Tensor x = rand({6, 50}, DType::f64, nullptr, 0.5, 1.5);  // no zeros in x
  const uint64_t draw = gen.draws();
  const Tensor y = dropout(x, p, true, &gen);
  const auto vx = vals(x), vy = vals(y);
  int64_t kept = 0;
  for (size_t i = 0; i < vx.size(); ++i) {
    const bool keep = kernels::dropout_keep(77, draw, i, static_cast<float>(p));
    REQUIRE(vy[i] == (keep ? vx[i] * (1.0 / (1.0 - p)) : 0.0));
    kept += keep;
  }
  REQUIRE(kept > 0);
  REQUIRE(kept < static_cast<int64_t>(vx.size()));
}

TEST_CASE("dropout: the same seed gives the same mask, the next draw a different one", "[ops]") {
  const Tensor x = ones({1000});
  Generator g1(123), g2(123);
  const auto a = dropout(x, 0.5, true, &g1).to_vector<float>();
  const auto b = dropout(x, 0.5, true, &g2).to_vector<float>();
  REQUIRE(a == b);
  const auto c = dropout(x, 0.5, true, &g1).to_vector<float>();
  REQUIRE(a != c);
  Generator g3(124);
  REQUIRE(a != dropout(x, 0.5, true, &g3).to_vector<float>());

  // the default generator follows manual_seed
  manual_seed(9);
  const auto d1 = dropout(x, 0.5, true).to_vector<float>();
  manual_seed(9);
  const auto d2 = dropout(x, 0.5, true).to_vector<float>();
  REQUIRE(d1 == d2);
  REQUIRE(default_generator().draws() == 1);
}

TEST_CASE("dropout: mask is independent of the thread count, kept fraction is about 1-p", "[ops]") {
  ThreadCountGuard guard;
  const int64_t n = 400000;  // above the parallel grain, so threads really split it
  const Tensor x = ones({n});
  std::vector<std::vector<float>> masks;
  for (int nt : {1, 2, 4}) {
    set_num_threads(nt);
    Generator gen(2024);
    masks.push_back(dropout(x, 0.25, true, &gen).to_vector<float>());
  }
  REQUIRE(masks[0] == masks[1]);
  REQUIRE(masks[0] == masks[2]);
  int64_t kept = 0;
  for (float v : masks[0]) {
    REQUIRE((v == 0.0f || v == static_cast<float>(1.0 / 0.75)));
    kept += v != 0.0f;
  }
  // std of the kept fraction is sqrt(p(1-p)/n) ≈ 7e-4; 5e-3 is ~7 sigma
  REQUIRE(static_cast<double>(kept) / n == Approx(0.75).margin(5e-3));

  Generator gen(5);
  const Tensor y = dropout(ones({n}, DType::f64), 0.6, true, &gen);
  const auto vy = vals(y);
  const double frac = std::count_if(vy.begin(), vy.end(), [](double v) { return v != 0.0; }) / double(n);
  REQUIRE(frac == Approx(0.4).margin(5e-3));
  REQUIRE(sum(y).item() / n == Approx(1.0).margin(2e-2));  // E[y] = x
}

TEST_CASE("dropout: gradient is mask/(1-p), and gradcheck with a fixed seed", "[ops]") {
  const double p = 0.4;
  Tensor x = rand_leaf({4, 25}, 51);
  Generator gen(8);
  const Tensor y = dropout(x, p, true, &gen);
  sum(y).backward();
  const auto vy = vals(y), gx = vals(x.grad());
  for (size_t i = 0; i < vy.size(); ++i) REQUIRE(gx[i] == (vy[i] != 0.0 ? 1.0 / (1.0 - p) : 0.0));

  // A fresh generator with the same seed per call gives the same mask every evaluation.
  REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        Generator g(99);
        return dropout(in[0].t(), 0.3, true, &g);
      },
      std::vector<Tensor>({rand_leaf({5, 4}, 52)}));
}

TEST_CASE("dropout: a strided input gets the mask of its logical element order", "[ops]") {
  const Tensor x = rand_leaf({7, 9}, 53);
  Generator g1(31), g2(31);
  const Tensor a = dropout(x.t(), 0.5, true, &g1);
  const Tensor b = dropout(x.t().contiguous(), 0.5, true, &g2);
  REQUIRE(all_close(a, b, 0, 0));
}

TEST_CASE("dropout: bad p or dtype is an error naming the op", "[ops]") {
  const Tensor x = ones({3});
  REQUIRE_THROWS_WITH(dropout(x, 1.0, true), Catch::Contains("dropout") && Catch::Contains("[0, 1)"));
  REQUIRE_THROWS_WITH(dropout(x, -0.1, true), Catch::Contains("dropout") && Catch::Contains("-0.1"));
  REQUIRE_THROWS_WITH(dropout(x, NAN, false), Catch::Contains("dropout"));
  REQUIRE_THROWS_WITH(dropout(ones({3}, DType::i64), 0.5, true), Catch::Contains("dropout") && Catch::Contains("i64"));
}

// ---------------------------------------------------------------------------------------------
// embedding

TEST_CASE("embedding: forward gathers rows for any ids shape, i32 and i64", "[ops]") {
  const Tensor w = rand_leaf({5, 4}, 60);
  const auto vw = vals(w);
  const std::vector<int64_t> ids = {4, 0, 2, 2, 1, 4};
  for (DType it : {DType::i64, DType::i32}) {
    const Tensor out = embedding(from_vector(ids, {2, 3}).to(it), w);
    REQUIRE(out.shape() == Shape{2, 3, 4});
    const auto vo = vals(out);
    for (size_t t = 0; t < ids.size(); ++t)
      for (int64_t d = 0; d < 4; ++d) REQUIRE(vo[t * 4 + d] == vw[ids[t] * 4 + d]);
  }
  // strided weight and strided ids
  const Tensor wt = rand_leaf({4, 5}, 61).t();  // (5, 4) view
  const Tensor id2 = from_vector(ids, {3, 2}).t();  // (2, 3) view: logical ids 4 2 1 / 0 2 4
  const Tensor out = embedding(id2, wt);
  REQUIRE(all_close(out, embedding(id2.contiguous(), wt.contiguous()), 0, 0));
  const auto vwt = vals(wt.contiguous()), vo = vals(out);
  const std::vector<int64_t> logical = {4, 2, 1, 0, 2, 4};
  for (size_t t = 0; t < 6; ++t)
    for (int64_t d = 0; d < 4; ++d) REQUIRE(vo[t * 4 + d] == vwt[logical[t] * 4 + d]);
  // 0-dim ids give one row
  REQUIRE(embedding(scalar_tensor(3, DType::i64), w).shape() == Shape{4});
}

TEST_CASE("embedding: repeated ids sum their gradients, padding_idx gets none", "[ops]") {
  Tensor w = rand_leaf({5, 2}, 62);
  const Tensor ids = ids_i64({1, 3, 1, 0, 1, 3}, {2, 3});
  const Tensor g = from_values({1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6}, {2, 3, 2}, DType::f64);
  embedding(ids, w).backward(g);
  // row 1 ← tokens 0, 2, 4 (1 + 3 + 5); row 3 ← tokens 1, 5 (2 + 6); row 0 ← token 3
  REQUIRE(vals(w.grad()) == std::vector<double>{4, 4, 9, 9, 0, 0, 8, 8, 0, 0});

  w.zero_grad();
  const Tensor out = embedding(ids, w, /*padding_idx=*/1);
  REQUIRE(all_close(out.select(0, 0).select(0, 0), w.select(0, 1), 0, 0));  // still looked up
  out.backward(g);
  REQUIRE(vals(w.grad()) == std::vector<double>{4, 4, 0, 0, 0, 0, 8, 8, 0, 0});
}

TEST_CASE("embedding: gradcheck of the weight, strided weight", "[ops]") {
  const Tensor ids = ids_i64({2, 0, 2, 3, 3, 3, 1}, {7});
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return embedding(ids, in[0]); },
                    std::vector<Tensor>({rand_leaf({4, 3}, 63)}));
  const Tensor ids2 = from_vector(std::vector<int32_t>{1, 0, 1, 4, 4, 2}, {3, 2});
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return embedding(ids2, in[0].t()); },
                    std::vector<Tensor>({rand_leaf({3, 5}, 64)}));
  // with padding, every row but the padding row still has the exact gradient
  REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return embedding(ids2, cat({in[0].slice(0, 0, 2), ones({1, 3}, DType::f64), in[0].slice(0, 2, 4)}, 0), 2);
      },
      std::vector<Tensor>({rand_leaf({4, 3}, 65)}));
}

TEST_CASE("embedding: backward is bitwise identical for any thread count", "[ops]") {
  ThreadCountGuard guard;
  Generator gen(66);
  const Tensor ids = randint(0, 11, {4000, 5}, DType::i32, &gen);
  const Tensor g = randn({4000, 5, 16}, DType::f32, &gen);
  std::vector<std::vector<float>> results;
  for (int nt : {1, 2, 4}) {
    set_num_threads(nt);
    Tensor w = zeros({11, 16});
    w.requires_grad_();
    embedding(ids, w, 3).backward(g);
    results.push_back(w.grad().to_vector<float>());
  }
  REQUIRE(results[0] == results[1]);
  REQUIRE(results[0] == results[2]);
  for (int64_t d = 0; d < 16; ++d) REQUIRE(results[0][3 * 16 + d] == 0.0f);
  // versus a double-precision host scatter-add
  const auto vi = ids.to_vector<int64_t>();
  const auto vg = vals(g);
  std::vector<double> want(11 * 16, 0.0);
  for (size_t t = 0; t < vi.size(); ++t)
    if (vi[t] != 3)
      for (int64_t d = 0; d < 16; ++d) want[vi[t] * 16 + d] += vg[t * 16 + d];
  for (size_t k = 0; k < want.size(); ++k) REQUIRE(results[0][k] == Approx(want[k]).margin(1e-2));
}

TEST_CASE("embedding: bad ids, weight or padding_idx give errors naming the op", "[ops]") {
  const Tensor w = zeros({5, 3});
  REQUIRE_THROWS_WITH(embedding(ids_i64({0, 5}, {2}), w),
                      Catch::Contains("embedding") && Catch::Contains("id 5") && Catch::Contains("V=5"));
  REQUIRE_THROWS_WITH(embedding(from_vector(std::vector<int32_t>{-2}, {1}), w),
                      Catch::Contains("embedding") && Catch::Contains("id -2") && Catch::Contains("V=5"));
  REQUIRE_THROWS_WITH(embedding(from_values({0, 1}, {2}), w), Catch::Contains("embedding") && Catch::Contains("f32"));
  REQUIRE_THROWS_WITH(embedding(ids_i64({0}, {1}), zeros({5})), Catch::Contains("embedding") && Catch::Contains("(5,)"));
  REQUIRE_THROWS_WITH(embedding(ids_i64({0}, {1}), w, 5),
                      Catch::Contains("embedding") && Catch::Contains("padding_idx 5"));
}

TEST_CASE("dropout: the vectorised mask equals the per-element Philox decision at any split", "[ops]") {
  // 100003 elements: several 64-element blocks, ragged chunk starts for 2 and 3 threads, a tail.
  const int threads = num_threads();
  const double p = 0.25;
  const Tensor x = rand({100003}, DType::f32, nullptr, 0.5, 1.5);
  const uint64_t seed = 0x123456789abcull;
  std::vector<float> first;
  for (int t : {1, 2, 3}) {
    set_num_threads(t);
    Generator gen(seed);
    for (int k = 0; k < 5; ++k) gen.next_draw();
    const uint64_t draw = gen.draws();
    const auto vy = dropout(x, p, true, &gen).to_vector<float>();
    if (first.empty()) {
      const auto vx = x.to_vector<float>();
      for (size_t i = 0; i < vx.size(); ++i) {
        const bool keep = kernels::dropout_keep(seed, draw, i, static_cast<float>(p));
        if (vy[i] != (keep ? vx[i] * static_cast<float>(1.0 / (1.0 - p)) : 0.0f)) FAIL("element " << i);
      }
      first = vy;
    }
    INFO("threads " << t);
    REQUIRE(vy == first);
  }
  set_num_threads(threads);
#if defined(__AVX512F__)
  // The 16-wide Philox itself, including a counter whose low word wraps inside the block (the carry
  // into the high word), which no test-sized tensor reaches.
  for (uint64_t g0 : {uint64_t{0}, uint64_t{12345}, uint64_t{0xfffffff8ull}, uint64_t{0x7fffffffffffull}}) {
    alignas(64) uint32_t w[4][16];
    kernels::cpu::philox16(seed, 0x1234567890ull, g0, w);
    for (int j = 0; j < 16; ++j) {
      const Philox4 r = philox_element(seed, 0x1234567890ull, g0 + j);
      for (int k = 0; k < 4; ++k) REQUIRE(w[k][j] == r.v[k]);
    }
  }
#endif
}

TEST_CASE("relu_dropout: equals dropout(relu(x)) in values, gradients and draws, and passes gradcheck", "[ops]") {
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    Tensor x1 = rand({7, 33}, dt, nullptr, -1.0, 1.0).requires_grad_();
    Tensor x2 = x1.detach().clone().requires_grad_();
    Generator g1(9), g2(9);
    const Tensor y1 = relu_dropout(x1, 0.3, true, &g1), y2 = dropout(relu(x2), 0.3, true, &g2);
    REQUIRE(test::max_abs_diff(y1, y2) == 0.0);
    REQUIRE(g1.draws() == g2.draws());
    const Tensor w = rand({7, 33}, dt, nullptr, -1.0, 1.0);
    sum(mul(y1, w)).backward();
    sum(mul(y2, w)).backward();
    REQUIRE(test::max_abs_diff(x1.grad(), x2.grad()) == 0.0);
    // eval / p = 0: plain relu, no draw
    Generator g3(9);
    REQUIRE(test::max_abs_diff(relu_dropout(x1, 0.3, false, &g3), relu(x1)) == 0.0);
    REQUIRE(test::max_abs_diff(relu_dropout(x1, 0.0, true, &g3), relu(x1)) == 0.0);
    REQUIRE(g3.draws() == 0);
  }
  // f64 finite differences (a fresh generator per evaluation: the same mask every time; inputs kept
  // away from relu's kink)
  std::vector<double> xv = rand({5, 12}, DType::f64, nullptr, 0.05, 1.0).to_vector<double>();
  for (size_t i = 0; i < xv.size(); i += 2) xv[i] = -xv[i];
  Tensor x = from_vector<double>(xv, {5, 12}).requires_grad_();
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) {
    Generator g(4);
    return relu_dropout(in[0], 0.4, true, &g);
  }, {x});
  REQUIRE_THROWS_WITH(relu_dropout(x, 1.0, true), Catch::Contains("relu_dropout") && Catch::Contains("[0, 1)"));
}

TEST_CASE("indexing: index_select's plan is the one both backends use", "[ops]") {
  // x (2, 5, 3) selected along dim 1 by 4 indices: (outer 2, n 5, inner 3) -> (2, 4, 3).
  const kernels::SelectPlan p = kernels::select_plan({2, 5, 3}, 1, 4);
  CHECK(p.outer == 2);
  CHECK(p.n == 5);
  CHECK(p.m == 4);
  CHECK(p.inner == 3);
  CHECK(p.selected_shape == Shape{2, 4, 3});
  CHECK(p.source_shape == Shape{2, 5, 3});
  // The backward plan starts from the gradient's shape and the source's size along dim.
  const kernels::SelectPlan b = kernels::select_bwd_plan({2, 4, 3}, 1, 4, 5);
  CHECK(b.source_shape == Shape{2, 5, 3});
  CHECK(b.selected_shape == Shape{2, 4, 3});
  CHECK((b.outer == 2 && b.n == 5 && b.m == 4 && b.inner == 3));
  REQUIRE_THROWS_WITH(kernels::select_bwd_plan({2, 4, 3}, 1, 3, 5),
                      Catch::Contains("gradient has 4 entries along dim 1 but the index has 3"));
  // Indices: read from any layout as int64 and checked against the size.
  const Tensor idx = from_vector(std::vector<int64_t>{0, 9, 4, 2, 7, 1}, {2, 3}).transpose(0, 1);
  CHECK(kernels::select_indices(idx, 0, 10) == std::vector<int64_t>{0, 2, 9, 7, 4, 1});
  REQUIRE_THROWS_WITH(kernels::select_indices(idx, 0, 9),
                      Catch::Contains("index 9 (at position 2) is out of range for dim 0 of size 9"));
  REQUIRE_THROWS_WITH(kernels::select_indices(from_vector(std::vector<double>{1.0}, {1}), 0, 3),
                      Catch::Contains("index_select"));
}
