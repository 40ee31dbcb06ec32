// The kMma layout's load-time repack (native rows → payload and scale planes) and its
// dequantizers: exact f32 (dequantize()) and straight to BF16 for the prefill GEMM. Layout:
// gemv_mma_layout.h.
#include "backends/cuda/decode_kquant.cuh"
#include "backends/cuda/gemv_kernel.cuh"
#include "backends/cuda/gemv_mma_elem.cuh"
#include "backends/cuda/gemv_mma_layout.h"
#include "backends/cuda/kv_codec.cuh"
#include "common/env_switch.h"
#include "formats/traits.h"

namespace imp::cuda::detail {
namespace {

// The exact reference values of one 32-bit payload word (thread c, word w of unit u of row
// r): unit_word_values (gemv_mma_elem.cuh) on the row's scale bytes of unit u.
// Q5_K and Q6_K also read the word's high bits from the row's second plane.
template <FormatId F>
__device__ __forceinline__ void word_values(const KernelArgs& a, int64_t r, int u, int c, int w, uint32_t word,
                                            float (&v)[2][4]) {
  const uint8_t* unit_scales = a.scales + r * a.scale_row_bytes + unit_scale_offset(F, u);
  uint32_t hh = 0;
  if constexpr (mma_layout::hi_bits(F) > 0) {
    hh = __ldg(reinterpret_cast<const unsigned int*>(a.data + r * a.data_row_bytes + mma_layout::hi_plane(a.cols) +
                                                     int64_t(u) * mma_layout::hi_unit_bytes(F) +
                                                     mma_layout::hi_word_offset(F, c, w))) >>
         mma_layout::hi_word_shift(F, w);
  }
  unit_word_values<F>(unit_scales, u, w, word, a.tensor_scale, v, hh);
}

// Dequantization straight to BF16 for the prefill GEMM. Block (x: 256 words of a row,
// y: groups of kDequantRows rows, strided); the four threads of a word index w (c = 0..3) are neighbours, so each
// writes the 4 contiguous BF16 values (8 bytes) of its chunk columns 4c … 4c+3 and a quad
// fills 32 contiguous bytes. No 64-bit division; the scales are read once per word (the
// per-element MmaElem::value path made 4-bit prefill dequantization-bound). One row per
// thread ran at 0.34 of copy bandwidth (Q4_0 8B prefill: 12.5 ms for 18 GB, 2026-12-03).
constexpr int kDequantRows = 4;  // rows per thread: all their loads issued before any store

template <FormatId F>
__global__ void dequant_bf16_kernel(KernelArgs a, uint16_t* out) {
  constexpr int U = mma_layout::unit_cols(F);
  constexpr int kChunksPerWord = mma_layout::codes_per_word(F) / 4;
  const int words_per_row = int(a.cols / U) * 16;
  const int k = int(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= words_per_row) return;
  const int u = k / 16, w = (k % 16) / 4, c = k % 4;
  for (int64_t r0 = int64_t(blockIdx.y) * kDequantRows; r0 < a.rows; r0 += int64_t(gridDim.y) * kDequantRows) {
    // Values of kDequantRows rows first (words and scales: loads only, so they are all in
    // flight together), then the stores — a load after a store could alias it and would wait.
    float v[kDequantRows][2][4];
#pragma unroll
    for (int i = 0; i < kDequantRows; ++i) {
      const int64_t r = min(r0 + i, a.rows - 1);  // past the end: the last row again, not stored
      const uint32_t word = __ldg(reinterpret_cast<const unsigned int*>(
          a.data + r * a.data_row_bytes + int64_t(u) * mma_layout::kUnitBytes + mma_layout::word_offset(c, w)));
      word_values<F>(a, r, u, c, w, word, v[i]);
    }
#pragma unroll
    for (int i = 0; i < kDequantRows; ++i) {
      if (r0 + i >= a.rows) break;
#pragma unroll
      for (int h = 0; h < kChunksPerWord; ++h) {
        const int64_t e0 = int64_t(u) * U + 16 * (kChunksPerWord * w + h) + 4 * c;
        // One 8-byte store (e0 % 4 == 0); the plain uint2 assignment compiled to two 4-byte ones.
        const uint32_t lo = uint32_t(kvc::f32_to_bf16(v[i][h][0])) | (uint32_t(kvc::f32_to_bf16(v[i][h][1])) << 16);
        const uint32_t hi = uint32_t(kvc::f32_to_bf16(v[i][h][2])) | (uint32_t(kvc::f32_to_bf16(v[i][h][3])) << 16);
        asm volatile("st.global.v2.u32 [%0], {%1, %2};" ::"l"(out + (r0 + i) * a.cols + e0), "r"(lo), "r"(hi));
      }
    }
  }
}

// ---- repack: native planes → kMma payload (and the Q4_0 / Q8_0 d plane, the Q4_K headers)
// One thread per output word (4 bytes): gathers its 8 nibbles or 4 bytes from the native
// row through unit_column().
template <FormatId F>
__device__ uint32_t native_code(const uint8_t* row, int64_t col) {
  if constexpr (F == FormatId::Q4_0) {
    const uint8_t* blk = row + (col / 32) * kQ4_0Bytes + 2;
    const int j = int(col % 32);
    return j < 16 ? (blk[j] & 0xFu) : (blk[j - 16] >> 4);
  } else if constexpr (F == FormatId::Q8_0) {
    return row[(col / 32) * kQ8_0Bytes + 2 + col % 32];
  } else if constexpr (F == FormatId::Q4_K) {
    const uint8_t* qs = row + (col / 256) * kQ4_KBytes + 16;
    const int e = int(col % 256);
    const uint8_t b = qs[32 * (e / 64) + e % 32];
    return (e % 64) < 32 ? (b & 0xFu) : (b >> 4);
  } else if constexpr (F == FormatId::Q5_K) {
    const uint8_t* blk = row + (col / 256) * kQ5_KBytes;
    return uint32_t(q5_k_code(blk, int(col % 256)));  // 0 … 31 (decode_kquant.cuh)
  } else if constexpr (F == FormatId::Q6_K) {
    // The unsigned q (0 … 63) of q6_k_value (decode_gguf.cuh).
    const uint8_t* blk = row + (col / 256) * kQ6_KBytes;
    const int e = int(col % 256), h = e / 128, g = (e % 128) / 32, l = e % 32;
    const uint8_t b = blk[64 * h + l + 32 * (g & 1)];
    return (g < 2 ? (b & 0xFu) : (b >> 4)) | (((blk[128 + 32 * h + l] >> (2 * g)) & 3u) << 4);
  } else {
    return (row[col / 2] >> (4 * (col & 1))) & 0xFu;
  }
}

template <FormatId F>
__global__ void repack_mma_kernel(const uint8_t* native, int64_t rows, int64_t cols, uint8_t* payload, uint8_t* d) {
  constexpr int U = mma_layout::unit_cols(F), bits = mma_layout::code_bits(F);
  const int64_t words_per_row = cols / U * 16;
  const int64_t row_bytes_native = F == FormatId::Q4_0   ? cols / 32 * kQ4_0Bytes
                                   : F == FormatId::Q8_0 ? cols / 32 * kQ8_0Bytes
                                   : F == FormatId::Q4_K ? cols / 256 * kQ4_KBytes
                                   : F == FormatId::Q6_K ? cols / 256 * kQ6_KBytes
                                   : F == FormatId::Q5_K ? cols / 256 * kQ5_KBytes
                                                         : cols / 2;
  auto store32 = [](uint8_t* out, uint32_t word) {
    out[0] = uint8_t(word), out[1] = uint8_t(word >> 8), out[2] = uint8_t(word >> 16), out[3] = uint8_t(word >> 24);
  };
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * words_per_row;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / words_per_row, k = i % words_per_row;
    const int u = int(k / 16), c = int(k % 16) / 4, w = int(k % 4);
    const uint8_t* src = native + r * row_bytes_native;
    const auto code = [&](int e) { return native_code<F>(src, int64_t(u) * U + e); };
    uint8_t* const prow = payload + r * (cols * bits / 8);
    store32(prow + int64_t(u) * mma_layout::kUnitBytes + mma_layout::word_offset(c, w), mma_layout::pack_word(F, c, w, code));
    if constexpr (mma_layout::hi_bits(F) > 0) {
      // Hi word i is written by the thread of its first lo word (Q6_K: 2i, Q5_K: 0).
      const int per = F == FormatId::Q6_K ? 2 : 4;
      if (w % per == 0) {
        store32(prow + mma_layout::hi_plane(cols) + int64_t(u) * mma_layout::hi_unit_bytes(F) +
                    mma_layout::hi_word_offset(F, c, w),
                mma_layout::pack_hi_word(F, c, w / per, code));
      }
    }
    if constexpr (F == FormatId::Q6_K) {
      // Thread 0 / word 0 writes the unit's scale slot.
      if (c == 0 && w == 0) {
        uint8_t slot[16];
        mma_layout::q6_scale_slot(src + (int64_t(u) / 2) * kQ6_KBytes, u, slot);
        uint8_t* out = d + (r * (cols / 128) + u) * 16;
        for (int j = 0; j < 16; ++j) out[j] = slot[j];
      }
    }
    if constexpr (F == FormatId::Q4_0 || F == FormatId::Q8_0) {
      // The thread of word 0 of each 32-column block copies that block's d.
      constexpr int kBlockBytes = F == FormatId::Q4_0 ? kQ4_0Bytes : kQ8_0Bytes;
      const int64_t col0 = int64_t(u) * U + 32 * (c + 4 * w);
      if (col0 < int64_t(u + 1) * U && col0 < cols) {
        const int64_t b = col0 / 32;
        d[2 * (r * (cols / 32) + b)] = src[b * kBlockBytes];
        d[2 * (r * (cols / 32) + b) + 1] = src[b * kBlockBytes + 1];
      }
    } else if constexpr (F == FormatId::Q4_K || F == FormatId::Q5_K) {
      // The thread of word 0 / thread 0 of a superblock's first unit copies its header (the
      // block's first 16 bytes: d, dmin, scales[12] in both formats).
      if (c == 0 && w == 0 && (u & 1) == 0) {
        const int64_t b = int64_t(u) / 2;
        const int block_bytes = F == FormatId::Q4_K ? kQ4_KBytes : kQ5_KBytes;
        for (int i = 0; i < 16; ++i) d[(r * (cols / 256) + b) * 16 + i] = src[b * block_bytes + i];
      }
    }
  }
}

}  // namespace

