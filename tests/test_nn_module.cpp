// nn::Module naming, state_dict, safetensors save/load and their error cases; optimizers.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/safetensors.h"
#include "nn/mlp.h"
#include "optim/optimizer.h"
#include "tests/helpers.h"

using namespace knot;

namespace {
std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("knot_test_" + std::to_string(::getpid()) + "_" + name)).string();
}
}  // namespace

TEST_CASE("module: dotted parameter names and counts follow PyTorch", "[nn]") {
  nn::MLP mlp({3, 5, 2}, "relu");
  const auto names = mlp.named_parameters();
  REQUIRE(names.size() == 4);
  CHECK(names[0].first == "layers.0.weight");
  CHECK(names[1].first == "layers.0.bias");
  CHECK(names[2].first == "layers.1.weight");
  CHECK(names[3].first == "layers.1.bias");
  CHECK(names[0].second.shape() == Shape{5, 3});
  CHECK(mlp.num_parameters() == 3 * 5 + 5 + 5 * 2 + 2);
  for (auto& [n, p] : names) CHECK(p.requires_grad());
}

TEST_CASE("module: Linear init bounds match PyTorch's U(-1/sqrt(in), 1/sqrt(in))", "[nn]") {
  manual_seed(3);
  nn::Linear lin(100, 50);
  const double bound = 1.0 / std::sqrt(100.0);
  double lo = 1, hi = -1;
  for (float v : lin.weight.to_vector<float>()) { lo = std::min<double>(lo, v); hi = std::max<double>(hi, v); }
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi > 0.9 * bound);  // the whole range is used
  CHECK(lo < -0.9 * bound);
}

TEST_CASE("safetensors: save -> load gives identical tensors and outputs", "[nn][io]") {
  manual_seed(1);
  nn::MLP a({4, 8, 3}, "gelu");
  manual_seed(2);
  nn::MLP b({4, 8, 3}, "gelu");
  const Tensor x = rand({5, 4});
  REQUIRE_FALSE(knot::test::all_close(a.forward(x), b.forward(x)));
  const std::string path = tmp_path("roundtrip.safetensors");
  a.save(path, {{"format", "pt"}});
  b.load(path);
  REQUIRE(a.forward(x).to_vector<float>() == b.forward(x).to_vector<float>());
  const auto f = load_safetensors(path);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.tensors.size() == 4);
  std::filesystem::remove(path);
}

TEST_CASE("safetensors: truncated, corrupt and mismatched files are clear errors", "[nn][io]") {
  nn::MLP a({4, 8, 3});
  const std::string path = tmp_path("bad.safetensors");
  a.save(path);
  const auto size = std::filesystem::file_size(path);

  SECTION("truncated data") {
    std::filesystem::resize_file(path, size - 10);
    REQUIRE_THROWS_WITH(load_safetensors(path), Catch::Contains("truncated") && Catch::Contains(path));
  }
  SECTION("truncated header") {
    std::filesystem::resize_file(path, 20);
    REQUIRE_THROWS_WITH(load_safetensors(path), Catch::Contains("truncated") || Catch::Contains("corrupt"));
  }
  SECTION("too short") {
    std::filesystem::resize_file(path, 3);
    REQUIRE_THROWS_WITH(load_safetensors(path), Catch::Contains("too short"));
  }
  SECTION("corrupt header JSON") {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    f.write("#", 1);
    f.close();
    REQUIRE_THROWS_WITH(load_safetensors(path), Catch::Contains("corrupt JSON header"));
  }
  SECTION("missing file") {
    REQUIRE_THROWS_WITH(load_safetensors(path + ".nope"), Catch::Contains("cannot open"));
  }
  SECTION("shape mismatch names every problem and leaves the model untouched") {
    nn::MLP other({4, 7, 3});
    const auto before = other.parameters()[0].to_vector<float>();
    REQUIRE_THROWS_WITH(other.load(path), Catch::Contains("layers.0.weight") && Catch::Contains("layers.0.bias") &&
                                              Catch::Contains("layers.1.weight") && Catch::Contains("(8, 4)"));
    REQUIRE(other.parameters()[0].to_vector<float>() == before);
  }
  SECTION("missing and unexpected names") {
    nn::MLP bigger({4, 8, 8, 3});
    REQUIRE_THROWS_WITH(bigger.load(path), Catch::Contains("missing 'layers.2.weight'") &&
                                               Catch::Contains("layers.1.weight"));
  }
  std::filesystem::remove(path);
}

