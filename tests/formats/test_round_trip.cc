// Every weight format's reference quantizer round-trips N(0, 1) data of an awkward row
// length within its stated SNR bound (formats/round_trip.cc), on fresh data each run.
#include <gtest/gtest.h>

#include <random>

#include "formats/round_trip.h"
#include "formats/traits.h"

namespace imp {
namespace {

class RoundTrip : public ::testing::TestWithParam<int> {};

TEST_P(RoundTrip, MeetsSnrBound) {
  const auto& t = format_traits(FormatId(GetParam()));
  if (!t.vec_dot_ref) GTEST_SKIP() << t.name << " is not a weight format";
  const uint64_t seed = std::random_device{}();
  const RoundTripStats s = measure_round_trip(t.id, 5, awkward_row_length(t.id), seed);
  EXPECT_GE(s.snr_db, min_round_trip_snr_db(t.id)) << t.name << " seed " << seed << " rmse " << s.rmse;
  EXPECT_GT(min_round_trip_snr_db(t.id), 0.0) << t.name << " has no stated bound";
}

INSTANTIATE_TEST_SUITE_P(AllFormats, RoundTrip, ::testing::Range(0, kFormatCount),
                         [](const auto& info) { return std::string(format_traits(FormatId(info.param)).name); });

}  // namespace
}  // namespace imp
