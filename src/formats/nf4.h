// NF4 — bitsandbytes 4-bit NormalFloat (`bnb_4bit_quant_type: "nf4"`), blocksize 64.
// Spec: ../shared/specs/formats.md §8.3; bitsandbytes csrc/kernels.cu
// (kQuantizeBlockwise / dQuantizeNF4 / kDequantizeBlockwise).
//   data   : row of n/2 bytes; byte j = code[2j] << 4 | code[2j+1]  (element 2j in the HIGH
//            nibble — the opposite of NVFP4, MXFP4 and INT4 here)
//   scales : one F32 absmax per 64 consecutive elements of the row
//   y[e] = kNf4Values[code[e]] · absmax[e/64]
// bitsandbytes flattens the whole tensor into 64-blocks; with n % 64 == 0 those blocks are
// exactly the blocks of each row, so a checkpoint's absmax vector is this scales plane.
// Reference quantizer, as bitsandbytes' blockwise kernel: absmax = max |x| (fp32),
// v = x · (1/absmax) (the reciprocal is taken first), code = the number of decision
// thresholds t[i] with v > t[i], so v equal to a threshold takes the lower code. t[i] are
// bitsandbytes' fp32 literals for the midpoints (NF4[i] + NF4[i+1]) / 2; four of those
// midpoints fall exactly between two fp32 values, and there the literal's decimal digits,
// not ties-to-even, decide which of the two t[i] is. An all-zero block gets absmax 0 and code 7 (0.0);
// bitsandbytes computes 0 · (1/0) = NaN there and writes code 0 (−1.0), which also decodes
// to (−)0.
#pragma once

#include <cstdint>
#include <span>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kNf4Block = 64;
// bitsandbytes NF4 code book, code 0..15.
inline constexpr float kNf4Values[16] = {
    -1.0f,                 -0.6961928009986877f,  -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f,  0.16093020141124725f,  0.24611230194568634f,  0.33791524171829224f,
    0.44070982933044434f,  0.5626170039176941f,   0.7229568362236023f,   1.0f};

// Nearest code to v = x / absmax as bitsandbytes picks it (ties → lower code; NaN → 0).
uint8_t nf4_code(float v);

void quantize_row_nf4(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_nf4(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in F32. Per 64-block: partial = Σ NF4[code]·a (fp32, element order),
// sum += partial · absmax.
float vec_dot_nf4(const ConstRowPlanes& w, const void* act, int64_t n);

// Double quantization (`bnb_4bit_use_double_quant`): the absmax vector itself is stored as
// 8-bit codes `qabsmax` (`<p>.weight.absmax`, U8), blockwise-quantized with the dynamic map
// `nested_quant_map` (F32[256]) and one F32 `nested_absmax` per `nested_block` (256) codes,
// around `offset` (= mean of the original absmax, `nested_offset`):
//   absmax[b] = nested_quant_map[qabsmax[b]] · nested_absmax[b / nested_block] + offset
// computed in fp32 in that order (bitsandbytes dequantizes the blockwise codes, then adds
// the offset). out must hold qabsmax.size() floats, nested_absmax exactly
// ⌈qabsmax.size() / nested_block⌉; anything else is an imp::Error.
void nf4_decode_double_quant_absmax(std::span<const uint8_t> qabsmax, std::span<const float> nested_absmax,
                                    std::span<const float> nested_quant_map, float offset, std::span<float> out,
                                    int64_t nested_block = 256);

}  // namespace imp
