// FP8 W8A8 prefill GEMM through cuBLASLt: path selection, descriptors, algorithm cache.
// The numerics and the scale layouts are described in gemm_fp8.h.
#include "backends/cuda/gemm_fp8.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/gemm_fp8_kernels.h"
#include "formats/fp8_scaled.h"
#include "formats/traits.h"

namespace imp::cuda {
namespace {

constexpr int kScalar = CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
constexpr int kOuterVec = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
constexpr int kVec128 = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
constexpr int kBlk128 = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Largest power of two ≤ 256 dividing the address: cuBLASLt's heuristic otherwise assumes
// 256-byte aligned operands and may pick a kernel that faults on an offset pointer.
int alignment_of(const void* p) {
  const auto u = reinterpret_cast<uintptr_t>(p);
  int a = 256;
  while (a > 1 && u % uintptr_t(a) != 0) a /= 2;
  return a;
}

// The descriptors of one cublasLtMatmul call, destroyed together.
struct LtDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDescs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

template <typename T>
bool set_op(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const T& v) {
  return cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v)) == CUBLAS_STATUS_SUCCESS;
}
template <typename T>
bool set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, const T& v) {
  return cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v)) == CUBLAS_STATUS_SUCCESS;
}

// One cublasLtMatmul: D (m × n column-major, ld m) = (a_scale ⊗ b_scale) · Aᵀ·B with A the
// weight (k × m column-major = rows × cols row-major, transposed), B the quantized
// activations (k × n column-major = tokens × cols row-major). A scale pointer of nullptr
// leaves that operand's mode SCALAR_32F with no pointer (scale 1).
struct Problem {
  int a_mode = kScalar, b_mode = kScalar;
  const void* a_scale = nullptr;
  const void* b_scale = nullptr;
  const void* a = nullptr;
  const void* b = nullptr;
  void* d = nullptr;
  cudaDataType_t d_type = CUDA_R_32F;
  float beta = 0.0f;  // 1: D = (scaled product) + D (C is D)
  int64_t m = 0, n = 0, k = 0;
};

// A problem with its descriptors and algorithm, ready to launch.
struct LtCall {
  Problem p;
  LtDescs ds;
  detail::Fp8LtAlgo algo;
};

