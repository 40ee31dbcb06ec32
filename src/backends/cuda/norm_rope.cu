// RMSNorm, RoPE and the fused RoPE + KV-cache write (forward_kernels.h).
#include <cmath>

#include "backends/cuda/check.h"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/fp8_act.cuh"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/mma_f16.cuh"
#include "backends/cuda/pdl.cuh"
#include "backends/cuda/rope.cuh"

namespace imp::cuda {
namespace {

constexpr int kNormThreads = 1024;
constexpr int kNormRegs = 8;  // x values a thread keeps in registers: rows up to 8192 wide

// One block per row. A decode step's norm is a single row, so the kernel is latency-bound:
// every thread issues all of its loads before using any (kNormRegs in flight) and keeps
// them in registers for the scaling pass instead of reading x twice. kAdd: x += delta
// first (written back: the residual stream), so the residual add costs no launch of its own.
// Out: float, or uint16_t for BF16 (round to nearest even, f32_to_bf16's bits) — the
// prefill's norm feeding a BF16 GEMM directly instead of through a conversion pass.
// F16Mma: f16 in the kMma column order of gemm_dequant (forward_kernels.h: rmsnorm_f16_mma).
struct F16Mma {
  uint16_t bits;
};
__device__ __forceinline__ void store_out(float* row, int64_t i, float v) { row[i] = v; }
__device__ __forceinline__ void store_out(uint16_t* row, int64_t i, float v) { row[i] = kvc::f32_to_bf16(v); }
__device__ __forceinline__ void store_out(F16Mma* row, int64_t i, float v) {
  const int c = int(i & 15), k = c >> 2, t = c & 3;
  row[(i & ~int64_t(15)) | (8 * (t >> 1) + 2 * k + (t & 1))].bits = uint16_t(mma::f16x2_sat(v, 0.0f));
}

// Loads row xr (x += delta first when kAdd, written back), keeping this thread's first
// kNormRegs values in v, and returns 1/sqrt(Σx²/n + eps) (block sum; every thread gets it).
template <bool kAdd>
__device__ __forceinline__ float rms_load_scale(float* xr, const float* dr, int64_t n, float eps,
                                                float (&v)[kNormRegs]) {
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kNormRegs; ++j) {
    const int64_t i = threadIdx.x + int64_t(j) * kNormThreads;
    v[j] = i < n ? xr[i] : 0.0f;
    if (kAdd && i < n) v[j] += dr[i];
  }
  if (kAdd) {
#pragma unroll
    for (int j = 0; j < kNormRegs; ++j) {
      const int64_t i = threadIdx.x + int64_t(j) * kNormThreads;
      if (i < n) xr[i] = v[j];
    }
  }
#pragma unroll
  for (int j = 0; j < kNormRegs; ++j) ss = fmaf(v[j], v[j], ss);
  for (int64_t i = threadIdx.x + int64_t(kNormRegs) * kNormThreads; i < n; i += kNormThreads) {
    if (kAdd) xr[i] += dr[i];  // the same thread reads it back below
    ss = fmaf(xr[i], xr[i], ss);
  }
  __shared__ float warp_sums[kNormThreads / 32];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xFFFFFFFFu, ss, o);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float w = threadIdx.x < kNormThreads / 32 ? warp_sums[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) w += __shfl_xor_sync(0xFFFFFFFFu, w, o);
    if (threadIdx.x == 0) warp_sums[0] = w;
  }
  __syncthreads();
  return 1.0f / sqrtf(warp_sums[0] / float(n) + eps);
}

template <bool kAdd, class Out = float>
__global__ void __launch_bounds__(kNormThreads) rmsnorm_kernel(float* x, const float* delta, const float* gain,
                                                               int64_t n, float eps, Out* out) {
  pdl_wait();  // x (and delta) come from the kernel before (launched with launch_pdl)
  pdl_trigger();
  float* xr = x + blockIdx.x * n;
  const float* dr = kAdd ? delta + blockIdx.x * n : nullptr;
  Out* outr = out + blockIdx.x * n;
  float v[kNormRegs];
  const float scale = rms_load_scale<kAdd>(xr, dr, n, eps, v);
#pragma unroll
  for (int j = 0; j < kNormRegs; ++j) {
    const int64_t i = threadIdx.x + int64_t(j) * kNormThreads;
    if (i < n) store_out(outr, i, v[j] * scale * gain[i]);
  }
  for (int64_t i = threadIdx.x + int64_t(kNormRegs) * kNormThreads; i < n; i += kNormThreads) {
    store_out(outr, i, xr[i] * scale * gain[i]);
  }
}

