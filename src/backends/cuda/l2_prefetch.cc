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

int64_t& budget_ref() {
  static int64_t bytes = [] {
    const char* e = std::getenv("IMP_CUDA_L2_PREFETCH_MB");
    const int64_t mib = e && *e ? std::max<int64_t>(0, std::strtoll(e, nullptr, 10)) : kDefaultL2PrefetchMiB;
    return mib << 20;
  }();
  return bytes;
}

}  // namespace

L2Ranges plan_l2_prefetch(const std::vector<DecodeRead>& log, int64_t attention_index, int64_t budget_bytes) {
  L2Ranges r;
  if (budget_bytes < int64_t(kAlign) || attention_index < 0) return r;
  size_t i = 0;
  for (int64_t seen = -1; i < log.size(); ++i) {
    if (log[i].attention && ++seen == attention_index) break;
  }
  int64_t left = budget_bytes;
  for (++i; i < log.size() && left >= int64_t(kAlign); ++i) {
    const DecodeRead& e = log[i];
    if (e.attention) break;  // the next attention prefetches its own
    int64_t bytes = 0;
    for (const PlaneRange& p : e.planes) bytes += p.bytes;
    if (bytes <= 0) continue;
    // The whole launch, or the leading fraction `left / bytes` of each of its planes.
    const double f = std::min(1.0, double(left) / double(bytes));
    for (const PlaneRange& p : e.planes) {
      const int64_t take = f >= 1.0 ? p.bytes : int64_t(double(p.bytes) * f);
      if (!add_range(r, p.p, take)) return r;
    }
    left -= std::min(left, bytes);
  }
  return r;
}

void append_matrix_planes(const DeviceMatrix& m, std::vector<PlaneRange>& out) {
  if (m.data) out.push_back({m.data, device_data_bytes(m.format, m.layout, m.rows, m.cols)});
  if (m.scales) out.push_back({m.scales, device_scale_bytes(m.format, m.layout, m.rows, m.cols, m.group)});
  if (m.zeros) out.push_back({m.zeros, device_zero_bytes(m.format, m.rows, m.cols, m.group)});
}

int64_t l2_prefetch_budget() { return budget_ref(); }
void set_l2_prefetch_budget(int64_t bytes) { budget_ref() = std::max<int64_t>(0, bytes); }

}  // namespace imp::cuda
