// Internal: what each per-family GEMV source (gemv_*.cu) exports to the dispatcher
// (gemv_dispatch.cc), plus the host-side helpers the kernels' launchers share.
// Plain C++17 (no device code): included by both nvcc and the host compiler.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "backends/cuda/gemv.h"

namespace imp::cuda::detail {

// Everything a kernel needs, with byte strides precomputed on the host.
struct KernelArgs {
  const uint8_t* data = nullptr;
  const uint8_t* scales = nullptr;
  const float* x = nullptr;
  float* y = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t data_row_bytes = 0;   // stride of one row in `data`
  int64_t scale_row_bytes = 0;  // stride of one row in `scales` (0 when unused)
  float tensor_scale = 1.0f;
  const uint8_t* zeros = nullptr;  // INT4_GROUP
  int64_t zero_row_bytes = 0;
  int32_t group = 0;
  int32_t add_to_y = 0;  // GemvOut::kAdd: y += W·x
};

KernelArgs make_args(const DeviceMatrix& w, const float* x, float* y, GemvOut out = GemvOut::kStore);


std::vector<GemvKernel> mma_gemv_kernels();   // the kMma layout (tensor cores, f16 x)
std::vector<GemvKernel> dp4a_gemv_kernels();  // first: preferred over the FP32 kernels
std::vector<GemvKernel> float_gemv_kernels();
std::vector<GemvKernel> gguf_gemv_kernels();
std::vector<GemvKernel> fp4_gemv_kernels();
std::vector<GemvKernel> fp8_gemv_kernels();
std::vector<GemvKernel> gguf_stage_gemv_kernels();  // Q4_1 … NVFP4 (gemv_gguf_stage.cu)
std::vector<GemvKernel> int4_gemv_kernels();
// Launch the bit-exact dequant kernel; false when the format/layout is not this family's.
bool mma_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream);
bool float_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream);
bool gguf_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream);
bool fp4_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream);
bool fp8_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream);
bool gguf_stage_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream);
bool int4_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream);

// Conditions the kernels' check functions combine.
KernelCheck check_aligned(const void* p, int bytes, const char* what);
KernelCheck check_cols_multiple(int64_t cols, int64_t m, const char* why);
KernelCheck all_of(std::initializer_list<KernelCheck> checks);

}  // namespace imp::cuda::detail
