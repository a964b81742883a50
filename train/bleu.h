// Corpus BLEU-4 (Papineni et al. 2002) as sacreBLEU computes it by default: 13a tokenisation,
// n-gram counts clipped by the reference counts and summed over the corpus, geometric mean of the
// four precisions, brevity penalty BP = exp(1 - r/c) when c < r, score in [0, 100], and sacreBLEU's
// default "exp" smoothing (the k-th n-gram order with no match counts as 1 / (2^k · total)).
// smooth "none" gives the textbook definition (0 as soon as one order has no match).
//
// 13a tokenisation (mteval-v13a.pl, sacreBLEU's Tokenizer13a), applied to " text ":
//   drop "<skipped>", join "-\n" line breaks, newlines -> spaces, unescape &quot; &amp; &lt; &gt;
//   split off the symbols { | } ~ [ \ ] ^ _ ` ! " # $ % & ( ) * + : ; < = > ? @ /
//   split off '.' and ',' unless preceded by a digit, and again unless followed by a digit
//   split off '-' after a digit; then collapse whitespace.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace knot::train {

std::string tokenize_13a(const std::string& text);

struct BleuScore {
  double score = 0;                   // 0..100
  std::array<double, 4> precisions{};  // percent, after smoothing
  std::array<int64_t, 4> matches{}, totals{};
  double brevity_penalty = 1;
  int64_t sys_len = 0, ref_len = 0;
  std::string str() const;  // "BLEU = 27.31 60.0/33.3/20.0/10.0 (BP = 0.819 ratio = 0.833 hyp_len = 5 ref_len = 6)"
};

// One reference per hypothesis. smooth: "exp" (sacreBLEU's default) or "none".
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                      const std::string& smooth = "exp");

}  // namespace knot::train