// Builds the descriptors and finds the algorithm (the heuristic runs once per key; the
// answer, yes or no, is cached). nullptr when cuBLASLt has none for this problem.
std::unique_ptr<LtCall> prepare(cublasLtHandle_t lt, std::map<detail::Fp8LtKey, detail::Fp8LtAlgo>& algos,
                                const Problem& p) {
  const detail::Fp8LtKey key{p.a_mode * 16 + p.b_mode, int(p.d_type), p.m, p.n, p.k,
                             alignment_of(p.a), alignment_of(p.b), alignment_of(p.d)};
  const auto cached = algos.find(key);
  if (cached != algos.end() && !cached->second.ok) return nullptr;
  auto c = std::make_unique<LtCall>();
  c->p = p;
  LtDescs& ds = c->ds;
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  bool ok = cublasLtMatmulDescCreate(&ds.op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
            set_op(ds.op, CUBLASLT_MATMUL_DESC_TRANSA, ta) && set_op(ds.op, CUBLASLT_MATMUL_DESC_TRANSB, tb);
  if (ok && p.a_scale) {
    ok = set_op(ds.op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, int32_t(p.a_mode)) &&
         set_op(ds.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, p.a_scale);
  }
  if (ok && p.b_scale) {
    ok = set_op(ds.op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, int32_t(p.b_mode)) &&
         set_op(ds.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, p.b_scale);
  }
  ok = ok &&
       cublasLtMatrixLayoutCreate(&ds.a, CUDA_R_8F_E4M3, uint64_t(p.k), uint64_t(p.m), p.k) == CUBLAS_STATUS_SUCCESS &&
       cublasLtMatrixLayoutCreate(&ds.b, CUDA_R_8F_E4M3, uint64_t(p.k), uint64_t(p.n), p.k) == CUBLAS_STATUS_SUCCESS &&
       cublasLtMatrixLayoutCreate(&ds.d, p.d_type, uint64_t(p.m), uint64_t(p.n), p.m) == CUBLAS_STATUS_SUCCESS;
  if (ok && cached != algos.end()) {
    c->algo = cached->second;
    return c;
  }
  detail::Fp8LtAlgo& found = c->algo;
  if (ok) {
    // First time for this problem: a few candidates; the first the heuristic marks usable.
    ok = cublasLtMatmulPreferenceCreate(&ds.pref) == CUBLAS_STATUS_SUCCESS &&
         set_pref(ds.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(Fp8Gemm::kLtWorkspaceBytes)) &&
         set_pref(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, uint32_t(std::get<5>(key))) &&
         set_pref(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, uint32_t(std::get<6>(key))) &&
         set_pref(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, uint32_t(std::get<7>(key))) &&
         set_pref(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, uint32_t(std::get<7>(key)));
    cublasLtMatmulHeuristicResult_t results[8] = {};
    int n_results = 0;
    if (ok && cublasLtMatmulAlgoGetHeuristic(lt, ds.op, ds.a, ds.b, ds.d, ds.d, ds.pref, 8, results, &n_results) ==
                  CUBLAS_STATUS_SUCCESS) {
      for (int i = 0; i < n_results && !found.ok; ++i) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS || results[i].workspaceSize > size_t(Fp8Gemm::kLtWorkspaceBytes)) {
          continue;
        }
        found.ok = true;
        found.algo = results[i].algo;
        found.workspace = results[i].workspaceSize;
      }
    }
  }
  algos[key] = found;
  if (!found.ok) return nullptr;
  return c;
}

// Enqueues the call. False when cuBLASLt refuses the algorithm its heuristic offered (then
// the key is marked unsupported and nothing ran); any other error is an imp::Error.
bool launch(cublasLtHandle_t lt, std::map<detail::Fp8LtKey, detail::Fp8LtAlgo>& algos, const LtCall& c,
            void* workspace, cudaStream_t stream) {
  const Problem& p = c.p;
  const float one = 1.0f;
  const cublasStatus_t st = cublasLtMatmul(lt, c.ds.op, &one, p.a, c.ds.a, p.b, c.ds.b, &p.beta, p.d, c.ds.d, p.d, c.ds.d,
                                           &c.algo.algo, c.algo.workspace > 0 ? workspace : nullptr,
                                           c.algo.workspace, stream);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE) {
    algos[{p.a_mode * 16 + p.b_mode, int(p.d_type), p.m, p.n, p.k, alignment_of(p.a), alignment_of(p.b),
           alignment_of(p.d)}] = detail::Fp8LtAlgo{};
    return false;
  }
  if (st != CUBLAS_STATUS_SUCCESS) fail("cublasLtMatmul (FP8, {}×{}×{}) failed: {}", p.m, p.n, p.k, cublasGetStatusString(st));
  return true;
}

}  // namespace

const char* fp8_gemm_path_name(Fp8GemmPath p) {
  switch (p) {
    case Fp8GemmPath::kOuterVec: return "outer_vec";
    case Fp8GemmPath::kEpilogue: return "epilogue";
    case Fp8GemmPath::kBlock128: return "block128";
  }
  return "?";
}

int64_t Fp8Gemm::workspace_bytes(int64_t n_batch, int64_t max_rows, int64_t max_cols, int lanes) {
  const int64_t n_pad = round_up(std::max<int64_t>(n_batch, 1), 16);
  const int64_t kb_pad = round_up(ceil_div(max_cols, kFp8Tile), 4);
  const int64_t per_lane = kLtWorkspaceBytes                                              // cuBLASLt
                           + 4 * std::max(max_rows, ceil_div(max_rows, kFp8Tile) * kb_pad)  // padded tile scales
                           + 4 * n_pad * max_rows;                                        // D scratch
  return int64_t(std::clamp(lanes, 1, kFp8Lanes)) * per_lane  //
         + n_pad * max_cols                                   // E4M3 activations
         + 4 * n_pad * ceil_div(max_cols, kFp8ActGroup);      // their scales
}

