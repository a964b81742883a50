// Model factory and parameter table (see factory.h).
#include "models/factory.h"

#include <algorithm>

#include "models/decoder_only.h"
#include "models/electra.h"
#include "models/encoder_decoder.h"

namespace knot::models {
namespace {

std::string grouped(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

}  // namespace

std::shared_ptr<nn::Module> build_model(const Json& cfg) {
  KNOT_CHECK(cfg.is_object() && cfg.contains("model") && cfg["model"].is_string(),
             "config: needs a string key 'model' (encoder_decoder, decoder_only or electra)");
  const std::string kind = cfg["model"].get<std::string>();
  if (kind == "encoder_decoder") return std::make_shared<EncoderDecoderTransformer>(EncoderDecoderConfig::from_json(cfg));
  if (kind == "decoder_only") return std::make_shared<DecoderOnlyTransformer>(DecoderOnlyConfig::from_json(cfg));
  if (kind == "electra") return std::make_shared<Electra>(ElectraConfig::from_json(cfg));
  KNOT_FAIL("config: unknown model '{}' (known: encoder_decoder, decoder_only, electra)", kind);
}

std::string parameter_table(const nn::Module& m, int max_depth) {
  std::string out;
  size_t width = 5;
  std::vector<std::pair<std::string, int64_t>> rows;
  for (const auto& [name, mod] : m.named_modules()) {
    if (name.empty()) continue;
    const int depth = 1 + static_cast<int>(std::count(name.begin(), name.end(), '.'));
    if (depth > max_depth) continue;
    const int64_t n = mod->num_parameters();
    if (n == 0) continue;
    rows.emplace_back(std::string(2 * (depth - 1), ' ') + name + " (" + mod->type_name() + ")", n);
    width = std::max(width, rows.back().first.size());
  }
  for (const auto& [label, n] : rows) out += fmt::format("{:<{}}  {:>12}\n", label, width, grouped(n));
  out += fmt::format("{:<{}}  {:>12}\n", "total", width, grouped(m.num_parameters()));
  return out;
}

}  // namespace knot::models
