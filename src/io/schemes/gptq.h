// GPTQ and AutoAWQ GEMM int4 checkpoints → INT4_GROUP. Spec: ../shared/specs/formats.md §8.1, §8.2.
//
// Both store I32 words whose packing differs from INT4_GROUP's canonical planes
// (formats/int4_group.h: data row-major [out, in/2], element 2k low nibble; F16 scales and
// uint8 zeros [out, in/group]). Repacking is a conversion, and loaders never convert
// (DESIGN.md), so the loader keeps the stored bytes in the TensorSource (format INT4_GROUP,
// layout kGptqV1 / kGptqV2 / kAwqGemm, planes data = qweight, scales = scales, zeros =
// qzeros, g_idx) and the backend calls the repack below when it materializes the weight.
//
// GPTQ (shape [out, in] = [N, K]):
//   qweight I32 [K/8, N]: word (r, n) bits 4k..4k+3 = q of input row 8r+k
//   qzeros  I32 [G, N/8]: word (g, c) bits 4j..4j+3 = stored zero of column 8c+j
//   scales  F16 [G, N];  g_idx I32 [K] (group of each input; k / group unless act-order)
//   W[n, k] = scales[g_idx[k], n] · (q[k, n] − Z),  Z = (stored + 1) & 15 for v1 (v1 files
//   store zero − 1 in 4 bits, so a zero of 0 is stored as 15), Z = stored for v2.
// AWQ GEMM:
//   qweight I32 [K, N/8], qzeros I32 [G, N/8]: nibble slot p of word c holds column
//   8c + [0, 2, 4, 6, 1, 3, 5, 7][p]; scales F16 [G, N];  W[n, k] = (q − z) · s, group k / group.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/quant_matrix.h"
#include "io/tensor_source.h"

namespace imp {

struct Int4Repacked {
  OwnedQuantMatrix matrix;  // INT4_GROUP, rows = out, cols = in
  // Act-order GPTQ: the input features in matrix column order; the layer computes
  // y = matrix · x[input_perm]. Empty when the order is the natural one.
  std::vector<int32_t> input_perm;
};

// Repacks a kGptqV1 / kGptqV2 TensorSource. Act-order g_idx is turned into a column
// permutation (inputs sorted by group, stable); every group must then hold exactly
// `group` inputs, else imp::Error. Plane sizes are checked before any read.
Int4Repacked repack_gptq_to_int4_group(const TensorSource& s);
// Repacks a kAwqGemm TensorSource (its input order is always the natural one).
OwnedQuantMatrix repack_awq_to_int4_group(const TensorSource& s);

}  // namespace imp