bool mma_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  if (w.layout != WeightLayout::kMma) return false;
  switch (w.format) {
    case FormatId::Q4_0: launch_dequant<MmaElem<FormatId::Q4_0>>(w, out, stream); return true;
    case FormatId::Q8_0: launch_dequant<MmaElem<FormatId::Q8_0>>(w, out, stream); return true;
    case FormatId::Q4_K: launch_dequant<MmaElem<FormatId::Q4_K>>(w, out, stream); return true;
    case FormatId::Q5_K: launch_dequant<MmaElem<FormatId::Q5_K>>(w, out, stream); return true;
    case FormatId::Q6_K: launch_dequant<MmaElem<FormatId::Q6_K>>(w, out, stream); return true;
    case FormatId::NVFP4_CKPT: launch_dequant<MmaElem<FormatId::NVFP4_CKPT>>(w, out, stream); return true;
    case FormatId::MXFP4_CKPT: launch_dequant<MmaElem<FormatId::MXFP4_CKPT>>(w, out, stream); return true;
    default: return false;
  }
}

}  // namespace imp::cuda::detail

namespace imp::cuda {

bool has_mma_layout(FormatId format, int64_t cols) {
  const int U = mma_layout::unit_cols(format);
  return U > 0 && cols > 0 && cols % U == 0;
}

namespace {
bool& high_bit_formats_ref() {
  static bool on = env_switch_on("IMP_CUDA_Q5K_Q6K_MMA");
  return on;
}
}  // namespace

bool mma_high_bit_formats_on() { return high_bit_formats_ref(); }
void set_mma_high_bit_formats(bool on) { high_bit_formats_ref() = on; }
bool mma_layout_chosen(FormatId format, int64_t cols) {
  return has_mma_layout(format, cols) && (mma_layout::hi_bits(format) == 0 || high_bit_formats_ref());
}

void repack_mma(FormatId format, const void* native, int64_t rows, int64_t cols, void* payload, void* d,
                cudaStream_t stream) {
  if (!has_mma_layout(format, cols)) {
    fail("repack_mma: {} rows of {} columns have no kMma layout (q4_0, q4_k, q5_k, q6_k, nvfp4_ckpt, mxfp4_ckpt: cols "
         "% 128 == 0; q8_0: cols % 64 == 0)", format_name(format), cols);
  }
  const bool has_d = mma_has_own_scale_plane(format);
  if (!native || !payload || (has_d && !d)) fail("repack_mma({}): null device pointer", format_name(format));
  const int64_t words = rows * (device_data_bytes(format, WeightLayout::kMma, rows, cols) / rows / 4);
  const int64_t grid = words / 256 + 1 < 65536 ? words / 256 + 1 : 65536;
  const auto* src = static_cast<const uint8_t*>(native);
  auto* out = static_cast<uint8_t*>(payload);
  auto* dd = static_cast<uint8_t*>(d);
  switch (format) {
    case FormatId::Q4_0: detail::repack_mma_kernel<FormatId::Q4_0><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
    case FormatId::Q8_0: detail::repack_mma_kernel<FormatId::Q8_0><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
    case FormatId::Q4_K: detail::repack_mma_kernel<FormatId::Q4_K><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
    case FormatId::Q5_K: detail::repack_mma_kernel<FormatId::Q5_K><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
    case FormatId::Q6_K: detail::repack_mma_kernel<FormatId::Q6_K><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
    case FormatId::NVFP4_CKPT:
      detail::repack_mma_kernel<FormatId::NVFP4_CKPT><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd);
      break;
    default: detail::repack_mma_kernel<FormatId::MXFP4_CKPT><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
  }
  IMP_CUDA_CHECK_LAUNCH();
}


