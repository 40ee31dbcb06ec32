// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers"; the reference implementation's gptq.py fasterquant) with the
// target format's own quantizer.
//
// W (rows × cols, rows = output features), calibration inputs X (n × cols) given as XᵀX:
//   H = 2·XᵀX / n; dead columns (H_jj = 0) get H_jj = 1 and W[:, j] = 0;
//   damping H += percdamp · mean(diag H) · I (×10 and retry while H is not positive
//   definite); act-order: columns processed by diag(H) descending;
//   U = upper Cholesky factor of H⁻¹; columns are processed in batches of `block` with the
//   error of each quantization unit pushed onto the not-yet-quantized columns:
//     unit = one column   e = (w − q)/U_ii,             W[:, later] −= e·U[i, later]
//     unit = B columns    E = (W_B − Q_B)·U_BB⁻¹,       W[:, later] −= E·U[B, later]
//   updates beyond the current batch are deferred and applied once per batch (lazy batch).
// Units by format:
//   INT4_GROUP  one column; the group's F16 scale and zero are fixed (formats core rule) from
//               the group's current values when its first column is reached.
//   NVFP4_CKPT  one column; G from the ORIGINAL weights' amax, each 16-block's E4M3 scale
//               fixed from its current values when first reached; codes RNE(w / (S·G)).
//   every self-contained GGUF type: whole blocks (32/64/256 columns) quantized jointly by
//               the format's quantizer (importance-weighted when an imatrix row is given).
// Act-order is available for the one-column units only (block formats need contiguous
// blocks); the stored layout keeps natural column order, so g_idx is col / group.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "formats/quant_matrix.h"

namespace imp::quant {

struct GptqOptions {
  FormatId format = FormatId::INT4_GROUP;
  int32_t group = 128;      // INT4_GROUP
  double percdamp = 0.01;
  int64_t block = 128;      // lazy batch width in columns
  bool act_order = false;
  std::span<const float> importance;  // optional imatrix row for the GGUF block quantizers
};

struct GptqResult {
  OwnedQuantMatrix q;
  std::vector<int32_t> g_idx;  // group of each input column (INT4_GROUP)
  std::vector<int64_t> perm;   // processing order (identity unless act-order)
  int n_dead = 0;
  double damp = 0;             // the damping finally added
};

bool gptq_supports(FormatId format);

// What depends on the calibration only (shared by every weight reading the same input):
// the processing order, the dead columns, the damping and U.
struct GptqFactor {
  int64_t cols = 0;
  std::vector<int64_t> perm;
  std::vector<uint8_t> dead;
  std::vector<double> u;  // cols × cols, upper
  double damp = 0;
  bool act_order = false;
};
GptqFactor gptq_factor(std::span<const double> xtx, int64_t cols, int64_t n_tok, double percdamp, bool act_order);
GptqResult gptq_quantize(std::span<const float> w, int64_t rows, int64_t cols, const GptqFactor& factor,
                         const GptqOptions& opt);

// xtx: cols × cols (row-major) Σ over n_tok calibration rows of xᵀx.
GptqResult gptq_quantize(std::span<const float> w, int64_t rows, int64_t cols, std::span<const double> xtx,
                         int64_t n_tok, const GptqOptions& opt);

}  // namespace imp::quant
