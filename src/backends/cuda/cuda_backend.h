// CudaBackend — the forward pass on one CUDA GPU (sm_90), behind runtime/backend.h.
//
// Weights: add_matrix uploads the planned, held matrix once. In the default f16 decode mode
// Q4_0, Q8_0, NVFP4_CKPT and MXFP4_CKPT rows of a whole number of 128 (Q8_0: 64) columns
// are repacked to the kMma layout of the tensor-core GEMV; otherwise Q4_0, Q8_0, Q6_K go to
// the split layout of the FP32 kernels and other formats keep their native planes.
// Decode (n_tok = 1): GEMV kernels of gemv.h. CudaDecodeActivations picks what x is:
// kF16 (default) runs the tensor-core kernels, which round x to f16 (relative 2^-11; weights
// exact), and the FP32 kernels for the other tiers; kF32 runs only FP32-activation kernels
// (exact but for summation order); kInt8 also allows the integer-dot kernels that round x to
// int8 blocks (on models with activation outliers they cost ~1e-1 logit error). Prefill (n_tok > 1): each weight is
// dequantized in row chunks into a reusable device scratch (bit-exact decode), converted to
// BF16 with the activations, and multiplied by cuBLAS (cublasGemmEx, BF16 in, FP32
// accumulate); BF16 weights go to cuBLAS as they are; the FP8 tiers run W8A8 on the FP8
// tensor cores (gemm_fp8.h: x quantized to E4M3 per token, cuBLASLt), falling back to the
// BF16 path for shapes it cannot run. Prefill attention runs on the tensor cores
// (attention_prefill.cu: f16 q/k/v/p, FP32 softmax). CudaGemmPrecision::kF32 keeps GEMMs
// and prefill attention in FP32 (exact decode, FP32 GEMM) — the exact mode.
// The embedding table stays on the host: a lookup decodes the token's rows exactly into a
// pinned buffer that the step copies to the device.
//
// Steps and graphs: begin_step copies the positions to device memory (StepParams); every
// kernel reads them from there. A decode step's kernels are enqueued on one stream; the
// first decode step of a context bucket (powers of two from 256) runs eagerly, the second
// is captured as a CUDA graph, later ones replay it (ops only refresh the pinned inputs).
// Split-K attention uses a split count fixed per bucket, so a graph stays valid across the
// bucket. No cudaMalloc and no host sync inside a decode step; read() syncs once for the
// logits. Graphs are keyed by (cache id, bucket) and dropped when a buffer is released or a
// matrix added (their pointers would be stale).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backends/cuda/cuda_caps.h"
#include "backends/cuda/cuda_kv_cache.h"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/gemm_fp8.h"
#include "backends/cuda/gemm_lanes.h"
#include "backends/cuda/gemv.h"
#include "backends/cuda/l2_prefetch.h"
#include "io/model_config.h"
#include "planner/device_caps.h"
#include "planner/storage_plan.h"
#include "runtime/backend.h"

namespace imp::cuda {

enum class CudaGemmPrecision : uint8_t { kBF16, kF32 };
enum class CudaDecodeActivations : uint8_t { kF16, kF32, kInt8 };

struct CudaBackendOptions {
  int device = 0;
  CudaGemmPrecision gemm = CudaGemmPrecision::kBF16;
  bool graphs = true;
  CudaDecodeActivations decode_x = CudaDecodeActivations::kF16;
};

// Planner answers (cuda_device_caps): backends/cuda/cuda_caps.h.

// GPU memory a plan needs, before anything is allocated.
struct CudaMemoryEstimate {
  int64_t weight_bytes = 0;     // matrices on the device (the embedding table stays on the host unless tied)
  int64_t kv_bytes = 0;         // CudaKvCache::device_bytes_for
  int64_t workspace_bytes = 0;  // activations for n_batch tokens, GEMM scratch, attention partials
  int64_t total() const { return weight_bytes + kv_bytes + workspace_bytes; }
};
CudaMemoryEstimate estimate_cuda_memory(const StoragePlan& plan, const ModelConfig& config, int64_t n_ctx,
                                        KvType kv_type, int64_t n_batch);
// Fails with the numbers when the estimate exceeds the free memory cudaMemGetInfo reports.
void require_cuda_memory(const CudaMemoryEstimate& need, int device = 0);

class CudaBackend final : public Backend {
 public:
  // Fails when no CUDA device is visible.
  explicit CudaBackend(CudaBackendOptions options = {});
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  const CudaBackendOptions& options() const { return options_; }
  cudaStream_t stream() const { return stream_; }
  int64_t graphs_captured() const { return graphs_captured_; }
  std::string stats() const override;
  double replay_decode_step_seconds(int reps) override;
  void start_kernel_trace() override;
  KernelTrace trace_decode_step(int reps) override;
  uint64_t kernel_trace_mark() override;
  KernelTrace kernel_trace_since(uint64_t mark, int steps) override;
  int64_t graph_replays() const { return graph_replays_; }
  // Bytes of weights launches were given to prefetch into L2 (decode attention, GEMV tails),
  // summed over every eager or captured decode step so far (a replayed graph repeats its plan).
  int64_t l2_prefetch_planned_bytes() const { return l2_planned_bytes_; }

