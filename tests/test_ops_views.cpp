// Per-op harness for views, copies and conversions (ops/views.h) and for sum/mean (ops/reduce.h):
// storage sharing, values against host index arithmetic, gradcheck through every view, in-place
// writes through a view, reductions over chosen dims on contiguous and permuted inputs.
#include <numeric>
#include <set>

#include "tests/op_reference.h"

using namespace knot;
using namespace knot::test;

namespace {

// 0, 1, 2, ... as f64 in shape s.
Tensor iota(const Shape& s) { return arange(0, static_cast<double>(shape_numel(s)), 1, DType::f64).reshape(s); }

// Value at multi-index idx of a row-major host array of shape s.
double at(const std::vector<double>& v, const Shape& s, const std::vector<int64_t>& idx) {
  int64_t f = 0;
  for (size_t d = 0; d < s.size(); ++d) f = f * s[d] + idx[d];
  return v[f];
}

bool same_storage(const Tensor& a, const Tensor& b) { return a.storage().get() == b.storage().get(); }

}  // namespace

TEST_CASE("views: reshape and view", "[ops]") {
  Tensor x = iota({2, 3, 4});
  Tensor r = x.reshape({4, -1});
  REQUIRE(r.shape() == Shape{4, 6});
  REQUIRE(same_storage(r, x));
  REQUIRE(r.to_vector<double>() == x.to_vector<double>());
  REQUIRE(x.reshape({-1}).shape() == Shape{24});
  REQUIRE(x.view({6, 4}).shape() == Shape{6, 4});
  REQUIRE(x.reshape({1, 24, 1}).strides() == Shape{24, 1, 1});
  REQUIRE(scalar_tensor(3.0).reshape({1, 1}).item() == 3.0);

  // non-contiguous input: reshape copies, view refuses
  Tensor t = x.transpose(0, 2);  // (4, 3, 2)
  Tensor rt = t.reshape({4, 6});
  REQUIRE_FALSE(same_storage(rt, x));
  REQUIRE(rt.to_vector<double>() == t.to_vector<double>());
  REQUIRE_THROWS_WITH(t.view({24}), Catch::Contains("view") && Catch::Contains("contiguous") &&
                                        Catch::Contains("(4, 3, 2)"));

  REQUIRE_THROWS_WITH(x.reshape({5, -1}), Catch::Contains("reshape") && Catch::Contains("(2, 3, 4)"));
  REQUIRE_THROWS_WITH(x.reshape({-1, -1}), Catch::Contains("only one"));
  REQUIRE_THROWS_WITH(x.reshape({5, 5}), Catch::Contains("(5, 5)"));
  REQUIRE_THROWS_WITH(x.reshape({-2, -12}), Catch::Contains("reshape"));

  Tensor a = leaf_in({2, 3, 4}, 1, -1, 1);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].reshape({4, -1}); }, {a});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].view({3, 8}); }, {a});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].transpose(0, 2).reshape({-1, 3}); }, {a});
}

TEST_CASE("views: flatten", "[ops]") {
  Tensor x = iota({2, 3, 4, 5});
  REQUIRE(x.flatten().shape() == Shape{120});
  REQUIRE(x.flatten(1).shape() == Shape{2, 60});
  REQUIRE(x.flatten(1, 2).shape() == Shape{2, 12, 5});
  REQUIRE(x.flatten(-2, -1).shape() == Shape{2, 3, 20});
  REQUIRE(same_storage(x.flatten(1, 2), x));
  REQUIRE(scalar_tensor(1.0).flatten().shape() == Shape{1});
  REQUIRE_THROWS_WITH(x.flatten(2, 1), Catch::Contains("flatten"));
  Tensor p = x.permute({3, 1, 0, 2});
  REQUIRE(p.flatten(0, 1).to_vector<double>() == p.to_vector<double>());
  Tensor a = leaf_in({2, 3, 4}, 2, -1, 1);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}).flatten(1); }, {a});
}

