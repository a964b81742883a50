// Reproducible batch orders (see batching.h).
#include "train/batching.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace knot::train {

void shuffle_counter(std::vector<int64_t>& v, uint64_t key, uint64_t draw) {
  for (size_t i = v.size(); i > 1; --i) {
    const double u = uniform_f64(philox_element(key, draw, i - 1));
    const size_t j = std::min(static_cast<size_t>(u * static_cast<double>(i)), i - 1);
    std::swap(v[i - 1], v[j]);
  }
}

int64_t bucketed_batch_count(int64_t n, int64_t batch_size, int64_t bucket_batches) {
  KNOT_CHECK(batch_size > 0 && bucket_batches > 0, "bucketed batches: batch_size {} and bucket_batches {} must be > 0",
             batch_size, bucket_batches);
  const int64_t chunk = batch_size * bucket_batches;
  int64_t count = 0;
  for (int64_t c = 0; c < n; c += chunk) count += (std::min(chunk, n - c) + batch_size - 1) / batch_size;
  return count;
}

std::vector<std::vector<int64_t>> bucketed_batches(int64_t n, int64_t batch_size, int64_t bucket_batches, uint64_t key,
                                                   int64_t epoch, const std::function<bool(int64_t, int64_t)>& less) {
  const int64_t expected = bucketed_batch_count(n, batch_size, bucket_batches);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  shuffle_counter(perm, key, 2 * static_cast<uint64_t>(epoch));
  std::vector<std::vector<int64_t>> batches;
  const size_t chunk = static_cast<size_t>(batch_size * bucket_batches);
  for (size_t c = 0; c < perm.size(); c += chunk) {
    const auto first = perm.begin() + static_cast<std::ptrdiff_t>(c);
    const auto last = perm.begin() + static_cast<std::ptrdiff_t>(std::min(perm.size(), c + chunk));
    std::stable_sort(first, last, less);
    for (auto it = first; it < last;) {
      const auto end = it + std::min<std::ptrdiff_t>(batch_size, last - it);
      batches.emplace_back(it, end);
      it = end;
    }
  }
  std::vector<int64_t> order(batches.size());
  std::iota(order.begin(), order.end(), 0);
  shuffle_counter(order, key, 2 * static_cast<uint64_t>(epoch) + 1);
  std::vector<std::vector<int64_t>> shuffled;
  shuffled.reserve(order.size());
  for (int64_t o : order) shuffled.push_back(std::move(batches[static_cast<size_t>(o)]));
  KNOT_CHECK(static_cast<int64_t>(shuffled.size()) == expected, "bucketed batches: internal batch count mismatch");
  return shuffled;
}

}  // namespace knot::train
