// The single-process pieces of data parallelism (dist/, docs/distributed.md); the multi-rank runs
// are tests/tools/mpi_cli.sh under mpirun (ctest tool.mpi_data_parallel):
//   - shard_rows splits a batch into consecutive ranges that cover it;
//   - dropout and attention dropout with set_batch_rows draw, for a slice of the batch, exactly the
//     rows of the mask the whole batch gets (the fused attention and the dropout op, forward and
//     backward), and a tensor whose size does not split into the rows is an error;
//   - Adam::shard + step_owned over ranges that cover each parameter equals a plain step, and the
//     moments it keeps are those ranges' slices;
//   - one process: world() is rank 0 of 1 and every collective is the identity.
#include "tests/helpers.h"

#include "core/rng.h"
#include "dist/comm.h"
#include "dist/data_parallel.h"
#include "ops/attention.h"
#include "optim/optimizer.h"

using namespace knot;

namespace {

// Restores the default (whole batch) however a test ends.
struct RowsGuard {
  ~RowsGuard() { set_batch_rows(0, 0); }
};

}  // namespace

TEST_CASE("dist: shard_rows gives consecutive ranges that cover the batch", "[dist]") {
  for (int64_t rows : {0, 1, 5, 16, 17})
    for (int world : {1, 2, 3, 4}) {
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        const dist::RowRange rr = dist::shard_rows(rows, r, world);
        REQUIRE(rr.begin == next);
        REQUIRE(rr.size() >= rows / world);
        REQUIRE(rr.size() <= rows / world + 1);
        next = rr.end;
      }
      REQUIRE(next == rows);
    }
  REQUIRE_THROWS(dist::shard_rows(4, 2, 2));
}

TEST_CASE("dist: dropout of a batch slice equals the whole batch's mask on those rows", "[dist]") {
  RowsGuard guard;
  const int64_t B = 6, T = 5, D = 7;  // odd sizes: a slice starts mid Philox group
  const Tensor x = rand({B, T, D}, DType::f64, nullptr, 0.5, 1.5);
  for (const auto& [first, rows] : std::vector<std::pair<int64_t, int64_t>>{{0, 3}, {3, 3}, {1, 4}, {5, 1}}) {
    Generator g(42);
    set_batch_rows(0, 0);
    const Tensor whole = dropout(x, 0.4, true, &g).slice(0, first, first + rows).contiguous();
    Generator h(42);
    set_batch_rows(first, rows);
    const Tensor part_in = x.slice(0, first, first + rows).contiguous().detach();
    part_in.impl()->requires_grad = true;
    const Tensor part = dropout(part_in, 0.4, true, &h);
    REQUIRE(part.to_vector<double>() == whole.to_vector<double>());
    // The backward regenerates the same mask: the gradient of sum is keep / (1 − p).
    sum(part).backward();
    const std::vector<double> gv = part_in.grad().to_vector<double>(), pv = part.to_vector<double>();
    for (size_t i = 0; i < gv.size(); ++i) REQUIRE(gv[i] == (pv[i] != 0.0 ? 1.0 / 0.6 : 0.0));
    // relu_dropout keys its mask the same way.
    Generator a(7), b(7);
    set_batch_rows(0, 0);
    const Tensor rw = relu_dropout(x, 0.3, true, &a).slice(0, first, first + rows).contiguous();
    set_batch_rows(first, rows);
    REQUIRE(relu_dropout(x.slice(0, first, first + rows).contiguous(), 0.3, true, &b).to_vector<double>() ==
            rw.to_vector<double>());
  }
  set_batch_rows(1, 4);
  Generator g(1);
  REQUIRE_THROWS_WITH(dropout(rand({3, 5}, DType::f64), 0.5, true, &g),
                      Catch::Matchers::Contains("does not split into this rank's 4 batch rows"));
}

