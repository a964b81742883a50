// The demo job (see demo.h).
#include "train/demo.h"

#include "optim/optimizer.h"
#include "ops/ops.h"

namespace knot::train {

DemoResult run_demo(uint64_t seed, int steps, const std::function<void(int, double)>& on_step, int report_every) {
  manual_seed(seed);
  Generator data_gen(seed + 1);
  const Tensor x = rand({512, 2}, DType::f32, &data_gen, -1.5, 1.5);
  const Tensor target = mul(sin(mul(x.select(1, 0), 2.0)), x.select(1, 1)).unsqueeze(1);

  nn::MLP mlp({2, 32, 32, 1}, "tanh");
  optim::SGD opt({optim::ParamGroup{mlp.parameters(), 0.0}}, /*lr=*/0.1, /*momentum=*/0.9);
  DemoResult r;
  for (int step = 1; step <= steps; ++step) {
    opt.zero_grad();
    const Tensor diff = sub(mlp.forward(x), target);
    const Tensor loss = mean(mul(diff, diff));
    loss.backward();
    opt.step();
    r.losses.push_back(loss.item());
    if (on_step && (step % report_every == 0 || step == 1 || step == steps)) on_step(step, r.losses.back());
  }
  for (auto& p : mlp.parameters()) r.params.push_back(p.to_vector<float>());
  return r;
}

}  // namespace knot::train
