// Round-trip error of a format's reference quantizer on Gaussian data, and the bound each
// format is held to. Used by `imp formats --check`, the tests and docs/formats.md.
#pragma once

#include <cstdint>

#include "formats/format_id.h"

namespace imp {

struct RoundTripStats {
  double rmse = 0;      // sqrt(mean((x − x̂)²)), x ~ N(0, 1)
  double snr_db = 0;    // 10·log10(Σx² / Σ(x − x̂)²)
  double max_abs = 0;   // max |x − x̂|
};

// Quantizes a rows × cols N(0, 1) matrix drawn from `seed` and dequantizes it back.
RoundTripStats measure_round_trip(FormatId format, int64_t rows, int64_t cols, uint64_t seed);

// The smallest SNR (dB) the format must reach on N(0, 1) data. 0 for formats that are not
// weight formats. Each bound sits about 1 dB under the value measured at introduction.
double min_round_trip_snr_db(FormatId format);

// The row length used for round-trip checks: an awkward multiple of the format's block.
int64_t awkward_row_length(FormatId format);

}  // namespace imp