bool dequantize_bf16(const DeviceMatrix& w, uint16_t* out, cudaStream_t stream) {
  if (w.layout != WeightLayout::kMma || !out) return false;
  const detail::KernelArgs a = detail::make_args(w, nullptr, nullptr);
  const int64_t words_per_row = (w.cols / mma_layout::unit_cols(w.format)) * 16;
  if (words_per_row > 0x7FFFFFFF) fail("dequantize_bf16: {} columns out of range", w.cols);
  const int64_t row_groups = (w.rows + detail::kDequantRows - 1) / detail::kDequantRows;
  const dim3 grid(unsigned((words_per_row + 255) / 256), unsigned(std::min<int64_t>(row_groups, 65535)));
  switch (w.format) {
    case FormatId::Q4_0: detail::dequant_bf16_kernel<FormatId::Q4_0><<<grid, 256, 0, stream>>>(a, out); break;
    case FormatId::Q4_K: detail::dequant_bf16_kernel<FormatId::Q4_K><<<grid, 256, 0, stream>>>(a, out); break;
    case FormatId::Q5_K: detail::dequant_bf16_kernel<FormatId::Q5_K><<<grid, 256, 0, stream>>>(a, out); break;
    case FormatId::Q6_K: detail::dequant_bf16_kernel<FormatId::Q6_K><<<grid, 256, 0, stream>>>(a, out); break;
    case FormatId::Q8_0: detail::dequant_bf16_kernel<FormatId::Q8_0><<<grid, 256, 0, stream>>>(a, out); break;
    case FormatId::NVFP4_CKPT: detail::dequant_bf16_kernel<FormatId::NVFP4_CKPT><<<grid, 256, 0, stream>>>(a, out); break;
    case FormatId::MXFP4_CKPT: detail::dequant_bf16_kernel<FormatId::MXFP4_CKPT><<<grid, 256, 0, stream>>>(a, out); break;
    default: return false;
  }
  IMP_CUDA_CHECK_LAUNCH();
  return true;
}

}  // namespace imp::cuda