// The --resume tokenizer check (see resume_check.h).
#include "train/resume_check.h"

#include <filesystem>

#include "core/error.h"

namespace knot::train {

void check_resume_tokenizer_settings(const std::string& run_dir, const models::Json& tokenizer_cfg) {
  const std::filesystem::path saved_path = std::filesystem::path(run_dir) / "config.json";
  if (!std::filesystem::exists(saved_path)) return;
  const models::Json saved = models::load_json_file(saved_path.string());
  models::Json was = saved.value("tokenizer", models::Json::object());
  // The run may predate the one spelling of the tokenizer's file ("file"/"vocab" are now "path").
  for (const char* old_key : {"file", "vocab"})
    if (was.is_object() && was.contains(old_key) && !was.contains("path")) {
      was["path"] = was[old_key];
      was.erase(old_key);
    }
  KNOT_CHECK(was == tokenizer_cfg,
             "train --resume: the tokenizer settings differ from the run's ({} in '{}', {} now); a run keeps the "
             "tokenizer it was trained with: drop the tokenizer.* overrides, or train a new run",
             was.dump(), saved_path.string(), tokenizer_cfg.dump());
}

}  // namespace knot::train
