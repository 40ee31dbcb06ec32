// Batch-1 decode GEMV on the GPU: y[rows] = W[rows, cols] · x[cols], with the weight's
// dequantization fused into the kernel. Host API; every pointer is device memory.
//
// Numerics: activations x and outputs y are F32; products and sums are FP32. Each weight
// element is decoded to exactly the fp32 value the CPU reference dequantization gives
// (decode_*.cuh); kernels then apply block scales once per block (d·Σq·x instead of Σ(q·d)·x)
// and accumulate with FMA, so y matches the FP64 dot of the reference dequantization to
// FP32 summation error (the tests hold it to a relative 1e-5).
//
// Exception, the integer-dot kernels (*_dp4a, GemvKernel::quantizes_x): they first round x
// to int8 blocks, exactly as the CPU reference activation quantizer does (Q8_0 for Q4_0 and
// NVFP4_CKPT, Q8_K for Q4_K and Q6_K; quantize_x_q8_0 / quantize_x_q8_k below), and then
// compute what the format's CPU vec_dot_ref computes on that activation row: integer block
// sums (exact) times FP32 block-scale products (same factors, same order), only the order of
// the FP32 sum over blocks differs. Against the FP32 dot they carry the int8 activation
// rounding error (~1e-2 relative), as llama.cpp's mmvq does.
//
// Formats: BF16, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL,
// IQ4_XS, MXFP4 (ggml), NVFP4 (ggml), NVFP4_CKPT, MXFP4_CKPT, FP8_E4M3_TENSOR,
// FP8_E4M3_CHANNEL, FP8_E4M3_BLOCK128, INT4_GROUP (gemv_supports()).
// Kernels: several per format (gemv_kernels()); gemv() picks the first whose
// can_implement() accepts the arguments, and when none does throws an imp::Error listing
// every kernel's reason. IMP_CUDA_DISABLE_KERNELS=name1,name2 removes kernels by name
// (read on every call, so tests can toggle it). The integer-dot kernels come first
// (q4_0_split_dp4a, q4_k_dp4a, q6_k_split_dp4a, nvfp4_ckpt_dp4a; gemv_dp4a.cu); disabling
// them by name falls back to the FP32-activation *_vec16 kernels.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/cuda/forward_kernels.h"
#include "formats/format_id.h"