TEST_CASE("dist: attention dropout of a batch slice equals the whole batch's", "[dist]") {
  RowsGuard guard;
  const int64_t B = 4, H = 2, T = 3, S = 5, Dh = 4;
  const Tensor q = randn({B, H, T, Dh}, DType::f64), k = randn({B, H, S, Dh}, DType::f64),
               v = randn({B, H, S, Dh}, DType::f64);
  AttentionOptions o;
  o.dropout_p = 0.3;
  Generator g(9), h(9);
  o.gen = &g;
  set_batch_rows(0, 0);
  const Tensor whole = scaled_dot_product_attention(q, k, v, o).slice(0, 1, 3).contiguous();
  o.gen = &h;
  set_batch_rows(1, 2);
  auto part = [](const Tensor& t) { return t.slice(0, 1, 3).contiguous(); };
  const Tensor got = scaled_dot_product_attention(part(q), part(k), part(v), o);
  REQUIRE(test::max_abs_diff(got, whole) < 1e-12);
}

TEST_CASE("dist: a sharded Adam over covering ranges steps like a plain one", "[dist]") {
  const Tensor w1 = randn({3, 4}, DType::f64), b1 = randn({5}, DType::f64);
  const Tensor w2 = w1.clone(), b2 = b1.clone();
  for (const Tensor& t : {w1, b1, w2, b2}) t.impl()->requires_grad = true;
  const optim::AdamOptions ao{0.9, 0.99, 1e-8, true};
  optim::Adam plain({optim::ParamGroup{{w1}, 0.1}, optim::ParamGroup{{b1}, 0.0}}, 0.01, ao);
  // Two "ranks" side by side: each owns part of every parameter; together they cover it.
  optim::Adam r0({optim::ParamGroup{{w2}, 0.1}, optim::ParamGroup{{b2}, 0.0}}, 0.01, ao);
  optim::Adam r1({optim::ParamGroup{{w2}, 0.1}, optim::ParamGroup{{b2}, 0.0}}, 0.01, ao);
  r0.shard({{{0, 7}}, {{0, 0}}});
  r1.shard({{{7, 12}}, {{0, 5}}});
  REQUIRE(r0.exp_avg(0, 0).numel() == 7);
  REQUIRE(r1.exp_avg(1, 0).numel() == 5);
  for (int step = 0; step < 3; ++step) {
    const Tensor gw = randn({3, 4}, DType::f64), gb = randn({5}, DType::f64);
    w1.set_grad(gw);
    b1.set_grad(gb);
    plain.step();
    for (optim::Adam* r : {&r0, &r1})
      r->step_owned([&](size_t gi, size_t i) {
        const optim::Adam::Range rg = r->owned(gi, i);
        return (gi == 0 ? gw : gb).reshape({-1}).slice(0, rg.begin, rg.end);
      });
  }
  REQUIRE(w2.to_vector<double>() == w1.to_vector<double>());
  REQUIRE(b2.to_vector<double>() == b1.to_vector<double>());
  // The moments kept are the plain optimizer's, cut to the ranges.
  const nn::NamedTensors full = plain.state();
  REQUIRE(r0.exp_avg(0, 0).to_vector<double>() ==
          full[0].second.reshape({-1}).slice(0, 0, 7).contiguous().to_vector<double>());
  REQUIRE(r1.exp_avg_sq(1, 0).to_vector<double>() == full[3].second.reshape({-1}).to_vector<double>());
  REQUIRE_THROWS(r0.shard({{{0, 7}}, {{0, 0}}}));                 // twice
  optim::Adam bad({optim::ParamGroup{{w2}, 0.0}}, 0.01, ao);
  REQUIRE_THROWS(bad.shard({{{0, 13}}}));                         // outside the parameter
}

TEST_CASE("dist: one process is rank 0 of 1 and its collectives are the identity", "[dist]") {
  const dist::Comm& w = dist::Comm::world();
  REQUIRE(w.rank() == 0);
  REQUIRE(w.size() == 1);
  REQUIRE_FALSE(w.distributed());
  REQUIRE(w.sum(std::vector<double>{1.5, -2.0}) == std::vector<double>{1.5, -2.0});
  REQUIRE(w.all_gather("abc") == std::vector<std::string>{"abc"});
  REQUIRE(w.broadcast(std::string("x")) == "x");
  const Tensor x = randn({3, 2});
  REQUIRE(dist::gather_rows(w, x).is_same(x));
  dist::check_same_job(w, "{}");  // nothing to compare
  w.idle_barrier();
}
