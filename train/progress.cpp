// The trainer's progress meter (see progress.h).
#include "train/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace knot::train {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t / 60) % 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

ProgressMeter::ProgressMeter(int64_t start_step, int64_t total_steps, bool show)
    : start_step_(start_step), total_steps_(total_steps), show_(show), tty_(::isatty(2) != 0),
      last_log_step_(start_step) {}

double ProgressMeter::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

ProgressMeter::Window ProgressMeter::close_window(int64_t step, int64_t tokens) {
  Window w;
  w.elapsed_s = elapsed();
  const double train_s = std::max(w.elapsed_s - last_log_s_ - (overhead_s_ - overhead_at_last_log_), 1e-9);
  w.tokens_per_s = static_cast<double>(tokens - tokens_at_last_log_) / train_s;
  if (step > last_log_step_) {
    const double per_step = train_s / static_cast<double>(step - last_log_step_);
    step_s_ema_ = step_s_ema_ < 0 ? per_step : 0.7 * step_s_ema_ + 0.3 * per_step;
  }
  const double overhead_per_step = step > start_step_ ? overhead_s_ / static_cast<double>(step - start_step_) : 0.0;
  w.eta_s = std::max(step_s_ema_, 0.0) * static_cast<double>(total_steps_ - step) +
            overhead_per_step * static_cast<double>(total_steps_ - step);
  last_log_s_ = w.elapsed_s;
  overhead_at_last_log_ = overhead_s_;
  last_log_step_ = step;
  tokens_at_last_log_ = tokens;
  return w;
}

void ProgressMeter::print(const std::string& line) const {
  if (!show_) return;
  if (tty_)
    std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void ProgressMeter::break_line() const {
  if (show_ && tty_) std::fprintf(stderr, "\n");
}

}  // namespace knot::train