namespace imp::cuda {

enum class WeightLayout : uint8_t {
  // The planes exactly as formats/quant_matrix.h lays them out (the bytes of the file):
  //   GGUF types: data = rows × (cols/QK) blocks, scales unused;
  //   NVFP4_CKPT: data = rows × cols/2 E2M1 pairs, scales = rows × cols/16 E4M3 bytes,
  //               tensor_scale = G;
  //   FP8_E4M3_CHANNEL: data = rows × cols E4M3 bytes, scales = rows F32.
  //   FP8_E4M3_TENSOR: data = rows × cols E4M3 bytes, tensor_scale; no scales plane.
  //   FP8_E4M3_BLOCK128: data as above, scales = ⌈rows/128⌉ × ⌈cols/128⌉ F32 (row-major).
  //   MXFP4_CKPT: data = rows × cols/2 E2M1 pairs, scales = rows × cols/32 E8M0 bytes.
  //   INT4_GROUP: data = rows × cols/2 uint4 pairs, scales = rows × cols/group F16,
  //               zeros = rows × cols/group uint8; DeviceMatrix::group set.
  kNative,
  // Q4_0, Q8_0, Q6_K only, produced by repack_split(): data = rows × (cols/QK) payloads
  // (the block without its f16 d: 16, 32, 208 bytes), scales = rows × (cols/QK) f16 d.
  // Every payload is 16-byte aligned, which the fast kernels need.
  kSplit,
  // Q4_0, Q8_0, NVFP4_CKPT, MXFP4_CKPT, made by repack_mma() for the tensor-core GEMV
  // (gemv_mma.cu; bit layout in gemv_mma_layout.h): data = rows × the payload bytes of the
  // row (cols/2 or cols), the codes permuted inside 64-byte units of 128 (Q8_0: 64) columns;
  // scales = the kSplit d plane (Q4_0, Q8_0) or the native scale plane (NVFP4_CKPT,
  // MXFP4_CKPT). Needs cols % 128 == 0 (Q8_0: 64).
  kMma,
};

struct DeviceMatrix {
  FormatId format = FormatId::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  const void* scales = nullptr;
  float tensor_scale = 1.0f;
  WeightLayout layout = WeightLayout::kNative;
  const void* zeros = nullptr;  // INT4_GROUP zero points
  int32_t group = 0;            // INT4_GROUP elements per scale (multiple of 32)
};

// What a GEMV does with its result: y = W·x, or y += W·x (the residual stream's output
// projections: the add costs no launch of its own).
enum class GemvOut { kStore, kAdd };

struct KernelCheck {
  bool ok = false;
  std::string reason;  // why not, when !ok
};

struct GemvKernel {
  std::string_view name;  // e.g. "q4_0_split_vec16"; used by IMP_CUDA_DISABLE_KERNELS
  FormatId format;
  WeightLayout layout;
  // Shape and alignment conditions beyond format/layout (those are checked generically).
  KernelCheck (*check)(const DeviceMatrix& w, const float* x, const float* y);
  void (*launch)(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream, GemvOut out);
  // True for the integer-dot kernels: y is the CPU vec_dot_ref on int8-quantized x, not the
  // FP32 dot (see the numerics note at the top). launch() then allocates a small
  // stream-ordered workspace (cudaMallocAsync) for the quantized x and runs two kernels.
  bool quantizes_x = false;
  // True for the tensor-core kernels (gemv_mma.cu): x is rounded to f16 (clamped to
  // ±65504) before the products; weights stay exact. CudaBackend runs them in its default
  // f16-activation decode mode only.
  bool half_x = false;
};

// Every kernel, fastest first within a format.
const std::vector<GemvKernel>& gemv_kernels();
// Full check for one kernel: format, layout, the env-var kill list, shape, alignment.
KernelCheck can_implement(const GemvKernel& k, const DeviceMatrix& w, const float* x, const float* y);
// The kernel gemv() would run; throws imp::Error with every kernel's reason when none fits.
const GemvKernel& select_gemv_kernel(const DeviceMatrix& w, const float* x, const float* y);
// y = W·x on `stream` (asynchronous). Returns the name of the kernel that ran.
std::string_view gemv(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream,
                      GemvOut out = GemvOut::kStore);

// Activation quantizers of the integer-dot kernels (asynchronous; any alignment of x):
//   quantize_x_q8_0: cols % 32 == 0. Per 32-element block b, exactly quantize_row_q8_0:
//     amax = max|x| (fp32), d = amax/127, id = d ? 1/d : 0, qs[i] = roundf(x[i]·id)
//     (ties away from zero). The codes use the fp32 d, as the CPU does; d_out[b] is the
//     f16-rounded d the CPU block stores (as an exact f32), since that is the value the CPU
//     vec_dot multiplies by. sums[b] = Σ qs over the block (for Q4_0's −8 offset).
//   quantize_x_q8_k: cols % 256 == 0. Per 256-element block b, exactly quantize_row_q8_k:
//     max = x of largest |x| (first wins), iscale = −127/max,
//     qs[i] = min(127, round-half-even(iscale·x[i])), d_out[b] = 1/iscale (f32);
//     bsums[16b + k] = Σ qs[16k .. 16k+15]. An all-zero block: qs, d, bsums all 0.
void quantize_x_q8_0(const float* x, int64_t cols, int8_t* qs, float* d_out, int32_t* sums, cudaStream_t stream);
void quantize_x_q8_k(const float* x, int64_t cols, int8_t* qs, float* d_out, int16_t* bsums, cudaStream_t stream);

// Formats gemv() serves, and the bytes of each plane for a layout (overflow-checked).
bool gemv_supports(FormatId format);
int64_t device_data_bytes(FormatId format, WeightLayout layout, int64_t rows, int64_t cols);
int64_t device_scale_bytes(FormatId format, WeightLayout layout, int64_t rows, int64_t cols, int32_t group = 0);
int64_t device_zero_bytes(FormatId format, int64_t rows, int64_t cols, int32_t group);

// Reference dequantization on the device: out[r·cols + c] = W[r, c], bit-identical to the
// CPU reference imp::dequantize (same decode helpers the kernels use). Either layout.
void dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream);

// Dequantization straight to BF16 (round to nearest even of the exact reference value,
// bit-identical to dequantize() then rounding), for the prefill GEMM. Only the kMma layout
// has it; returns false (nothing launched) otherwise.
bool dequantize_bf16(const DeviceMatrix& w, uint16_t* out, cudaStream_t stream);

// Native GGUF rows → kSplit planes (payload, d). `payload` and `d` must hold
// device_data_bytes / device_scale_bytes for kSplit. One thread per block; asynchronous.
void repack_split(FormatId format, const void* native, int64_t rows, int64_t cols, void* payload, void* d,
                  cudaStream_t stream);