// rmsnorm, then the FP8 GEMM's per-token quantization of the normed row (fp8_act.cuh): the
// values are computed twice (the amax pass, then the encoding pass) from the registers /
// the row, never stored as F32. Block t < n_pad; rows t ≥ `rows` are padding (zero codes,
// scale 1), as quantize_x_fp8 writes them.
// Two blocks per SM by default, as swiglu_fp8 (elementwise.cu): 49 registers fit one.
template <int kMinBlocks>
__global__ void __launch_bounds__(kNormThreads, kMinBlocks) rmsnorm_fp8_kernel(const float* x, const float* gain, int64_t rows,
                                                                   int64_t n, float eps, uint8_t* q, float* s) {
  pdl_wait();  // x comes from the kernel before; q may still be read by the last GEMM
  pdl_trigger();
  const int64_t t = blockIdx.x;
  uint8_t* qr = q + t * n;
  if (t >= rows) return fp8act::write_padding_row(qr, n, s + t);
  float* xr = const_cast<float*>(x) + t * n;  // kAdd = false never writes
  float v[kNormRegs];
  const float scale = rms_load_scale<false>(xr, nullptr, n, eps, v);
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < kNormRegs; ++j) {
    const int64_t i = threadIdx.x + int64_t(j) * kNormThreads;
    if (i < n) amax = fmaxf(amax, fabsf(v[j] * scale * gain[i]));
  }
  for (int64_t i = threadIdx.x + int64_t(kNormRegs) * kNormThreads; i < n; i += kNormThreads) {
    amax = fmaxf(amax, fabsf(xr[i] * scale * gain[i]));
  }
  const float sa = fp8act::scale_of(fp8act::block_max(amax));
#pragma unroll
  for (int j = 0; j < kNormRegs; ++j) {
    const int64_t i = threadIdx.x + int64_t(j) * kNormThreads;
    if (i < n) qr[i] = fp8act::encode(v[j] * scale * gain[i], sa);
  }
  for (int64_t i = threadIdx.x + int64_t(kNormRegs) * kNormThreads; i < n; i += kNormThreads) {
    qr[i] = fp8act::encode(xr[i] * scale * gain[i], sa);
  }
  if (threadIdx.x == 0) s[t] = sa;
}

// Rotates one head row in shared memory `v` (head_dim floats) with the whole warp.
__device__ void rope_row(float* v, int hd, int pos, RopeArgs r) {
  const int lane = threadIdx.x & 31, half = hd / 2;
  for (int i = lane; i < half; i += 32) {
    const int a = r.half_split ? i : 2 * i, b = r.half_split ? i + half : 2 * i + 1;
    rope_rotate(v[a], v[b], i, hd, pos, r);
  }
  __syncwarp();
}

// grid (n_tok, ⌈rows/kRopeWarps⌉), kRopeWarps warps; one warp per head row (rows = n_head +
// n_kv per token); dynamic smem: kRopeWarps · head_dim floats. Rows 0 .. n_head−1 are q
// heads (rope only); rows n_head .. n_head+n_kv−1 are kv heads (rope k, then encode k and v
// into the cache). q may be null (kv rows only); rope may be skipped (do_rope = 0) for a
// plain kv write. Several warps per block: one-warp blocks capped a 512-token prefill at
// 32 resident warps per SM and cost 27 µs per layer of an 8B model (H100, 2026-12-07).
constexpr int kRopeWarps = 4;

