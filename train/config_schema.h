// Every config key of every task, as the readers declare them (core/config.h: a read names the key,
// its type, default and meaning), and a whole-config check that runs no work: `knot config`.
//
// A task's schema is what its entry point reads, recorded: the entry point runs under a stopping
// config::Recorder on a minimal config and stops at config::reading_done(), before it reads data
// or writes anything. So the schema cannot drift from the code: a key is listed because it is read.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"

namespace knot::train {

// "translation", "electra", "lm" (knot train), "sentiment" (knot finetune), "fit" (knot fit), and the
// shared parts: "train" (the trainer's object) and "bases" (every KAN basis' options, under
// "kan_<basis>.").
std::vector<std::string> schema_names();
// The keys of one of them, in reading order; an error naming the known names for another.
std::vector<config::KeyInfo> config_schema(const std::string& name);
// Reads and checks every key of `cfg` (its task from "task"; for fit, knot fit's) as the task would,
// without reading data or writing anything. Returns the keys read.
std::vector<config::KeyInfo> check_config(const config::Json& cfg);
// A table of the keys: key, type, default, meaning. Markdown when `markdown`, else aligned text.
std::string schema_table(const std::vector<config::KeyInfo>& keys, bool markdown);

}  // namespace knot::train