TEST_CASE("views: transpose and permute share storage and index correctly", "[ops]") {
  const Shape s{2, 3, 4};
  Tensor x = iota(s);
  const auto xv = x.to_vector<double>();
  Tensor t = x.transpose(0, 2);
  REQUIRE(t.shape() == Shape{4, 3, 2});
  REQUIRE(t.strides() == Shape{1, 4, 12});
  REQUIRE(same_storage(t, x));
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 2; ++k) REQUIRE(t.to_vector<double>()[(i * 3 + j) * 2 + k] == at(xv, s, {k, j, i}));
  REQUIRE(x.transpose(-1, -2).shape() == Shape{2, 4, 3});
  REQUIRE(x.transpose(1, 1).is_same(x));

  Tensor p = x.permute({1, 2, 0});
  REQUIRE(p.shape() == Shape{3, 4, 2});
  REQUIRE(same_storage(p, x));
  const auto pv = p.to_vector<double>();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t k = 0; k < 2; ++k) REQUIRE(pv[(i * 4 + j) * 2 + k] == at(xv, s, {k, i, j}));
  REQUIRE_THROWS_WITH(x.permute({0, 1}), Catch::Contains("permute"));
  REQUIRE_THROWS_WITH(x.permute({0, 1, 1}), Catch::Contains("permute") && Catch::Contains("twice"));
  REQUIRE_THROWS_WITH(x.transpose(0, 3), Catch::Contains("transpose"));

  Tensor a = leaf_in(s, 3, -1, 1);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].transpose(0, 2); }, {a});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].permute({1, 2, 0}); }, {a});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}).permute({0, 2, 1}); }, {a});
}

TEST_CASE("views: slice and select", "[ops]") {
  const Shape s{4, 10};
  Tensor x = iota(s);
  const auto xv = x.to_vector<double>();
  struct Case { int64_t dim, start, end, step; std::vector<int64_t> picked; };
  const std::vector<Case> cases = {
      {1, 2, 7, 1, {2, 3, 4, 5, 6}}, {1, -3, 10, 1, {7, 8, 9}},  {1, 1, -1, 3, {1, 4, 7}},
      {1, 0, 10, 4, {0, 4, 8}},      {1, -100, 2, 1, {0, 1}},    {1, 8, 100, 1, {8, 9}},
      {-1, 5, 3, 1, {}},             {0, 1, 4, 2, {1, 3}},       {0, -1, 4, 1, {3}},
  };
  for (const auto& c : cases) {
    INFO("slice dim " << c.dim << " [" << c.start << ", " << c.end << ") step " << c.step);
    Tensor y = x.slice(c.dim, c.start, c.end, c.step);
    REQUIRE(same_storage(y, x));
    const int d = c.dim < 0 ? c.dim + 2 : static_cast<int>(c.dim);
    Shape want = s;
    want[d] = static_cast<int64_t>(c.picked.size());
    REQUIRE(y.shape() == want);
    std::vector<double> ref;
    for (int64_t i = 0; i < want[0]; ++i)
      for (int64_t j = 0; j < want[1]; ++j)
        ref.push_back(d == 0 ? at(xv, s, {c.picked[i], j}) : at(xv, s, {i, c.picked[j]}));
    REQUIRE(y.to_vector<double>() == ref);
  }
  REQUIRE_THROWS_WITH(x.slice(1, 0, 5, 0), Catch::Contains("slice") && Catch::Contains("step"));
  REQUIRE_THROWS_WITH(x.slice(2, 0, 1), Catch::Contains("slice"));

  Tensor r = x.select(1, -2);
  REQUIRE(r.shape() == Shape{4});
  REQUIRE(same_storage(r, x));
  REQUIRE(r.to_vector<double>() == std::vector<double>{8, 18, 28, 38});
  REQUIRE(x.select(0, 2).to_vector<double>()[0] == 20);
  REQUIRE_THROWS_WITH(x.select(0, 4), Catch::Contains("select") && Catch::Contains("4"));
  REQUIRE_THROWS_WITH(x.select(0, -5), Catch::Contains("select"));

  Tensor a = leaf_in({4, 10}, 4, -1, 1);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].slice(1, 1, -1, 3); }, {a});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].slice(0, -3, 4, 2).slice(1, -4, 10); }, {a});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].select(1, -2); }, {a});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].t().select(0, 3) * in[0].select(1, 0); }, {a});
  // an overlapping use of one input through two slices sums both contributions
  REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& in) { return in[0].slice(1, 0, 6) * in[0].slice(1, 4, 10); }, {a});
}

