// Weight-space error of a model's tensors against a reference model's tensors of the same
// name (`imp quant-report`). Both are dequantized to F32 with the reference decoders
// (formats/quant_matrix.h); for each tensor
//   rel_rmse = sqrt(Σ (w − r)² / Σ r²),   snr_db = 10 · log10(Σ r² / Σ (w − r)²)
// (+inf for identical tensors). A reference is required: a tensor's own format measured
// against its own dequantization is error-free by construction, and re-quantizing the
// dequantized weights to the same format measures only the rounding's idempotence, not
// what the format cost the original weights.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/model_file.h"

namespace imp::eval {

struct TensorError {
  std::string name;
  std::string format, ref_format;
  std::vector<int64_t> shape;
  double bits_per_weight = 0.0;
  double rel_rmse = 0.0;
  double snr_db = 0.0;
};

// Σ (w − r)² and Σ r² in double; throws when the sizes differ.
struct ErrorSums {
  double err2 = 0.0, ref2 = 0.0;
};
ErrorSums error_sums(const std::vector<float>& w, const std::vector<float>& r);
double rel_rmse(const ErrorSums& s);
double snr_db(const ErrorSums& s);

struct WeightReport {
  std::vector<TensorError> tensors;       // worst (largest rel_rmse) first
  std::vector<std::string> missing_in_ref; // tensors of the model the reference lacks
  ErrorSums total;                        // over every compared tensor
  int64_t elements = 0;
  double bits = 0.0;                      // storage bits of every compared tensor
};

// Throws naming the tensor when the shapes differ or a tensor cannot be dequantized.
WeightReport compare_weights(const ModelFile& model, const ModelFile& ref);

}  // namespace imp::eval
