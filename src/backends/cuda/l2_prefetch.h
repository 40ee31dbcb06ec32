// L2 prefetch of the weights a decode step reads next, issued while HBM would idle.
//
// Why: a batch-1 decode step alternates bandwidth-bound GEMVs with attention, which reads
// only the step's K and V rows (2.5 MB per layer of an 8B model at 512 tokens) and then
// merges its splits: 276 + 202 µs of a 2625 µs Q4_0 step on an H100 (session-10 trace),
// ~15 µs per layer in which HBM has little to do. Before its PDL wait, every block of the
// decode attention kernel issues bulk L2 prefetches (cp.async.bulk.prefetch.L2) of a slice
// of the weights the next GEMVs read — the O projection, then a prefix of gate·up — and
// those GEMVs then find that part in L2 (50 MB on an H100) instead of HBM.
//
// Which bytes: the previous decode step's weight reads, logged launch by launch in order
// (a step runs the same kernels every time; graphs replay them). After the i-th attention
// of a step: whole launches while they fit the budget, then the same leading fraction of
// every plane of the next launch — the GEMVs walk their tiles in row order over the grid
// (tile b, b + grid, …; non-persistent grids schedule blocks in order), so each plane is
// read front to back at about the same pace. A prefetch is only a hint: a stale or wrong
// plan costs bandwidth, never a wrong result.
#pragma once

#include <cstdint>
#include <vector>

namespace imp::cuda {

struct DeviceMatrix;

// What one attention launch prefetches: up to kMax byte ranges, each 16-byte aligned and a
// multiple of 16 bytes (cp.async.bulk.prefetch's rule). A kernel parameter (by value).
struct L2Ranges {
  static constexpr int kMax = 12;
  const void* p[kMax] = {};
  uint32_t bytes[kMax] = {};
  int n = 0;
  int64_t total() const {
    int64_t t = 0;
    for (int i = 0; i < n; ++i) t += bytes[i];
    return t;
  }
};

// A contiguous plane of device memory a launch reads (payload, scales or zero points).
struct PlaneRange {
  const void* p = nullptr;
  int64_t bytes = 0;
};

// One entry of a decode step's log: an attention launch, or a weight-reading launch with
// every plane it reads.
struct DecodeRead {
  bool attention = false;
  std::vector<PlaneRange> planes;
};

// The ranges to prefetch at the attention_index-th attention of a step whose reads follow
// `log` (the previous step's), at most budget_bytes in all; stops at the next attention.
// Empty when the log has no such attention or the budget is below one 16-byte unit.
L2Ranges plan_l2_prefetch(const std::vector<DecodeRead>& log, int64_t attention_index, int64_t budget_bytes);

// Appends the planes of m as a decode GEMV reads them (data, scales, zero points).
void append_matrix_planes(const DeviceMatrix& m, std::vector<PlaneRange>& out);

// The budget per attention launch: IMP_CUDA_L2_PREFETCH_MB (MiB; 0 turns the prefetch off),
// default kDefaultL2PrefetchMiB; set_l2_prefetch_budget for benchmarks and tests.
constexpr int64_t kDefaultL2PrefetchMiB = 24;
int64_t l2_prefetch_budget();
void set_l2_prefetch_budget(int64_t bytes);

}  // namespace imp::cuda
