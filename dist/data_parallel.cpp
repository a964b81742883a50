// Gradient buckets, overlap with backward, and ZeRO-1 (see data_parallel.h).
#include "dist/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <string_view>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "data/prepare.h"  // sha256_hex
#include "models/config.h"  // Json
#include "ops/ops.h"

namespace knot::dist {

namespace {

void* raw(const Tensor& t) {
  KNOT_CHECK(t.is_contiguous() && t.is_cpu(), "data parallel: buffers must be contiguous CPU tensors");
  if (t.dtype() == DType::f32) return t.data<float>();
  if (t.dtype() == DType::f64) return t.data<double>();
  KNOT_FAIL("data parallel: parameters must be f32 or f64, got {}", dtype_name(t.dtype()));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Tensor gather_rows(const Comm& comm, const Tensor& x) {
  if (!comm.distributed()) return x;
  // Each rank sends "dtype rank-of-shape dims... | bytes"; ranks without rows send an empty string.
  std::string mine;
  if (x.defined() && x.numel() > 0) {
    const Tensor c = x.contiguous();
    const models::Json head{{"dtype", dtype_name(c.dtype())}, {"shape", c.shape()}};
    const std::string h = head.dump();
    mine = std::to_string(h.size()) + ":" + h;
    mine.append(static_cast<const char*>(raw(c)), static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
  }
  const std::vector<std::string> all = comm.all_gather(mine);
  std::vector<Tensor> parts;
  for (const std::string& s : all) {
    if (s.empty()) continue;
    const size_t colon = s.find(':');
    const size_t hlen = std::stoul(s.substr(0, colon));
    const models::Json head = models::Json::parse(s.substr(colon + 1, hlen));
    const DType dt = head.at("dtype").get<std::string>() == "f64" ? DType::f64 : DType::f32;
    const Tensor t = empty(head.at("shape").get<Shape>(), dt);
    const size_t bytes = static_cast<size_t>(t.numel()) * dtype_size(dt);
    KNOT_CHECK(s.size() == colon + 1 + hlen + bytes, "gather_rows: a rank sent a malformed block");
    std::memcpy(raw(t), s.data() + colon + 1 + hlen, bytes);
    parts.push_back(t);
  }
  if (parts.empty()) return Tensor();
  return parts.size() == 1 ? parts[0] : cat(parts, 0);
}

DataParallel::DataParallel(const Comm& comm, optim::Adam& opt, const std::vector<Tensor>& model_params,
                           DataParallelOptions options)
    : comm_(comm), opt_(opt), options_(options) {
  KNOT_CHECK(options_.bucket_bytes > 0, "data parallel: bucket size must be > 0");
  KNOT_CHECK(!opt_.step_in_backward(), "data parallel: train.optimizer_in_backward cannot be used with several ranks "
                                       "(each update needs the gradient summed over the ranks first)");
  // (gi, i) of every parameter the optimizer steps.
  std::map<const TensorImpl*, std::pair<size_t, size_t>> where;
  const auto& groups = opt_.groups();
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (size_t i = 0; i < groups[gi].params.size(); ++i) where[groups[gi].params[i].impl()] = {gi, i};
  slot_of_.resize(groups.size());
  for (size_t gi = 0; gi < groups.size(); ++gi) slot_of_[gi].assign(groups[gi].params.size(), SIZE_MAX);
  // Reverse registration order: backward completes the last layers first.
  for (auto it = model_params.rbegin(); it != model_params.rend(); ++it) {
    const auto w = where.find(it->impl());
    if (w == where.end() || slot_of_[w->second.first][w->second.second] != SIZE_MAX) continue;
    KNOT_CHECK(it->is_cpu(), "data parallel: the MPI path needs CPU parameters (GPU ranks use NCCL, docs/distributed.md)");
    Slot s;
    s.p = *it;
    s.gi = w->second.first;
    s.i = w->second.second;
    s.numel = it->numel();
    slot_of_[s.gi][s.i] = slots_.size();
    slots_.push_back(s);
  }
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (size_t i = 0; i < groups[gi].params.size(); ++i)
      KNOT_CHECK(slot_of_[gi][i] != SIZE_MAX, "data parallel: an optimizer parameter is not among the model's");
  // Buckets of about bucket_bytes, one dtype each.
  for (size_t k = 0; k < slots_.size(); ++k) {
    Slot& s = slots_[k];
    const DType dt = s.p.dtype();
    const int64_t bytes = s.numel * static_cast<int64_t>(dtype_size(dt));
    if (buckets_.empty() || buckets_.back().dtype != dt ||
        (buckets_.back().numel * static_cast<int64_t>(dtype_size(dt)) + bytes > options_.bucket_bytes &&
         buckets_.back().numel > 0)) {
      buckets_.emplace_back();
      buckets_.back().dtype = dt;
    }
    Bucket& b = buckets_.back();
    s.bucket = buckets_.size() - 1;
    s.offset = b.numel;
    b.numel += s.numel;
    b.slots.push_back(k);
  }
  const int64_t world = comm_.size();
  for (Bucket& b : buckets_) {
    b.block = (b.numel + world - 1) / world;
    b.padded = b.block * world;
    b.flat = zeros({b.padded}, b.dtype);
  }
  any_grad_.assign(slots_.size(), 0);
  for (const Slot& s : slots_) params_.push_back(s.p);
  if (options_.zero1) {
    // Rank r owns positions [r·block, (r+1)·block) of every bucket.
    std::vector<std::vector<optim::Adam::Range>> owned(groups.size());
    for (size_t gi = 0; gi < groups.size(); ++gi) owned[gi].resize(groups[gi].params.size());
    const int64_t r = comm_.rank();
    for (const Slot& s : slots_) {
      const Bucket& b = buckets_[s.bucket];
      const int64_t lo = std::max(s.offset, r * b.block), hi = std::min(s.offset + s.numel, (r + 1) * b.block);
      owned[s.gi][s.i] = hi > lo ? optim::Adam::Range{lo - s.offset, hi - s.offset} : optim::Adam::Range{0, 0};
    }
    opt_.shard(owned);
  }
}

DataParallel::~DataParallel() { remove_hooks(); }

int64_t DataParallel::optimizer_elements() const {
  int64_t n = 0;
  const auto& groups = opt_.groups();
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (size_t i = 0; i < groups[gi].params.size(); ++i) n += opt_.exp_avg(gi, i).numel();
  return n;
}

void DataParallel::install_hooks() {
  for (size_t k = 0; k < slots_.size(); ++k) {
    TensorImpl* impl = slots_[k].p.impl();
    KNOT_CHECK(!impl->post_accumulate_hook, "data parallel: a parameter already has a post-accumulate hook");
    impl->post_accumulate_hook = [this, k](const Tensor&, const Tensor& g) { on_grad(k, g); };
  }
  hooked_ = true;
}

void DataParallel::remove_hooks() {
  if (!hooked_) return;
  for (Slot& s : slots_) s.p.impl()->post_accumulate_hook = nullptr;
  hooked_ = false;
}

void DataParallel::begin_last_backward() {
  KNOT_CHECK(!in_backward_, "data parallel: begin_last_backward() twice without finish_backward()");
  in_backward_ = true;
  next_launch_ = 0;
  for (Slot& s : slots_) s.ready = s.has_grad = false;
  NoGradGuard ng;
  for (Bucket& b : buckets_) {
    b.ready = 0;
    b.launched = false;
    if (b.padded > b.numel) b.flat.slice(0, b.numel, b.padded).zero_();  // ZeRO-1 padding: holds values of the last gather
  }
  if (options_.overlap && comm_.distributed()) install_hooks();
}

void DataParallel::on_grad(size_t k, const Tensor& g) {
  Slot& s = slots_[k];
  Bucket& b = buckets_[s.bucket];
  NoGradGuard ng;
  const Tensor dst = b.flat.slice(0, s.offset, s.offset + s.numel);
  if (s.ready) {
    // A second completion in one backward (a weight shared by separately recomputed segments).
    KNOT_CHECK(!b.launched, "data parallel: the gradient of a parameter of shape {} completed again after its bucket "
                            "was sent (a weight shared between activation-checkpointed segments); set "
                            "train.dp_overlap=false",
               shape_str(s.p.shape()));
    dst.add_(g.reshape({-1}));
  } else {
    dst.copy_(g.reshape({-1}));
    s.ready = s.has_grad = true;
    ++b.ready;
  }
  if (b.ready == b.slots.size()) launch_ready();
  for (size_t j = 0; j < next_launch_; ++j) buckets_[j].req.test();  // drive MPI's progress
}

void DataParallel::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready == buckets_[next_launch_].slots.size()) {
    launch(next_launch_);
    ++next_launch_;
    ++stats_.buckets_in_backward;
  }
}

void DataParallel::launch(size_t bi) {
  Bucket& b = buckets_[bi];
  b.launched = true;
  // What a ring algorithm sends per rank: (N-1)/N of the buffer per reduce-scatter or all-gather
  // phase; an all-reduce is both phases.
  const double ring = static_cast<double>(comm_.size() - 1) / comm_.size() * static_cast<double>(b.padded) *
                      static_cast<double>(dtype_size(b.dtype));
  stats_.bytes_sent += options_.zero1 ? ring : 2 * ring;
  if (options_.zero1)
    b.req = comm_.reduce_scatter_sum(raw(b.flat), b.block, b.dtype);
  else
    b.req = comm_.all_reduce_sum(raw(b.flat), b.padded, b.dtype);
}

void DataParallel::finish_backward() {
  KNOT_CHECK(in_backward_, "data parallel: finish_backward() without begin_last_backward()");
  in_backward_ = false;
  remove_hooks();
  NoGradGuard ng;
  // Gradients the hooks did not take (no overlap, or a parameter this rank's graph did not reach).
  for (size_t k = 0; k < slots_.size(); ++k) {
    Slot& s = slots_[k];
    if (s.ready) continue;
    Bucket& b = buckets_[s.bucket];
    KNOT_CHECK(!b.launched, "data parallel: internal error: a bucket was sent before all its gradients");
    const Tensor dst = b.flat.slice(0, s.offset, s.offset + s.numel);
    const Tensor g = s.p.grad();
    if (g.defined()) {
      dst.copy_(g.reshape({-1}));
      s.has_grad = true;
    } else {
      dst.zero_();
    }
    s.ready = true;
    ++b.ready;
  }
  // Which parameters some rank had a gradient for (the others stay without one, as in one process).
  std::vector<double> had(slots_.size());
  for (size_t k = 0; k < slots_.size(); ++k) had[k] = slots_[k].has_grad ? 1.0 : 0.0;
  const size_t before = next_launch_;
  while (next_launch_ < buckets_.size()) launch(next_launch_++);
  stats_.buckets_after += static_cast<int64_t>(next_launch_ - before);
  const std::vector<double> any = comm_.sum(had);
  const auto t0 = std::chrono::steady_clock::now();
  for (Bucket& b : buckets_) b.req.wait();
  stats_.wait_seconds += seconds_since(t0);
  if (options_.zero1 && comm_.rank() > 0) {
    // The reduce-scatter left this rank's summed block at the start of the bucket: move it to its place.
    const int64_t r = comm_.rank();
    for (Bucket& b : buckets_) b.flat.slice(0, r * b.block, (r + 1) * b.block).copy_(b.flat.slice(0, 0, b.block));
  }
  ++stats_.steps;
  for (size_t k = 0; k < slots_.size(); ++k) any_grad_[k] = any[k] > 0 ? 1 : 0;
  for (size_t k = 0; k < slots_.size(); ++k) {
    Slot& s = slots_[k];
    if (options_.zero1 || !any_grad_[k]) {
      s.p.zero_grad();
      continue;
    }
    // A view of the bucket, not a copy: the trainer's zero_grad() drops it before the next backward
    // writes the bucket again.
    s.p.set_grad(buckets_[s.bucket].flat.slice(0, s.offset, s.offset + s.numel).view(s.p.shape()));
  }
}

Tensor DataParallel::owned_grad(size_t gi, size_t i) const {
  const size_t k = slot_of_[gi][i];
  if (!any_grad_[k]) return Tensor();
  const Slot& s = slots_[k];
  const optim::Adam::Range r = opt_.owned(gi, i);
  return buckets_[s.bucket].flat.slice(0, s.offset + r.begin, s.offset + r.end);
}

double DataParallel::clip_grad_norm(double max_norm) {
  // ZeRO-0: every rank holds the same summed gradients, so the one-process clip gives the same bits.
  if (!options_.zero1) return optim::clip_grad_norm_(params_, max_norm);
  NoGradGuard ng;
  double local = 0;
  const int64_t r = comm_.rank();
  for (const Bucket& b : buckets_) {
    const Tensor mine = b.flat.slice(0, r * b.block, (r + 1) * b.block).to(DType::f64);
    local += sum(mul(mine, mine)).item();
  }
  const double norm = std::sqrt(comm_.sum(local));
  if (norm > max_norm && norm > 0) {
    const double scale = max_norm / (norm + 1e-6);
    for (const Bucket& b : buckets_) b.flat.slice(0, r * b.block, (r + 1) * b.block).mul_(scale);
  }
  return norm;
}

void DataParallel::step() {
  if (!options_.zero1) {
    opt_.step();
    return;
  }
  opt_.step_owned([&](size_t gi, size_t i) { return owned_grad(gi, i); });
  // Every rank's updated elements to every rank: this rank's block of each bucket gets its parameter
  // values, then the blocks are all-gathered and copied back into the parameters.
  NoGradGuard ng;
  const auto t0 = std::chrono::steady_clock::now();
  for (Bucket& b : buckets_) {
    for (size_t k : b.slots) {
      const Slot& s = slots_[k];
      const optim::Adam::Range own = opt_.owned(s.gi, s.i);
      if (own.end > own.begin)
        b.flat.slice(0, s.offset + own.begin, s.offset + own.end).copy_(s.p.view({-1}).slice(0, own.begin, own.end));
    }
    stats_.bytes_sent += static_cast<double>(comm_.size() - 1) / comm_.size() * static_cast<double>(b.padded) *
                         static_cast<double>(dtype_size(b.dtype));
    b.req = comm_.all_gather_blocks(raw(b.flat), b.block, b.dtype);
  }
  for (Bucket& b : buckets_) {
    b.req.wait();
    for (size_t k : b.slots) {
      const Slot& s = slots_[k];
      s.p.view({-1}).copy_(b.flat.slice(0, s.offset, s.offset + s.numel));
      s.p.bump_version();
    }
  }
  stats_.gather_seconds += seconds_since(t0);
}

void DataParallel::zero_grad() {
  for (Slot& s : slots_) s.p.zero_grad();
}

nn::NamedTensors DataParallel::full_optimizer_state() const {
  if (!options_.zero1) return opt_.state();
  nn::NamedTensors out;
  const int world = comm_.size();
  const auto& groups = opt_.groups();
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (size_t i = 0; i < groups[gi].params.size(); ++i) {
      const Slot& s = slots_[slot_of_[gi][i]];
      const Bucket& b = buckets_[s.bucket];
      // Rank q owns [max(off, q·block), min(off + n, (q+1)·block)) of the bucket: consecutive pieces.
      std::vector<int64_t> counts(static_cast<size_t>(world));
      for (int q = 0; q < world; ++q) {
        const int64_t lo = std::max(s.offset, q * b.block), hi = std::min(s.offset + s.numel, (q + 1) * b.block);
        counts[static_cast<size_t>(q)] = std::max<int64_t>(0, hi - lo);
      }
      for (int which = 0; which < 2; ++which) {
        const Tensor mine = (which == 0 ? opt_.exp_avg(gi, i) : opt_.exp_avg_sq(gi, i)).contiguous();
        Tensor full = comm_.rank() == 0 ? empty(s.p.shape(), s.p.dtype()) : Tensor();
        static thread_local float dummy_f;
        void* out_ptr = comm_.rank() == 0 ? raw(full) : &dummy_f;
        comm_.gather_v(mine.numel() ? raw(mine) : &dummy_f, mine.numel(), out_ptr, counts, s.p.dtype());
        if (comm_.rank() == 0)
          out.emplace_back(fmt::format("{}.{}.{}", gi, i, which == 0 ? "exp_avg" : "exp_avg_sq"), full);
      }
    }
  return out;
}

std::string DataParallel::parameter_hash(const optim::Adam& opt) {
  std::string bytes;
  for (const auto& g : opt.groups())
    for (const auto& p : g.params) {
      const Tensor c = p.contiguous();
      const auto* d = static_cast<const char*>(raw(c));
      bytes.append(d, static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
    }
  return data::sha256_hex(bytes);
}

}  // namespace knot::dist