namespace {
// A safetensors file from a hand-written header and `data_bytes` zero bytes of data.
std::string raw_safetensors(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\0');
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
}  // namespace

TEST_CASE("safetensors: a duplicated tensor name is an error naming it, not a silent pick", "[nn][io]") {
  // nlohmann::json keeps the last of two equal keys: without a check the file loads one 'w' of two.
  const std::string bytes = raw_safetensors(
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8);
  const std::string path = tmp_path("dup.safetensors");
  write_bytes(path, bytes);
  REQUIRE_THROWS_WITH(load_safetensors(path), Catch::Contains("duplicate tensor name 'w'") && Catch::Contains(path));
  REQUIRE_THROWS_WITH(parse_safetensors(bytes, "mem"), Catch::Contains("duplicate tensor name 'w'"));
  // A key repeated inside one entry (two data_offsets) is as ambiguous.
  const std::string inner = raw_safetensors(
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"data_offsets":[4,8]}})", 8);
  REQUIRE_THROWS_WITH(parse_safetensors(inner, "mem"), Catch::Contains("duplicate key 'data_offsets'") &&
                                                         Catch::Contains("'w'"));
  std::filesystem::remove(path);
}

TEST_CASE("safetensors: the in-memory reader matches the file reader", "[nn][io]") {
  nn::MLP a({4, 8, 3});
  const std::string path = tmp_path("mem.safetensors");
  a.save(path, {{"format", "pt"}});
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto f = load_safetensors(path), m = parse_safetensors(bytes, "mem");
  REQUIRE(m.tensors.size() == f.tensors.size());
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    CHECK(m.tensors[i].first == f.tensors[i].first);
    CHECK(m.tensors[i].second.to_vector<float>() == f.tensors[i].second.to_vector<float>());
  }
  CHECK(m.metadata == f.metadata);
  std::filesystem::remove(path);
}

TEST_CASE("safetensors: the fixture file (also the fuzzer's seed) loads with its values", "[nn][io]") {
  const auto f = load_safetensors(
      (std::filesystem::path(__FILE__).parent_path() / "fixtures/safetensors/tiny.safetensors").string());
  REQUIRE(f.tensors.size() == 4);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.tensors[0].first == "w");
  CHECK(f.tensors[0].second.to_vector<float>() == std::vector<float>{1, -2, 0.5f, 4});
  CHECK(f.tensors[1].second.to_vector<float>() == std::vector<float>{0.25f, -0.125f});
  CHECK(f.tensors[2].second.to_vector<int64_t>() == std::vector<int64_t>{7, -1, int64_t{1} << 40});
  CHECK(f.tensors[3].second.shape() == Shape{0});
}

TEST_CASE("safetensors: absurd shapes and offsets are errors, not overflows", "[nn][io]") {
  // Each of these once reached integer overflow or a float->integer cast out of range.
  const char* headers[] = {
      R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})",
      R"({"w":{"dtype":"F64","shape":[3037000500,3037000500],"data_offsets":[0,8]}})",
      R"({"w":{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}})",
      R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})",
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,1e30]}})",
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})",
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,0]}})",
      R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
      R"({"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})",
      R"({"w":{"dtype":"F32","shape":{"a":1},"data_offsets":[0,4]}})",
  };
  for (const char* h : headers) {
    INFO(h);
    REQUIRE_THROWS_AS(parse_safetensors(raw_safetensors(h, 8), "mem"), Error);
  }
  // A shape nested a million levels deep: naming it in the error printed it recursively, and the
  // stack overflowed.
  const std::string deep = std::string(1 << 20, '[') + std::string(1 << 20, ']');
  REQUIRE_THROWS_WITH(
      parse_safetensors(raw_safetensors(R"({"w":{"dtype":"F32","shape":[)" + deep + R"(],"data_offsets":[0,4]}})", 8), "mem"),
      Catch::Contains("nested deeper"));
}

TEST_CASE("safetensors: saving over a checkpoint replaces it whole", "[nn][io]") {
  const std::string path = tmp_path("atomic.safetensors");
  nn::MLP a({2, 3});
  a.save(path);
  a.save(path);
  REQUIRE_FALSE(std::filesystem::exists(path + ".tmp"));
  REQUIRE_NOTHROW(load_safetensors(path));
  std::filesystem::remove(path);
}

TEST_CASE("optim: Adam and AdamW steps match the formulas", "[optim]") {
  for (bool decoupled : {false, true}) {
    Tensor p = from_values({1.0, -2.0}, {2}, DType::f64);
    p.requires_grad_();
    optim::AdamOptions o;
    o.decoupled = decoupled;
    optim::Adam adam({p}, 0.1, /*weight_decay=*/0.01, o);
    double pv[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
    for (int t = 1; t <= 3; ++t) {
      p.zero_grad();
      sum(mul(mul(p, p), 0.5)).backward();  // grad = p
      adam.step();
      for (int i = 0; i < 2; ++i) {
        double g = pv[i];
        if (decoupled) pv[i] -= 0.1 * 0.01 * pv[i];
        else g += 0.01 * pv[i];
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.999 * v[i] + 0.001 * g * g;
        const double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.999, t));
        pv[i] -= 0.1 * mh / (std::sqrt(vh) + 1e-8);
      }
    }
    const auto got = p.to_vector<double>();
    CHECK(got[0] == Approx(pv[0]).epsilon(1e-12));
    CHECK(got[1] == Approx(pv[1]).epsilon(1e-12));
  }
}