  std::string name() const override;
  float* alloc(int64_t n_floats) override;
  void release(float* buffer) override;
  MatrixHandle add_matrix(const QuantMatrix& w, std::string_view name) override;
  void set_decode_matrix(MatrixHandle w, const QuantMatrix& decode, std::string_view name) override;
  bool keeps_host_weights() const override { return false; }  // uploads are synchronous copies
  const float* add_vector(const float* host, int64_t n, std::string_view name) override;
  std::unique_ptr<KvStore> create_kv_cache(const KvCacheConfig& config) override;
  void read(const float* src, int64_t n, float* host_dst) override;
  void begin_step(KvStore& kv, int64_t pos0, int64_t n_tok) override;
  void end_step() override;
  void embedding(const QuantMatrix& table, std::span<const int32_t> ids, float* out) override;
  void rmsnorm(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* out) override;
  void matmul(MatrixHandle w, const float* x, int64_t n_tok, float* y) override;
  void add_bias(float* x, const float* bias, int64_t n_tok, int64_t n) override;
  void rope(float* x, int64_t n_tok, int64_t n_head, int64_t head_dim, const RopeParams& p) override;
  void kv_write(KvStore& kv, int64_t layer, const float* k, const float* v, int64_t n_tok) override;
  // Decode (n_tok = 1) with every matrix on the tensor-core GEMV: one launch for Q, K and V,
  // one for gate, up and SwiGLU; otherwise the plain ops.
  void matmul_qkv(MatrixHandle wq, MatrixHandle wk, MatrixHandle wv, const float* x, int64_t n_tok, float* q, float* k,
                  float* v) override;
  void matmul_add(MatrixHandle w, const float* x, int64_t n_tok, int64_t n_out, float* residual, float* scratch) override;
  void rmsnorm_matmul_qkv(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* h, MatrixHandle wq,
                          MatrixHandle wk, MatrixHandle wv, float* q, float* k, float* v) override;
  void rmsnorm_ffn_gate_up_swiglu(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* h,
                                  MatrixHandle w_gate, MatrixHandle w_up, int64_t n_ff, float* gate_scratch,
                                  float* up_scratch, float* out) override;
  void rmsnorm_qkv_rope_kv_write(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* h,
                                 MatrixHandle wq, MatrixHandle wk, MatrixHandle wv, float* q, float* k, float* v,
                                 int64_t n_head, int64_t head_dim, const RopeParams& p, KvStore& kv,
                                 int64_t layer) override;
  void add_rmsnorm(float* x, const float* delta, const float* gain, int64_t n_tok, int64_t n, float eps,
                   float* out) override;
  void ffn_gate_up_swiglu(MatrixHandle w_gate, MatrixHandle w_up, const float* x, int64_t n_tok, int64_t n_ff,
                          float* gate_scratch, float* up_scratch, float* out) override;
  void rope_kv_write(float* q, float* k, const float* v, int64_t n_tok, int64_t n_head, int64_t head_dim,
                     const RopeParams& p, KvStore& kv, int64_t layer) override;
  void attention(const float* q, int64_t n_tok, int64_t n_head, KvStore& kv, int64_t layer, int64_t window,
                 float scale, float* out) override;
  void attention_matmul_add(const float* q, int64_t n_tok, int64_t n_head, KvStore& kv, int64_t layer, int64_t window,
                            float scale, float* att, MatrixHandle wo, int64_t n_out, float* residual,
                            float* scratch) override;
  void rmsnorm_ffn_swiglu_add(float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* h,
                              MatrixHandle w_gate, MatrixHandle w_up, MatrixHandle w_down, int64_t n_ff,
                              float* gate_scratch, float* up_scratch, float* act, float* scratch) override;
  void swiglu(const float* gate, const float* up, int64_t n, float* out) override;
  void gelu_tanh(const float* x, int64_t n, float* out) override;
  void add(float* y, const float* x, int64_t n) override;
  void mul(float* y, const float* x, int64_t n) override;
  void scale(float* x, float s, int64_t n) override;

