// safetensors reader/writer (format in safetensors.h). Every check on a file names the file and
// the problem, so a truncated download or a corrupt checkpoint never turns into a crash or
// silently wrong weights.
#include "core/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace knot {
namespace {

const char* st_dtype(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
  }
  return "?";
}

bool parse_st_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> table[] = {{"F32", DType::f32}, {"F64", DType::f64}, {"I32", DType::i32},
                                                        {"I64", DType::i64}, {"BF16", DType::bf16}, {"F16", DType::f16}};
  for (auto& [n, t] : table)
    if (s == n) { *out = t; return true; }
  return false;
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<Tensor> host;
  host.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    KNOT_CHECK(!header.contains(name) && name != "__metadata__", "save_safetensors: {}: duplicate or reserved name '{}'",
               path, name);
    Tensor h = t.detach().to(Device::cpu()).contiguous();
    const uint64_t n = h.nbytes();
    header[name] = {{"dtype", st_dtype(h.dtype())}, {"shape", h.shape()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    host.push_back(h);
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string hs = header.dump();
  while ((hs.size() + 8) % 8 != 0) hs.push_back(' ');  // data starts 8-byte aligned

  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    KNOT_CHECK(f.good(), "save_safetensors: cannot open '{}' for writing", tmp);
    const uint64_t hlen = hs.size();
    f.write(reinterpret_cast<const char*>(&hlen), 8);
    f.write(hs.data(), static_cast<std::streamsize>(hs.size()));
    for (const auto& h : host) f.write(static_cast<const char*>(h.raw_data()), static_cast<std::streamsize>(h.nbytes()));
    f.flush();
    KNOT_CHECK(f.good(), "save_safetensors: writing '{}' failed (disk full?); '{}' was left untouched", tmp, path);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  KNOT_CHECK(!ec, "save_safetensors: cannot move '{}' to '{}': {}", tmp, path, ec.message());
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  KNOT_CHECK(f.good(), "load_safetensors: cannot open '{}'", path);
  const uint64_t fsize = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  KNOT_CHECK(fsize >= 8, "load_safetensors: '{}' is {} bytes, too short for a safetensors header", path, fsize);
  uint64_t hlen = 0;
  f.read(reinterpret_cast<char*>(&hlen), 8);
  KNOT_CHECK(hlen <= fsize - 8 && hlen <= (100ull << 20),
             "load_safetensors: '{}' is truncated or not safetensors (header length {} but file is {} bytes)", path,
             hlen, fsize);
  std::string hs(hlen, '\0');
  f.read(hs.data(), static_cast<std::streamsize>(hlen));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hs);
  } catch (const std::exception& e) {
    KNOT_FAIL("load_safetensors: '{}' has a corrupt JSON header: {}", path, e.what());
  }
  KNOT_CHECK(header.is_object(), "load_safetensors: '{}': the header is not a JSON object", path);
  const uint64_t data_size = fsize - 8 - hlen;

  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  SafetensorsFile out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      KNOT_CHECK(it->is_object(), "load_safetensors: '{}': __metadata__ is not an object", path);
      for (auto m = it->begin(); m != it->end(); ++m)
        out.metadata[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      continue;
    }
    const auto& v = *it;
    Entry e{it.key(), DType::f32, {}, 0, 0};
    try {
      KNOT_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
                 "entry needs dtype, shape and data_offsets");
      KNOT_CHECK(parse_st_dtype(v.at("dtype").get<std::string>(), &e.dtype), "unsupported dtype {}",
                 v.at("dtype").dump());
      e.shape = v.at("shape").get<Shape>();
      check_shape(e.shape, "load_safetensors");
      const auto offs = v.at("data_offsets").get<std::vector<uint64_t>>();
      KNOT_CHECK(offs.size() == 2 && offs[0] <= offs[1], "bad data_offsets {}", v.at("data_offsets").dump());
      e.begin = offs[0];
      e.end = offs[1];
    } catch (const Error& err) {
      KNOT_FAIL("load_safetensors: '{}': tensor '{}': {}", path, e.name, err.what());
    } catch (const std::exception& err) {
      KNOT_FAIL("load_safetensors: '{}': tensor '{}': malformed entry ({})", path, e.name, err.what());
    }
    const std::string what = fmt::format("load_safetensors: '{}': tensor '{}' {}", path, e.name, st_dtype(e.dtype));
    const uint64_t want = shape_nbytes(e.shape, dtype_size(e.dtype), what.c_str());
    KNOT_CHECK(e.end - e.begin == want, "load_safetensors: '{}': tensor '{}' {} {} needs {} bytes but has {}", path,
               e.name, st_dtype(e.dtype), shape_str(e.shape), want, e.end - e.begin);
    KNOT_CHECK(e.end <= data_size,
               "load_safetensors: '{}' is truncated: tensor '{}' ends at byte {} of a {}-byte data section", path,
               e.name, e.end, data_size);
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < entries.size(); ++i)
    KNOT_CHECK(entries[i].begin >= entries[i - 1].end, "load_safetensors: '{}': tensors '{}' and '{}' overlap", path,
               entries[i - 1].name, entries[i].name);
  for (const auto& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    f.seekg(static_cast<std::streamoff>(8 + hlen + e.begin));
    f.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(e.end - e.begin));
    KNOT_CHECK(f.good(), "load_safetensors: '{}': reading tensor '{}' failed", path, e.name);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

}  // namespace knot