TEST_CASE("optim: clip_grad_norm_ scales to the max norm and reports the old norm", "[optim]") {
  Tensor a = from_values({3.0}, {1}, DType::f64), b = from_values({4.0}, {1}, DType::f64);
  a.requires_grad_();
  b.requires_grad_();
  sum(add(mul(a, a), mul(b, b))).backward();  // grads 6, 8 -> norm 10
  const double n = optim::clip_grad_norm_({a, b}, 1.0);
  CHECK(n == Approx(10.0));
  CHECK(a.grad().item() == Approx(0.6).epsilon(1e-5));
  CHECK(b.grad().item() == Approx(0.8).epsilon(1e-5));
}

TEST_CASE("optim: weight decay groups exclude biases", "[optim]") {
  nn::MLP mlp({3, 4, 2});
  const auto groups = optim::decay_groups(mlp, 0.1);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].params.size() == 2);
  CHECK(groups[0].weight_decay == 0.1);
  CHECK(groups[1].params.size() == 2);
  CHECK(groups[1].weight_decay == 0.0);
}

TEST_CASE("optim: the step inside backward makes step()'s updates and frees every gradient", "[optim]") {
  // Two identical MLPs (one with a parameter used twice), AdamW and SGD with momentum: the
  // in-backward model's parameters equal the plain model's bit for bit after every step, and no
  // gradient is left stored.
  for (int kind = 0; kind < 2; ++kind) {
    INFO((kind == 0 ? "AdamW" : "SGD"));
    manual_seed(5);
    nn::MLP a({6, 8, 3});
    manual_seed(5);
    nn::MLP b({6, 8, 3});
    const Tensor x = randn({10, 6}, DType::f32), w2 = randn({3, 3}, DType::f32);
    auto make = [&](nn::MLP& m) -> std::unique_ptr<optim::Optimizer> {
      if (kind == 0) return std::make_unique<optim::Adam>(optim::decay_groups(m, 0.01), 0.05);
      return std::make_unique<optim::SGD>(optim::decay_groups(m, 0.01), 0.05, 0.9);
    };
    auto oa = make(a), ob = make(b);
    ob->set_step_in_backward(true);
    REQUIRE(ob->step_in_backward());
    auto loss = [&](nn::MLP& m) {
      const Tensor y = m.forward(x);
      return sum(mul(tanh(matmul(y, w2)), y));  // y (and so every parameter) used along two paths
    };
    for (int t = 0; t < 4; ++t) {
      oa->zero_grad();
      loss(a).backward();
      oa->step();
      ob->begin_step_in_backward();
      loss(b).backward();
      for (const auto& [name, p] : b.named_parameters()) REQUIRE_FALSE(p.grad().defined());
    }
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      INFO(pa[i].first);
      REQUIRE(test::max_abs_diff(pa[i].second, pb[i].second) == 0.0);
    }
    REQUIRE(oa->steps() == ob->steps());
    // Misuse is a clear error: step() in this mode, a backward without begin_step_in_backward().
    REQUIRE_THROWS_WITH(ob->step(), Catch::Contains("begin_step_in_backward"));
    // A second backward in the same step would complete each gradient twice: refused, not applied twice.
    REQUIRE_THROWS_WITH(loss(b).backward(), Catch::Contains("completed twice"));
  }
}

TEST_CASE("optim: step inside backward refuses a second backward in one step and unhooks on destruction",
          "[optim]") {
  Tensor p = from_values({1.0, -2.0}, {2}, DType::f64);
  p.requires_grad_();
  {
    optim::Adam adam({p}, 0.1);
    adam.set_step_in_backward(true);
    REQUIRE_THROWS_WITH(sum(mul(p, p)).backward(), Catch::Contains("begin_step_in_backward"));
    adam.begin_step_in_backward();
    sum(mul(p, p)).backward();
    REQUIRE(p.to_vector<double>()[0] == Approx(0.9));  // Adam's first step moves by lr
    REQUIRE_THROWS_WITH(sum(mul(p, p)).backward(), Catch::Contains("completed twice"));
    {
      optim::SGD other({p}, 0.1);
      REQUIRE_THROWS_WITH(other.set_step_in_backward(true), Catch::Contains("hook"));
      REQUIRE_FALSE(other.step_in_backward());
    }
    // ... and the refused optimizer left adam's hook in place: the next step still runs in backward.
    adam.begin_step_in_backward();
    sum(mul(p, p)).backward();
    REQUIRE_FALSE(p.grad().defined());
  }
  // The optimizer is gone: backward stores the gradient again.
  sum(mul(p, p)).backward();
  REQUIRE(p.grad().defined());
}