TEST_CASE("views: expand, squeeze, unsqueeze", "[ops]") {
  Tensor x = iota({3, 1});
  Tensor e = x.expand({2, 3, 4});
  REQUIRE(e.shape() == Shape{2, 3, 4});
  REQUIRE(e.strides() == Shape{0, 1, 0});
  REQUIRE(same_storage(e, x));
  const auto ev = e.to_vector<double>();
  for (int64_t i = 0; i < 24; ++i) REQUIRE(ev[i] == static_cast<double>((i / 4) % 3));
  REQUIRE(x.expand({-1, 5}).shape() == Shape{3, 5});
  REQUIRE_THROWS_WITH(x.expand({4, 4}), Catch::Contains("expand") && Catch::Contains("(3, 1)"));
  REQUIRE_THROWS_WITH(x.expand({4}), Catch::Contains("expand"));

  Tensor u = x.unsqueeze(0);
  REQUIRE(u.shape() == Shape{1, 3, 1});
  REQUIRE(x.unsqueeze(-1).shape() == Shape{3, 1, 1});
  REQUIRE(x.unsqueeze(1).shape() == Shape{3, 1, 1});
  REQUIRE(same_storage(u, x));
  REQUIRE(x.squeeze(1).shape() == Shape{3});
  REQUIRE(x.squeeze(-1).shape() == Shape{3});
  REQUIRE(x.squeeze(0).shape() == Shape{3, 1});  // not size 1: unchanged
  REQUIRE(x.squeeze(1).to_vector<double>() == std::vector<double>{0, 1, 2});
  REQUIRE(scalar_tensor(2.0).unsqueeze(0).shape() == Shape{1});
  REQUIRE_THROWS_WITH(x.squeeze(2), Catch::Contains("squeeze"));
  REQUIRE_THROWS_WITH(x.unsqueeze(3), Catch::Contains("unsqueeze"));
  // unsqueeze of a non-contiguous view still reads the right elements
  Tensor t = iota({2, 3}).t();
  REQUIRE(t.unsqueeze(1).to_vector<double>() == t.to_vector<double>());
  REQUIRE(t.unsqueeze(1).contiguous().reshape({3, 2}).to_vector<double>() == t.to_vector<double>());

  Tensor a = leaf_in({3, 1}, 5, -1, 1);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].expand({2, 3, 4}); }, {a});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].squeeze(1).unsqueeze(0).expand({4, 3}); }, {a});
  Tensor b = leaf_in({2, 3}, 6, -1, 1);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].t().unsqueeze(1).expand({3, 5, 2}); }, {b});
}

TEST_CASE("views: contiguous, clone, to(dtype)", "[ops]") {
  Tensor x = iota({3, 4});
  REQUIRE(x.contiguous().is_same(x));
  Tensor t = x.t();
  Tensor c = t.contiguous();
  REQUIRE(c.is_contiguous());
  REQUIRE_FALSE(same_storage(c, x));
  REQUIRE(c.to_vector<double>() == t.to_vector<double>());
  Tensor k = x.clone();
  REQUIRE_FALSE(same_storage(k, x));
  REQUIRE(k.to_vector<double>() == x.to_vector<double>());
  {
    NoGradGuard ng;
    k.fill_(7.0);
  }
  REQUIRE(x.to_vector<double>()[0] == 0.0);  // clone does not alias

  REQUIRE(x.to(DType::f64).is_same(x));
  Tensor f = from_values({1.75, -2.5, 3.0}, {3}, DType::f64);
  REQUIRE(f.to(DType::f32).dtype() == DType::f32);
  REQUIRE(f.to(DType::f32).to_vector<double>() == std::vector<double>{1.75, -2.5, 3.0});
  REQUIRE(f.to(DType::i64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3});
  REQUIRE(f.to(DType::i32).dtype() == DType::i32);
  REQUIRE(t.to(DType::f32).to_vector<double>() == t.to_vector<double>());  // non-contiguous source

  Tensor a = leaf_in({3, 4}, 7, -1, 1);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].t().contiguous(); }, {a});
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].clone() * in[0]; }, {a});
  REQUIRE_FALSE(a.to(DType::i64).requires_grad());
  // gradient flows back through a dtype conversion and arrives in the source dtype
  Tensor a32 = from_values({1.0, 2.0, 3.0}, {3}, DType::f32);
  a32.requires_grad_();
  sum(mul(a32.to(DType::f64), from_values({0.5, -1.0, 2.0}, {3}, DType::f64))).backward();
  REQUIRE(a32.grad().dtype() == DType::f32);
  REQUIRE(a32.grad().to_vector<double>() == std::vector<double>{0.5, -1.0, 2.0});
}

