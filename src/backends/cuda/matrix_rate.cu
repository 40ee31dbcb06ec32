// Measured BF16 and FP8 dense GEMM rates (matrix_rate.h).
#include <cublasLt.h>
#include <cuda_fp8.h>

#include "backends/cuda/check.h"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/matrix_rate.h"

namespace imp::cuda {
namespace {

// Uniform in [-1, 1) from a hash of the index: finite in both types, no zero runs.
__device__ inline float hashed_unit(uint64_t i, uint32_t seed) {
  uint32_t h = uint32_t(i) * 0x9E3779B1u ^ uint32_t(i >> 32) ^ seed;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return float(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

__global__ void fill_bf16(uint16_t* p, int64_t n, uint32_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    p[i] = kvc::f32_to_bf16(hashed_unit(uint64_t(i), seed));
  }
}

__global__ void fill_e4m3(uint8_t* p, int64_t n, uint32_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    p[i] = kvc::f32_to_e4m3_saturate(hashed_unit(uint64_t(i), seed) * 448.0f);
  }
}

void lt_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) fail("matrix rate: {} failed: {}", what, cublasGetStatusString(st));
}

// TFLOP/s of n×n×n GEMMs with A, B of `ab` (filled already) and D BF16.
double time_gemm(cublasLtHandle_t lt, cudaDataType_t ab, const void* a, const void* b, void* d, int64_t n, int iters,
                 void* ws, size_t ws_bytes, cudaStream_t stream) {
  struct Descs {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    ~Descs() {
      if (e1) cudaEventDestroy(e1);
      if (e0) cudaEventDestroy(e0);
      if (pref) cublasLtMatmulPreferenceDestroy(pref);
      for (cublasLtMatrixLayout_t l : {ld, lb, la}) {
        if (l) cublasLtMatrixLayoutDestroy(l);
      }
      if (op) cublasLtMatmulDescDestroy(op);
    }
  } ds;
  cublasLtMatmulDesc_t& op = ds.op;
  cublasLtMatrixLayout_t &la = ds.la, &lb = ds.lb, &ld = ds.ld;
  cublasLtMatmulPreference_t& pref = ds.pref;
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  lt_check(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  lt_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "TRANSA");
  lt_check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "TRANSB");
  lt_check(cublasLtMatrixLayoutCreate(&la, ab, uint64_t(n), uint64_t(n), n), "layout A");
  lt_check(cublasLtMatrixLayoutCreate(&lb, ab, uint64_t(n), uint64_t(n), n), "layout B");
  lt_check(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, uint64_t(n), uint64_t(n), n), "layout D");
  lt_check(cublasLtMatmulPreferenceCreate(&pref), "preference");
  const uint64_t max_ws = ws_bytes;
  lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof(max_ws)),
           "workspace preference");
  cublasLtMatmulHeuristicResult_t h = {};
  int found = 0;
  lt_check(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, ld, ld, pref, 1, &h, &found), "heuristic");
  if (found == 0) fail("matrix rate: cuBLASLt has no {} algorithm for {}³", ab == CUDA_R_16BF ? "BF16" : "FP8", n);
  const float one = 1.0f, zero = 0.0f;
  auto call = [&] {
    lt_check(cublasLtMatmul(lt, op, &one, a, la, b, lb, &zero, d, ld, d, ld, &h.algo, ws, h.workspaceSize, stream),
             "cublasLtMatmul");
  };
  for (int i = 0; i < 3; ++i) call();  // warm-up: clocks up, kernels loaded
  cudaEvent_t &e0 = ds.e0, &e1 = ds.e1;
  IMP_CUDA_CHECK(cudaEventCreate(&e0));
  IMP_CUDA_CHECK(cudaEventCreate(&e1));
  IMP_CUDA_CHECK(cudaEventRecord(e0, stream));
  for (int i = 0; i < iters; ++i) call();
  IMP_CUDA_CHECK(cudaEventRecord(e1, stream));
  IMP_CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = 0.0f;
  IMP_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  return 2.0 * double(n) * double(n) * double(n) * iters / (double(ms) * 1e-3) / 1e12;
}

}  // namespace

MatrixRates measure_matrix_rates(int64_t n, int iters) {
  if (n < 256 || n % 256 != 0 || iters < 1) fail("matrix rate: n = {} (multiple of 256 needed), {} iterations", n, iters);
  MatrixRates r;
  r.n = n;
  r.iters = iters;
  // Everything released on every exit, a failed measurement included.
  struct Resources {
    cudaStream_t stream = nullptr;
    cublasLtHandle_t lt = nullptr;
    void *a = nullptr, *b = nullptr, *d = nullptr, *ws = nullptr;
    ~Resources() {
      if (stream) cudaStreamSynchronize(stream);
      for (void* p : {a, b, d, ws}) cudaFree(p);
      if (lt) cublasLtDestroy(lt);
      if (stream) cudaStreamDestroy(stream);
    }
  } res;
  IMP_CUDA_CHECK(cudaStreamCreateWithFlags(&res.stream, cudaStreamNonBlocking));
  lt_check(cublasLtCreate(&res.lt), "cublasLtCreate");
  const size_t ws_bytes = size_t(32) << 20;
  const int64_t elems = n * n;
  IMP_CUDA_CHECK(cudaMalloc(&res.a, size_t(elems) * 2));  // BF16 A; the FP8 run reuses the first half
  IMP_CUDA_CHECK(cudaMalloc(&res.b, size_t(elems) * 2));
  IMP_CUDA_CHECK(cudaMalloc(&res.d, size_t(elems) * 2));
  IMP_CUDA_CHECK(cudaMalloc(&res.ws, ws_bytes));
  const int grid = 1024, block = 256;
  fill_bf16<<<grid, block, 0, res.stream>>>(static_cast<uint16_t*>(res.a), elems, 1u);
  fill_bf16<<<grid, block, 0, res.stream>>>(static_cast<uint16_t*>(res.b), elems, 2u);
  IMP_CUDA_CHECK_LAUNCH();
  r.bf16_tflops = time_gemm(res.lt, CUDA_R_16BF, res.a, res.b, res.d, n, iters, res.ws, ws_bytes, res.stream);
  fill_e4m3<<<grid, block, 0, res.stream>>>(static_cast<uint8_t*>(res.a), elems, 3u);
  fill_e4m3<<<grid, block, 0, res.stream>>>(static_cast<uint8_t*>(res.b), elems, 4u);
  IMP_CUDA_CHECK_LAUNCH();
  r.fp8_tflops = time_gemm(res.lt, CUDA_R_8F_E4M3, res.a, res.b, res.d, n, iters, res.ws, ws_bytes, res.stream);
  return r;
}

}  // namespace imp::cuda
