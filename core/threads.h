// Compute threads of the CPU backend (defined in kernels/cpu/threads.cpp).
// The count: KNOT_NUM_THREADS if set (a whole number from 1 to max_num_threads()), else a config's
// train.threads if > 0, else all cores; KNOT_NUM_THREADS wins over the config. It is read at first
// use; a bad value throws knot::Error naming the variable and the limit (the knot command calls
// init_threads() at start-up, so it reports that before doing anything). Every compute thread
// flushes denormals to zero unless KNOT_FLUSH_DENORMALS=0.
#pragma once

#include <cstdint>

namespace knot {

// The number of threads CPU kernels use (reads KNOT_NUM_THREADS on the first call).
int num_threads();
// Sets the thread count (1 ... max_num_threads(), else throws), and the denormal mode of any thread
// it adds. Not affected by KNOT_NUM_THREADS (that is apply_thread_setting's job).
void set_num_threads(int n);
// The most threads knot runs: 4 x the hardware threads (more only adds waiting).
int max_num_threads();
// Reads KNOT_NUM_THREADS now (once; later calls do nothing): throws knot::Error if it is not a whole
// number from 1 to max_num_threads().
void init_threads();
// A config's thread count, e.g. apply_thread_setting(cfg.threads, "train.threads"): checks
// 0 <= value <= max_num_threads() (the error names `key`); then KNOT_NUM_THREADS, when set, wins;
// else value > 0 sets the count and 0 leaves it (all cores unless something set it).
void apply_thread_setting(int64_t config_value, const char* key);
// Whether the calling thread flushes denormals to zero.
bool flushes_denormals();

}  // namespace knot