TEST_CASE("views: in-place copy_ into a view writes through to the base", "[ops]") {
  Tensor base = zeros({3, 6}, DType::f64);
  const uint64_t v0 = base.version();
  Tensor sl = base.slice(1, 1, 6, 2);  // columns 1, 3, 5
  sl.copy_(from_values({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3}, DType::f64));
  REQUIRE(base.version() > v0);  // the base sees the write (shared storage version)
  REQUIRE(base.to_vector<double>() ==
          std::vector<double>{0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9});
  // broadcast source into a transposed view, with conversion from f32
  base.t().slice(0, 0, 1).copy_(from_values({-1, -2, -3}, {3}, DType::f32));
  REQUIRE(base.select(1, 0).to_vector<double>() == std::vector<double>{-1, -2, -3});
  base.select(0, 2).fill_(4.0);
  REQUIRE(base.select(0, 2).to_vector<double>() == std::vector<double>(6, 4.0));
  base.slice(0, 0, 2).add_(ones({6}, DType::f64), 2.0);
  REQUIRE(base.to_vector<double>()[0] == 1.0);
  REQUIRE(base.to_vector<double>()[1] == 3.0);
  base.slice(1, 0, 6, 5).mul_(10.0);
  REQUIRE(base.select(0, 2).to_vector<double>() == std::vector<double>{40, 4, 4, 4, 4, 40});
  REQUIRE_THROWS_WITH(base.slice(1, 0, 2).copy_(zeros({3})), Catch::Contains("copy"));
}

// ---- sum / mean --------------------------------------------------------------------------------

