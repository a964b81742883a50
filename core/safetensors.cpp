// safetensors reader/writer (format in safetensors.h). Every check on a file names the file and
// the problem, so a truncated download or a corrupt checkpoint never turns into a crash or
// silently wrong weights.
#include "core/safetensors.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

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

namespace {

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

struct Header {
  std::vector<Entry> entries;  // sorted by offset, checked against each other and the data section
  std::map<std::string, std::string> metadata;
};

// Only JSON integers count: a float such as 1e30 or 1.5 would be cast out of range or truncated.
uint64_t json_count(const nlohmann::json& v, const char* what) {
  KNOT_CHECK(v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX),
             "{} must hold non-negative integers, got {}", what, v.dump());
  return v.get<uint64_t>();
}

// The header JSON `hs` of a file whose data section is `data_size` bytes; `path` names it in errors.
Header parse_header(const std::string& hs, uint64_t data_size, const std::string& path) {
  // nlohmann::json keeps the last of two equal keys; a duplicated tensor name would load one of two
  // tensors silently, so every object's keys are checked while parsing.
  std::vector<std::set<std::string>> keys;
  std::string entry;
  using Event = nlohmann::json::parse_event_t;
  auto on_event = [&](int depth, Event event, nlohmann::json& parsed) {
    // A valid header nests three levels (header, entry, shape); much deeper nesting would overflow
    // the stack when an error message prints the value.
    KNOT_CHECK(depth <= 16, "load_safetensors: '{}': the header's JSON is nested deeper than 16 levels", path);
    if (event == Event::object_start) {
      keys.emplace_back();
    } else if (event == Event::object_end) {
      keys.pop_back();
    } else if (event == Event::key) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (depth == 1) entry = k;
      if (!keys.back().insert(k).second) {
        if (depth == 1) KNOT_FAIL("load_safetensors: '{}': duplicate tensor name '{}' in the header", path, k);
        KNOT_FAIL("load_safetensors: '{}': duplicate key '{}' in the header entry '{}'", path, k, entry);
      }
    }
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hs, on_event);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    KNOT_FAIL("load_safetensors: '{}' has a corrupt JSON header: {}", path, e.what());
  }
  KNOT_CHECK(header.is_object(), "load_safetensors: '{}': the header is not a JSON object", path);

  Header out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      KNOT_CHECK(it->is_object(), "load_safetensors: '{}': __metadata__ is not an object", path);
      for (auto m = it->begin(); m != it->end(); ++m)
        out.metadata[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      continue;
    }
    const auto& v = *it;
    Entry e{it.key(), DType::f32, {}, 0, 0};
    uint64_t want = 0;
    try {
      KNOT_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
                 "entry needs dtype, shape and data_offsets");
      const auto& dt = v.at("dtype");
      KNOT_CHECK(dt.is_string() && parse_st_dtype(dt.get<std::string>(), &e.dtype), "unsupported dtype {}", dt.dump());
      const auto& sh = v.at("shape");
      KNOT_CHECK(sh.is_array() && sh.size() <= static_cast<size_t>(kMaxDims),
                 "shape must be an array of at most {} sizes, got {}", kMaxDims, sh.dump());
      for (const auto& d : sh) {
        e.shape.push_back(static_cast<int64_t>(json_count(d, "shape")));  // each <= INT64_MAX
      }
      const auto& offs = v.at("data_offsets");
      KNOT_CHECK(offs.is_array() && offs.size() == 2, "bad data_offsets {}", offs.dump());
      e.begin = json_count(offs[0], "data_offsets");
      e.end = json_count(offs[1], "data_offsets");
      KNOT_CHECK(e.begin <= e.end, "bad data_offsets {}", offs.dump());
    } catch (const Error& err) {
      KNOT_FAIL("load_safetensors: '{}': tensor '{}': {}", path, e.name, err.what());
    } catch (const std::exception& err) {
      KNOT_FAIL("load_safetensors: '{}': tensor '{}': malformed entry ({})", path, e.name, err.what());
    }
    const std::string what = fmt::format("load_safetensors: '{}': tensor '{}' {}", path, e.name, st_dtype(e.dtype));
    want = shape_nbytes(e.shape, dtype_size(e.dtype), what.c_str());
    KNOT_CHECK(e.end - e.begin == want, "load_safetensors: '{}': tensor '{}' {} {} needs {} bytes but has {}", path,
               e.name, st_dtype(e.dtype), shape_str(e.shape), want, e.end - e.begin);
    KNOT_CHECK(e.end <= data_size,
               "load_safetensors: '{}' is truncated: tensor '{}' ends at byte {} of a {}-byte data section", path,
               e.name, e.end, data_size);
    out.entries.push_back(std::move(e));
  }
  std::sort(out.entries.begin(), out.entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < out.entries.size(); ++i)
    KNOT_CHECK(out.entries[i].begin >= out.entries[i - 1].end, "load_safetensors: '{}': tensors '{}' and '{}' overlap",
               path, out.entries[i - 1].name, out.entries[i].name);
  return out;
}

// The header length word: at most 100 MiB and inside a file of `fsize` bytes.
uint64_t checked_header_length(uint64_t hlen, uint64_t fsize, const std::string& path) {
  KNOT_CHECK(fsize >= 8, "load_safetensors: '{}' is {} bytes, too short for a safetensors header", path, fsize);
  KNOT_CHECK(hlen <= fsize - 8 && hlen <= (100ull << 20),
             "load_safetensors: '{}' is truncated or not safetensors (header length {} but file is {} bytes)", path,
             hlen, fsize);
  return hlen;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  KNOT_CHECK(f.good(), "load_safetensors: cannot open '{}'", path);
  const uint64_t fsize = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  uint64_t hlen = 0;
  if (fsize >= 8) f.read(reinterpret_cast<char*>(&hlen), 8);
  checked_header_length(hlen, fsize, path);
  std::string hs(hlen, '\0');
  f.read(hs.data(), static_cast<std::streamsize>(hlen));
  KNOT_CHECK(f.good(), "load_safetensors: '{}': reading the header failed", path);
  Header h = parse_header(hs, fsize - 8 - hlen, path);
  SafetensorsFile out;
  out.metadata = std::move(h.metadata);
  for (const auto& e : h.entries) {
    Tensor t = empty(e.shape, e.dtype);
    f.seekg(static_cast<std::streamoff>(8 + hlen + e.begin));
    if (e.end > e.begin) f.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(e.end - e.begin));
    KNOT_CHECK(f.good(), "load_safetensors: '{}': reading tensor '{}' failed", path, e.name);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name) {
  uint64_t hlen = 0;
  if (bytes.size() >= 8) std::memcpy(&hlen, bytes.data(), 8);
  checked_header_length(hlen, bytes.size(), name);
  Header h = parse_header(std::string(bytes.substr(8, hlen)), bytes.size() - 8 - hlen, name);
  SafetensorsFile out;
  out.metadata = std::move(h.metadata);
  const char* data = bytes.data() + 8 + hlen;
  for (const auto& e : h.entries) {
    Tensor t = empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.raw_data(), data + e.begin, e.end - e.begin);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

}  // namespace knot