Fp8Gemm::Fp8Gemm(bool allow_outer_vec) : allow_outer_vec_(allow_outer_vec) {
  const cublasStatus_t st = cublasLtCreate(&lt_);
  if (st != CUBLAS_STATUS_SUCCESS) fail("cublasLtCreate failed: {}", cublasGetStatusString(st));
}

Fp8Gemm::~Fp8Gemm() {
  for (Buffer* b : {&xq_, &xs_}) cudaFree(b->p);
  for (int i = 0; i < kFp8Lanes; ++i) {
    for (Buffer* b : {&workspace_[i], &wscale_[i], &dscratch_[i]}) cudaFree(b->p);
  }
  for (auto& [key, p] : tensor_scale_vectors_) cudaFree(p);
  if (lt_) cublasLtDestroy(lt_);
}

void* Fp8Gemm::ensure(Buffer& b, int64_t bytes, cudaStream_t stream) {
  if (b.bytes >= bytes) return b.p;
  // Earlier GEMMs, on this or another lane's stream, may still read the old buffer.
  IMP_CUDA_CHECK(cudaStreamSynchronize(stream));
  IMP_CUDA_CHECK(cudaDeviceSynchronize());
  if (&b == &xq_ || &b == &xs_) quantized_ = {};   // the quantized x is gone with the buffer
  cudaFree(b.p);
  b.p = nullptr;
  b.bytes = 0;
  const cudaError_t e = cudaMalloc(&b.p, size_t(std::max<int64_t>(bytes, 256)));
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail("FP8 GEMM: cudaMalloc of {} bytes of scratch failed: {}", bytes, cudaGetErrorString(e));
  }
  b.bytes = bytes;
  return b.p;
}