namespace {

// Σ (or mean) over `dims` of a host array with shape s; result in keepdim shape, row-major.
std::vector<double> reduce_ref(const std::vector<double>& v, const Shape& s, std::set<int> dims, bool mean) {
  if (dims.empty())
    for (int d = 0; d < static_cast<int>(s.size()); ++d) dims.insert(d);
  Shape out_s = s;
  int64_t count = 1;
  for (int d : dims) {
    out_s[d] = 1;
    count *= s[d];
  }
  std::vector<double> out(static_cast<size_t>(shape_numel(out_s)), 0.0);
  for (int64_t i = 0; i < shape_numel(s); ++i) {
    auto idx = unravel(i, s);
    for (int d : dims) idx[d] = 0;
    int64_t f = 0;
    for (size_t d = 0; d < s.size(); ++d) f = f * out_s[d] + idx[d];
    out[f] += v[i];
  }
  if (mean)
    for (double& x : out) x /= static_cast<double>(count);
  return out;
}

Shape expected_shape(const Shape& s, const std::set<int>& dims_in, bool keepdim) {
  std::set<int> dims = dims_in;
  if (dims.empty())
    for (int d = 0; d < static_cast<int>(s.size()); ++d) dims.insert(d);
  Shape out;
  for (int d = 0; d < static_cast<int>(s.size()); ++d) {
    if (!dims.count(d)) out.push_back(s[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

}  // namespace

TEST_CASE("sum/mean: over chosen dims vs a naive reference", "[ops]") {
  const std::vector<std::vector<int64_t>> dim_lists = {
      {}, {0}, {3}, {1}, {2}, {0, 1}, {2, 3}, {1, 2}, {0, 2}, {1, 3}, {0, 3}, {-1}, {-3, -1}, {0, 1, 2, 3}, {3, 0},
  };
  Tensor base = leaf_in({2, 3, 4, 5}, 8, -1, 1);
  Tensor pbase = leaf_in({4, 2, 5, 3}, 9, -1, 1);
  auto permuted = [](const Tensor& t) { return t.permute({1, 3, 0, 2}); };  // (2, 3, 4, 5), non-contiguous
  for (const auto& dl : dim_lists) {
    for (bool keepdim : {false, true}) {
      for (bool is_mean : {false, true}) {
        for (bool perm : {false, true}) {
          std::set<int> dims;
          for (int64_t d : dl) dims.insert(static_cast<int>(d < 0 ? d + 4 : d));
          INFO((is_mean ? "mean" : "sum") << " dims " << shape_str(dl) << " keepdim " << keepdim << " permuted "
                                          << perm);
          Tensor x = perm ? permuted(pbase) : base;
          REQUIRE(x.shape() == Shape{2, 3, 4, 5});
          auto op = [&](const Tensor& t) { return is_mean ? mean(t, dl, keepdim) : sum(t, dl, keepdim); };
          Tensor y = op(x);
          REQUIRE(y.shape() == expected_shape(x.shape(), dims, keepdim));
          require_close(y.to_vector<double>(), reduce_ref(x.to_vector<double>(), x.shape(), dims, is_mean), 1e-12,
                        1e-12);
          // f32 agrees (accumulates in f64)
          require_close(op(x.detach().to(DType::f32)).to_vector<double>(), y.to_vector<double>(), 1e-5, 1e-5);
          if (perm)
            REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return op(permuted(in[0])); }, {pbase});
          else
            REQUIRE_GRADCHECK([&](const std::vector<Tensor>& in) { return op(in[0]); }, {base});
        }
      }
    }
  }
}

TEST_CASE("sum/mean: edge cases", "[ops]") {
  // integer sum stays integer and exact
  Tensor i = arange(0, 12, 1, DType::i64).reshape({3, 4});
  REQUIRE(sum(i, {1}).dtype() == DType::i64);
  REQUIRE(sum(i, {1}).to_vector<int64_t>() == std::vector<int64_t>{6, 22, 38});
  REQUIRE(sum(i).item() == 66);
  REQUIRE_THROWS_WITH(mean(i), Catch::Contains("mean") && Catch::Contains("i64"));
  // 0-dim input
  Tensor s = scalar_tensor(2.5, DType::f64);
  REQUIRE(sum(s).item() == 2.5);
  REQUIRE(mean(s).dim() == 0);
  // sliced input with a step and offset
  Tensor x = arange(0, 24, 1, DType::f64).reshape({4, 6}).slice(1, 1, 6, 2);  // columns 1, 3, 5
  REQUIRE(sum(x, {1}).to_vector<double>() == std::vector<double>{9, 27, 45, 63});
  REQUIRE(sum(x, {0}).to_vector<double>() == std::vector<double>{40, 48, 56});
  // a size-0 reduced dim gives zeros
  Tensor z = zeros({3, 0, 2}, DType::f64);
  REQUIRE(sum(z, {1}).shape() == Shape{3, 2});
  REQUIRE(sum(z, {1}).to_vector<double>() == std::vector<double>(6, 0.0));
  // expanded (stride-0) input
  Tensor e = from_values({1, 2, 3}, {3, 1}, DType::f64).expand({3, 4});
  REQUIRE(sum(e, {1}).to_vector<double>() == std::vector<double>{4, 8, 12});
  REQUIRE(sum(e, {0}).to_vector<double>() == std::vector<double>(4, 6.0));
  // errors
  Tensor a = zeros({2, 3});
  REQUIRE_THROWS_WITH(sum(a, {2}), Catch::Contains("sum") && Catch::Contains("2"));
  REQUIRE_THROWS_WITH(sum(a, {1, -1}), Catch::Contains("sum") && Catch::Contains("repeated"));
  REQUIRE_THROWS_WITH(mean(a, {-3}), Catch::Contains("mean"));
  // member sugar
  REQUIRE(a.sum({0}, true).shape() == Shape{1, 3});
  REQUIRE(ones({2, 3}).mean({1}).to_vector<double>() == std::vector<double>{1.0, 1.0});
  // the gradient of a sum held as a leaf .grad is owned memory, not a broadcast view
  Tensor g = leaf_in({2, 3}, 10, -1, 1);
  sum(g).backward();
  REQUIRE(g.grad().is_contiguous());
  REQUIRE(g.grad().to_vector<double>() == std::vector<double>(6, 1.0));
  sum(g).backward();
  REQUIRE(g.grad().to_vector<double>() == std::vector<double>(6, 2.0));
}