// Fused decode GEMVs on the tensor-core kernels (f16 x, as GemvKernel::half_x): every
// matrix in the kMma layout, one format, one row length, and each accepted by its
// format's *_mma kernel; otherwise they return false and launch nothing.
//   gemv_mma_fused : y[i] = W[i]·x for n = 1…3 matrices in one launch (Q, K, V).
//   gemv_mma_swiglu: out = silu(W_gate·x) ⊙ (W_up·x) in one launch (same rows too); the
//                    CTA that computes row r of both applies silu(g)·u as swiglu() does.
// With a GemvFusion: norm_gain set → x is first RMS-normalized, x / sqrt(mean(x²) + eps) ·
// gain in FP32 as rmsnorm() does, inside every CTA (the decode step's norm kernels go away;
// the shared-x form only: rows ≤ 32768, gain 16-byte aligned); out = kAdd → y += W·x
// (gemv_mma_fused only).
// next_weights: what the bulk-copy kernel's producers prefetch into L2 once they have issued
// their last stage (the start of the next launch's weights, l2_prefetch.h; a hint only).
struct GemvFusion {
  const float* norm_gain = nullptr;
  float norm_eps = 0.0f;
  GemvOut out = GemvOut::kStore;
  L2Ranges next_weights;
};
bool gemv_mma_fused(const DeviceMatrix* w, int n, const float* x, float* const* y, cudaStream_t stream,
                    const GemvFusion& fusion = {});
bool gemv_mma_swiglu(const DeviceMatrix& gate, const DeviceMatrix& up, const float* x, float* out, cudaStream_t stream,
                     const GemvFusion& fusion = {});
// One decode token: q, k, v = W·x (norm as in fusion) as gemv_mma_fused, then in the same
// launch RoPE on q and k (rope_kv_write's formula) and the K and V rows written into the
// cache at step->pos0. Each CTA owns 16 rows that hold 8 whole RoPE pairs: adjacent rows
// for adjacent pairs; for half-split pairs (i, i + hd/2) the CTA's rows are remapped to
// rows i…i+7 and i+hd/2…i+hd/2+7 of a head. Needs the shared-x form, fewer than 16384 rows
// in all, head_dim % 16 == 0 and an element-wise KV type (f32, f16, bf16: the scaled types
// need the whole row); false (nothing launched) otherwise.
bool gemv_mma_qkv_rope_kv(const DeviceMatrix (&w)[3], const float* x, float* q, float* k, float* v, const RopeArgs& rope,
                          const KvView& kv, const StepParams* step, cudaStream_t stream, const GemvFusion& fusion = {});

// Native rows → kMma planes (payload, and the scale plane the repack writes — the f16 d of
// Q4_0 / Q8_0, Q4_K's and Q5_K's headers, Q6_K's unit slots: mma_has_own_scale_plane; NVFP4_CKPT and
// MXFP4_CKPT keep their native scale plane, pass d = nullptr). Asynchronous.
bool has_mma_layout(FormatId format, int64_t cols);
// Whether the backend uploads a weight in the kMma layout: has_mma_layout, and for the
// formats with a high-bit plane (Q5_K, Q6_K) while mma_high_bit_formats_on() — the default;
// IMP_CUDA_Q5K_Q6K_MMA=0 or set_mma_high_bit_formats(false) keep them in their native / kSplit
// layout and FP32-activation kernels (H100, session 15: Q5_K_M 8B decode 89 → 242 tok/s,
// prefill 7.5k → 20.8k; Q4_K_M prefill 19.1k → 23.7k). Read at upload: matrices already on
// the device keep their layout.
bool mma_layout_chosen(FormatId format, int64_t cols);
bool mma_high_bit_formats_on();
void set_mma_high_bit_formats(bool on);
inline bool mma_has_own_scale_plane(FormatId f) {
  return f == FormatId::Q4_0 || f == FormatId::Q8_0 || f == FormatId::Q4_K || f == FormatId::Q5_K ||
         f == FormatId::Q6_K;
}
void repack_mma(FormatId format, const void* native, int64_t rows, int64_t cols, void* payload, void* d,
                cudaStream_t stream);

inline void repack_q4_0(const void* native, int64_t rows, int64_t cols, void* payload, void* d, cudaStream_t s) {
  repack_split(FormatId::Q4_0, native, rows, cols, payload, d, s);
}
inline void repack_q8_0(const void* native, int64_t rows, int64_t cols, void* payload, void* d, cudaStream_t s) {
  repack_split(FormatId::Q8_0, native, rows, cols, payload, d, s);
}
inline void repack_q6_k(const void* native, int64_t rows, int64_t cols, void* payload, void* d, cudaStream_t s) {
  repack_split(FormatId::Q6_K, native, rows, cols, payload, d, s);
}

}  // namespace imp::cuda
