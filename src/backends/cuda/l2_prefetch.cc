// The decode step's L2 prefetch plan (l2_prefetch.h): host side only.
#include "backends/cuda/l2_prefetch.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/gemv.h"

namespace imp::cuda {
namespace {

constexpr uint64_t kAlign = 16;

// [p, p + bytes) shrunk to 16-byte boundaries inside it: the start rounded up, the end down
// (a prefetch must not reach past the allocation).
bool add_range(L2Ranges& r, const void* p, int64_t bytes) {
  if (r.n == L2Ranges::kMax || bytes <= 0) return false;
  const uint64_t a = reinterpret_cast<uintptr_t>(p);
  const uint64_t lo = (a + kAlign - 1) / kAlign * kAlign, hi = (a + uint64_t(bytes)) / kAlign * kAlign;
  if (hi <= lo) return true;  // nothing whole to prefetch; not a failure
  const uint64_t n = std::min<uint64_t>(hi - lo, uint64_t(UINT32_MAX) / kAlign * kAlign);
  r.p[r.n] = reinterpret_cast<const void*>(uintptr_t(lo));
  r.bytes[r.n] = uint32_t(n);
  ++r.n;
  return true;
}

int64_t env_bytes(const char* name, int64_t fallback, int shift) {
  const char* e = std::getenv(name);
  const int64_t v = e && *e ? std::max<int64_t>(0, std::strtoll(e, nullptr, 10)) : fallback;
  return std::min<int64_t>(v, int64_t(1) << (40 - shift)) << shift;
}
int64_t& budget_ref() {
  static int64_t bytes = env_bytes("IMP_CUDA_L2_PREFETCH_MB", kDefaultL2PrefetchMiB, 20);
  return bytes;
}
int64_t& tail_ref() {
  static int64_t bytes = env_bytes("IMP_CUDA_L2_TAIL_KB", kDefaultL2TailKiB, 10);
  return bytes;
}

}  // namespace

void L2PrefetchPlanner::start(const std::vector<DecodeRead>* log) {
  log_ = log;
  covered_.assign(log ? log->size() : 0, 0.0);
  discard();
}

int64_t L2PrefetchPlanner::commit() {
  for (const auto& [i, f] : pending_) covered_[i] = f;
  pending_.clear();
  const int64_t bytes = pending_bytes_;
  pending_bytes_ = 0;
  return bytes;
}

void L2PrefetchPlanner::discard() {
  pending_.clear();
  pending_bytes_ = 0;
}

L2Ranges L2PrefetchPlanner::plan(int64_t index, bool attention, int64_t budget_bytes) {
  L2Ranges r;
  discard();
  if (!log_ || budget_bytes < int64_t(kAlign) || index < 0 || size_t(index) >= log_->size() ||
      (*log_)[size_t(index)].attention != attention) {
    return r;
  }
  int64_t left = budget_bytes;
  for (size_t i = size_t(index) + 1; i < log_->size() && left >= int64_t(kAlign); ++i) {
    const DecodeRead& e = (*log_)[i];
    if (e.attention) break;  // the next attention plans its own
    int64_t bytes = 0;
    for (const PlaneRange& p : e.planes) bytes += p.bytes;
    const double f0 = covered_[i];
    if (bytes <= 0 || f0 >= 1.0) continue;
    // The same slice [f0, f1) of every plane (planes are read front to back at one pace), its
    // ends at 16-byte multiples from the plane's start so that consecutive plans abut.
    const double f1 = std::min(1.0, f0 + double(left) / double(bytes));
    auto at = [](int64_t n, double f) { return f >= 1.0 ? n : int64_t(double(n) * f) / int64_t(kAlign) * int64_t(kAlign); };
    int64_t taken = 0;
    bool whole = true;
    for (const PlaneRange& p : e.planes) {
      const int64_t a = at(p.bytes, f0), b = at(p.bytes, f1);
      if (!(whole = add_range(r, static_cast<const uint8_t*>(p.p) + a, b - a))) break;
      taken += std::max<int64_t>(0, b - a);
    }
    if (!whole) break;  // the range cap cut this launch short: it stays uncovered for a later plan
    pending_.emplace_back(i, f1);
    if (f1 < 1.0) break;  // the budget ends inside this launch
    left -= std::min(left, taken);
  }
  pending_bytes_ = r.total();
  return r;
}

void append_matrix_planes(const DeviceMatrix& m, std::vector<PlaneRange>& out) {
  if (m.data) out.push_back({m.data, device_data_bytes(m.format, m.layout, m.rows, m.cols)});
  if (m.scales) out.push_back({m.scales, device_scale_bytes(m.format, m.layout, m.rows, m.cols, m.group)});
  if (m.zeros) out.push_back({m.zeros, device_zero_bytes(m.format, m.rows, m.cols, m.group)});
}

int64_t l2_prefetch_budget() { return budget_ref(); }
void set_l2_prefetch_budget(int64_t bytes) { budget_ref() = std::max<int64_t>(0, bytes); }
int64_t l2_tail_budget() { return tail_ref(); }
void set_l2_tail_budget(int64_t bytes) { tail_ref() = std::max<int64_t>(0, bytes); }

}  // namespace imp::cuda
