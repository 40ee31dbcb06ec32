// Elementwise forward ops (forward_kernels.h): grid-stride loops, one element per thread step
// (four for the aligned SwiGLU, add and BF16 conversion).
#include <cmath>

#include <cstdint>

#include "backends/cuda/check.h"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/fp8_act.cuh"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/mma_f16.cuh"
#include "backends/cuda/pdl.cuh"

namespace imp::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 65535 * 4 ? b : 65535 * 4);  // grid-stride covers the rest
}

__global__ void swiglu_kernel(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

// silu(g)·u per lane, the expression of every SwiGLU kernel here (and of the CPU reference).
__device__ inline float4 silu_mul4(float4 g, float4 u) {
  return make_float4(g.x / (1.0f + expf(-g.x)) * u.x, g.y / (1.0f + expf(-g.y)) * u.y,
                     g.z / (1.0f + expf(-g.z)) * u.z, g.w / (1.0f + expf(-g.w)) * u.w);
}

// Four elements per thread (16-byte loads and stores) where the buffers allow: the prefill's
// SwiGLU over (tokens × n_ff) ran at ~0.6 of copy bandwidth one float at a time (46 µs per
// layer for 88 MB, Q4_0 8B at 512 tokens on an H100, 2026-12-07). out may alias gate.
__global__ void swiglu_x4_kernel(const float4* gate, const float4* up, int64_t n4, float4* out) {
  pdl_wait();  // gate and up come from the GEMMs before (launch_pdl)
  pdl_trigger();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = silu_mul4(gate[i], up[i]);
  }
}

// swiglu_x4_kernel's values rounded to BF16: the down projection's GEMM activations.
__global__ void swiglu_bf16_x4_kernel(const float4* gate, const float4* up, int64_t n4, uint2* out) {
  pdl_wait();  // gate and up come from the GEMMs before (launch_pdl)
  pdl_trigger();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const float4 v = silu_mul4(gate[i], up[i]);
    out[i] = make_uint2(uint32_t(kvc::f32_to_bf16(v.x)) | (uint32_t(kvc::f32_to_bf16(v.y)) << 16),
                        uint32_t(kvc::f32_to_bf16(v.z)) | (uint32_t(kvc::f32_to_bf16(v.w)) << 16));
  }
}

// swiglu_x4_kernel's values as f16 in the kMma column order: quad i (columns 4k … 4k+3 of
// chunk i / 4, k = i % 4) gives f16 pairs 2k / 2k+1 and 8+2k / 9+2k of the chunk — words k and
// 4 + k of its eight.
__global__ void swiglu_f16_mma_x4_kernel(const float4* gate, const float4* up, int64_t n4, uint32_t* out) {
  pdl_wait();  // gate and up come from the GEMMs before (launch_pdl)
  pdl_trigger();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const float4 v = silu_mul4(gate[i], up[i]);
    uint32_t* chunk = out + (i >> 2) * 8 + (i & 3);
    chunk[0] = mma::f16x2_sat(v.x, v.y);
    chunk[4] = mma::f16x2_sat(v.z, v.w);
  }
}

__global__ void swiglu_bf16_kernel(const float* gate, const float* up, int64_t n, uint16_t* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = kvc::f32_to_bf16(g / (1.0f + expf(-g)) * up[i]);
  }
}

// SwiGLU, then the FP8 GEMM's per-token quantization of each row (fp8_act.cuh): block t <
// n_pad, rows t ≥ `rows` are padding (zero codes, scale 1). The float4 form keeps a row's
// values in registers (kFp8RowVecs float4 per thread: rows up to 16384 wide) between the
// amax and the encoding; the scalar form computes them twice. Neither stores F32 values.
// (The scalar two-pass form alone took 65 µs per 512 × 14336 call on an H100, 2026-12-07.)
// Two blocks per SM (kMinBlocks = 2: at most 32 registers, a few bytes of spill) overlap one
// row's loads with another's reduction and stores; with 41 registers only one block fit, and
// the kernel took ~2× swiglu_bf16's time (H100, 2026-12-07: 1.29 against 0.73 ms per
// 512-token 8B prefill). IMP_CUDA_FP8_ROW_TWO_BLOCKS=0 keeps one (A/B).
constexpr int kFp8RowThreads = 1024;
constexpr int kFp8RowVecs = 4;

