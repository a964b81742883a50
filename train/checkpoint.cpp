// Atomic training checkpoints (see checkpoint.h).
#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "data/jsonl.h"

namespace fs = std::filesystem;

namespace knot::train {
namespace {

void fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  KNOT_CHECK(fd >= 0, "checkpoint: cannot open '{}' to sync it", p.string());
  const int rc = ::fsync(fd);
  ::close(fd);
  KNOT_CHECK(rc == 0, "checkpoint: fsync of '{}' failed", p.string());
}

std::string step_name(int64_t step) { return fmt::format("step-{:06d}", step); }

// Step number of "step-000120", or -1.
int64_t parse_step(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() <= 5 || name.size() > 5 + 18) return -1;  // 18 digits fit int64
  int64_t v = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

const char* kFiles[] = {"model.safetensors", "optimizer.safetensors", "trainer_state.json"};

bool complete(const fs::path& dir) {
  for (const char* f : kFiles)
    if (!fs::is_regular_file(dir / f)) return false;
  return true;
}

}  // namespace

bool all_finite(const nn::Module& model) {
  NoGradGuard ng;
  for (const auto& [name, t] : model.state_dict()) {
    if (!is_floating(t.dtype())) continue;
    for (double v : t.to(DType::f64).contiguous().to(Device::cpu()).to_vector<double>())
      if (!std::isfinite(v)) return false;
  }
  return true;
}

std::string save_checkpoint(const std::string& run_dir, int64_t step, const nn::Module& model,
                            const optim::Adam& optimizer, const models::Json& trainer_state,
                            const CheckpointOptions& options) {
  KNOT_CHECK(!optimizer.sharded(), "checkpoint: a sharded (ZeRO-1) optimizer's state must be gathered first");
  return save_checkpoint(run_dir, step, model, optimizer.state(), optimizer.steps(), trainer_state, options);
}

std::string save_checkpoint(const std::string& run_dir, int64_t step, const nn::Module& model,
                            const nn::NamedTensors& optimizer_state, int64_t optimizer_steps,
                            const models::Json& trainer_state, const CheckpointOptions& options) {
  KNOT_CHECK(all_finite(model), "checkpoint: step {}: the model holds NaN/Inf weights; not writing a checkpoint", step);
  const fs::path root = fs::path(run_dir) / "checkpoints";
  fs::create_directories(root);
  // Leftovers of a save that was killed midway.
  for (const auto& e : fs::directory_iterator(root))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) fs::remove_all(e.path());

  const std::string name = step_name(step);
  const fs::path tmp = root / fmt::format(".tmp-{}-{}", name, ::getpid());
  try {
    fs::create_directories(tmp);
    auto done = [&](const char* f) {
      fsync_path(tmp / f, false);
      if (options.after_file) options.after_file(f);
    };
    std::map<std::string, std::string> meta{{"format", "pt"},
                                            {"step", std::to_string(step)},
                                            {"num_parameters", std::to_string(model.num_parameters())}};
    if (!options.model_config_sha256.empty()) meta["model_config_sha256"] = options.model_config_sha256;
    model.save((tmp / kFiles[0]).string(), meta);
    done(kFiles[0]);
    save_safetensors((tmp / kFiles[1]).string(), optimizer_state,
                     {{"optimizer", "adam"}, {"steps", std::to_string(optimizer_steps)}});
    done(kFiles[1]);
    data::write_file_atomic((tmp / kFiles[2]).string(), trainer_state.dump(2) + "\n");
    done(kFiles[2]);
    fsync_path(tmp, true);
  } catch (...) {
    // A failed write (a full disk, an I/O error) leaves nothing behind; `latest` still names the
    // previous checkpoint. (A killed process cannot clean up: the next save removes its .tmp-*.)
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }

  const fs::path final_dir = root / name;
  if (fs::exists(final_dir)) {  // a resumed run re-saving a step it had saved before
    const fs::path old = root / fmt::format(".tmp-old-{}-{}", name, ::getpid());
    fs::rename(final_dir, old);
    fs::remove_all(old);
  }
  fs::rename(tmp, final_dir);
  fsync_path(root, true);
  data::write_file_atomic((root / "latest").string(), name + "\n");
  fsync_path(root, true);

  if (options.keep_last > 0) {
    std::vector<std::pair<int64_t, fs::path>> steps;
    for (const auto& e : fs::directory_iterator(root)) {
      const int64_t s = parse_step(e.path().filename().string());
      if (s >= 0 && e.is_directory()) steps.emplace_back(s, e.path());
    }
    std::sort(steps.begin(), steps.end());
    const int64_t excess = static_cast<int64_t>(steps.size()) - options.keep_last;
    for (int64_t i = 0; i < excess; ++i)
      if (steps[i].second.filename() != name) fs::remove_all(steps[i].second);
  }
  return final_dir.string();
}

