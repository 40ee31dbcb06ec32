// The decode step's L2 weight-prefetch plan (l2_prefetch.h): host-only, runs without a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "backends/cuda/gemv.h"
#include "backends/cuda/l2_prefetch.h"

namespace imp::cuda {
namespace {

const void* addr(uintptr_t a) { return reinterpret_cast<const void*>(a); }
uintptr_t at(const L2Ranges& r, int i) { return reinterpret_cast<uintptr_t>(r.p[i]); }

DecodeRead launch(std::vector<PlaneRange> planes) { return {false, std::move(planes)}; }
DecodeRead attention() { return {true, {}}; }

// One layer's reads as the decode step logs them: QKV, attention, O, gate·up, down.
std::vector<DecodeRead> two_layers() {
  std::vector<DecodeRead> log;
  for (uintptr_t l = 0; l < 2; ++l) {
    const uintptr_t b = 0x10000000 * (l + 1);
    log.push_back(launch({{addr(b), 6000 * 16}, {addr(b + 0x100000), 375 * 16}}));               // QKV
    log.push_back(attention());
    log.push_back(launch({{addr(b + 0x200000), 4000 * 16}, {addr(b + 0x300000), 250 * 16}}));    // O
    log.push_back(launch({{addr(b + 0x400000), 14000 * 16}, {addr(b + 0x600000), 875 * 16},      // gate
                          {addr(b + 0x800000), 14000 * 16}, {addr(b + 0xA00000), 875 * 16}}));  // up
    log.push_back(launch({{addr(b + 0xC00000), 14000 * 16}, {addr(b + 0xE00000), 875 * 16}}));  // down
  }
  return log;
}

void expect_aligned_inside(const L2Ranges& r, const std::vector<DecodeRead>& log) {
  for (int i = 0; i < r.n; ++i) {
    EXPECT_EQ(at(r, i) % 16, 0u) << "range " << i;
    EXPECT_EQ(r.bytes[i] % 16, 0u) << "range " << i;
    EXPECT_GT(r.bytes[i], 0u) << "range " << i;
    bool inside = false;
    for (const DecodeRead& e : log) {
      for (const PlaneRange& p : e.planes) {
        const uintptr_t a = reinterpret_cast<uintptr_t>(p.p);
        inside |= at(r, i) >= a && at(r, i) + r.bytes[i] <= a + uint64_t(p.bytes);
      }
    }
    EXPECT_TRUE(inside) << "range " << i << " leaves every plane";
  }
}

// Log positions of two_layers(): 0 QKV, 1 attention, 2 O, 3 gate·up, 4 down, 5 QKV, 6 attention, …
L2Ranges plan_once(const std::vector<DecodeRead>& log, int64_t index, bool attention, int64_t budget) {
  L2PrefetchPlanner p;
  p.start(&log);
  return p.plan(index, attention, budget);
}

TEST(L2PrefetchPlan, WholeOProjectionThenTheSameFractionOfEveryGateUpPlane) {
  const auto log = two_layers();
  const int64_t o = (4000 + 250) * 16, gate_up = 2 * (14000 + 875) * 16;
  const L2Ranges r = plan_once(log, 1, true, o + gate_up / 4);
  ASSERT_EQ(r.n, 6);
  EXPECT_EQ(at(r, 0), 0x10200000u);
  EXPECT_EQ(r.bytes[0], 4000u * 16);
  EXPECT_EQ(r.bytes[1], 250u * 16);
  // A quarter of each gate / up plane, rounded down to 16 bytes, from its start.
  EXPECT_EQ(at(r, 2), 0x10400000u);
  EXPECT_EQ(r.bytes[2], 14000u * 4);
  EXPECT_EQ(at(r, 3), 0x10600000u);
  EXPECT_EQ(r.bytes[3], 875u * 16 / 4 / 16 * 16);
  EXPECT_EQ(at(r, 4), 0x10800000u);
  EXPECT_EQ(at(r, 5), 0x10A00000u);
  EXPECT_LE(r.total(), o + gate_up / 4);
  EXPECT_GT(r.total(), o + gate_up / 4 - 4 * 16);
  expect_aligned_inside(r, log);
}

TEST(L2PrefetchPlan, StopsAtTheNextAttentionAndFindsLaterOnes) {
  const auto log = two_layers();
  // A budget past everything: layer 0's O, gate·up, down and layer 1's QKV (the next attention prefetches the rest).
  const L2Ranges all = plan_once(log, 1, true, int64_t(1) << 40);
  ASSERT_EQ(all.n, 10);
  EXPECT_EQ(at(all, 8), 0x20000000u);  // layer 1's QKV payload
  EXPECT_EQ(all.total(), (4000 + 250 + 2 * (14000 + 875) + 14000 + 875 + 6000 + 375) * 16);
  // The second attention's plan starts at layer 1's O projection; it is the last, so it ends with the log.
  const L2Ranges second = plan_once(log, 6, true, int64_t(1) << 40);
  ASSERT_EQ(second.n, 8);
  EXPECT_EQ(at(second, 0), 0x20200000u);
  expect_aligned_inside(all, log);
  expect_aligned_inside(second, log);
}

TEST(L2PrefetchPlan, NothingWithoutALogAMatchingEntryOrABudget) {
  const auto log = two_layers();
  EXPECT_EQ(plan_once({}, 1, true, 1 << 20).n, 0);
  L2PrefetchPlanner none;
  none.start(nullptr);
  EXPECT_EQ(none.plan(1, true, 1 << 20).n, 0);
  EXPECT_EQ(plan_once(log, int64_t(log.size()), false, 1 << 20).n, 0);  // past the log
  EXPECT_EQ(plan_once(log, -1, true, 1 << 20).n, 0);
  EXPECT_EQ(plan_once(log, 2, true, 1 << 20).n, 0);  // the step diverged: an attention where O was
  EXPECT_EQ(plan_once(log, 1, false, 1 << 20).n, 0);
  EXPECT_EQ(plan_once(log, 1, true, 0).n, 0);
  EXPECT_EQ(plan_once(log, 1, true, 15).n, 0);
  EXPECT_EQ(plan_once(log, 0, false, 1 << 20).n, 0);  // QKV is followed by attention: nothing to take
}

// Plans of one step continue where the last stopped: the attention takes O and part of
// gate·up, O's tail the next slice of gate·up, gate·up's tail the start of down.
TEST(L2PrefetchPlan, LaterPlansOfAStepContinueWhereEarlierOnesStopped) {
  const auto log = two_layers();
  const int64_t o = (4000 + 250) * 16, gate_up = 2 * (14000 + 875) * 16;
  L2PrefetchPlanner p;
  p.start(&log);
  const L2Ranges a = p.plan(1, true, o + gate_up / 2);
  ASSERT_EQ(a.n, 6);
  EXPECT_EQ(p.commit(), a.total());
  // A plan whose launch declined (never committed) is made again by the fallback launch.
  const L2Ranges declined = p.plan(2, false, gate_up / 4);
  const L2Ranges tail_o = p.plan(2, false, gate_up / 4);
  ASSERT_EQ(declined.n, tail_o.n);
  EXPECT_EQ(at(declined, 0), at(tail_o, 0));
  EXPECT_EQ(p.commit(), tail_o.total());
  ASSERT_EQ(tail_o.n, 4);  // the next quarter of each gate·up plane, from where the attention stopped
  EXPECT_EQ(at(tail_o, 0), at(a, 2) + a.bytes[2]);
  EXPECT_EQ(at(tail_o, 0), 0x10400000u + 14000 * 8);
  EXPECT_EQ(tail_o.bytes[0], 14000u * 4);
  const L2Ranges tail_gu = p.plan(3, false, 1 << 10);
  p.commit();
  ASSERT_EQ(tail_gu.n, 2);  // gate·up has a quarter left but is running: the next launch is down
  EXPECT_EQ(at(tail_gu, 0), 0x10C00000u);
  const L2Ranges more = p.plan(2, false, int64_t(1) << 30);  // what is left: gate·up's last quarter, down, QKV
  EXPECT_EQ(at(more, 0), 0x10400000u + 14000 * 12);
  expect_aligned_inside(tail_o, log);
  expect_aligned_inside(more, log);
  // A new step starts over.
  p.start(&log);
  EXPECT_EQ(at(p.plan(1, true, 1 << 20), 0), 0x10200000u);
}

TEST(L2PrefetchPlan, UnalignedPlanesShrinkInsideAndTheRangeCountIsCapped) {
  // Planes at odd addresses and lengths: the start rounds up, the end down, never past the plane.
  std::vector<DecodeRead> log = {attention(), launch({{addr(0x1003), 1000}, {addr(0x5008), 7}})};
  L2Ranges r = plan_once(log, 0, true, 1 << 20);
  ASSERT_EQ(r.n, 1);  // the 7-byte plane holds no whole 16-byte unit
  EXPECT_EQ(at(r, 0), 0x1010u);
  EXPECT_EQ(r.bytes[0], (0x1003u + 1000) / 16 * 16 - 0x1010);
  // More planes than a launch can carry: the first kMax, in order.
  log = {attention()};
  for (int i = 0; i < 20; ++i) log.push_back(launch({{addr(0x100000 * uintptr_t(i + 1)), 4096}}));
  r = plan_once(log, 0, true, 1 << 30);
  ASSERT_EQ(r.n, L2Ranges::kMax);
  for (int i = 0; i < r.n; ++i) EXPECT_EQ(at(r, i), 0x100000u * uintptr_t(i + 1));
}

TEST(L2PrefetchPlan, MatrixPlanesFollowTheDeviceLayout) {
  DeviceMatrix m;
  m.format = FormatId::Q4_0;
  m.layout = WeightLayout::kMma;
  m.rows = 256;
  m.cols = 512;
  m.data = addr(0x100000);
  m.scales = addr(0x200000);
  std::vector<PlaneRange> planes;
  append_matrix_planes(m, planes);
  ASSERT_EQ(planes.size(), 2u);
  EXPECT_EQ(planes[0].bytes, 256 * 512 / 2);       // 4-bit codes
  EXPECT_EQ(planes[1].bytes, 256 * (512 / 32) * 2);  // an f16 d per 32-block
}

}  // namespace
}  // namespace imp::cuda
