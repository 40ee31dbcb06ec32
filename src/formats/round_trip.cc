#include "formats/round_trip.h"

#include <cmath>
#include <random>
#include <vector>

#include "formats/quant_matrix.h"
#include "formats/traits.h"

namespace imp {

RoundTripStats measure_round_trip(FormatId format, int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t(rows * cols));
  for (auto& v : x) v = normal(rng);
  const int32_t group = format == FormatId::INT4_GROUP ? 128 : 0;
  const OwnedQuantMatrix q = quantize(format, x, rows, cols, group);
  const std::vector<float> y = dequantize(q.view());
  double err2 = 0, sig2 = 0, max_abs = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = double(x[i]) - double(y[i]);
    err2 += e * e;
    sig2 += double(x[i]) * double(x[i]);
    max_abs = std::fmax(max_abs, std::fabs(e));
  }
  RoundTripStats s;
  s.rmse = std::sqrt(err2 / double(x.size()));
  s.snr_db = err2 > 0 ? 10.0 * std::log10(sig2 / err2) : INFINITY;
  s.max_abs = max_abs;
  return s;
}

double min_round_trip_snr_db(FormatId format) {
  // clang-format off
  switch (format) {
    case FormatId::F32:               return 300.0;
    case FormatId::F16:               return 72.0;
    case FormatId::BF16:              return 54.0;
    case FormatId::F8_E4M3:           return 30.0;
    case FormatId::F8_E5M2:           return 24.1;
    case FormatId::Q4_0:              return 20.0;
    case FormatId::Q4_1:              return 21.0;
    case FormatId::Q5_0:              return 26.0;
    case FormatId::Q5_1:              return 27.0;
    case FormatId::Q8_0:              return 44.0;
    case FormatId::Q2_K:              return 9.5;
    case FormatId::Q3_K:              return 15.4;
    case FormatId::Q4_K:              return 21.9;
    case FormatId::Q5_K:              return 27.8;
    case FormatId::Q6_K:              return 34.0;
    case FormatId::IQ4_NL:            return 21.0;
    case FormatId::IQ4_XS:            return 21.3;
    case FormatId::MXFP4:             return 17.5;
    case FormatId::NVFP4:             return 19.0;
    case FormatId::NVFP4_CKPT:        return 19.0;
    case FormatId::MXFP4_CKPT:        return 17.5;
    case FormatId::FP8_E4M3_TENSOR:   return 29.5;
    case FormatId::FP8_E4M3_CHANNEL:  return 29.5;
    case FormatId::FP8_E4M3_BLOCK128: return 29.3;
    case FormatId::INT8_CHANNEL:      return 40.0;
    case FormatId::INT4_GROUP:        return 18.5;
    case FormatId::NF4:               return 19.5;
    default:                          return 0.0;  // not a weight format
  }
  // clang-format on
}

int64_t awkward_row_length(FormatId format) {
  // INT4 groups are 128 wide here; everything else gets 37 blocks: odd, prime, not a
  // power of two, and (for 32-element blocks) spanning a partial 128-column tile.
  if (format == FormatId::INT4_GROUP) return 128 * 7;
  return int64_t(format_traits(format).block_elems) * 37;
}

}  // namespace imp
