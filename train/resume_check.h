// A check shared by the tasks that train their own tokenizer (translation, lm): `--resume` keeps the
// tokenizer the run was trained with, so tokenizer.* settings that differ from the run's saved
// config.json are an error naming both (a changed setting would describe another tokenizer).
#pragma once

#include <string>

#include "models/config.h"

namespace knot::train {

// No-op when run_dir has no config.json yet.
void check_resume_tokenizer_settings(const std::string& run_dir, const models::Json& tokenizer_cfg);

}  // namespace knot::train