__global__ void rope_kv_kernel(float* q, float* k, const float* v, int n_head, int n_rows, int do_rope, RopeArgs r,
                               KvView kv, int write_kv, const StepParams* step) {
  extern __shared__ float rows_smem[];
  pdl_wait();  // q, k, v come from the kernel before (a PDL launch, pdl.cuh)
  pdl_trigger();
  const int t = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int hd = kv.head_dim, pos = step->pos0 + t;
  const int head = blockIdx.y * kRopeWarps + warp;
  if (head >= n_rows) return;  // no block-wide barrier below: warps are independent
  float* row = rows_smem + warp * hd;
  float* src;
  int g = -1;
  if (head < n_head) {
    src = q + (int64_t(t) * n_head + head) * hd;
  } else {
    g = head - n_head;
    src = k + (int64_t(t) * kv.n_kv_head + g) * hd;
  }
  for (int e = lane; e < hd; e += 32) row[e] = src[e];
  __syncwarp();
  if (do_rope) {
    rope_row(row, hd, pos, r);
    for (int e = lane; e < hd; e += 32) src[e] = row[e];
  }
  if (g < 0 || !write_kv) return;
  kvc::encode_row_warp(kv.dtype, row, kvc::kv_row_ptr(kv.k_pool, kv.k_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, pos, g), hd);
  __syncwarp();
  const float* vs = v + (int64_t(t) * kv.n_kv_head + g) * hd;
  for (int e = lane; e < hd; e += 32) row[e] = vs[e];
  __syncwarp();
  kvc::encode_row_warp(kv.dtype, row, kvc::kv_row_ptr(kv.v_pool, kv.v_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, pos, g), hd);
}

// Plain RoPE over any head count: grid (n_tok, n_head), one warp per row.
__global__ void rope_kernel(float* x, int n_head, int hd, RopeArgs r, const StepParams* step) {
  extern __shared__ float row[];
  const int t = blockIdx.x, lane = threadIdx.x;
  float* src = x + (int64_t(t) * n_head + blockIdx.y) * hd;
  for (int e = lane; e < hd; e += 32) row[e] = src[e];
  __syncwarp();
  rope_row(row, hd, step->pos0 + t, r);
  for (int e = lane; e < hd; e += 32) src[e] = row[e];
}

void check_grid(int64_t n_tok, int64_t rows, const char* op) {
  if (n_tok <= 0 || n_tok > 0x7FFFFFFF || rows <= 0 || rows > 65535) {
    ::imp::fail("CUDA {}: grid of {} tokens × {} rows is out of range", op, n_tok, rows);
  }
}

}  // namespace

bool kv_dtype_supported_on_device(int32_t dtype) { return dtype >= kvc::kF32 && dtype <= kvc::kNVFP4; }

void rmsnorm(const float* x, const float* gain, int64_t rows, int64_t n, float eps, float* out, cudaStream_t stream) {
  if (rows <= 0 || rows > 0x7FFFFFFF || n <= 0) ::imp::fail("CUDA rmsnorm: {} rows of {} is out of range", rows, n);
  // kAdd = false never writes x.
  launch_pdl(rmsnorm_kernel<false, float>, dim3(unsigned(rows)), dim3(kNormThreads), 0, stream, const_cast<float*>(x),
             static_cast<const float*>(nullptr), gain, n, eps, out);
  IMP_CUDA_CHECK_LAUNCH();
}

void rmsnorm_bf16(const float* x, const float* gain, int64_t rows, int64_t n, float eps, uint16_t* out,
                  cudaStream_t stream) {
  if (rows <= 0 || rows > 0x7FFFFFFF || n <= 0) ::imp::fail("CUDA rmsnorm_bf16: {} rows of {} is out of range", rows, n);
  launch_pdl(rmsnorm_kernel<false, uint16_t>, dim3(unsigned(rows)), dim3(kNormThreads), 0, stream, const_cast<float*>(x),
             static_cast<const float*>(nullptr), gain, n, eps, out);
  IMP_CUDA_CHECK_LAUNCH();
}

void rmsnorm_f16_mma(const float* x, const float* gain, int64_t rows, int64_t n, float eps, uint16_t* out,
                     cudaStream_t stream) {
  if (rows <= 0 || rows > 0x7FFFFFFF || n <= 0 || n % 16 != 0) {
    ::imp::fail("CUDA rmsnorm_f16_mma: {} rows of {} is out of range (whole 16-column chunks)", rows, n);
  }
  launch_pdl(rmsnorm_kernel<false, F16Mma>, dim3(unsigned(rows)), dim3(kNormThreads), 0, stream, const_cast<float*>(x),
             static_cast<const float*>(nullptr), gain, n, eps, reinterpret_cast<F16Mma*>(out));
  IMP_CUDA_CHECK_LAUNCH();
}

