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

#include <cstddef>
#include <cstdint>
#include <utility>
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

// The prefetch plans of one decode step. Each launch at position `index` of the step (its
// place in the log, the order launches are made) may prefetch up to a budget of the bytes
// the launches after it read, up to the next attention (which plans its own), that no
// earlier plan of the step covered: per launch a covered fraction of every plane, so plans
// continue where the last one stopped. A log entry of another kind at `index` (the step
// diverged from the logged one) plans nothing. A plan counts as covered only once commit()
// says its launch was made (a fused GEMV may decline and its fallback plan again).
class L2PrefetchPlanner {
 public:
  void start(const std::vector<DecodeRead>* log);  // a new step; log may be null or empty
  L2Ranges plan(int64_t index, bool attention, int64_t budget_bytes);  // replaces an uncommitted plan
  int64_t commit();  // the last plan was launched: its bytes (returned) are covered
  void discard();    // the last plan was not launched

 private:
  const std::vector<DecodeRead>* log_ = nullptr;
  std::vector<double> covered_;  // per log entry, the leading fraction already launched
  std::vector<std::pair<std::size_t, double>> pending_;  // the last plan: entry, fraction it reaches
  int64_t pending_bytes_ = 0;
};

// Appends the planes of m as a decode GEMV reads them (data, scales, zero points).
void append_matrix_planes(const DeviceMatrix& m, std::vector<PlaneRange>& out);

// Budgets, bytes per launch. Attention: IMP_CUDA_L2_PREFETCH_MB (MiB; 0 turns it off),
// default kDefaultL2PrefetchMiB. The tail of a tensor-core GEMV (its producer, once it has
// issued its last stage, prefetches the start of the next launch's weights while the CTA
// drains): IMP_CUDA_L2_TAIL_KB (KiB), default kDefaultL2TailKiB. Setters for benchmarks and tests.
// Off by default until measured on a GPU (no device machine was lent the session that wrote
// it); the A/B: scripts/gpu-decode-ab.sh with IMP_CUDA_L2_PREFETCH_MB=0 / 24 / 40 and
// IMP_CUDA_L2_TAIL_KB=4096.
constexpr int64_t kDefaultL2PrefetchMiB = 0;
constexpr int64_t kDefaultL2TailKiB = 0;
int64_t l2_prefetch_budget();
void set_l2_prefetch_budget(int64_t bytes);
int64_t l2_tail_budget();
void set_l2_tail_budget(int64_t bytes);

}  // namespace imp::cuda