  // Host → device upload of floats into a buffer from alloc() (tests).
  void write(float* dst, const float* host, int64_t n);

 private:
  enum class Mode : uint8_t { kIdle, kEager, kCapture, kReplay };
  struct Matrix {
    DeviceMatrix m;
    void* data = nullptr;
    void* scales = nullptr;
    // The decode copy (set_decode_matrix, the planner's NVFP4 decode cache): single-token
    // GEMVs read it, prefill GEMMs read m. Absent: d_data null.
    DeviceMatrix dm;
    void* d_data = nullptr;
    void* d_scales = nullptr;
    const DeviceMatrix& decode() const { return d_data ? dm : m; }
  };
  struct PinnedBuffer {
    void* p = nullptr;
    int64_t bytes = 0;
  };

  static CudaKvCache& device_cache(KvStore& kv);
  const Matrix& matrix(MatrixHandle h) const;  // fails on an unknown handle
  void* device_alloc(int64_t bytes, const char* what);
  void ensure_pinned(PinnedBuffer& b, int64_t bytes);
  void ensure_device(void*& p, int64_t& have, int64_t bytes, const char* what);
  void drop_graphs();
  cudaGraphExec_t replayable_decode_graph() const;
  void abort_capture();
  bool skip() const { return mode_ == Mode::kReplay; }
  void gemv(const Matrix& w, const float* x, float* y, GemvOut out = GemvOut::kStore);
  // Returns launched; when true in a decode step, logs the weights the launch read (l2_prefetch.h).
  bool logged(bool launched, std::initializer_list<DeviceMatrix> ws);
  // y = W·x, or y += W·x (accumulate) for the prefill's residual adds.
  void gemm(const Matrix& w, const float* x, int64_t n_tok, float* y, bool accumulate = false);
  // Lanes the GEMMs of a hook may run on side by side (gemm_lanes.h): 1 unless eager
  // prefill with more than one GEMM; at most IMP_CUDA_GEMM_LANES.
  int lanes_for(size_t n_gemms, int64_t n_tok) const;
  // The GEMMs of one fused hook (Q·K·V, gate·up: each {matrix, y}, one x): those that
  // gemm_dequant takes (fused_gemm_takes; the first such part's format and width) as one
  // grouped launch, the others one matmul each. Inside a SharedX scope.
  void gemm_group(std::initializer_list<std::pair<MatrixHandle, float*>> gemms, const float* x, int64_t n_tok);
  // x's BF16 form (x_bf16_; converted unless the scope's producer wrote it) for the GEMMs.
  const void* gemm_x_bf16(const float* x, int64_t n_tok, int64_t cols);
  // x_bf16_ as f16 in the kMma column order (x_mma_), once per SharedX scope.
  const uint16_t* gemm_x_mma(int64_t n_tok, int64_t cols);
  // Uploads w in the layout its GEMV reads (kMma / kSplit / native): m, data, scales set.
  Matrix upload(const QuantMatrix& w, std::string_view name);
  bool fp8_takes_produced_x(std::initializer_list<MatrixHandle> ws, int64_t n_tok, int64_t cols) const;
  bool fp8_run_produced(const float* key, int64_t n_tok, std::initializer_list<std::pair<MatrixHandle, float*>> gemms);
  bool gemm_takes_bf16_from_producer(const Matrix& w, int64_t n_tok, int64_t cols) const;
  // What a prefill producer wrote for the GEMMs of its hook: nothing, x_bf16_, or x_mma_ (f16
  // in the kMma column order, when every one of them runs the fused GEMM: fused_takes_all).
  enum class ProducedX { kNone, kBf16, kF16Mma };
  ProducedX norm_to_gemm_x(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* h,
                           std::initializer_list<MatrixHandle> ws);
  bool fused_takes_all(std::initializer_list<MatrixHandle> ws, int64_t n_tok, int64_t cols) const;
  void gemm_mma_pipelined(const Matrix& w, const void* x_bf16, int64_t n_tok, int64_t chunk, float* y, float beta);
  static DeviceMatrix row_slice(const DeviceMatrix& m, int64_t r0, int64_t rc);

  CudaBackendOptions options_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::vector<Matrix> matrices_;
  std::vector<void*> vectors_;
  std::set<float*> buffers_;

