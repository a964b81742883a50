// The trainer's progress: rates and ETA per logging window, and the live line on stderr.
//
// tok/s is over the logging window with validation and checkpoint time left out, so it follows the
// machine's load; the ETA is the windows' seconds per step (smoothed: 0.7 old + 0.3 new) times the
// steps left, plus validation/checkpoint time at this run's rate per step so far.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace knot::train {

// "42s", "3m07s", "2h05m"; "?" for a negative or non-finite time.
std::string format_duration(double seconds);

class ProgressMeter {
 public:
  // `show`: print the line (train.progress, on rank 0); on a terminal it is rewritten in place.
  ProgressMeter(int64_t start_step, int64_t total_steps, bool show);
  struct Window {
    double elapsed_s = 0;     // since the run (this call) started
    double tokens_per_s = 0;  // in this window, overhead left out
    double eta_s = 0;
  };
  // Closes the logging window that ends at `step`; `tokens` counts every token of this call so far.
  Window close_window(int64_t step, int64_t tokens);
  // Validation and checkpoint time: not training, left out of the rates.
  void add_overhead(double seconds) { overhead_s_ += seconds; }
  double elapsed() const;
  void print(const std::string& line) const;
  // Ends the live line before other output (a validation line, the end of the run) on a terminal.
  void break_line() const;

 private:
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  int64_t start_step_, total_steps_;
  bool show_, tty_;
  double last_log_s_ = 0, overhead_s_ = 0, overhead_at_last_log_ = 0, step_s_ema_ = -1;
  int64_t last_log_step_, tokens_at_last_log_ = 0;
};

}  // namespace knot::train
