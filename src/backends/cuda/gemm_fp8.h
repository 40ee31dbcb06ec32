// FP8 W8A8 prefill GEMM on Hopper's FP8 tensor cores (cuBLASLt), for the FP8_E4M3_TENSOR,
// _CHANNEL and _BLOCK128 weight tiers in CudaBackend's default (BF16) prefill mode.
//
//   y[t, r] = Σ_c W[r, c] · x̂[t, c]      W: rows × cols, the weight as stored (E4M3 codes ×
//                                         its F32 scales, formats/fp8_scaled.h); x: n_tok ×
//                                         cols F32; y: n_tok × rows F32 (both row-major)
//
// Activations (quantize_x_fp8): x is quantized on the device, per token t and column group g
// (the whole row for the tensor / channel tiers; 128 columns for the 128×128-block tier):
//   s[t, g] = amax|x[t, g's columns]| / 448, or 1 when that is 0          (F32, IEEE division)
//   q[t, c] = E4M3(x[t, c] / s[t, g]), round to nearest even, saturated to ±448
// — the CPU emulation's FP8 quantizer (backends/cpu/act_emulation.h, fake_quant_row with
// ActEmulation::kFp8 and act_emulation_dynamic_scale) applied per token / per token and
// 128-column block instead of per tensor, with the E4M3 encoder of kv_codec.cuh (bit-exact
// with formats/fp8_e4m3.h f32_to_e4m3_saturate). A dynamic per-token scale means no
// calibration, and one outlier token does not coarsen the others.
//
// Products: cuBLASLt E4M3 × E4M3 with FP32 accumulation, TN (the weight is A, transposed:
// its rows of `cols` bytes are K-contiguous; x̂ is B, K-contiguous per token; D is y seen as
// column-major rows × n_tok), which is the only FP8 layout Hopper runs. The default
// (non-fast) accumulation: cuBLASLt promotes the tensor cores' partial sums to FP32, so
// the products and sums match an FP32 dot of the dequantized values to accumulation error.
// Against the exact product with F32 x, the result carries the E4M3 rounding of x
// (≤ 2⁻⁴ relative per element; a few 1e-2 on a dot of random data), which is the point of
// W8A8: CudaGemmPrecision::kF32 keeps the exact path.
// Token counts: each path is tried with n = n_tok (block128: rounded up to 4), then with n
// rounded up to 16 (older cuBLASLt FP8 kernels want it); padding tokens are zero rows with
// scale 1, D then goes to scratch and its first n_tok columns are copied to y.
// Scales, by path (the first that cuBLASLt has an algorithm for is used; the heuristic's
// answer is cached per problem; Fp8Gemm::run says which ran):
//   kOuterVec  (tensor, channel): A_SCALE_MODE = B_SCALE_MODE = OUTER_VEC_32F — cuBLASLt
//              multiplies D[r, t] by a_scale[r] · b_scale[t]: the channel scales (the tensor
//              scale broadcast to a vector of rows) and the token scales. Fused, no extra pass.
//   kEpilogue  (tensor, channel): an unscaled FP8 GEMM into y, then one exact kernel
//              y[t, r] *= w_scale[r] · s[t] — when OUTER_VEC has no algorithm for a shape.
//              Same math (the scales are per output element either way).
//   kBlock128  (block128): A_SCALE_MODE = BLK128x128_32F (one F32 per 128×128 weight tile),
//              B_SCALE_MODE = VEC128_32F (one F32 per token per 128 columns), scaled inside
//              the K loop. Scale tensor layouts (cuBLAS 12.9+ docs, PyTorch's _scaled_mm
//              checks): VEC128 token-contiguous, s[g · n + t], with n a multiple of 4;
//              BLK128x128 K-block contiguous per tile row, padded to a multiple of 4 tiles:
//              scale[tr · round_up(⌈cols/128⌉, 4) + tc] (the checkpoint's [⌈rows/128⌉,
//              ⌈cols/128⌉] plane is used in place when ⌈cols/128⌉ % 4 == 0, else copied
//              padded). Per-K-block scales cannot be applied after the GEMM, so this tier
//              has no epilogue path.
// D is F32; where cuBLASLt offers no F32-output algorithm for a mode, BF16 D into scratch
// and a conversion (+ the epilogue scales) to y (relative rounding 2⁻⁹ on y).
// When no path applies (cols not a multiple of 16, misaligned pointers, no algorithm),
// run() leaves y untouched and returns the reason; CudaBackend then runs its BF16
// dequantize + cuBLAS path for that matrix (correct, slower) and counts the fallback.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "backends/cuda/gemv.h"

