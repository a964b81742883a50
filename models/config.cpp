// Projection specs read from model configs (see config.h).
#include "models/config.h"

#include "core/error.h"

namespace knot::models {

using config::printable;

nn::ProjectionSpec read_projection(const Json& j, const std::string& context) {
  nn::ProjectionSpec spec;
  if (j.is_string()) {
    spec.kind = j.get<std::string>();
  } else {
    ConfigReader r(j, context);
    spec.kind = r.require<std::string>("kind");
    spec.options = r.get<Json>("options", Json::object());
    KNOT_CHECK(spec.options.is_object(), "config '{}': key 'options' must be an object, got {}", context,
               printable(spec.options));
    r.finish();
  }
  const std::vector<std::string> kinds = nn::projection_kinds();
  bool known = false;
  for (const auto& k : kinds) known = known || k == spec.kind;
  KNOT_CHECK(known, "config '{}': unknown projection kind '{}' (known: {})", context, spec.kind,
             fmt::join(kinds, ", "));
  return spec;
}

ProjectionSites read_projection_sites(ConfigReader& r) {
  ProjectionSites s;
  const std::string ctx = r.context();
  s.all = read_projection(r.get<Json>("projection", Json("mlp"),
                                      "the layer of every projection (q/k/v/out, FFN, output head): \"mlp\" (Linear) "
                                      "or {\"kind\": \"kan_<basis>\", \"options\": {...}} (the basis' options: knot "
                                      "config --schema bases)"),
                          ctx + ".projection");
  s.attention = s.ffn = s.output = s.all;
  ConfigReader p = r.child("projections", "per-site projections overriding 'projection' (each optional)");
  const char* docs[] = {"the q/k/v/out projections of every attention block", "the two layers of every FFN",
                        "the output head"};
  nn::ProjectionSpec* dst[] = {&s.attention, &s.ffn, &s.output};
  const char* sites[] = {"attention", "ffn", "output"};
  for (int i = 0; i < 3; ++i) {
    const Json v = p.get<Json>(sites[i], Json(), docs[i]);
    if (!v.is_null()) *dst[i] = read_projection(v, ctx + ".projections." + sites[i]);
  }
  p.finish();
  return s;
}

}  // namespace knot::models
