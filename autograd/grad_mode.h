// Grad mode: whether ops record a graph. NoGradGuard turns recording off for a scope
// (optimizer steps, evaluation, the backward pass itself).
#pragma once

namespace knot {

struct GradMode {
  static bool enabled();
  static void set_enabled(bool on);
};

// Sets grad mode for a scope and restores the previous mode (also when the scope throws).
class GradModeGuard {
 public:
  explicit GradModeGuard(bool on) : prev_(GradMode::enabled()) { GradMode::set_enabled(on); }
  ~GradModeGuard() { GradMode::set_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};

// Recording on inside a scope that has it off (backward recomputing a checkpointed forward).
class EnableGradGuard : public GradModeGuard {
 public:
  EnableGradGuard() : GradModeGuard(true) {}
};

}  // namespace knot
