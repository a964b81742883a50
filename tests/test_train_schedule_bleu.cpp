// Learning-rate schedules against their formulas, and corpus BLEU / 13a tokenisation against
// hand-computed cases.
#include <cmath>

#include "tests/helpers.h"
#include "train/bleu.h"
#include "train/schedule.h"

using knot::train::corpus_bleu;
using knot::train::Schedule;
using knot::train::tokenize_13a;

TEST_CASE("schedule: constant, noam, linear and cosine follow their formulas", "[trainer]") {
  const Schedule c = Schedule::from_json(nullptr, 0.01, 100, 64);
  REQUIRE(c.at(1) == 0.01);
  REQUIRE(c.at(100) == 0.01);

  const Schedule noam = Schedule::from_json({{"kind", "noam"}, {"warmup_steps", 4000}}, 1.0, 100000, 512);
  REQUIRE(noam.at(1) == Approx(std::pow(512.0, -0.5) * std::pow(4000.0, -1.5)));
  REQUIRE(noam.at(4000) == Approx(std::pow(512.0, -0.5) * std::pow(4000.0, -0.5)));
  REQUIRE(noam.at(16000) == Approx(std::pow(512.0, -0.5) * std::pow(16000.0, -0.5)));
  REQUIRE(noam.at(4000) > noam.at(3999));
  REQUIRE(noam.at(4000) > noam.at(4001));

  const Schedule lin = Schedule::from_json({{"kind", "linear"}, {"warmup_steps", 10}}, 1.0, 110, 64);
  REQUIRE(lin.at(5) == Approx(0.5));
  REQUIRE(lin.at(10) == Approx(1.0));
  REQUIRE(lin.at(60) == Approx(0.5));
  REQUIRE(lin.at(110) == Approx(0.0).margin(1e-12));
  REQUIRE(lin.at(500) == Approx(0.0).margin(1e-12));

  const Schedule cos = Schedule::from_json({{"kind", "cosine"}, {"warmup_steps", 10}, {"min_lr", 0.1}}, 1.0, 110, 64);
  REQUIRE(cos.at(1) == Approx(0.1));
  REQUIRE(cos.at(60) == Approx(0.1 + 0.9 * 0.5));
  REQUIRE(cos.at(35) == Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI / 4))));
  REQUIRE(cos.at(110) == Approx(0.1));
}

TEST_CASE("schedule: config errors name the key", "[trainer]") {
  REQUIRE_THROWS_WITH(Schedule::from_json({{"kind", "step"}}, 1.0, 10, 8), Catch::Contains("'kind'"));
  REQUIRE_THROWS_WITH(Schedule::from_json({{"kind", "linear"}, {"warmup", 3}}, 1.0, 10, 8), Catch::Contains("warmup"));
  REQUIRE_THROWS_WITH(Schedule::from_json({{"warmup_steps", "ten"}}, 1.0, 10, 8), Catch::Contains("warmup_steps"));
  REQUIRE_THROWS_WITH(Schedule::from_json({{"kind", "noam"}}, 1.0, 10, 8), Catch::Contains("warmup_steps"));
}

TEST_CASE("bleu: 13a tokenisation splits punctuation and symbols as mteval-v13a", "[trainer]") {
  REQUIRE(tokenize_13a("Hello, world! It's 3.14 - (really).") == "Hello , world ! It's 3.14 - ( really ) .");
  REQUIRE(tokenize_13a("a.b,c") == "a . b , c");
  REQUIRE(tokenize_13a("1,000.5 and 2.") == "1,000.5 and 2 .");  // digits keep their separators; the final '.' splits
  REQUIRE(tokenize_13a("pages 10-20") == "pages 10 - 20");         // '-' after a digit
  REQUIRE(tokenize_13a("well-known") == "well-known");             // '-' between letters stays
  REQUIRE(tokenize_13a("&quot;Hi&quot; &amp; <b>") == "\" Hi \" & < b >");
  REQUIRE(tokenize_13a("x/y@z$5") == "x / y @ z $ 5");
  REQUIRE(tokenize_13a("  Grüße,  Welt  ") == "Grüße , Welt");
  REQUIRE(tokenize_13a("end-\nof line") == "endof line");
}

TEST_CASE("bleu: hand-computed corpus scores", "[trainer]") {
  // Perfect match.
  REQUIRE(corpus_bleu({"The cat sat on the mat."}, {"The cat sat on the mat."}).score == Approx(100.0));

  // Brevity penalty only: every n-gram matches, c = 5 < r = 6 -> BP = exp(1 - 6/5).
  const auto bp = corpus_bleu({"a b c d e"}, {"a b c d e f"});
  REQUIRE(bp.brevity_penalty == Approx(std::exp(-0.2)));
  REQUIRE(bp.score == Approx(100.0 * std::exp(-0.2)));

  // Clipped counts: hyp "the cat the cat on the mat" (7 tokens), ref "the cat is on the mat" (6):
  // 1-grams 5/7 (the:2 of 3, cat:1 of 2, on, mat), 2-grams 3/6 (the cat, on the, the mat),
  // 3-grams 1/5 (on the mat), 4-grams 0/4 -> exp smoothing 1/(2·4); BP = 1.
  const auto clip = corpus_bleu({"the cat the cat on the mat"}, {"the cat is on the mat"});
  REQUIRE(clip.matches == std::array<int64_t, 4>{5, 3, 1, 0});
  REQUIRE(clip.totals == std::array<int64_t, 4>{7, 6, 5, 4});
  REQUIRE(clip.score == Approx(100.0 * std::pow(5.0 / 7 * 1.0 / 2 * 1.0 / 5 * 1.0 / 8, 0.25)));
  REQUIRE(corpus_bleu({"the cat the cat on the mat"}, {"the cat is on the mat"}, "none").score == 0.0);

  // No n-gram matches at all: 0 without smoothing; with exp smoothing p_n = 1/(2^n · total_n).
  REQUIRE(corpus_bleu({"x y z w"}, {"a b c d"}, "none").score == 0.0);
  const double expect = 100.0 * std::pow(1.0 / 8 * 1.0 / 12 * 1.0 / 16 * 1.0 / 16, 0.25);
  REQUIRE(corpus_bleu({"x y z w"}, {"a b c d"}).score == Approx(expect));

  // Corpus level: counts are summed over sentences before the precisions are taken.
  const auto corpus = corpus_bleu({"a b c d", "e f"}, {"a b c d", "e g"});
  REQUIRE(corpus.matches == std::array<int64_t, 4>{5, 3, 2, 1});
  REQUIRE(corpus.totals == std::array<int64_t, 4>{6, 4, 2, 1});
  REQUIRE(corpus.score == Approx(100.0 * std::pow(5.0 / 6 * 3.0 / 4 * 2.0 / 2 * 1.0 / 1, 0.25)));

  // A hypothesis shorter than 4 tokens in total: no 4-grams -> 0.
  REQUIRE(corpus_bleu({"a b"}, {"a b"}).score == 0.0);
  REQUIRE_THROWS_WITH(corpus_bleu({"a"}, {}), Catch::Contains("1 hypotheses but 0 references"));
}
