// See gnuplot.h.
#include "train/gnuplot.h"

#include <cstdio>

#include "core/error.h"

namespace knot::train {

std::string gnuplot_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

void run_gnuplot(const std::string& script, const std::string& who) {
  FILE* gp = popen("gnuplot 2>&1", "w");
  KNOT_CHECK(gp != nullptr, "{}: cannot start gnuplot", who);
  fwrite(script.data(), 1, script.size(), gp);
  const int rc = pclose(gp);
  KNOT_CHECK(rc == 0, "{}: gnuplot failed (exit status {}); is it installed? (apt-get install gnuplot-nox)", who, rc);
}

}  // namespace knot::train
