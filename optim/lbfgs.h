// L-BFGS (Nocedal & Wright, Numerical Optimization, Alg. 7.4 two-loop recursion) over all
// parameters as one flat vector, with a backtracking line search on the Armijo condition.
// Each step() calls the closure (which must zero grads, compute the loss, call backward and
// return the loss) several times, like torch.optim.LBFGS. Used by `knot fit` for small KANs,
// where full-batch quasi-Newton converges far faster than Adam.
#pragma once

#include <deque>
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace knot::optim {

struct LBFGSOptions {
  double lr = 1.0;           // initial step length of each line search
  int max_iter = 20;         // inner iterations per step()
  int history = 10;          // pairs (s, y) kept
  double tolerance_grad = 1e-7;
  double tolerance_change = 1e-9;
  int max_line_search = 20;  // halvings of the step before giving up
};

class LBFGS {
 public:
  LBFGS(std::vector<Tensor> params, LBFGSOptions opt = {});
  // Returns the loss at the start of the step.
  double step(const std::function<double()>& closure);
  int64_t evaluations() const { return evals_; }

 private:
  std::vector<double> flat_grad() const;
  std::vector<double> flat_params() const;
  void set_params(const std::vector<double>& x);

  std::vector<Tensor> params_;
  LBFGSOptions opt_;
  std::deque<std::vector<double>> s_, y_;
  std::deque<double> rho_;
  int64_t evals_ = 0;
};

}  // namespace knot::optim
