// Resident-set measurements for the benchmarks: peak RSS growth over a window of code, so memory
// that is not knot's tensor allocator (std::vector work buffers, Eigen) is counted too.
#pragma once

#include <fstream>
#include <string>

namespace knot::bench {

// A field of /proc/self/status ("VmRSS", "VmHWM"; the kernel prints KiB) in bytes, -1 if absent.
inline double proc_status_bytes(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) * 1024.0;
  return -1.0;
}

// Peak resident-set growth from construction to peak_growth(). Resetting the high-water mark
// (which ru_maxrss also reads) through /proc/self/clear_refs keeps an earlier, higher mark — e.g.
// KANLinear's least-squares init — from hiding the measured window's peak. reset = false if the
// reset failed (then the number may read low).
struct RssWindow {
  bool reset = false;
  double rss0 = 0;
  RssWindow() {
    std::ofstream f("/proc/self/clear_refs");
    f << "5" << std::flush;
    reset = f.good();
    rss0 = proc_status_bytes("VmRSS");
  }
  double peak_growth() const { return proc_status_bytes("VmHWM") - rss0; }
};

}  // namespace knot::bench