  // Step state.
  Mode mode_ = Mode::kIdle;
  StepParams* step_host_ = nullptr;  // pinned
  StepParams* step_dev_ = nullptr;
  int64_t step_pos0_ = 0, step_n_tok_ = 0;
  int32_t n_split_ = 1;
  std::pair<uint64_t, int64_t> graph_key_{0, 0};
  std::map<std::pair<uint64_t, int64_t>, cudaGraphExec_t> graphs_;
  std::set<std::pair<uint64_t, int64_t>> warmed_;
  int64_t graphs_captured_ = 0, graph_replays_ = 0, graph_drops_ = 0;
  // The weight reads of this decode step in launch order, and of the last complete eager or
  // captured one, from which each decode attention plans its L2 prefetch (l2_prefetch.h).
  std::vector<DecodeRead> decode_log_, decode_log_prev_;
  L2PrefetchPlanner l2_planner_;  // over decode_log_prev_, restarted by every decode step
  int64_t l2_planned_bytes_ = 0;
  bool logging_decode() const { return step_n_tok_ == 1 && (mode_ == Mode::kEager || mode_ == Mode::kCapture); }
  // The L2 prefetch of the launch about to be made (it will be decode_log_'s next entry).
  L2Ranges plan_l2(bool attention);
  GemvFusion tail_fusion() { GemvFusion f; f.next_weights = plan_l2(false); return f; }

  // Pinned staging: decode embedding (fixed once allocated: graphs copy from it), prefill
  // embedding, logits.
  PinnedBuffer emb_decode_, emb_prefill_, readback_;
  // Device scratch: attention partials (decode), GEMM weight chunk f32 / bf16, activations bf16.
  void* partials_ = nullptr;
  int64_t partials_bytes_ = 0;
  void* gemm_f32_ = nullptr;
  int64_t gemm_f32_bytes_ = 0;
  // Two BF16 weight chunks: the kMma formats dequantize chunk i+1 on dequant_stream_ while
  // cuBLAS multiplies chunk i on stream_ (events chunk_ready_/chunk_free_ order the reuse).
  // The BF16 copy of a GEMM input x shared by the GEMMs of one fused hook (QKV, gate·up):
  // while `active`, a GEMM whose x is `src` (n floats) reuses x_bf16_ instead of converting.
  struct SharedXState {
    bool active = false;
    const float* src = nullptr;
    int64_t n = 0;
    bool fp8_quantized = false;  // an FP8 GEMM of this scope quantized its x (Fp8Gemm keeps it)
    bool mma_columns = false;    // x_mma_ holds x in the kMma column order (gemm_dequant)
  } x_shared_;
  // Scope of one fused hook. src, n: a producer already wrote that x — as BF16 into x_bf16_,
  // or (produced == kF16Mma) only as f16 kMma columns into x_mma_, for GEMMs that all read
  // those (fused_takes_all).
  struct SharedX {
    explicit SharedX(SharedXState& s, const float* src = nullptr, int64_t n = 0, ProducedX produced = ProducedX::kBf16)
        : s_(s) {
      s_ = {true, src, n};
      s_.mma_columns = src && produced == ProducedX::kF16Mma;
    }
    ~SharedX() { s_ = {}; }
    SharedX(const SharedX&) = delete;
    SharedX& operator=(const SharedX&) = delete;
    SharedXState& s_;
  };
  void* gemm_bf16_[2] = {nullptr, nullptr};
  int64_t gemm_bf16_bytes_[2] = {0, 0};
  cudaStream_t dequant_stream_ = nullptr;
  cudaEvent_t chunk_ready_[2] = {nullptr, nullptr};
  cudaEvent_t chunk_free_[2] = {nullptr, nullptr};
  uint64_t chunk_seq_ = 0;  // alternates the buffers across chunks and across matrices
  void* x_bf16_ = nullptr;
  int64_t x_bf16_bytes_ = 0;
  void* x_mma_ = nullptr;  // x as f16 in the kMma column order (f16_mma_columns, or a producer)
  int64_t x_mma_bytes_ = 0;
  int64_t fused_gemms_ = 0;  // prefill GEMMs gemm_dequant ran
  // FP8 W8A8 prefill (gemm_fp8.h): cuBLASLt handle, workspace and scratch of its own.
  std::unique_ptr<Fp8Gemm> fp8_gemm_;
  // Streams for the library GEMMs of one hook side by side (gemm_lanes.h).
  std::unique_ptr<GemmLanes> lanes_;
};

}  // namespace imp::cuda