namespace imp::cuda {
namespace detail {
using Fp8LtKey = std::tuple<int, int, int64_t, int64_t, int64_t, int, int, int>;
struct Fp8LtAlgo {
  bool ok = false;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};
}  // namespace detail

inline constexpr int kFp8ActGroup = 128;  // columns per activation scale on the block128 path

bool is_fp8_weight(FormatId f);

// Activation quantization (asynchronous). x: n_tok × cols F32 (16-byte aligned, cols % 4 == 0);
// group: cols (one scale per token) or kFp8ActGroup. Writes q: n_pad × cols E4M3 codes
// (rows t ≥ n_tok are zero) and s[g · n_pad + t] for g < ⌈cols/group⌉, t < n_pad (1 for the
// padding rows). n_pad ≥ n_tok.
void quantize_x_fp8(const float* x, int64_t n_tok, int64_t n_pad, int64_t cols, int64_t group, uint8_t* q, float* s,
                    cudaStream_t stream);

enum class Fp8GemmPath : uint8_t { kOuterVec, kEpilogue, kBlock128 };
const char* fp8_gemm_path_name(Fp8GemmPath p);

struct Fp8RunOptions {
  // y += W · x̂ᵀ (β = 1, C = D = y): only where cuBLASLt writes F32 D straight into y (no
  // token padding, not the epilogue path); otherwise run() declines.
  bool accumulate = false;
  // The caller vouches that x has not changed since the previous run() quantized it: when
  // that run's quantization is of this x (same pointer, tokens, columns and group) it is
  // reused — the GEMMs of QKV and of gate·up share one activation pass.
  bool x_unchanged = false;
  // Which of kFp8Lanes sets of cuBLASLt workspace and D scratch the call uses: calls on
  // different lanes may run at the same time on different streams (gemm_lanes.h); the
  // quantized activations are shared, read-only, by all of them.
  int lane = 0;
};
inline constexpr int kFp8Lanes = 3;

struct Fp8GemmRun {
  bool ran = false;
  Fp8GemmPath path = Fp8GemmPath::kOuterVec;
  bool bf16_d = false;  // cuBLASLt wrote BF16 (no F32-output algorithm for this shape)
  std::string reason;   // why nothing ran, when !ran
};

class Fp8Gemm {
 public:
  // cuBLASLt workspace, allocated once on first use (NVIDIA recommends 32 MiB on Hopper).
  static constexpr int64_t kLtWorkspaceBytes = int64_t(32) << 20;
  // Device memory run() holds for n_batch tokens against weights of at most max_rows ×
  // max_cols, with `lanes` lanes in use: per lane the cuBLASLt workspace, the padded tile
  // scales and the D scratch (padding or BF16 D); once the quantized activations and their
  // scales.
  static int64_t workspace_bytes(int64_t n_batch, int64_t max_rows, int64_t max_cols, int lanes = 1);

  // allow_outer_vec = false skips the kOuterVec path (tests exercise kEpilogue with it).
  explicit Fp8Gemm(bool allow_outer_vec = true);
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  // y = W · x̂ᵀ (see the top) on `stream`, asynchronous. w: an FP8 tier in the kNative layout;
  // x, y device memory. Leaves y untouched and returns ran = false with the reason when no
  // path applies. Not capturable in a CUDA graph (it may allocate scratch the first time; a
  // reallocation waits for the whole device, since another lane may read the old buffer).
  Fp8GemmRun run(const DeviceMatrix& w, const float* x, int64_t n_tok, float* y, cudaStream_t stream,
                 Fp8RunOptions opt = {});

  // For a kernel that produces the activations already quantized (rmsnorm_fp8, swiglu_fp8;
  // tensor and channel tiers: one scale per token): the buffers a run() on n_tok × cols
  // activations reads — q: n_pad × cols codes, s: n_pad scales, n_pad = n_tok rounded up to
  // 16 (rows ≥ n_tok zero with scale 1) — recorded as holding the quantization of `key`. The
  // producer must fill them; run(x = key, x_unchanged) then reuses them.
  struct XSlot {
    uint8_t* q = nullptr;
    float* s = nullptr;
    int64_t n_pad = 0;
  };
  XSlot x_slot(const void* key, int64_t n_tok, int64_t cols, cudaStream_t stream);

  // "fp8 w8a8 GEMMs: 224 outer_vec; 0 fallbacks" (and the last fallback's reason).
  std::string stats() const;

 private:
  struct Buffer {
    void* p = nullptr;
    int64_t bytes = 0;
  };
  void* ensure(Buffer& b, int64_t bytes, cudaStream_t stream);
  // The per-tensor scale as the OUTER_VEC row vector cuBLASLt reads: filled once per (scale,
  // rows) and kept (a few KB per matrix), not refilled before every GEMM.
  const float* tensor_scale_vector(float scale, int64_t rows, cudaStream_t stream);

  bool allow_outer_vec_;
  cublasLtHandle_t lt_ = nullptr;
  Buffer xq_, xs_;
  Buffer workspace_[kFp8Lanes], wscale_[kFp8Lanes], dscratch_[kFp8Lanes];  // per lane
  // The algorithm the heuristic chose per problem, or none (gemm_fp8.cc: the key is the
  // scale modes, D type, m, n, k and the operand alignments).
  std::map<detail::Fp8LtKey, detail::Fp8LtAlgo> algos_;
  std::map<std::pair<uint32_t, int64_t>, void*> tensor_scale_vectors_;
  // What xq_ / xs_ hold: the quantization of x (n_tok tokens padded to n_pad, cols, group).
  struct QuantizedX {
    const float* x = nullptr;
    int64_t n_tok = 0, n_pad = 0, cols = 0, group = 0;
  } quantized_;
  int64_t runs_[3] = {0, 0, 0};
  int64_t bf16_d_runs_ = 0, fallbacks_ = 0;
  std::string last_fallback_;
};

}  // namespace imp::cuda