Fp8GemmRun Fp8Gemm::run(const DeviceMatrix& w, const float* x, int64_t n_tok, float* y, cudaStream_t stream,
                        Fp8RunOptions opt) {
  Fp8GemmRun r;
  const int64_t rows = w.rows, cols = w.cols;
  auto decline = [&](std::string why) {
    ++fallbacks_;
    last_fallback_ = fmt::format("{} {}×{} × {} tokens: {}", format_name(w.format), rows, cols, n_tok, why);
    r.reason = std::move(why);
    return r;
  };
  if (!is_fp8_weight(w.format) || w.layout != WeightLayout::kNative) return decline("not an FP8 weight in the native layout");
  if (cols % 16 != 0) return decline("cols not a multiple of 16 (FP8 operands need 16-byte rows)");
  if (alignment_of(x) < 16) return decline("x is not 16-byte aligned");
  if (alignment_of(w.data) < 16) return decline("the weight is not 16-byte aligned");
  if (w.format != FormatId::FP8_E4M3_TENSOR && alignment_of(w.scales) < 4) return decline("the weight scales are not F32-aligned");
  if (n_tok < 1 || n_tok > std::numeric_limits<int32_t>::max() - 4 || rows > std::numeric_limits<int32_t>::max()) {
    return decline("shape out of range");
  }
  if (opt.lane < 0 || opt.lane >= kFp8Lanes) return decline(fmt::format("lane {} out of range", opt.lane));
  const bool block = w.format == FormatId::FP8_E4M3_BLOCK128;
  const int64_t group = block ? kFp8ActGroup : cols;
  // Token counts to try: as is (block128: a multiple of 4, which the VEC128 scale layout
  // needs), then padded to 16 (older cuBLASLt FP8 kernels want n % 16 == 0). Padding tokens
  // are zero rows with scale 1; D then goes to scratch and its first n_tok columns to y.
  const int64_t n_min = block ? round_up(n_tok, 4) : n_tok, n_max = round_up(n_tok, 16);
  auto* xq = static_cast<uint8_t*>(ensure(xq_, n_max * cols, stream));
  auto* xs = static_cast<float*>(ensure(xs_, 4 * n_max * ceil_div(cols, group), stream));
  auto scratch = [&] { return ensure(dscratch_[opt.lane], 4 * n_max * rows, stream); };  // F32 or BF16 D

  const float* row_scale = w.format == FormatId::FP8_E4M3_CHANNEL ? static_cast<const float*>(w.scales) : nullptr;
  // The weight scales as cuBLASLt reads them. block128: the tile plane [⌈rows/128⌉][kb], used
  // in place when kb % 4 == 0, else copied to rows of kb_pad. outer_vec: the channel plane,
  // or the tensor scale broadcast to a vector of rows.
  const int64_t kb = ceil_div(cols, kFp8Tile), kb_pad = round_up(kb, 4), tile_rows = ceil_div(rows, kFp8Tile);
  float* wvec = nullptr;
  const void* a_scale = row_scale;
  if (block) {
    a_scale = w.scales;
    if (kb_pad != kb) a_scale = wvec = static_cast<float*>(ensure(wscale_[opt.lane], 4 * tile_rows * kb_pad, stream));
  } else if (!row_scale && allow_outer_vec_) {
    a_scale = tensor_scale_vector(w.tensor_scale, rows, stream);
  }

  std::vector<Fp8GemmPath> paths;
  if (block) paths = {Fp8GemmPath::kBlock128};
  else if (allow_outer_vec_) paths = {Fp8GemmPath::kOuterVec, Fp8GemmPath::kEpilogue};
  else paths = {Fp8GemmPath::kEpilogue};
  if (opt.accumulate && !block) {  // the epilogue path rescales all of y: only OUTER_VEC can add into it
    if (!allow_outer_vec_) return decline("accumulate needs the OUTER_VEC path");
    paths = {Fp8GemmPath::kOuterVec};
  }
  std::unique_ptr<LtCall> call;
  const std::vector<int64_t> token_counts = n_max == n_min ? std::vector<int64_t>{n_min} : std::vector<int64_t>{n_min, n_max};
  for (const Fp8GemmPath path : paths) {
    for (const int64_t n : token_counts) {
      if (call) break;
      Problem p;
      p.a = w.data;
      p.b = xq;
      p.m = rows;
      p.n = n;
      p.k = cols;
      if (path == Fp8GemmPath::kBlock128) {
        p.a_mode = kBlk128;
        p.b_mode = kVec128;
      } else if (path == Fp8GemmPath::kOuterVec) {
        p.a_mode = p.b_mode = kOuterVec;
      }
      if (path != Fp8GemmPath::kEpilogue) {  // the epilogue path multiplies unscaled codes
        p.a_scale = a_scale;
        p.b_scale = xs;
      }
      // D = F32 straight into y (scratch when padded), else D = BF16 into scratch.
      // Accumulating: only F32 D in place, y being C as well.
      p.d_type = CUDA_R_32F;
      if (opt.accumulate && n != n_tok) continue;
      p.d = n == n_tok ? static_cast<void*>(y) : scratch();
      p.beta = opt.accumulate ? 1.0f : 0.0f;
      if (!(call = prepare(lt_, algos_, p)) && !opt.accumulate) {
        p.d_type = CUDA_R_16BF;
        p.d = scratch();
        call = prepare(lt_, algos_, p);
      }
      if (call) r.path = path;
    }
  }
  if (!call) {
    if (opt.accumulate && n_min != n_tok) return decline("accumulating needs D in place, unpadded (tokens not a multiple of 4)");
    return decline(block ? "cuBLASLt has no BLK128x128 × VEC128 FP8 algorithm for this shape"
                         : "cuBLASLt has no FP8 algorithm for this shape (OUTER_VEC or unscaled)");
  }
  const int64_t n_pad = call->p.n;
  if (wvec && block) detail::fp8_pad_tile_scales(static_cast<const float*>(w.scales), tile_rows, kb, kb_pad, wvec, stream);
  const QuantizedX want{x, n_tok, n_pad, cols, group};
  const QuantizedX& have = quantized_;
  // One scale per token: a quantization padded further (x_slot) serves any n_pad below it.
  const bool pad_ok = have.n_pad == want.n_pad || (group == cols && have.n_pad > want.n_pad);
  if (!(opt.x_unchanged && have.x == want.x && have.n_tok == want.n_tok && pad_ok && have.cols == want.cols &&
        have.group == want.group)) {
    quantize_x_fp8(x, n_tok, n_pad, cols, group, xq, xs, stream);
    quantized_ = want;
  }
  void* ws = call->algo.workspace > 0 ? ensure(workspace_[opt.lane], kLtWorkspaceBytes, stream) : nullptr;
  if (!launch(lt_, algos_, *call, ws, stream)) return decline("cublasLtMatmul refused the algorithm its heuristic chose");

  r.bf16_d = call->p.d_type == CUDA_R_16BF;
  if (r.path == Fp8GemmPath::kEpilogue) {
    detail::fp8_gemm_epilogue(call->p.d, r.bf16_d, y, n_tok, rows, row_scale, w.tensor_scale, xs, stream);
  } else if (r.bf16_d) {
    detail::fp8_gemm_epilogue(call->p.d, true, y, n_tok, rows, nullptr, 1.0f, nullptr, stream);
  } else if (call->p.d != y) {  // padded tokens: the first n_tok columns of D are y
    IMP_CUDA_CHECK(cudaMemcpyAsync(y, call->p.d, size_t(4 * n_tok * rows), cudaMemcpyDeviceToDevice, stream));
  }
  r.ran = true;
  ++runs_[int(r.path)];
  if (r.bf16_d) ++bf16_d_runs_;
  return r;
}

