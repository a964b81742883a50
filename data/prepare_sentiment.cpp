// Sentence-level sentiment data for fine-tuning: the test fixtures of npm sentiment@5.0.2
// (amazon, imdb, yelp; 1000 labelled sentences each — the "From Group to Individual Labels"
// sentences of Kotzias et al., KDD 2015) → data/sentiment/{train,val,test}.jsonl.
// The split is stratified by (source, label): each of the six groups is shuffled with the seed and
// cut 80/10/10, so every split has the three sources and both labels in the same proportions.
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "data/jsonl.h"
#include "data/prepare.h"

namespace knot::data {

std::vector<SentimentExample> parse_sentiment_fixture(const nlohmann::json& j, const std::string& source,
                                                      SentimentStats* stats) {
  KNOT_CHECK(j.is_array(), "sentiment: {}: expected a JSON array, got {}", source, j.type_name());
  std::vector<SentimentExample> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    if (stats) ++stats->read;
    KNOT_CHECK(e.is_object() && e.contains("text") && e["text"].is_string(),
               "sentiment: {}: entry {} has no string \"text\"", source, i);
    std::string text = collapse_spaces(e["text"].get<std::string>());
    if (text.empty()) {
      if (stats) ++stats->empty;
      continue;
    }
    KNOT_CHECK(is_valid_utf8(text), "sentiment: {}: entry {} is not valid UTF-8", source, i);
    const auto& cls = e.contains("class") ? e["class"] : nlohmann::json();
    KNOT_CHECK(cls.is_number_integer() && (cls.get<int>() == 0 || cls.get<int>() == 1),
               "sentiment: {}: entry {} has class {}, expected 0 or 1", source, i, cls.dump());
    out.push_back({std::move(text), cls.get<int>(), source});
  }
  return out;
}

std::vector<SentimentExample> dedup_sentiment(const std::vector<SentimentExample>& in, SentimentStats* stats) {
  std::unordered_map<std::string, int> label_of;  // -1: seen with both labels
  for (const auto& e : in) {
    auto [it, fresh] = label_of.emplace(e.text, e.label);
    if (!fresh && it->second != e.label) it->second = -1;
  }
  std::unordered_map<std::string, bool> emitted;
  std::vector<SentimentExample> out;
  for (const auto& e : in) {
    if (label_of[e.text] < 0) {
      if (stats) ++stats->conflicting;
      continue;
    }
    if (emitted[e.text]) {
      if (stats) ++stats->duplicates;
      continue;
    }
    emitted[e.text] = true;
    out.push_back(e);
  }
  if (stats) stats->kept = static_cast<int64_t>(out.size());
  return out;
}

PrepareResult prepare_sentiment_from_dir(const std::string& src_dir, const PrepareOptions& opt) {
  const std::string dir = opt.data_dir + "/sentiment";
  const std::vector<std::string> names = {"train.jsonl", "val.jsonl", "test.jsonl"};
  PrepareResult res;
  if (!opt.force && is_prepared(dir)) {
    res.already_prepared = true;
    res.summary = fmt::format("sentiment: already prepared in {} (use --force to rebuild)", dir);
    return res;
  }
  check_overwrite(dir, names, opt.force);
  SentimentStats st;
  std::vector<SentimentExample> all;
  for (const std::string source : {"amazon", "imdb", "yelp"}) {
    const std::string path = src_dir + "/" + source + ".json";
    opt.log(fmt::format("sentiment: reading {}", path));
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file_bytes(path));
    } catch (const nlohmann::json::exception& e) {
      KNOT_FAIL("sentiment: {} is not valid JSON: {}", path, e.what());
    }
    auto part = parse_sentiment_fixture(j, source, &st);
    KNOT_CHECK(!part.empty(), "sentiment: {} holds no labelled sentences", path);
    all.insert(all.end(), part.begin(), part.end());
  }
  const auto kept = dedup_sentiment(all, &st);
  opt.log(fmt::format("sentiment: {} entries, {} empty dropped, {} duplicates dropped, {} with both labels dropped", st.read,
                      st.empty, st.duplicates, st.conflicting));
  // Stratify: groups in a fixed order (std::map), each shuffled with its own derived seed.
  std::map<std::pair<std::string, int>, std::vector<size_t>> groups;
  for (size_t i = 0; i < kept.size(); ++i) groups[{kept[i].source, kept[i].label}].push_back(i);
  std::vector<size_t> train, val, test;
  uint64_t group_seed = opt.seed;
  for (const auto& [key, members] : groups) {
    const auto s = split_indices(members.size(), 0.1, 0.1, group_seed++);
    for (const size_t i : s.train) train.push_back(members[i]);
    for (const size_t i : s.val) val.push_back(members[i]);
    for (const size_t i : s.test) test.push_back(members[i]);
  }
  auto write = [&](const std::string& name, std::vector<size_t> idx, uint64_t seed) {
    shuffle_indices(idx, seed);  // mix the groups so batches see all sources and labels
    std::vector<nlohmann::ordered_json> rows;
    for (const size_t i : idx) rows.push_back({{"text", kept[i].text}, {"label", kept[i].label}, {"source", kept[i].source}});
    KNOT_CHECK(!rows.empty(), "sentiment: the {} split would be empty", name);
    write_jsonl(dir + "/" + name, rows);
    res.files.emplace_back(dir + "/" + name, static_cast<int64_t>(rows.size()));
  };
  write("train.jsonl", train, opt.seed + 100);
  write("val.jsonl", val, opt.seed + 101);
  write("test.jsonl", test, opt.seed + 102);
  write_stamp(dir, "sentiment", opt.source_label.empty() ? src_dir : opt.source_label, res.files);
  res.summary = fmt::format("sentiment: {} sentences → train {}, val {}, test {} in {}", kept.size(), train.size(),
                            val.size(), test.size(), dir);
  return res;
}

}  // namespace knot::data
