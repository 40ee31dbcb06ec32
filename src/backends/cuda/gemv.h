// Batch-1 decode GEMV on the GPU: y[rows] = W[rows, cols] · x[cols], with the weight's
// dequantization fused into the kernel. Host API; every pointer is device memory.
//
// Numerics: activations x and outputs y are F32; products and sums are FP32. Each weight
// element is decoded to exactly the fp32 value the CPU reference dequantization gives
// (decode_*.cuh); kernels then apply block scales once per block (d·Σq·x instead of Σ(q·d)·x)
// and accumulate with FMA, so y matches the FP64 dot of the reference dequantization to
// FP32 summation error (the tests hold it to a relative 1e-5).
//
// Formats: BF16, F16, Q4_0, Q8_0, Q4_K, Q6_K, NVFP4_CKPT, FP8_E4M3_CHANNEL.
// Kernels: several per format (gemv_kernels()); gemv() picks the first whose
// can_implement() accepts the arguments, and when none does throws an imp::Error listing
// every kernel's reason. IMP_CUDA_DISABLE_KERNELS=name1,name2 removes kernels by name
// (read on every call, so tests can toggle it).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "formats/format_id.h"

namespace imp::cuda {

enum class WeightLayout : uint8_t {
  // The planes exactly as formats/quant_matrix.h lays them out (the bytes of the file):
  //   GGUF types: data = rows × (cols/QK) blocks, scales unused;
  //   NVFP4_CKPT: data = rows × cols/2 E2M1 pairs, scales = rows × cols/16 E4M3 bytes,
  //               tensor_scale = G;
  //   FP8_E4M3_CHANNEL: data = rows × cols E4M3 bytes, scales = rows F32.
  kNative,
  // Q4_0, Q8_0, Q6_K only, produced by repack_split(): data = rows × (cols/QK) payloads
  // (the block without its f16 d: 16, 32, 208 bytes), scales = rows × (cols/QK) f16 d.
  // Every payload is 16-byte aligned, which the fast kernels need.
  kSplit,
};

struct DeviceMatrix {
  FormatId format = FormatId::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  const void* scales = nullptr;
  float tensor_scale = 1.0f;
  WeightLayout layout = WeightLayout::kNative;
};

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
  void (*launch)(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream);
};

// Every kernel, fastest first within a format.
const std::vector<GemvKernel>& gemv_kernels();
// Full check for one kernel: format, layout, the env-var kill list, shape, alignment.
KernelCheck can_implement(const GemvKernel& k, const DeviceMatrix& w, const float* x, const float* y);
// The kernel gemv() would run; throws imp::Error with every kernel's reason when none fits.
const GemvKernel& select_gemv_kernel(const DeviceMatrix& w, const float* x, const float* y);
// y = W·x on `stream` (asynchronous). Returns the name of the kernel that ran.
std::string_view gemv(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream);

// Formats gemv() serves, and the bytes of each plane for a layout (overflow-checked).
bool gemv_supports(FormatId format);
int64_t device_data_bytes(FormatId format, WeightLayout layout, int64_t rows, int64_t cols);
int64_t device_scale_bytes(FormatId format, WeightLayout layout, int64_t rows, int64_t cols);

// Reference dequantization on the device: out[r·cols + c] = W[r, c], bit-identical to the
// CPU reference imp::dequantize (same decode helpers the kernels use). Either layout.
void dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream);

// Native GGUF rows → kSplit planes (payload, d). `payload` and `d` must hold
// device_data_bytes / device_scale_bytes for kSplit. One thread per block; asynchronous.
void repack_split(FormatId format, const void* native, int64_t rows, int64_t cols, void* payload, void* d,
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
