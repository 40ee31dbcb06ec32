// Importance-weighted quantizers of the GGUF types: what llama-quantize writes when given
// an importance matrix (ggml_quantize_chunk with quant_weights ≠ NULL → ggml-quants.c
// quantize_row_<type>_impl). `qw` holds one importance per column (the imatrix's
// mean(x²)), the same for every row. Bytes are identical to ggml's (tests/ref/test_imatrix.py).
//
// Per type, the per-element weights the fits use (σ² from the row's values):
//   Q2_K     w = qw·sqrt(σ² + x²), σ² = Σx²/256 per super-block; make_qkx3_quants(16, 3)
//            per 16, make_qp_quants(16, 15) for the scale and min codes (Σw per 16)
//   Q3_K     σ² = 2·Σx²/256; make_qx_quants(16, 4) per 16, make_qx_quants(16, 32) on scales
//   Q4_K/Q5_K σ² = 2·Σx²/256; make_qkx3_quants(32, 15|31), make_qp_quants(8, 63)
//   Q6_K     w = qw as is (ggml's σ² form is commented out); make_qx_quants(16, 32)
//   Q4_0/Q5_0 σ² = Σx²/n over the WHOLE row; make_qx_quants(32, 8|16); no requantization
//   Q4_1/Q5_1 σ² as Q4_0; make_qkx3_quants(32, 15|31)
//   IQ4_NL/IQ4_XS σ² = 2·Σx²/(32|256) per (super-)block; ggml's iq4_nl_impl with ntry = 7
#pragma once

#include <cstdint>
#include <span>

#include "formats/quant_matrix.h"

namespace imp::quant {

bool has_weighted_quantizer(FormatId format);

// One row of n elements (a multiple of the block) into its blocks at dst. Throws for a
// format without a weighted quantizer.
void quantize_row_weighted(FormatId format, const float* x, uint8_t* dst, int64_t n, const float* qw);

// rows × cols with one importance per column (qw.size() == cols).
OwnedQuantMatrix quantize_weighted(FormatId format, std::span<const float> x, int64_t rows, int64_t cols,
                                   std::span<const float> qw);

}  // namespace imp::quant