template <int kMinBlocks>
__global__ void __launch_bounds__(kFp8RowThreads, kMinBlocks) swiglu_fp8_x4_kernel(const float4* gate, const float4* up,
                                                                       int64_t rows, int64_t n4, uint32_t* q,
                                                                       float* s) {
  pdl_wait();  // gate and up come from the GEMMs before; q may still be read by the last GEMM
  pdl_trigger();
  const int64_t t = blockIdx.x;
  uint32_t* qr = q + t * n4;
  if (t >= rows) return fp8act::write_padding_row(reinterpret_cast<uint8_t*>(qr), 4 * n4, s + t);
  const float4 *gr = gate + t * n4, *ur = up + t * n4;
  float4 v[kFp8RowVecs];
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < kFp8RowVecs; ++j) {  // all loads issued before any is used
    const int64_t i = threadIdx.x + int64_t(j) * kFp8RowThreads;
    v[j] = i < n4 ? silu_mul4(gr[i], ur[i]) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v[j].x), fabsf(v[j].y)), fmaxf(fabsf(v[j].z), fabsf(v[j].w))));
  }
  const float sa = fp8act::scale_of(fp8act::block_max(amax));
#pragma unroll
  for (int j = 0; j < kFp8RowVecs; ++j) {
    const int64_t i = threadIdx.x + int64_t(j) * kFp8RowThreads;
    if (i < n4) qr[i] = fp8act::encode4(v[j], sa);
  }
  if (threadIdx.x == 0) s[t] = sa;
}

__global__ void __launch_bounds__(kFp8RowThreads) swiglu_fp8_kernel(const float* gate, const float* up, int64_t rows,
                                                                    int64_t n, uint8_t* q, float* s) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  uint8_t* qr = q + t * n;
  if (t >= rows) return fp8act::write_padding_row(qr, n, s + t);
  const float *gr = gate + t * n, *ur = up + t * n;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += kFp8RowThreads) {
    const float g = gr[i];
    amax = fmaxf(amax, fabsf(g / (1.0f + expf(-g)) * ur[i]));
  }
  const float sa = fp8act::scale_of(fp8act::block_max(amax));
  for (int64_t i = threadIdx.x; i < n; i += kFp8RowThreads) {
    const float g = gr[i];
    qr[i] = fp8act::encode(g / (1.0f + expf(-g)) * ur[i], sa);
  }
  if (threadIdx.x == 0) s[t] = sa;
}

__global__ void add_x4_kernel(float4* y, const float4* x, int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const float4 a = y[i], b = x[i];
    y[i] = make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

__global__ void gelu_kernel(const float* x, int64_t n, float* out) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = x[i];
    const float u = k * (v + 0.044715f * v * v * v);
    out[i] = v / (1.0f + expf(-2.0f * u));  // = 0.5·v·(1 + tanh u), without cancellation
  }
}

__global__ void add_kernel(float* y, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    y[i] += x[i];
  }
}

__global__ void mul_kernel(float* y, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    y[i] *= x[i];
  }
}

__global__ void scale_kernel(float* x, float s, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    x[i] *= s;
  }
}

__global__ void add_bias_kernel(float* x, const float* bias, int64_t total, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    x[i] += bias[i % n];
  }
}

__global__ void to_bf16_kernel(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = kvc::f32_to_bf16(x[i]);
  }
}
// Four elements per thread (16-byte loads, 8-byte stores) for aligned buffers: the prefill
// GEMMs convert their (tokens × cols) activations with it (one element per thread left the
// conversion at ~1/3 of bandwidth).
__global__ void to_bf16_x4_kernel(const float4* x, int64_t n4, uint2* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const float4 v = x[i];
    out[i] = make_uint2(uint32_t(kvc::f32_to_bf16(v.x)) | (uint32_t(kvc::f32_to_bf16(v.y)) << 16),
                        uint32_t(kvc::f32_to_bf16(v.z)) | (uint32_t(kvc::f32_to_bf16(v.w)) << 16));
  }
}

void check_n(int64_t n, const char* op) {
  if (n <= 0) ::imp::fail("CUDA {}: {} elements", op, n);
}

}  // namespace

void swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
  check_n(n, "swiglu");
  if (n % 4 == 0 && aligned16(gate) && aligned16(up) && aligned16(out)) {
    launch_pdl(swiglu_x4_kernel, dim3(blocks_for(n / 4)), dim3(kThreads), 0, stream,
               reinterpret_cast<const float4*>(gate), reinterpret_cast<const float4*>(up), n / 4,
               reinterpret_cast<float4*>(out));
    IMP_CUDA_CHECK_LAUNCH();
    return;
  }
  swiglu_kernel<<<blocks_for(n), kThreads, 0, stream>>>(gate, up, n, out);
  IMP_CUDA_CHECK_LAUNCH();
}

void swiglu_bf16(const float* gate, const float* up, int64_t n, uint16_t* out, cudaStream_t stream) {
  check_n(n, "swiglu_bf16");
  // uint2 stores of 4 outputs want 8-byte alignment; the GEMM activation buffers have 256.
  if (n % 4 == 0 && aligned16(gate) && aligned16(up) && reinterpret_cast<uintptr_t>(out) % 8 == 0) {
    launch_pdl(swiglu_bf16_x4_kernel, dim3(blocks_for(n / 4)), dim3(kThreads), 0, stream,
               reinterpret_cast<const float4*>(gate), reinterpret_cast<const float4*>(up), n / 4, reinterpret_cast<uint2*>(out));
    IMP_CUDA_CHECK_LAUNCH();
    return;
  }
  swiglu_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(gate, up, n, out);
  IMP_CUDA_CHECK_LAUNCH();
}

