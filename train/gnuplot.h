// Running gnuplot for the picture-making commands (knot plot, knot inspect): a script is piped into
// `gnuplot`, whose messages are passed through; a missing gnuplot or a failed script is an error
// naming the command and how to install it.
#pragma once

#include <string>

namespace knot::train {

// A gnuplot string literal: single-quoted, a quote inside doubled.
std::string gnuplot_quote(const std::string& s);

// Runs `script` through gnuplot; `who` names the command in errors ("plot", "inspect").
void run_gnuplot(const std::string& script, const std::string& who);

}  // namespace knot::train
