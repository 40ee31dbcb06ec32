// `--device cpu|cuda` for the tools: the planner capabilities, the backend and the GPU
// memory check of the chosen device. Built without CUDA (or with no GPU visible) a cuda
// request is an imp::Error saying so.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backends/cpu/cpu_backend.h"
#include "io/model_config.h"
#include "planner/storage_plan.h"
#include "runtime/backend.h"

namespace imp {

// "cpu" or "cuda"; anything else fails listing both.
void check_device_name(const std::string& device);
DeviceCaps device_caps(const std::string& device);
// CPU: CpuBackend(path, threads, act_quant). CUDA: CudaBackend (F32 activations for decode,
// BF16 cuBLAS prefill; gemm "f32" keeps prefill in FP32).
// act_emulation (--act-emulate) runs on the CPU backend only.
std::unique_ptr<Backend> make_backend(const std::string& device, CpuOpsPath path, int threads, ActQuant act_quant,
                                      const std::string& gemm = "bf16", ActEmulation act_emulation = ActEmulation::kNone);
// CUDA: estimates the GPU memory of the plan (weights, KV cache for n_ctx, workspace for
// n_batch tokens) and fails with the numbers when it exceeds free memory. CPU: nothing.
void check_device_memory(const std::string& device, const StoragePlan& plan, const ModelConfig& config, int64_t n_ctx,
                         KvType kv_type, int64_t n_batch);
// Measured device-to-device copy bandwidth of GPU 0 in bytes/s (read + write), 0 without CUDA.
double cuda_copy_bandwidth();
// Measured dense GEMM rates of GPU 0's tensor cores (backends/cuda/matrix_rate.h: cuBLASLt,
// n × n × n, TFLOP/s); all zero without CUDA or when the measurement fails (the reason
// goes to stderr).
struct MatrixRateResult {
  double bf16_tflops = 0.0, fp8_tflops = 0.0;
  int64_t n = 0;
};
MatrixRateResult cuda_matrix_rates();
// Lines for `imp plan --device cuda`: GPU memory needed and free.
std::string cuda_memory_report(const StoragePlan& plan, const ModelConfig& config, int64_t n_ctx, KvType kv_type,
                               int64_t n_batch);

}  // namespace imp