void rmsnorm_fp8(const float* x, const float* gain, int64_t rows, int64_t n, float eps, int64_t n_pad, uint8_t* q,
                 float* s, cudaStream_t stream) {
  if (rows <= 0 || n_pad < rows || n_pad > 0x7FFFFFFF || n <= 0) {
    ::imp::fail("CUDA rmsnorm_fp8: {} rows (padded to {}) of {} is out of range", rows, n_pad, n);
  }
  launch_pdl(fp8_producers_two_blocks() ? rmsnorm_fp8_kernel<2> : rmsnorm_fp8_kernel<1>, dim3(unsigned(n_pad)),
             dim3(kNormThreads), 0, stream, x, gain, rows, n, eps, q, s);
  IMP_CUDA_CHECK_LAUNCH();
}

void add_rmsnorm(float* x, const float* delta, const float* gain, int64_t rows, int64_t n, float eps, float* out,
                 cudaStream_t stream) {
  if (rows <= 0 || rows > 0x7FFFFFFF || n <= 0) ::imp::fail("CUDA add_rmsnorm: {} rows of {} is out of range", rows, n);
  launch_pdl(rmsnorm_kernel<true, float>, dim3(unsigned(rows)), dim3(kNormThreads), 0, stream, x, delta, gain, n, eps, out);
  IMP_CUDA_CHECK_LAUNCH();
}

void rope(float* x, int64_t n_tok, int64_t n_head, int64_t head_dim, RopeArgs r, const StepParams* step,
          cudaStream_t stream) {
  check_grid(n_tok, n_head, "rope");
  if (head_dim <= 0 || head_dim % 2 != 0) ::imp::fail("CUDA rope: head_dim {} must be positive and even", head_dim);
  rope_kernel<<<dim3(unsigned(n_tok), unsigned(n_head)), 32, size_t(head_dim) * 4, stream>>>(x, int(n_head),
                                                                                             int(head_dim), r, step);
  IMP_CUDA_CHECK_LAUNCH();
}

void kv_write(const float* k, const float* v, int64_t n_tok, KvView kv, const StepParams* step, cudaStream_t stream) {
  check_grid(n_tok, kv.n_kv_head, "kv_write");
  if (!kv_dtype_supported_on_device(kv.dtype)) ::imp::fail("CUDA kv_write: KV type {} has no device encoder", kv.dtype);
  // The kernel only reads k when do_rope = 0.
  rope_kv_kernel<<<dim3(unsigned(n_tok), unsigned((kv.n_kv_head + kRopeWarps - 1) / kRopeWarps)), 32 * kRopeWarps,
                   size_t(kRopeWarps) * kv.head_dim * 4, stream>>>(nullptr, const_cast<float*>(k), v, 0,
                                                                   int(kv.n_kv_head), 0, RopeArgs{}, kv, 1, step);
  IMP_CUDA_CHECK_LAUNCH();
}

void rope_kv_write(float* q, float* k, const float* v, int64_t n_tok, int64_t n_head, RopeArgs r, KvView kv,
                   const StepParams* step, cudaStream_t stream) {
  check_grid(n_tok, n_head + kv.n_kv_head, "rope_kv_write");
  if (kv.head_dim % 2 != 0) ::imp::fail("CUDA rope_kv_write: head_dim {} must be even", kv.head_dim);
  if (!kv_dtype_supported_on_device(kv.dtype)) ::imp::fail("CUDA rope_kv_write: KV type {} has no device encoder", kv.dtype);
  const int64_t rows = n_head + kv.n_kv_head;
  launch_pdl(rope_kv_kernel, dim3(unsigned(n_tok), unsigned((rows + kRopeWarps - 1) / kRopeWarps)),
             dim3(32 * kRopeWarps), size_t(kRopeWarps) * kv.head_dim * 4, stream, q, k, v, int(n_head), int(rows), 1, r,
             kv, 1, step);
}

}  // namespace imp::cuda
