#include "tools/device_select.h"

#include <fmt/format.h>

#include "common/error.h"
#ifdef IMP_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/device.h"
#include "backends/cuda/matrix_rate.h"
#endif

namespace imp {

void check_device_name(const std::string& device) {
  if (device != "cpu" && device != "cuda") fail("--device: '{}' is not cpu or cuda", device);
#ifndef IMP_HAVE_CUDA
  if (device == "cuda") fail("--device cuda: this imp was built without CUDA (configure with -DIMP_CUDA=ON)");
#endif
}

DeviceCaps device_caps(const std::string& device) {
  check_device_name(device);
#ifdef IMP_HAVE_CUDA
  if (device == "cuda") return cuda::cuda_device_caps();
#endif
  return cpu_device_caps();
}

std::unique_ptr<Backend> make_backend(const std::string& device, CpuOpsPath path, int threads, ActQuant act_quant,
                                      const std::string& gemm, ActEmulation act_emulation) {
  check_device_name(device);
  if (device == "cuda" && act_emulation != ActEmulation::kNone) {
    fail("--act-emulate {}: activation emulation runs on the CPU backend only (use --device cpu)",
         act_emulation_name(act_emulation));
  }
  if (gemm != "bf16" && gemm != "f32") fail("--gemm: '{}' is not bf16 or f32", gemm);
#ifdef IMP_HAVE_CUDA
  if (device == "cuda") {
    if (cuda::device_count() == 0) fail("--device cuda: no CUDA device visible (no GPU or no driver)");
    cuda::CudaBackendOptions o;
    o.gemm = gemm == "f32" ? cuda::CudaGemmPrecision::kF32 : cuda::CudaGemmPrecision::kBF16;
    // --act-quant: q8 → int8 blocks (integer-dot kernels), f32 → exact FP32 activations,
    // i16 (the default: 16-bit activations) → f16 x in the tensor-core GEMVs.
    o.decode_x = act_quant == ActQuant::kQ8     ? cuda::CudaDecodeActivations::kInt8
                 : act_quant == ActQuant::kNone ? cuda::CudaDecodeActivations::kF32
                                                : cuda::CudaDecodeActivations::kF16;
    return std::make_unique<cuda::CudaBackend>(o);
  }
#endif
  return std::make_unique<CpuBackend>(path, threads, act_quant, act_emulation);
}

void check_device_memory(const std::string& device, const StoragePlan& plan, const ModelConfig& config, int64_t n_ctx,
                         KvType kv_type, int64_t n_batch) {
  check_device_name(device);
#ifdef IMP_HAVE_CUDA
  if (device == "cuda") cuda::require_cuda_memory(cuda::estimate_cuda_memory(plan, config, n_ctx, kv_type, n_batch));
#else
  (void)plan, (void)config, (void)n_ctx, (void)kv_type, (void)n_batch;
#endif
}

double cuda_copy_bandwidth() {
#ifdef IMP_HAVE_CUDA
  if (cuda::device_count() > 0) return cuda::measure_copy_bandwidth(int64_t(1) << 30);
#endif
  return 0.0;
}

MatrixRateResult cuda_matrix_rates() {
#ifdef IMP_HAVE_CUDA
  if (cuda::device_count() > 0) {
    try {
      const cuda::MatrixRates r = cuda::measure_matrix_rates();
      return {r.bf16_tflops, r.fp8_tflops, r.n};
    } catch (const Error& e) {  // a missing ceiling must not cost the benchmark its numbers
      fmt::print(stderr, "matrix rate not measured: {}\n", e.what());
    }
  }
#endif
  return {};
}

std::string cuda_memory_report(const StoragePlan& plan, const ModelConfig& config, int64_t n_ctx, KvType kv_type,
                               int64_t n_batch) {
#ifdef IMP_HAVE_CUDA
  const cuda::CudaMemoryEstimate e = cuda::estimate_cuda_memory(plan, config, n_ctx, kv_type, n_batch);
  const double mib = 1.0 / double(1 << 20);
  std::string s = fmt::format(
      "GPU memory: {:.1f} MiB = weights {:.1f} + KV cache {:.1f} ({} tokens, {}) + workspace {:.1f} ({} tokens)\n",
      double(e.total()) * mib, double(e.weight_bytes) * mib, double(e.kv_bytes) * mib, n_ctx, kv_type_name(kv_type),
      double(e.workspace_bytes) * mib, n_batch);
  if (cuda::device_count() > 0) cuda::require_cuda_memory(e);
  else s += "no CUDA device visible: fit not checked\n";
  return s;
#else
  (void)plan, (void)config, (void)n_ctx, (void)kv_type, (void)n_batch;
  fail("--device cuda: this imp was built without CUDA (configure with -DIMP_CUDA=ON)");
#endif
}

}  // namespace imp
