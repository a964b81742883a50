// Mixture-of-experts feed-forward layer (Shazeer et al. 2017; Switch Transformer, Fedus et al.
// 2021; ST-MoE, Zoph et al. 2022): a router sends each token to its top-k of E expert FFNs.
//
//   x: (..., d) -> N tokens (N, d);  logits = router(x): (N, E) (a Linear without bias);  p = softmax
//   choice: each token's k most probable experts (ties: the lower expert id)
//   gate:   k = 1: p[n, e] (Switch);  k = 2: p[n, e] / (p[n, e1] + p[n, e2]) (the top-2 renormalised)
//   capacity C = ceil(capacity_factor · N · k / E) tokens per expert. Assignment goes by choice rank,
//           then token order: every token's first choice is placed before any second choice, and a
//           token whose expert is already full is dropped for that expert (its contribution is 0; in
//           a Transformer block the residual still carries the token). Applied in training and eval.
//   y[n] = Σ over the token's kept choices of gate · expert_e(x[n])
// Auxiliary losses (of the last forward, see aux_loss()):
//   load balancing (Switch): E · Σ_e f_e · P_e, f_e = the fraction of the N·k choices that picked e
//           (before capacity), P_e = the mean router probability of e; 1 when perfectly balanced
//   router z-loss (ST-MoE): mean over tokens of logsumexp(logits)²
//   aux = load_balance_weight · balance + z_loss_weight · z
// With one expert and k = 1 the layer equals the dense FeedForward with the same weights (p = 1).
// Experts are FeedForward modules, so an expert is an MLP or any KAN basis (ProjectionSpec).
// Parameter names: router.weight (E, d); experts.{e}.{in,gate,out}_proj.*.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/feedforward.h"
#include "nn/linear.h"

namespace knot::nn {

struct MoEConfig {
  int64_t num_experts = 0;  // 0: no mixture (a dense FFN)
  int64_t top_k = 1;        // 1 or 2
  double capacity_factor = 1.25;
  double load_balance_weight = 0.01;
  double z_loss_weight = 0.001;
  bool enabled() const { return num_experts > 0; }
};

// What the last forward routed.
struct MoEStats {
  std::vector<int64_t> load;  // tokens each expert processed (after capacity)
  int64_t dropped = 0;        // token choices dropped for lack of capacity
  int64_t capacity = 0;       // tokens per expert
  double balance = 0, z = 0;  // the two auxiliary losses (unweighted)
};

class MoEFeedForward : public Module {
 public:
  MoEFeedForward(int64_t dim, int64_t hidden, const std::string& activation, double dropout, const ProjectionSpec& proj,
                 bool bias_in, bool bias_out, const MoEConfig& cfg);
  std::string type_name() const override { return "MoEFeedForward"; }
  Tensor forward(const Tensor& x) const;  // (..., dim) -> (..., dim)

  // The weighted auxiliary loss of the last forward (scalar; its graph reaches the router when that
  // forward recorded one); undefined before any forward.
  const Tensor& aux_loss() const { return aux_; }
  const MoEStats& stats() const { return stats_; }
  const MoEConfig& config() const { return cfg_; }

  std::shared_ptr<Linear> router;
  std::shared_ptr<ModuleList> experts;

 private:
  MoEConfig cfg_;
  int64_t dim_;
  mutable Tensor aux_;
  mutable MoEStats stats_;
};

}  // namespace knot::nn
