// Batch order for the training tasks: reproducible from (key, epoch) alone, so the trainer's data
// position is just a micro-batch counter and a resumed run sees the batches of an uninterrupted one.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace knot::train {

// Fisher–Yates driven by the counter-based Philox RNG: a pure function of (key, draw) and v.
void shuffle_counter(std::vector<int64_t>& v, uint64_t key, uint64_t draw);

// One epoch of length-bucketed batches over examples 0 … n−1: shuffle them (draw 2·epoch), cut the
// order into chunks of batch_size · bucket_batches, sort each chunk by `less` (stable; e.g. by
// length, so a batch holds similar lengths and little padding), cut each chunk into batches of
// batch_size, then shuffle the batches (draw 2·epoch + 1).
std::vector<std::vector<int64_t>> bucketed_batches(int64_t n, int64_t batch_size, int64_t bucket_batches, uint64_t key,
                                                   int64_t epoch, const std::function<bool(int64_t, int64_t)>& less);
// The number of batches bucketed_batches gives: the same every epoch (chunk sizes do not depend on
// the permutation).
int64_t bucketed_batch_count(int64_t n, int64_t batch_size, int64_t bucket_batches);

}  // namespace knot::train