Fp8Gemm::XSlot Fp8Gemm::x_slot(const void* key, int64_t n_tok, int64_t cols, cudaStream_t stream) {
  if (n_tok < 1 || n_tok > std::numeric_limits<int32_t>::max() - 16 || cols < 1) {
    fail("FP8 GEMM: activation slot of {} × {} out of range", n_tok, cols);
  }
  XSlot r;
  r.n_pad = round_up(n_tok, 16);  // the larger of run()'s two token counts for these tiers
  r.q = static_cast<uint8_t*>(ensure(xq_, r.n_pad * cols, stream));
  r.s = static_cast<float*>(ensure(xs_, 4 * r.n_pad, stream));
  quantized_ = {static_cast<const float*>(key), n_tok, r.n_pad, cols, cols};
  return r;
}

const float* Fp8Gemm::tensor_scale_vector(float scale, int64_t rows, cudaStream_t stream) {
  uint32_t bits;
  std::memcpy(&bits, &scale, 4);
  void*& p = tensor_scale_vectors_[{bits, rows}];
  if (!p) {
    const cudaError_t e = cudaMalloc(&p, size_t(4 * rows));
    if (e != cudaSuccess) {
      cudaGetLastError();
      p = nullptr;
      fail("FP8 GEMM: cudaMalloc of a {}-row scale vector failed: {}", rows, cudaGetErrorString(e));
    }
    detail::fp8_fill_f32(static_cast<float*>(p), rows, scale, stream);
  }
  return static_cast<const float*>(p);
}

std::string Fp8Gemm::stats() const {
  std::string s = fmt::format("fp8 w8a8 GEMMs: {} outer_vec, {} epilogue, {} block128", runs_[0], runs_[1], runs_[2]);
  if (bf16_d_runs_ > 0) s += fmt::format(" ({} with BF16 D)", bf16_d_runs_);
  s += fmt::format("; {} fell back to BF16", fallbacks_);
  if (!last_fallback_.empty()) s += fmt::format(" (last: {})", last_fallback_);
  return s;
}

}  // namespace imp::cuda
