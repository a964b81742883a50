// Mixture-of-experts FFN (see moe.h).
#include "nn/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ops/ops.h"

namespace knot::nn {

MoEFeedForward::MoEFeedForward(int64_t dim, int64_t hidden, const std::string& activation, double dropout,
                               const ProjectionSpec& proj, bool bias_in, bool bias_out, const MoEConfig& cfg)
    : cfg_(cfg), dim_(dim) {
  KNOT_CHECK(cfg.num_experts >= 1, "moe: num_experts must be >= 1, got {}", cfg.num_experts);
  KNOT_CHECK(cfg.top_k == 1 || cfg.top_k == 2, "moe: top_k must be 1 or 2, got {}", cfg.top_k);
  KNOT_CHECK(cfg.top_k <= cfg.num_experts, "moe: top_k {} needs at least {} experts, got {}", cfg.top_k, cfg.top_k,
             cfg.num_experts);
  KNOT_CHECK(std::isfinite(cfg.capacity_factor) && cfg.capacity_factor > 0,
             "moe: capacity_factor must be a finite number > 0, got {}", cfg.capacity_factor);
  KNOT_CHECK(cfg.load_balance_weight >= 0 && cfg.z_loss_weight >= 0,
             "moe: load_balance_weight and z_loss_weight must be >= 0, got {} and {}", cfg.load_balance_weight,
             cfg.z_loss_weight);
  router = register_module("router", std::make_shared<Linear>(dim, cfg.num_experts, false));
  experts = register_module("experts", std::make_shared<ModuleList>());
  for (int64_t e = 0; e < cfg.num_experts; ++e)
    experts->push_back(std::make_shared<FeedForward>(dim, hidden, activation, dropout, proj, bias_in, bias_out));
}

Tensor MoEFeedForward::forward(const Tensor& x) const {
  KNOT_CHECK(x.dim() >= 1 && x.size(-1) == dim_, "moe: input must be (..., {}), got {}", dim_, shape_str(x.shape()));
  const int64_t E = cfg_.num_experts, K = cfg_.top_k, N = x.numel() / dim_;
  const Tensor xf = x.reshape({N, dim_});
  const Tensor logits = router->forward(xf);  // (N, E)
  const Tensor probs = softmax(logits, 1);

  // Routing on the host: each token's top-k experts, then the capacity.
  const std::vector<double> p = probs.to(DType::f64).contiguous().to_vector<double>();
  std::vector<int64_t> choice(static_cast<size_t>(N * K));
  std::vector<int64_t> chosen(static_cast<size_t>(E), 0);  // choices per expert, before capacity
  std::vector<int64_t> order(static_cast<size_t>(E));
  for (int64_t n = 0; n < N; ++n) {
    std::iota(order.begin(), order.end(), 0);
    const double* row = p.data() + n * E;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    for (int64_t r = 0; r < K; ++r) {
      choice[n * K + r] = order[r];
      ++chosen[order[r]];
    }
  }
  const int64_t capacity =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(cfg_.capacity_factor * static_cast<double>(N * K) / E)));
  std::vector<std::vector<int64_t>> tokens(static_cast<size_t>(E)), slots(static_cast<size_t>(E));
  MoEStats st;
  st.capacity = capacity;
  st.load.assign(static_cast<size_t>(E), 0);
  for (int64_t r = 0; r < K; ++r)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t e = choice[n * K + r];
      if (st.load[e] >= capacity) {
        ++st.dropped;
        continue;
      }
      ++st.load[e];
      tokens[e].push_back(n);
      slots[e].push_back(n * E + e);  // the (token, expert) entry of probs
    }

  // Gates, differentiable through the router: p[n, e], renormalised over the top 2 when k = 2.
  const Tensor pflat = probs.reshape({N * E});
  Tensor denom;  // (N): p[n, e1] + p[n, e2]
  if (K == 2) {
    std::vector<int64_t> i1(static_cast<size_t>(N)), i2(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
      i1[n] = n * E + choice[n * K];
      i2[n] = n * E + choice[n * K + 1];
    }
    denom = add(index_select(pflat, 0, from_vector(i1).to(x.device())), index_select(pflat, 0, from_vector(i2).to(x.device())));
  }
  Tensor out;
  for (int64_t e = 0; e < E; ++e) {
    if (tokens[e].empty()) continue;
    const Tensor idx = from_vector(tokens[e]).to(x.device());
    Tensor gate = index_select(pflat, 0, from_vector(slots[e]).to(x.device()));
    if (K == 2) gate = div(gate, index_select(denom, 0, idx));
    const Tensor y = mul(experts->at<FeedForward>(static_cast<size_t>(e)).forward(index_select(xf, 0, idx)),
                         gate.reshape({-1, 1}));
    const Tensor part = index_scatter_add(y, 0, idx, N);
    out = out.defined() ? add(out, part) : part;
  }
  if (!out.defined()) out = zeros({N, dim_}, x.dtype()).to(x.device());  // no token (N = 0)

  // Auxiliary losses (none without tokens).
  if (N == 0) {
    aux_ = zeros({}, x.dtype()).to(x.device());
    stats_ = std::move(st);
    return out.reshape(x.shape());
  }
  std::vector<double> f(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) f[e] = static_cast<double>(chosen[e]) / static_cast<double>(N * K);
  const Tensor P = mean(probs, {0});  // (E)
  const Tensor balance = mul(sum(mul(P, from_vector(f).to(P.dtype()).to(P.device()))), static_cast<double>(E));
  const Tensor lse = logsumexp(logits, 1);
  const Tensor z = mean(mul(lse, lse));
  aux_ = add(mul(balance, cfg_.load_balance_weight), mul(z, cfg_.z_loss_weight));
  st.balance = balance.item();
  st.z = z.item();
  stats_ = std::move(st);
  return out.reshape(x.shape());
}

}  // namespace knot::nn
