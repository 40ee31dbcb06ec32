// Exact element access on the kMma layout (gemv_mma_layout.h): the reference value of any
// weight, as the CPU dequantizer computes it — the per-element GEMV fallback, device
// dequantization and the direct BF16 dequantization use it. Internal header.
#pragma once

#include "backends/cuda/decode_fp4.cuh"
#include "backends/cuda/decode_gguf.cuh"
#include "backends/cuda/decode_gguf_legacy.cuh"
#include "backends/cuda/gemv_mma_layout.h"
#include "backends/cuda/gemv_registry.h"

namespace imp::cuda::detail {

// ---- exact element access on the kMma layout (dequantization, the generic kernel) -------
template <FormatId F>
struct MmaElem {
  // The exact reference value of the code at (row r, column e), as the CPU dequantizer
  // computes it (same fp32 products, same order).
  __device__ static float value(const KernelArgs& a, int64_t r, int64_t e, uint32_t code) {
    const uint8_t* srow = a.scales + r * a.scale_row_bytes;
    if constexpr (F == FormatId::Q4_0) {
      return imp_fmul_rn(float(int(code) - 8), f16_bits_to_f32(load_le16(srow + 2 * (e / 32))));
    } else if constexpr (F == FormatId::Q8_0) {
      return imp_fmul_rn(float(int8_t(uint8_t(code))), f16_bits_to_f32(load_le16(srow + 2 * (e / 32))));
    } else if constexpr (F == FormatId::Q4_K) {
      const uint8_t* hdr = srow + 16 * (e / 256);
      int sc = 0, m = 0;
      q4_k_scale_min(hdr + 4, int(e % 256) / 32, sc, m);
      const float d = f16_bits_to_f32(load_le16(hdr)), dmin = f16_bits_to_f32(load_le16(hdr + 2));
      return imp_fsub_rn(imp_fmul_rn(imp_fmul_rn(d, float(sc)), float(code)), imp_fmul_rn(dmin, float(m)));
    } else if constexpr (F == FormatId::NVFP4_CKPT) {
      return imp_fmul_rn(e2m1_bits_to_f32(uint8_t(code)), imp_fmul_rn(e4m3_bits_to_f32(srow[e / 16]), a.tensor_scale));
    } else {
      return imp_fmul_rn(e2m1_bits_to_f32(uint8_t(code)), e8m0_value(srow[e / 32]));
    }
  }
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    constexpr int U = mma_layout::unit_cols(F);
    int c = 0, w = 0;
    const int p = mma_layout::code_position(F, int(e % U), c, w);
    const uint8_t* unit = a.data + r * a.data_row_bytes + (e / U) * mma_layout::kUnitBytes;
    const uint32_t word = load_le32(unit + mma_layout::word_offset(c, w));
    const uint32_t code = (word >> mma_layout::bit_offset(F, p)) & (F == FormatId::Q8_0 ? 0xFFu : 0xFu);
    return value(a, r, e, code);
  }
};

}  // namespace imp::cuda::detail