void swiglu_f16_mma(const float* gate, const float* up, int64_t n, uint16_t* out, cudaStream_t stream) {
  check_n(n, "swiglu_f16_mma");
  if (n % 16 != 0 || !aligned16(gate) || !aligned16(up) || !aligned16(out)) {
    ::imp::fail("CUDA swiglu_f16_mma: {} elements (whole 16-column chunks) and 16-byte aligned buffers needed", n);
  }
  launch_pdl(swiglu_f16_mma_x4_kernel, dim3(blocks_for(n / 4)), dim3(kThreads), 0, stream,
             reinterpret_cast<const float4*>(gate), reinterpret_cast<const float4*>(up), n / 4,
             reinterpret_cast<uint32_t*>(out));
  IMP_CUDA_CHECK_LAUNCH();
}

void swiglu_fp8(const float* gate, const float* up, int64_t rows, int64_t n, int64_t n_pad, uint8_t* q, float* s,
                cudaStream_t stream) {
  if (rows <= 0 || n_pad < rows || n_pad > 0x7FFFFFFF || n <= 0) {
    ::imp::fail("CUDA swiglu_fp8: {} rows (padded to {}) of {} is out of range", rows, n_pad, n);
  }
  if (n % 4 == 0 && n / 4 <= int64_t(kFp8RowVecs) * kFp8RowThreads && aligned16(gate) && aligned16(up) &&
      reinterpret_cast<uintptr_t>(q) % 4 == 0) {
    launch_pdl(fp8_producers_two_blocks() ? swiglu_fp8_x4_kernel<2> : swiglu_fp8_x4_kernel<1>, dim3(unsigned(n_pad)),
               dim3(kFp8RowThreads), 0, stream,
               reinterpret_cast<const float4*>(gate), reinterpret_cast<const float4*>(up), rows, n / 4,
               reinterpret_cast<uint32_t*>(q), s);
  } else {
    launch_pdl(swiglu_fp8_kernel, dim3(unsigned(n_pad)), dim3(kFp8RowThreads), 0, stream, gate, up, rows, n, q, s);
  }
  IMP_CUDA_CHECK_LAUNCH();
}

void gelu_tanh(const float* x, int64_t n, float* out, cudaStream_t stream) {
  check_n(n, "gelu_tanh");
  gelu_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, out);
  IMP_CUDA_CHECK_LAUNCH();
}

void add(float* y, const float* x, int64_t n, cudaStream_t stream) {
  check_n(n, "add");
  if (n % 4 == 0 && aligned16(y) && aligned16(x)) {
    add_x4_kernel<<<blocks_for(n / 4), kThreads, 0, stream>>>(reinterpret_cast<float4*>(y),
                                                              reinterpret_cast<const float4*>(x), n / 4);
    IMP_CUDA_CHECK_LAUNCH();
    return;
  }
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, x, n);
  IMP_CUDA_CHECK_LAUNCH();
}

void mul(float* y, const float* x, int64_t n, cudaStream_t stream) {
  check_n(n, "mul");
  mul_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, x, n);
  IMP_CUDA_CHECK_LAUNCH();
}

void scale(float* x, float s, int64_t n, cudaStream_t stream) {
  check_n(n, "scale");
  scale_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, s, n);
  IMP_CUDA_CHECK_LAUNCH();
}

void add_bias(float* x, const float* bias, int64_t rows, int64_t n, cudaStream_t stream) {
  check_n(rows * n, "add_bias");
  add_bias_kernel<<<blocks_for(rows * n), kThreads, 0, stream>>>(x, bias, rows * n, n);
  IMP_CUDA_CHECK_LAUNCH();
}

void f32_to_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream) {
  check_n(n, "f32_to_bf16");
  if (aligned16(x) && reinterpret_cast<uintptr_t>(out) % 8 == 0 && n >= 4) {
    const int64_t n4 = n / 4;
    to_bf16_x4_kernel<<<blocks_for(n4), kThreads, 0, stream>>>(reinterpret_cast<const float4*>(x), n4,
                                                                 reinterpret_cast<uint2*>(out));
    IMP_CUDA_CHECK_LAUNCH();
    if (n % 4 == 0) return;
    x += 4 * n4, out += 4 * n4, n -= 4 * n4;
  }
  to_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, out);
  IMP_CUDA_CHECK_LAUNCH();
}

}  // namespace imp::cuda
