// Corpus BLEU with 13a tokenisation (see bleu.h).
#include "train/bleu.h"

#include <cmath>
#include <map>
#include <sstream>

#include "core/error.h"

namespace knot::train {
namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The 13a symbol class: [{-~ [-` space-& (-+ :-@ /] (apostrophe, comma, '-', '.' excluded).
bool is_13a_symbol(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return (u >= 0x7B && u <= 0x7E) || (u >= 0x5B && u <= 0x60) || (u >= 0x20 && u <= 0x26) ||
         (u >= 0x28 && u <= 0x2B) || (u >= 0x3A && u <= 0x40) || u == '/';
}

// Python re.sub semantics for a two-character pattern: leftmost, non-overlapping matches.
template <typename Match, typename Emit>
std::string sub2(const std::string& s, Match match, Emit emit) {
  std::string out;
  out.reserve(s.size() * 2);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && match(s[i], s[i + 1])) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

using NgramCounts = std::map<std::string, int64_t>;

std::vector<std::string> split_ws(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

NgramCounts ngrams(const std::vector<std::string>& words, size_t n) {
  NgramCounts c;
  for (size_t i = 0; i + n <= words.size(); ++i) {
    std::string key = words[i];
    for (size_t k = 1; k < n; ++k) key += '\x1f' + words[i + k];
    ++c[key];
  }
  return c;
}

}  // namespace

std::string tokenize_13a(const std::string& text) {
  std::string line = text;
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all(line, "&quot;", "\"");
    replace_all(line, "&amp;", "&");
    replace_all(line, "&lt;", "<");
    replace_all(line, "&gt;", ">");
  }
  line = " " + line + " ";
  std::string a;
  a.reserve(line.size() * 3);
  for (char c : line) {
    if (is_13a_symbol(c)) {
      a += ' ';
      a += c;
      a += ' ';
    } else {
      a += c;
    }
  }
  auto is_pc = [](char c) { return c == '.' || c == ','; };
  a = sub2(a, [&](char x, char y) { return !is_digit(x) && is_pc(y); },
           [](std::string& o, char x, char y) { o += x; o += ' '; o += y; o += ' '; });
  a = sub2(a, [&](char x, char y) { return is_pc(x) && !is_digit(y); },
           [](std::string& o, char x, char y) { o += ' '; o += x; o += ' '; o += y; });
  a = sub2(a, [](char x, char y) { return is_digit(x) && y == '-'; },
           [](std::string& o, char x, char y) { o += x; o += ' '; o += y; o += ' '; });
  std::string out;
  for (const auto& w : split_ws(a)) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                      const std::string& smooth) {
  KNOT_CHECK(hypotheses.size() == references.size(), "bleu: {} hypotheses but {} references", hypotheses.size(),
             references.size());
  KNOT_CHECK(smooth == "exp" || smooth == "none", "bleu: smooth must be 'exp' or 'none', got '{}'", smooth);
  BleuScore b;
  for (size_t s = 0; s < hypotheses.size(); ++s) {
    const auto hyp = split_ws(tokenize_13a(hypotheses[s]));
    const auto ref = split_ws(tokenize_13a(references[s]));
    b.sys_len += static_cast<int64_t>(hyp.size());
    b.ref_len += static_cast<int64_t>(ref.size());
    for (size_t n = 1; n <= 4; ++n) {
      const NgramCounts h = ngrams(hyp, n), r = ngrams(ref, n);
      for (const auto& [g, c] : h) {
        const auto it = r.find(g);
        if (it != r.end()) b.matches[n - 1] += std::min(c, it->second);
      }
      b.totals[n - 1] += hyp.size() >= n ? static_cast<int64_t>(hyp.size() - n + 1) : 0;
    }
  }
  double smooth_mteval = 1.0, log_sum = 0.0;
  bool zero = false;
  for (int n = 0; n < 4; ++n) {
    if (b.totals[n] == 0) {
      zero = true;
      break;
    }
    if (b.matches[n] == 0) {
      if (smooth == "exp") {
        smooth_mteval *= 2;
        b.precisions[n] = 100.0 / (smooth_mteval * static_cast<double>(b.totals[n]));
      } else {
        zero = true;
      }
    } else {
      b.precisions[n] = 100.0 * static_cast<double>(b.matches[n]) / static_cast<double>(b.totals[n]);
    }
    if (b.precisions[n] > 0) log_sum += std::log(b.precisions[n] / 100.0);
  }
  if (b.sys_len < b.ref_len) b.brevity_penalty = b.sys_len > 0 ? std::exp(1.0 - double(b.ref_len) / double(b.sys_len)) : 0.0;
  b.score = zero ? 0.0 : 100.0 * b.brevity_penalty * std::exp(log_sum / 4.0);
  return b;
}

std::string BleuScore::str() const {
  const double ratio = ref_len > 0 ? double(sys_len) / double(ref_len) : 0.0;
  return fmt::format("BLEU = {:.2f} {:.1f}/{:.1f}/{:.1f}/{:.1f} (BP = {:.3f} ratio = {:.3f} hyp_len = {} ref_len = {})",
                     score, precisions[0], precisions[1], precisions[2], precisions[3], brevity_penalty, ratio, sys_len,
                     ref_len);
}

}  // namespace knot::train