std::string latest_checkpoint(const std::string& run_dir) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  const fs::path pointer = root / "latest";
  if (!fs::exists(pointer)) return "";
  std::string name = data::read_file_bytes(pointer.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
  KNOT_CHECK(parse_step(name) >= 0, "checkpoint: '{}' holds '{}', not a step directory name", pointer.string(), name);
  const fs::path dir = root / name;
  KNOT_CHECK(complete(dir), "checkpoint: '{}' names '{}', which is missing or incomplete", pointer.string(), dir.string());
  return dir.string();
}

int64_t checkpoint_dir_step(const std::string& dir) {
  fs::path p(dir);
  if (!p.has_filename()) p = p.parent_path();
  return parse_step(p.filename().string());
}

LoadedCheckpoint load_checkpoint(const std::string& dir, nn::Module& model, optim::Adam* optimizer,
                                 const std::string& model_config_sha256) {
  const fs::path d(dir);
  KNOT_CHECK(complete(d), "checkpoint: '{}' is missing or incomplete (expected model.safetensors, "
             "optimizer.safetensors, trainer_state.json)", dir);
  LoadedCheckpoint out;
  out.dir = dir;
  out.trainer_state = models::load_json_file((d / kFiles[2]).string());
  {
    const std::string path = (d / kFiles[0]).string();
    const SafetensorsFile f = load_safetensors(path);
    const auto it = f.metadata.find("model_config_sha256");
    if (!model_config_sha256.empty() && it != f.metadata.end())
      KNOT_CHECK(it->second == model_config_sha256,
                 "checkpoint: '{}' was written by a model of another config (model config sha256 {}, this model's "
                 "{}): the run's config.json 'model' section differs from the one the checkpoint was trained with "
                 "(e.g. a changed num_heads); restore it, or train a new run",
                 path, it->second.substr(0, 16), model_config_sha256.substr(0, 16));
    try {
      model.load_state_dict(f.tensors, true);
    } catch (const Error& e) {
      KNOT_FAIL("load: {}: {}", path, e.what());
    }
  }
  if (optimizer) {
    const SafetensorsFile f = load_safetensors((d / kFiles[1]).string());
    for (const auto& [n, t] : f.tensors) {
      if (!is_floating(t.dtype())) continue;
      NoGradGuard ng;
      for (double v : t.to(DType::f64).contiguous().to(Device::cpu()).to_vector<double>())
        KNOT_CHECK(std::isfinite(v), "checkpoint: '{}': optimizer state '{}' holds NaN/Inf values",
                   (d / kFiles[1]).string(), n);
    }
    const auto it = f.metadata.find("steps");
    KNOT_CHECK(it != f.metadata.end(), "checkpoint: '{}' has no 'steps' metadata", (d / kFiles[1]).string());
    const int64_t steps = parse_step("step-" + it->second);  // digits only, or -1
    KNOT_CHECK(steps >= 0 && it->second.size() <= 18, "checkpoint: '{}': metadata 'steps' must be a non-negative integer, got '{}'",
               (d / kFiles[1]).string(), it->second);
    optimizer->load_state(f.tensors, steps);
  }
  return out;
}

}  // namespace knot::train
