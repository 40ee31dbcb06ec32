#include "backends/cuda/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "backends/cuda/attention_decode_kernel.h"
#include "backends/cuda/check.h"
#include "backends/cuda/cublas_check.h"
#include "backends/cuda/cupti_tracer.h"
#include "backends/cuda/device.h"
#include "backends/cuda/gemm_dequant.h"
#include "backends/cuda/gemm_lanes.h"
#include "formats/traits.h"

namespace imp::cuda {
namespace {

// Weight elements dequantized per cuBLAS call (128 MB BF16): an 8B model's largest
// matrices (14336 × 4096) are one GEMM each, so no GEMM has the few output tiles of a
// 2340-row remainder (that cut ran cuBLAS's sm80 kernel at ~1/3 the rate of the others).
constexpr int64_t kGemmChunkElems = int64_t(64) << 20;
// Decode attention (attention.cu) walks each split's keys in tiles of 32, one memory round
// trip per tile, so a split of ~32 keys is one round trip: bucket / 32 splits, at most 128
// (the combine's limit). llama3.1-8b in a 1024 bucket: 32 splits × 8 kv heads = 256 blocks.
// (Two tiles per split — half the partials to merge — cost more than it saved: Q4_0 8B
// attention + merge 499 + 109 against 382 + 189 µs per step, H100, 2026-12-07.)
constexpr int32_t kMaxSplits = 128;

bool repacks(FormatId f) { return f == FormatId::Q4_0 || f == FormatId::Q8_0 || f == FormatId::Q6_K; }

// Context bucket of a decode step: powers of two from 256, capped at the cache size.
int64_t bucket_for(int64_t ctx, int64_t max_tokens) {
  int64_t b = 256;
  while (b < ctx) b *= 2;
  return std::min(b, std::max<int64_t>(max_tokens, 1));
}
// 32-key splits for the split kernel, 512-key ones for the one-launch kernel
// (attention_decode_kernel.h: attention_decode_keys_per_split).
int32_t splits_for(int64_t bucket) {
  return int32_t(std::clamp<int64_t>(bucket / attention_decode_keys_per_split(), 1, kMaxSplits));
}

RopeArgs rope_args(const RopeParams& p) {
  return {p.style == RopeStyle::kHalfSplit ? 1 : 0, p.theta, p.freq_scale};
}

}  // namespace


int32_t decode_attention_splits(int64_t ctx, int64_t max_tokens) { return splits_for(bucket_for(ctx, max_tokens)); }

CudaMemoryEstimate estimate_cuda_memory(const StoragePlan& plan, const ModelConfig& c, int64_t n_ctx, KvType kv_type,
                                        int64_t n_batch) {
  CudaMemoryEstimate e;
  for (const StoragePlanRow& r : plan.rows) {
    if (r.role == WeightRole::kEmbedding) continue;  // looked up on the host
    e.weight_bytes += r.bytes + (r.has_decode_copy() ? r.decode_bytes : 0);
    // Q6_K's kMma scale slots: 16 bytes per 128 weights where the native block has 18 per 256.
    if (r.held_format == FormatId::Q6_K && mma_high_bit_formats_on()) e.weight_bytes += r.elements * 14 / 256;
  }
  KvCacheConfig k;
  k.n_layer = c.n_layer;
  k.n_kv_head = c.n_head_kv > 0 ? c.n_head_kv : c.n_head;
  k.head_dim = c.head_dim;
  k.max_tokens = n_ctx;
  k.dtype = kv_type;
  e.kv_bytes = CudaKvCache::device_bytes_for(k);
  const int64_t width = 3 * c.n_embd + 2 * c.n_head * c.head_dim + 2 * k.n_kv_head * c.head_dim + 2 * c.n_ff + c.n_vocab;
  const int64_t max_cols = std::max({c.n_embd, c.n_ff, c.n_head * c.head_dim});
  e.workspace_bytes = 4 * width * (n_batch + 1)                      // prefill + decode activations
                      + kGemmChunkElems * 8                          // f32 + two bf16 weight chunks
                      + 2 * n_batch * max_cols                       // bf16 activations
                      + 2 * n_batch * max_cols                       // their f16 kMma-order copy (gemm_dequant)
                      + 4 * c.n_head * kMaxSplits * (c.head_dim + 2);  // attention partials
  // FP8 W8A8 prefill: cuBLASLt workspace + E4M3 activations + D scratch (gemm_fp8.h).
  // Per-tensor tiers also keep their scale as an F32 vector of rows (Fp8Gemm: one per matrix,
  // made on first use); rows ≤ elements / the narrowest width, a bound from above.
  const int64_t min_cols = std::min({c.n_embd, c.n_ff, c.n_head * c.head_dim});
  int64_t fp8_rows = 0, fp8_scale_vectors = 0;
  for (const StoragePlanRow& r : plan.rows) {
    if (r.op != WeightOp::kMatmul || !is_fp8_weight(r.held_format)) continue;
    const bool head = r.role == WeightRole::kLmHead || r.role == WeightRole::kTiedEmbeddingLmHead;
    fp8_rows = std::max(fp8_rows, head ? c.n_vocab : max_cols);
    if (r.held_format == FormatId::FP8_E4M3_TENSOR && min_cols > 0) fp8_scale_vectors += 4 * (r.elements / min_cols + 1);
  }
  if (fp8_rows > 0) {
    e.workspace_bytes += Fp8Gemm::workspace_bytes(n_batch, fp8_rows, max_cols, gemm_lanes()) + fp8_scale_vectors;
  }
  return e;
}

void require_cuda_memory(const CudaMemoryEstimate& need, int device) {
  if (device_count() == 0) fail("no CUDA device visible (built with CUDA, but no GPU or driver)");
  IMP_CUDA_CHECK(cudaSetDevice(device));
  size_t free_b = 0, total_b = 0;
  IMP_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const double mib = 1.0 / double(1 << 20);
  if (need.total() > int64_t(free_b)) {
    fail("the model does not fit on GPU {}: needs {:.0f} MiB (weights {:.0f} + KV cache {:.0f} + workspace {:.0f}) "
         "but only {:.0f} MiB of {:.0f} MiB are free",
         device, double(need.total()) * mib, double(need.weight_bytes) * mib, double(need.kv_bytes) * mib,
         double(need.workspace_bytes) * mib, double(free_b) * mib, double(total_b) * mib);
  }
}

CudaBackend::CudaBackend(CudaBackendOptions options) : options_(options) {
  if (device_count() == 0) fail("no CUDA device visible (built with CUDA, but no GPU or driver)");
  IMP_CUDA_CHECK(cudaSetDevice(options_.device));
  IMP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  IMP_CUDA_CHECK(cudaStreamCreateWithFlags(&dequant_stream_, cudaStreamNonBlocking));
  for (int i = 0; i < 2; ++i) {
    IMP_CUDA_CHECK(cudaEventCreateWithFlags(&chunk_ready_[i], cudaEventDisableTiming));
    IMP_CUDA_CHECK(cudaEventCreateWithFlags(&chunk_free_[i], cudaEventDisableTiming));
  }
  IMP_CUBLAS_CHECK(cublasCreate(&cublas_));
  IMP_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
  fp8_gemm_ = std::make_unique<Fp8Gemm>();
  lanes_ = std::make_unique<GemmLanes>(stream_);
  IMP_CUDA_CHECK(cudaMallocHost(&step_host_, sizeof(StepParams)));
  step_dev_ = static_cast<StepParams*>(device_alloc(sizeof(StepParams), "step parameters"));
}

CudaBackend::~CudaBackend() {
  abort_capture();
  if (stream_) cudaStreamSynchronize(stream_);
  lanes_.reset();  // its streams before stream_
  drop_graphs();
  for (auto& m : matrices_) {
    for (void* p : {m.data, m.scales, m.d_data, m.d_scales}) cudaFree(p);
  }
  for (void* v : vectors_) cudaFree(v);
  for (float* b : buffers_) cudaFree(b);
  for (PinnedBuffer* b : {&emb_decode_, &emb_prefill_, &readback_}) cudaFreeHost(b->p);
  if (dequant_stream_) cudaStreamSynchronize(dequant_stream_);
  for (void* p : {partials_, gemm_f32_, gemm_bf16_[0], gemm_bf16_[1], x_bf16_, x_mma_, static_cast<void*>(step_dev_)}) {
    cudaFree(p);
  }
  for (cudaEvent_t e : {chunk_ready_[0], chunk_ready_[1], chunk_free_[0], chunk_free_[1]}) {
    if (e) cudaEventDestroy(e);
  }
  if (dequant_stream_) cudaStreamDestroy(dequant_stream_);
  cudaFreeHost(step_host_);
  if (cublas_) cublasDestroy(cublas_);
  if (stream_) cudaStreamDestroy(stream_);
}

std::string CudaBackend::name() const {
  const DeviceInfo d = device_info(options_.device);
  return fmt::format("cuda:{} ({}, sm_{}{})", options_.device, d.name, d.sm_major, d.sm_minor);
}

void* CudaBackend::device_alloc(int64_t bytes, const char* what) {
  if (mode_ == Mode::kCapture || mode_ == Mode::kReplay) fail("CUDA backend: allocation of {} inside a graph step", what);
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, size_t(std::max<int64_t>(bytes, 16)));
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail("CUDA backend: cudaMalloc of {} bytes for {} failed: {}", bytes, what, cudaGetErrorString(e));
  }
  return p;
}

void CudaBackend::ensure_pinned(PinnedBuffer& b, int64_t bytes) {
  if (b.bytes >= bytes) return;
  if (&b == &emb_decode_ && b.p) drop_graphs();  // graphs copy from the old address
  cudaFreeHost(b.p);
  b.p = nullptr;
  b.bytes = 0;
  IMP_CUDA_CHECK(cudaMallocHost(&b.p, size_t(bytes)));
  b.bytes = bytes;
}

void CudaBackend::ensure_device(void*& p, int64_t& have, int64_t bytes, const char* what) {
  if (have >= bytes) return;
  IMP_CUDA_CHECK(cudaStreamSynchronize(stream_));  // eager steps only: the old buffer may be in use
  cudaFree(p);
  p = nullptr;
  have = 0;
  p = device_alloc(bytes, what);
  have = bytes;
}

float* CudaBackend::alloc(int64_t n_floats) {
  if (n_floats <= 0) fail("CUDA backend: cannot allocate a buffer of {} floats", n_floats);
  auto* p = static_cast<float*>(device_alloc(n_floats * 4, "an activation buffer"));
  buffers_.insert(p);
  return p;
}

void CudaBackend::release(float* buffer) {
  if (buffers_.erase(buffer) == 0) fail("CUDA backend: release of a buffer it did not allocate");
  drop_graphs();
  cudaStreamSynchronize(stream_);
  cudaFree(buffer);
}

void CudaBackend::write(float* dst, const float* host, int64_t n) {
  IMP_CUDA_CHECK(cudaMemcpyAsync(dst, host, size_t(n) * 4, cudaMemcpyHostToDevice, stream_));
  IMP_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

CudaBackend::Matrix CudaBackend::upload(const QuantMatrix& w, std::string_view name) {
  validate(w);
  if (!gemv_supports(w.format)) {
    fail("CUDA backend: no GEMV kernel for {} ('{}'); plan it to a tier CUDA runs (bf16)", format_name(w.format), name);
  }
  Matrix m;
  m.m.format = w.format;
  m.m.rows = w.rows;
  m.m.cols = w.cols;
  m.m.tensor_scale = w.tensor_scale;
  if (options_.decode_x == CudaDecodeActivations::kF16 && mma_layout_chosen(w.format, w.cols)) {
    m.m.layout = WeightLayout::kMma;
    void* native = device_alloc(int64_t(w.data.size()), "a weight upload");
    IMP_CUDA_CHECK(cudaMemcpy(native, w.data.data(), w.data.size(), cudaMemcpyHostToDevice));
    m.data = device_alloc(device_data_bytes(w.format, WeightLayout::kMma, w.rows, w.cols), "a weight payload plane");
    const bool d_plane = mma_has_own_scale_plane(w.format);
    if (d_plane) {
      m.scales = device_alloc(device_scale_bytes(w.format, WeightLayout::kMma, w.rows, w.cols), "a weight scale plane");
    } else {
      m.scales = device_alloc(int64_t(w.scales.size()), "a weight scale plane");
      IMP_CUDA_CHECK(cudaMemcpy(m.scales, w.scales.data(), w.scales.size(), cudaMemcpyHostToDevice));
    }
    repack_mma(w.format, native, w.rows, w.cols, m.data, d_plane ? m.scales : nullptr, stream_);
    IMP_CUDA_CHECK(cudaStreamSynchronize(stream_));
    cudaFree(native);
  } else if (repacks(w.format)) {
    m.m.layout = WeightLayout::kSplit;
    void* native = device_alloc(int64_t(w.data.size()), "a weight upload");
    IMP_CUDA_CHECK(cudaMemcpy(native, w.data.data(), w.data.size(), cudaMemcpyHostToDevice));
    m.data = device_alloc(device_data_bytes(w.format, WeightLayout::kSplit, w.rows, w.cols), "a weight payload plane");
    m.scales = device_alloc(device_scale_bytes(w.format, WeightLayout::kSplit, w.rows, w.cols), "a weight scale plane");
    repack_split(w.format, native, w.rows, w.cols, m.data, m.scales, stream_);
    IMP_CUDA_CHECK(cudaStreamSynchronize(stream_));
    cudaFree(native);
  } else {
    m.m.layout = WeightLayout::kNative;
    m.data = device_alloc(int64_t(w.data.size()), "a weight data plane");
    IMP_CUDA_CHECK(cudaMemcpy(m.data, w.data.data(), w.data.size(), cudaMemcpyHostToDevice));
    if (!w.scales.empty()) {
      m.scales = device_alloc(int64_t(w.scales.size()), "a weight scale plane");
      IMP_CUDA_CHECK(cudaMemcpy(m.scales, w.scales.data(), w.scales.size(), cudaMemcpyHostToDevice));
    }
  }
  m.m.data = m.data;
  m.m.scales = m.scales;
  return m;
}

MatrixHandle CudaBackend::add_matrix(const QuantMatrix& w, std::string_view name) {
  drop_graphs();
  matrices_.push_back(upload(w, name));
  return MatrixHandle(matrices_.size() - 1);
}

void CudaBackend::set_decode_matrix(MatrixHandle h, const QuantMatrix& decode, std::string_view name) {
  const Matrix& have = matrix(h);
  if (decode.rows != have.m.rows || decode.cols != have.m.cols) {
    fail("CUDA backend: decode copy of '{}' is {}×{}, the matrix {}×{}", name, decode.rows, decode.cols, have.m.rows,
         have.m.cols);
  }
  drop_graphs();
  const Matrix d = upload(decode, name);
  Matrix& m = matrices_[size_t(h)];
  cudaFree(m.d_data);
  cudaFree(m.d_scales);
  m.dm = d.m;
  m.d_data = d.data;
  m.d_scales = d.scales;
}

const float* CudaBackend::add_vector(const float* host, int64_t n, std::string_view name) {
  if (n <= 0) fail("CUDA backend: vector '{}' has {} elements", name, n);
  void* p = device_alloc(n * 4, "a weight vector");
  IMP_CUDA_CHECK(cudaMemcpy(p, host, size_t(n) * 4, cudaMemcpyHostToDevice));
  vectors_.push_back(p);
  return static_cast<const float*>(p);
}

std::unique_ptr<KvStore> CudaBackend::create_kv_cache(const KvCacheConfig& config) {
  IMP_CUDA_CHECK(cudaSetDevice(options_.device));
  return std::make_unique<CudaKvCache>(config);
}

CudaKvCache& CudaBackend::device_cache(KvStore& kv) {
  auto* c = dynamic_cast<CudaKvCache*>(&kv);
  if (!c) fail("CUDA backend: the KV cache was not created by a CUDA backend");
  return *c;
}

void CudaBackend::read(const float* src, int64_t n, float* host_dst) {
  if (n <= 0) return;
  ensure_pinned(readback_, n * 4);
  IMP_CUDA_CHECK(cudaMemcpyAsync(readback_.p, src, size_t(n) * 4, cudaMemcpyDeviceToHost, stream_));
  IMP_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::memcpy(host_dst, readback_.p, size_t(n) * 4);
}

std::string CudaBackend::stats() const {
  const FusedGemm fused = fused_gemm_mode();
  const std::string fused_when = fused == FusedGemm::kOn    ? std::string("forced on")
                                 : fused == FusedGemm::kOff ? std::string("off")
                                                            : fmt::format("up to {} tokens", kFusedGemmMaxTokens);
  return fmt::format("decode graphs: {} captured, {} replays, {} dropped sets; L2 weight prefetch {} MiB per decode "
                     "attention; fused-dequantization prefill GEMMs: {} ({}); FP8 GEMMs of {} hooks side by side "
                     "(up to {} streams); {}",
                     graphs_captured_, graph_replays_, graph_drops_, l2_prefetch_budget() >> 20, fused_gemms_,
                     fused_when, lanes_->forks(), gemm_lanes(), fp8_gemm_->stats());
}

// The last decode step's graph, when one can be replayed now (else null). It rewrites the
// same KV position from the same pinned inputs: replays are idempotent.
cudaGraphExec_t CudaBackend::replayable_decode_graph() const {
  const auto it = graphs_.find(graph_key_);
  return it == graphs_.end() || mode_ != Mode::kIdle ? nullptr : it->second;
}

double CudaBackend::replay_decode_step_seconds(int reps) {
  cudaGraphExec_t graph = replayable_decode_graph();
  if (!graph || reps < 1) return 0.0;
  IMP_CUDA_CHECK(cudaStreamSynchronize(stream_));
  cudaEvent_t start = nullptr, stop = nullptr;
  IMP_CUDA_CHECK(cudaEventCreate(&start));
  IMP_CUDA_CHECK(cudaEventCreate(&stop));
  IMP_CUDA_CHECK(cudaGraphLaunch(graph, stream_));  // warm
  IMP_CUDA_CHECK(cudaEventRecord(start, stream_));
  for (int i = 0; i < reps; ++i) IMP_CUDA_CHECK(cudaGraphLaunch(graph, stream_));
  IMP_CUDA_CHECK(cudaEventRecord(stop, stream_));
  IMP_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  IMP_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return double(ms) / 1e3 / reps;
}

void CudaBackend::start_kernel_trace() {
  cupti_start();
  // Graphs captured before tracing started would replay unrecorded: capture afresh.
  drop_graphs();
}

KernelTrace CudaBackend::trace_decode_step(int reps) {
  if (!cupti_active()) fail("kernel trace: start_kernel_trace() was not called before the decode step was captured");
  cudaGraphExec_t graph = replayable_decode_graph();
  if (!graph || reps < 1) fail("kernel trace: no captured decode step to replay");
  IMP_CUDA_CHECK(cudaGraphLaunch(graph, stream_));  // warm
  const uint64_t mark = kernel_trace_mark();
  for (int i = 0; i < reps; ++i) IMP_CUDA_CHECK(cudaGraphLaunch(graph, stream_));
  return kernel_trace_since(mark, reps);
}

uint64_t CudaBackend::kernel_trace_mark() {
  if (!cupti_active()) fail("kernel trace: start_kernel_trace() was not called");
  IMP_CUDA_CHECK(cudaDeviceSynchronize());
  (void)cupti_take(0, 0);  // drop everything before the window
  return cupti_now_ns();
}

KernelTrace CudaBackend::kernel_trace_since(uint64_t mark, int steps) {
  IMP_CUDA_CHECK(cudaDeviceSynchronize());  // every stream: prefill dequantizes on a second one
  const uint64_t end = cupti_now_ns();
  std::vector<KernelSpan> spans = cupti_take(mark, end);
  if (spans.empty()) fail("kernel trace: CUPTI recorded no kernel in the traced window");
  return summarize_kernel_trace(std::move(spans), steps);
}

void CudaBackend::drop_graphs() {
  if (!graphs_.empty()) ++graph_drops_;
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
  warmed_.clear();
  decode_log_.clear();  // device pointers of matrices that may be gone
  decode_log_prev_.clear();
}

void CudaBackend::abort_capture() {
  if (!stream_) return;
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream_, &st) == cudaSuccess && st != cudaStreamCaptureStatusNone) {
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(stream_, &g);
    if (g) cudaGraphDestroy(g);
  }
  cudaGetLastError();  // a failed capture leaves a sticky-free error behind
  mode_ = Mode::kIdle;
}

void CudaBackend::begin_step(KvStore& kv, int64_t pos0, int64_t n_tok) {
  if (mode_ != Mode::kIdle) abort_capture();  // a previous step threw before end_step
  CudaKvCache& c = device_cache(kv);
  if (pos0 < 0 || n_tok < 1 || pos0 + n_tok > c.config().max_tokens) {
    fail("CUDA backend: step of {} tokens at position {} exceeds the cache's {} tokens", n_tok, pos0, c.config().max_tokens);
  }
  // The pinned inputs (positions, embedding rows) are rewritten below: the last step must be done.
  IMP_CUDA_CHECK(cudaStreamSynchronize(stream_));
  step_host_->pos0 = int32_t(pos0);
  step_host_->n_tok = int32_t(n_tok);
  step_pos0_ = pos0;
  step_n_tok_ = n_tok;
  mode_ = Mode::kEager;
  n_split_ = 1;
  if (n_tok == 1) {
    const int64_t bucket = bucket_for(pos0 + 1, c.config().max_tokens);
    n_split_ = splits_for(bucket);
    if (options_.graphs) {
      graph_key_ = {c.id(), bucket};
      if (graphs_.count(graph_key_)) {
        mode_ = Mode::kReplay;
        return;
      }
      if (warmed_.count(graph_key_)) {
        IMP_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        mode_ = Mode::kCapture;
      }
    }
  }
  decode_log_.clear();
  l2_planner_.start(n_tok == 1 ? &decode_log_prev_ : nullptr);
  IMP_CUDA_CHECK(cudaMemcpyAsync(step_dev_, step_host_, sizeof(StepParams), cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::end_step() {
  if (step_n_tok_ == 1 && (mode_ == Mode::kEager || mode_ == Mode::kCapture)) decode_log_prev_.swap(decode_log_);
  switch (mode_) {
    case Mode::kCapture: {
      cudaGraph_t g = nullptr;
      IMP_CUDA_CHECK(cudaStreamEndCapture(stream_, &g));
      cudaGraphExec_t exec = nullptr;
      const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
      cudaGraphDestroy(g);
      mode_ = Mode::kIdle;
      IMP_CUDA_CHECK(e);
      graphs_[graph_key_] = exec;
      ++graphs_captured_;
      IMP_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
      break;
    }
    case Mode::kReplay:
      mode_ = Mode::kIdle;
      IMP_CUDA_CHECK(cudaGraphLaunch(graphs_.at(graph_key_), stream_));
      ++graph_replays_;
      break;
    case Mode::kEager:
      if (step_n_tok_ == 1 && options_.graphs) warmed_.insert(graph_key_);
      mode_ = Mode::kIdle;
      break;
    case Mode::kIdle: fail("CUDA backend: end_step without begin_step");
  }
}

void CudaBackend::embedding(const QuantMatrix& table, std::span<const int32_t> ids, float* out) {
  const int64_t n = int64_t(ids.size());
  if (mode_ == Mode::kIdle) fail("CUDA backend: embedding outside a step");
  PinnedBuffer& b = n == 1 ? emb_decode_ : emb_prefill_;
  const int64_t bytes = n * table.cols * 4;
  if (mode_ == Mode::kReplay || mode_ == Mode::kCapture) {
    if (b.bytes < bytes) fail("CUDA backend: decode embedding staging is {} bytes, need {}", b.bytes, bytes);
  } else {
    ensure_pinned(b, bytes);
  }
  embedding_lookup(table, ids, static_cast<float*>(b.p));  // exact host decode (ids range-checked)
  if (skip()) return;  // the graph's copy node reads the pinned buffer
  IMP_CUDA_CHECK(cudaMemcpyAsync(out, b.p, size_t(bytes), cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::rmsnorm(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* out) {
  if (skip()) return;
  cuda::rmsnorm(x, gain, n_tok, n, eps, out, stream_);
}

void CudaBackend::gemv(const Matrix& mat, const float* x, float* y, GemvOut out) {
  const DeviceMatrix& w = mat.decode();  // the decode copy when the plan made one
  std::string reasons;
  for (const GemvKernel& k : gemv_kernels()) {
    if (k.quantizes_x && options_.decode_x != CudaDecodeActivations::kInt8) continue;
    if (k.half_x && options_.decode_x != CudaDecodeActivations::kF16) continue;
    const KernelCheck c = can_implement(k, w, x, y);
    if (c.ok) {
      k.launch(w, x, y, stream_, out);
      IMP_CUDA_CHECK_LAUNCH();
      l2_planner_.discard();  // registry kernels take no prefetch plan (a declined fused launch's is void)
      logged(true, {w});
      return;
    }
    if (k.format == w.format) reasons += fmt::format("; {}: {}", k.name, c.reason);
  }
  fail("CUDA matmul: no GEMV kernel for {} {}×{}{}", format_name(w.format), w.rows, w.cols, reasons);
}

L2Ranges CudaBackend::plan_l2(bool attention) {
  if (!logging_decode()) return {};
  return l2_planner_.plan(int64_t(decode_log_.size()), attention, attention ? l2_prefetch_budget() : l2_tail_budget());
}

bool CudaBackend::logged(bool launched, std::initializer_list<DeviceMatrix> ws) {
  if (!launched || !logging_decode()) return launched;
  l2_planned_bytes_ += l2_planner_.commit();  // the plan made for this launch (if any) went with it
  DecodeRead& e = decode_log_.emplace_back();
  for (const DeviceMatrix& m : ws) append_matrix_planes(m, e.planes);
  return true;
}

void CudaBackend::gemm(const Matrix& w, const float* x, int64_t n_tok, float* y, bool accumulate) {
  // FP8 tiers in the BF16 mode: W8A8 on the FP8 tensor cores; shapes it cannot run (counted
  // in stats() with the reason) take the dequantize + BF16 path below. Inside a fused hook
  // (x_shared_) x is unchanged across its GEMMs, so its FP8 quantization is made once.
  if (options_.gemm == CudaGemmPrecision::kBF16 && is_fp8_weight(w.m.format)) {
    Fp8RunOptions o;
    o.accumulate = accumulate;
    o.x_unchanged = x_shared_.active && x_shared_.fp8_quantized;  // an earlier GEMM of this hook quantized it
    if (fp8_gemm_->run(w.m, x, n_tok, y, stream_, o).ran) {
      x_shared_.fp8_quantized = x_shared_.active;
      return;
    }
  }
  const int64_t rows = w.m.rows, cols = w.m.cols;
  // Chunks of a multiple of 128 rows where they can be (whole output tiles). With 32M-element
  // chunks a 14336-column down projection was cut at 2340 rows; its two GEMMs ran cuBLAS's
  // sm80 "align2" kernel, 8.2 of a 35 ms Q4_0 8B prefill (imp bench --trace-kernels,
  // 2026-12-03; the fix is not yet measured).
  int64_t chunk = std::max<int64_t>(1, kGemmChunkElems / cols);
  if (chunk >= 128) chunk = chunk / 128 * 128;
  chunk = std::min(rows, chunk);
  const bool bf16 = options_.gemm == CudaGemmPrecision::kBF16;
  const void* b_ptr = bf16 ? gemm_x_bf16(x, n_tok, cols) : x;
  const cudaDataType_t ab_type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  // accumulate: y += W·x in the GEMM's epilogue (β = 1), the residual add of matmul_add.
  const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  if (bf16 && w.m.format == FormatId::BF16 && w.m.layout == WeightLayout::kNative) {
    // BF16 weights are cuBLAS's A as they are: one GEMM over all rows, no decode pass.
    IMP_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(n_tok), int(cols), &one, w.m.data,
                                  CUDA_R_16BF, int(cols), b_ptr, CUDA_R_16BF, int(cols), &beta, y, CUDA_R_32F, int(rows),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return;
  }
  if (bf16 && w.m.layout == WeightLayout::kMma) {
    if (fused_gemm_takes(n_tok) && gemm_dequant_supported(w.m)) {
      // The wgmma GEMM decodes the weights itself (no BF16 copy of W).
      gemm_dequant(w.m, gemm_x_mma(n_tok, cols), n_tok, y, rows, accumulate, stream_);
      ++fused_gemms_;
      return;
    }
    return gemm_mma_pipelined(w, b_ptr, n_tok, chunk, y, beta);
  }
  if (bf16) ensure_device(gemm_bf16_[0], gemm_bf16_bytes_[0], chunk * cols * 2, "the GEMM weight chunk (bf16)");
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t rc = std::min(chunk, rows - r0);
    const DeviceMatrix part = row_slice(w.m, r0, rc);
    ensure_device(gemm_f32_, gemm_f32_bytes_, chunk * cols * 4, "the GEMM weight chunk (f32)");
    dequantize(part, static_cast<float*>(gemm_f32_), stream_);
    const void* a_ptr = gemm_f32_;
    if (bf16) {
      f32_to_bf16(static_cast<float*>(gemm_f32_), rc * cols, static_cast<uint16_t*>(gemm_bf16_[0]), stream_);
      a_ptr = gemm_bf16_[0];
    }
    // Column-major view: Yᵀ[r0:r0+rc, :] (rc × n_tok, ld rows) = W_chunk (cols × rc)ᵀ · Xᵀ (cols × n_tok).
    IMP_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(rc), int(n_tok), int(cols), &one, a_ptr,
                                  ab_type, int(cols), b_ptr, ab_type, int(cols), &beta, y + r0, CUDA_R_32F, int(rows),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
  // Buffer 0 was just read on stream_: a later pipelined dequantization into it must wait.
  if (bf16) IMP_CUDA_CHECK(cudaEventRecord(chunk_free_[0], stream_));
}

// Inside matmul_qkv / ffn_gate_up_swiglu the GEMMs share x: converted once.
const void* CudaBackend::gemm_x_bf16(const float* x, int64_t n_tok, int64_t cols) {
  if (!(x_shared_.active && x_shared_.src == x && x_shared_.n == n_tok * cols)) {
    ensure_device(x_bf16_, x_bf16_bytes_, n_tok * cols * 2, "the GEMM activations (bf16)");
    f32_to_bf16(x, n_tok * cols, static_cast<uint16_t*>(x_bf16_), stream_);
    x_shared_.src = x;
    x_shared_.n = n_tok * cols;
    x_shared_.mma_columns = false;
  }
  return x_bf16_;
}

const uint16_t* CudaBackend::gemm_x_mma(int64_t n_tok, int64_t cols) {
  if (!(x_shared_.active && x_shared_.mma_columns)) {
    ensure_device(x_mma_, x_mma_bytes_, n_tok * cols * 2, "the GEMM activations (f16, kMma order)");
    f16_mma_columns(static_cast<const uint16_t*>(x_bf16_), n_tok, cols, static_cast<uint16_t*>(x_mma_), stream_);
    x_shared_.mma_columns = x_shared_.active;
  }
  return static_cast<const uint16_t*>(x_mma_);
}

void CudaBackend::gemm_group(std::initializer_list<std::pair<MatrixHandle, float*>> gemms, const float* x,
                             int64_t n_tok) {
  // The parts gemm_dequant can take with the first such part's format and width go as one
  // launch (a Q4_K_M layer's Q6_K V projection, say, goes alone through cuBLAS).
  GemmDequantOut parts[kGemmDequantMaxParts] = {};
  int n = 0;
  const bool fused = n_tok > 1 && n_tok <= 0x7FFFFFFF && options_.gemm == CudaGemmPrecision::kBF16 &&
                     fused_gemm_takes(n_tok) && !skip() && mode_ != Mode::kCapture;
  std::vector<std::pair<MatrixHandle, float*>> rest;
  for (const auto& [h, y] : gemms) {
    const DeviceMatrix& m = matrix(h).m;
    if (fused && n < kGemmDequantMaxParts && m.layout == WeightLayout::kMma && m.rows <= 0x7FFFFFFF &&
        (n == 0 || (m.format == parts[0].w->format && m.cols == parts[0].w->cols)) && gemm_dequant_supported(m)) {
      parts[n++] = {&m, y, m.rows, false};
    } else {
      rest.emplace_back(h, y);
    }
  }
  if (n > 0) {
    const int64_t cols = parts[0].w->cols;
    gemm_x_bf16(x, n_tok, cols);
    gemm_dequant_group(parts, n, gemm_x_mma(n_tok, cols), n_tok, stream_);
    fused_gemms_ += n;
  }
  for (const auto& [h, y] : rest) matmul(h, x, n_tok, y);
}

int CudaBackend::lanes_for(size_t n_gemms, int64_t n_tok) const {
  if (n_gemms < 2 || n_tok <= 1 || n_tok > 0x7FFFFFFF || skip() || mode_ == Mode::kCapture) return 1;
  return std::min(int(n_gemms), gemm_lanes());
}

DeviceMatrix CudaBackend::row_slice(const DeviceMatrix& m, int64_t r0, int64_t rc) {
  DeviceMatrix part = m;
  part.rows = rc;
  part.data = static_cast<const uint8_t*>(m.data) + device_data_bytes(m.format, m.layout, r0, m.cols);
  if (m.scales) part.scales = static_cast<const uint8_t*>(m.scales) + device_scale_bytes(m.format, m.layout, r0, m.cols);
  return part;
}

// The kMma formats decode straight to BF16 (dequantize_bf16, memory-bound) on dequant_stream_
// while cuBLAS (compute-bound) multiplies the previous chunk on stream_: chunk i uses
// buffer chunk_seq_ % 2, whose dequantization waits until the GEMM that last read that
// buffer is done (chunk_free_), and whose GEMM waits for its dequantization (chunk_ready_).
// The weights are constant, so the dequantization needs nothing else from stream_; when
// ensure_device syncs stream_ before growing a buffer, every dequantization issued so far
// has a GEMM after it on stream_, so it is finished too.
void CudaBackend::gemm_mma_pipelined(const Matrix& w, const void* x_bf16, int64_t n_tok, int64_t chunk, float* y,
                                     float beta) {
  const int64_t rows = w.m.rows, cols = w.m.cols;
  for (int i = 0; i < 2; ++i) {
    ensure_device(gemm_bf16_[i], gemm_bf16_bytes_[i], chunk * cols * 2, "the GEMM weight chunks (bf16)");
  }
  const float one = 1.0f;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t rc = std::min(chunk, rows - r0);
    const int b = int(chunk_seq_++ & 1);
    auto* buf = static_cast<uint16_t*>(gemm_bf16_[b]);
    IMP_CUDA_CHECK(cudaStreamWaitEvent(dequant_stream_, chunk_free_[b], 0));
    if (!dequantize_bf16(row_slice(w.m, r0, rc), buf, dequant_stream_)) {
      fail("CUDA gemm: {} has no BF16 dequantizer for the kMma layout", format_name(w.m.format));
    }
    IMP_CUDA_CHECK(cudaEventRecord(chunk_ready_[b], dequant_stream_));
    IMP_CUDA_CHECK(cudaStreamWaitEvent(stream_, chunk_ready_[b], 0));
    IMP_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(rc), int(n_tok), int(cols), &one, buf,
                                  CUDA_R_16BF, int(cols), x_bf16, CUDA_R_16BF, int(cols), &beta, y + r0, CUDA_R_32F,
                                  int(rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    IMP_CUDA_CHECK(cudaEventRecord(chunk_free_[b], stream_));
  }
}

void CudaBackend::matmul(MatrixHandle h, const float* x, int64_t n_tok, float* y) {
  const Matrix& w = matrix(h);
  if (skip()) return;
  if (n_tok == 1) return gemv(w, x, y);
  if (mode_ == Mode::kCapture) fail("CUDA backend: GEMM inside a captured step");
  if (n_tok > 0x7FFFFFFF || w.m.rows > 0x7FFFFFFF) fail("CUDA matmul: {} tokens × {} rows out of range", n_tok, w.m.rows);
  gemm(w, x, n_tok, y);
}

const CudaBackend::Matrix& CudaBackend::matrix(MatrixHandle h) const {
  if (h < 0 || size_t(h) >= matrices_.size()) fail("CUDA backend: unknown matrix handle {}", h);
  return matrices_[size_t(h)];
}

void CudaBackend::matmul_qkv(MatrixHandle wq, MatrixHandle wk, MatrixHandle wv, const float* x, int64_t n_tok,
                             float* q, float* k, float* v) {
  if (n_tok == 1 && options_.decode_x == CudaDecodeActivations::kF16) {
    const DeviceMatrix w[3] = {matrix(wq).decode(), matrix(wk).decode(), matrix(wv).decode()};
    if (skip()) return;
    float* const y[3] = {q, k, v};
    if (logged(gemv_mma_fused(w, 3, x, y, stream_, tail_fusion()), {w[0], w[1], w[2]})) return;
  }
  const SharedX scope(x_shared_);
  if (n_tok > 1) return gemm_group({{wq, q}, {wk, k}, {wv, v}}, x, n_tok);
  Backend::matmul_qkv(wq, wk, wv, x, n_tok, q, k, v);
}

void CudaBackend::ffn_gate_up_swiglu(MatrixHandle w_gate, MatrixHandle w_up, const float* x, int64_t n_tok,
                                     int64_t n_ff, float* gate_scratch, float* up_scratch, float* out) {
  if (n_tok == 1 && options_.decode_x == CudaDecodeActivations::kF16) {
    const DeviceMatrix& gate = matrix(w_gate).decode();
    if (gate.rows != n_ff) fail("CUDA backend: gate has {} rows, n_ff is {}", gate.rows, n_ff);
    if (skip()) return;
    const DeviceMatrix& up = matrix(w_up).decode();
    if (logged(gemv_mma_swiglu(gate, up, x, out, stream_, tail_fusion()), {gate, up})) return;
  }
  const SharedX scope(x_shared_);
  if (n_tok > 1) {
    gemm_group({{w_gate, gate_scratch}, {w_up, up_scratch}}, x, n_tok);
    return swiglu(gate_scratch, up_scratch, n_tok * n_ff, out);
  }
  Backend::ffn_gate_up_swiglu(w_gate, w_up, x, n_tok, n_ff, gate_scratch, up_scratch, out);
}

// Decode (one token, f16 activations): the output projection adds into the residual
// stream in its epilogue (every GEMV kernel can); the norms run inside the tensor-core
// GEMVs that read them (GemvFusion). Other cases compose the plain ops.
void CudaBackend::matmul_add(MatrixHandle w, const float* x, int64_t n_tok, int64_t n_out, float* residual,
                             float* scratch) {
  if (n_tok == 1) {
    const DeviceMatrix& m = matrix(w).decode();
    if (m.rows != n_out) fail("CUDA backend: matmul_add of {} rows into a residual of {}", m.rows, n_out);
    if (skip()) return;
    float* const y[1] = {residual};
    GemvFusion f = tail_fusion();
    f.out = GemvOut::kAdd;
    if (options_.decode_x == CudaDecodeActivations::kF16 && logged(gemv_mma_fused(&m, 1, x, y, stream_, f), {m})) return;
    gemv(matrix(w), x, residual, GemvOut::kAdd);
    return;
  }
  // Prefill: the GEMM adds into the residual (β = 1) — no scratch round trip, no add kernel
  // (64 launches, 0.8 ms of a Q4_0 8B 512-token prefill on an H100, 2026-12-07); FP8 W8A8
  // likewise (cuBLASLt with C = D = the residual).
  const Matrix& m = matrix(w);
  if (!skip() && mode_ != Mode::kCapture && m.m.rows == n_out && n_tok <= 0x7FFFFFFF && m.m.rows <= 0x7FFFFFFF) {
    return gemm(m, x, n_tok, residual, /*accumulate=*/true);
  }
  Backend::matmul_add(w, x, n_tok, n_out, residual, scratch);
}

void CudaBackend::rmsnorm_matmul_qkv(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* h,
                                     MatrixHandle wq, MatrixHandle wk, MatrixHandle wv, float* q, float* k, float* v) {
  if (n_tok == 1 && options_.decode_x == CudaDecodeActivations::kF16) {
    const DeviceMatrix w[3] = {matrix(wq).decode(), matrix(wk).decode(), matrix(wv).decode()};
    if (skip()) return;
    float* const y[3] = {q, k, v};
    GemvFusion f = tail_fusion();
    f.norm_gain = gain;
    f.norm_eps = eps;
    if (w[0].cols == n && logged(gemv_mma_fused(w, 3, x, y, stream_, f), {w[0], w[1], w[2]})) return;
  }
  if (const ProducedX px = norm_to_gemm_x(x, gain, n_tok, n, eps, h, {wq, wk, wv}); px != ProducedX::kNone) {
    const SharedX scope(x_shared_, h, n_tok * n, px);  // h's GEMM form is in place (h itself is left unwritten)
    return gemm_group({{wq, q}, {wk, k}, {wv, v}}, h, n_tok);
  }
  if (fp8_takes_produced_x({wq, wk, wv}, n_tok, n)) {  // the norm writes the W8A8 activations (h unwritten)
    const Fp8Gemm::XSlot xs = fp8_gemm_->x_slot(h, n_tok, n, stream_);
    rmsnorm_fp8(x, gain, n_tok, n, eps, xs.n_pad, xs.q, xs.s, stream_);
    if (fp8_run_produced(h, n_tok, {{wq, q}, {wk, k}, {wv, v}})) return;
    // A GEMM declined (counted in stats()): the composition below, from the unchanged x.
  }
  Backend::rmsnorm_matmul_qkv(x, gain, n_tok, n, eps, h, wq, wk, wv, q, k, v);
}

// Prefill in the BF16 mode: the norm writes its rows straight into the GEMMs' BF16
// activation buffer (rmsnorm_bf16: the same bits as rmsnorm then f32_to_bf16), saving the
// FP32 round trip and a conversion launch per matmul group; when every GEMM of the group runs
// the fused-dequantization kernel, it writes that kernel's f16 kMma columns instead
// (rmsnorm_f16_mma: no BF16 copy and no f16_mma_columns pass, 2 × n_tok × n bytes each way).
// Not for FP8 weights, whose W8A8 path quantizes the FP32 h itself. kNone: nothing done.
CudaBackend::ProducedX CudaBackend::norm_to_gemm_x(const float* x, const float* gain, int64_t n_tok, int64_t n,
                                                   float eps, float* h, std::initializer_list<MatrixHandle> ws) {
  if (n_tok <= 1 || options_.gemm != CudaGemmPrecision::kBF16 || skip() || mode_ == Mode::kCapture || !h) {
    return ProducedX::kNone;
  }
  for (MatrixHandle w : ws) {
    if (is_fp8_weight(matrix(w).m.format) || matrix(w).m.cols != n) return ProducedX::kNone;
  }
  if (fused_takes_all(ws, n_tok, n)) {
    ensure_device(x_mma_, x_mma_bytes_, n_tok * n * 2, "the GEMM activations (f16, kMma order)");
    rmsnorm_f16_mma(x, gain, n_tok, n, eps, static_cast<uint16_t*>(x_mma_), stream_);
    return ProducedX::kF16Mma;
  }
  ensure_device(x_bf16_, x_bf16_bytes_, n_tok * n * 2, "the GEMM activations (bf16)");
  rmsnorm_bf16(x, gain, n_tok, n, eps, static_cast<uint16_t*>(x_bf16_), stream_);
  return ProducedX::kBf16;
}

// Whether every one of ws (GEMMs over the same x, n_tok × cols) runs gemm_dequant in one
// group — gemm_group's and gemm()'s own conditions — so none needs x in BF16.
bool CudaBackend::fused_takes_all(std::initializer_list<MatrixHandle> ws, int64_t n_tok, int64_t cols) const {
  if (n_tok <= 1 || n_tok > 0x7FFFFFFF || options_.gemm != CudaGemmPrecision::kBF16 || !fused_gemm_takes(n_tok) ||
      skip() || mode_ == Mode::kCapture || ws.size() == 0 || ws.size() > size_t(kGemmDequantMaxParts) || cols % 16 != 0) {
    return false;
  }
  const DeviceMatrix& first = matrix(*ws.begin()).m;
  for (MatrixHandle w : ws) {
    const DeviceMatrix& m = matrix(w).m;
    if (m.layout != WeightLayout::kMma || m.rows > 0x7FFFFFFF || m.format != first.format || m.cols != cols ||
        !gemm_dequant_supported(m)) {
      return false;
    }
  }
  return true;
}

void CudaBackend::rmsnorm_ffn_gate_up_swiglu(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps,
                                             float* h, MatrixHandle w_gate, MatrixHandle w_up, int64_t n_ff,
                                             float* gate_scratch, float* up_scratch, float* out) {
  if (n_tok == 1 && options_.decode_x == CudaDecodeActivations::kF16) {
    const DeviceMatrix& gate = matrix(w_gate).decode();
    if (gate.rows != n_ff) fail("CUDA backend: gate has {} rows, n_ff is {}", gate.rows, n_ff);
    if (skip()) return;
    GemvFusion f = tail_fusion();
    f.norm_gain = gain;
    f.norm_eps = eps;
    const DeviceMatrix& up = matrix(w_up).decode();
    if (gate.cols == n && logged(gemv_mma_swiglu(gate, up, x, out, stream_, f), {gate, up})) return;
  }
  if (const ProducedX px = norm_to_gemm_x(x, gain, n_tok, n, eps, h, {w_gate, w_up}); px != ProducedX::kNone) {
    const SharedX scope(x_shared_, h, n_tok * n, px);
    gemm_group({{w_gate, gate_scratch}, {w_up, up_scratch}}, h, n_tok);
    return swiglu(gate_scratch, up_scratch, n_tok * n_ff, out);
  }
  Backend::rmsnorm_ffn_gate_up_swiglu(x, gain, n_tok, n, eps, h, w_gate, w_up, n_ff, gate_scratch, up_scratch, out);
}

// Decode: the QKV GEMV also applies RoPE and writes the K and V rows into the cache
// (gemv_mma_qkv_rope_kv), when the format, KV type and shapes allow.
void CudaBackend::rmsnorm_qkv_rope_kv_write(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps,
                                            float* h, MatrixHandle wq, MatrixHandle wk, MatrixHandle wv, float* q,
                                            float* k, float* v, int64_t n_head, int64_t head_dim, const RopeParams& p,
                                            KvStore& kv, int64_t layer) {
  if (n_tok == 1 && options_.decode_x == CudaDecodeActivations::kF16) {
    CudaKvCache& c = device_cache(kv);
    const DeviceMatrix w[3] = {matrix(wq).decode(), matrix(wk).decode(), matrix(wv).decode()};
    if (skip()) return;
    GemvFusion f = tail_fusion();
    f.norm_gain = gain;
    f.norm_eps = eps;
    if (head_dim == c.config().head_dim && w[0].cols == n && w[0].rows == n_head * head_dim &&
        logged(gemv_mma_qkv_rope_kv(w, x, q, k, v, rope_args(p), c.layer(layer), step_dev_, stream_, f),
               {w[0], w[1], w[2]})) {
      return;
    }
  }
  Backend::rmsnorm_qkv_rope_kv_write(x, gain, n_tok, n, eps, h, wq, wk, wv, q, k, v, n_head, head_dim, p, kv, layer);
}

void CudaBackend::add_rmsnorm(float* x, const float* delta, const float* gain, int64_t n_tok, int64_t n, float eps,
                              float* out) {
  if (skip()) return;
  cuda::add_rmsnorm(x, delta, gain, n_tok, n, eps, out, stream_);
}

void CudaBackend::add_bias(float* x, const float* bias, int64_t n_tok, int64_t n) {
  if (skip()) return;
  cuda::add_bias(x, bias, n_tok, n, stream_);
}

void CudaBackend::rope(float* x, int64_t n_tok, int64_t n_head, int64_t head_dim, const RopeParams& p) {
  if (skip()) return;
  cuda::rope(x, n_tok, n_head, head_dim, rope_args(p), step_dev_, stream_);
}

void CudaBackend::kv_write(KvStore& kv, int64_t layer, const float* k, const float* v, int64_t n_tok) {
  CudaKvCache& c = device_cache(kv);
  if (skip()) return;
  cuda::kv_write(k, v, n_tok, c.layer(layer), step_dev_, stream_);
}

void CudaBackend::rope_kv_write(float* q, float* k, const float* v, int64_t n_tok, int64_t n_head, int64_t head_dim,
                                const RopeParams& p, KvStore& kv, int64_t layer) {
  CudaKvCache& c = device_cache(kv);
  if (head_dim != c.config().head_dim) fail("CUDA rope_kv_write: head_dim {} but the cache has {}", head_dim, c.config().head_dim);
  if (skip()) return;
  cuda::rope_kv_write(q, k, v, n_tok, n_head, rope_args(p), c.layer(layer), step_dev_, stream_);
}

void CudaBackend::attention(const float* q, int64_t n_tok, int64_t n_head, KvStore& kv, int64_t layer,
                            int64_t window, float scale, float* out) {
  CudaKvCache& c = device_cache(kv);
  if (skip()) return;
  const KvView view = c.layer(layer);
  if (n_tok > 1) {
    // The exact mode (FP32 GEMMs) keeps FP32 attention; the default BF16 mode runs the
    // tensor-core kernel (f16 q/k/v/p, FP32 softmax and sums).
    if (options_.gemm == CudaGemmPrecision::kBF16 &&
        attention_prefill_mma(q, n_tok, n_head, view, window, scale, out, nullptr, step_dev_, stream_)) {
      return;
    }
    return attention_prefill(q, n_tok, n_head, view, window, scale, out, step_dev_, stream_);
  }
  float* partials = nullptr;
  if (n_split_ > 1) {
    const int64_t need = n_head * int64_t(kMaxSplits) * (view.head_dim + 2) * 4;
    if (partials_bytes_ < need) {
      if (mode_ == Mode::kCapture) fail("CUDA backend: attention partials not allocated before capture");
      drop_graphs();  // graphs of other buckets point at the old buffer
      ensure_device(partials_, partials_bytes_, need, "attention partials");
    }
    partials = static_cast<float*>(partials_);
  }
  // The weights the previous decode step read next at this point go to L2 while attention
  // leaves HBM idle (l2_prefetch.h).
  const L2Ranges next = plan_l2(true);
  if (logging_decode()) {
    l2_planned_bytes_ += l2_planner_.commit();
    decode_log_.push_back({true, {}});
  }
  attention_decode(q, 1, n_head, view, window, scale, n_split_, partials, out, step_dev_, stream_, next);
}

// Prefill in the BF16 mode: the O projection's GEMM reads the attention output as the BF16
// the flash kernel writes (att is left unwritten) — no F32 round trip, no conversion launch.
void CudaBackend::attention_matmul_add(const float* q, int64_t n_tok, int64_t n_head, KvStore& kv, int64_t layer,
                                       int64_t window, float scale, float* att, MatrixHandle wo, int64_t n_out,
                                       float* residual, float* scratch) {
  if (n_tok > 1) {
    CudaKvCache& c = device_cache(kv);
    const Matrix& m = matrix(wo);
    const KvView view = c.layer(layer);
    const int64_t n = n_tok * n_head * view.head_dim;
    if (gemm_takes_bf16_from_producer(m, n_tok, n_head * view.head_dim) && m.m.rows == n_out) {
      // The fused GEMM's f16 kMma columns when it takes the O projection, else BF16.
      const bool f16_mma = fused_takes_all({wo}, n_tok, n_head * view.head_dim) && view.head_dim % 16 == 0 &&
                           attention_prefill_writes_f16_mma(view.head_dim);
      void*& buf = f16_mma ? x_mma_ : x_bf16_;
      ensure_device(buf, f16_mma ? x_mma_bytes_ : x_bf16_bytes_, n * 2, "the GEMM activations (16-bit)");
      if (attention_prefill_mma(q, n_tok, n_head, view, window, scale, nullptr, static_cast<uint16_t*>(buf), step_dev_,
                                stream_, f16_mma)) {
        const SharedX scope(x_shared_, att, n, f16_mma ? ProducedX::kF16Mma : ProducedX::kBf16);
        return gemm(m, att, n_tok, residual, /*accumulate=*/true);
      }
    }
  }
  Backend::attention_matmul_add(q, n_tok, n_head, kv, layer, window, scale, att, wo, n_out, residual, scratch);
}

// Prefill in the BF16 mode: SwiGLU writes the down projection's BF16 activations directly
// (swiglu_bf16; act is left unwritten) and the down GEMM adds into x (β = 1).
void CudaBackend::rmsnorm_ffn_swiglu_add(float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* h,
                                         MatrixHandle w_gate, MatrixHandle w_up, MatrixHandle w_down, int64_t n_ff,
                                         float* gate_scratch, float* up_scratch, float* act, float* scratch) {
  const Matrix& d = matrix(w_down);
  if (fp8_takes_produced_x({w_gate, w_up}, n_tok, n) && fp8_takes_produced_x({w_down}, n_tok, n_ff) &&
      d.m.rows == n && matrix(w_gate).m.rows == n_ff && matrix(w_up).m.rows == n_ff) {
    // FP8 W8A8: the norm and SwiGLU write the GEMMs' quantized activations (h, act unwritten).
    const Fp8Gemm::XSlot xs = fp8_gemm_->x_slot(h, n_tok, n, stream_);
    rmsnorm_fp8(x, gain, n_tok, n, eps, xs.n_pad, xs.q, xs.s, stream_);
    if (fp8_run_produced(h, n_tok, {{w_gate, gate_scratch}, {w_up, up_scratch}})) {
      const Fp8Gemm::XSlot as = fp8_gemm_->x_slot(act, n_tok, n_ff, stream_);
      swiglu_fp8(gate_scratch, up_scratch, n_tok, n_ff, as.n_pad, as.q, as.s, stream_);
      Fp8RunOptions o;
      o.accumulate = true;
      o.x_unchanged = true;
      if (fp8_gemm_->run(d.m, act, n_tok, x, stream_, o).ran) return;
      swiglu(gate_scratch, up_scratch, n_tok * n_ff, act);  // the down GEMM declined: compose it
      return matmul_add(w_down, act, n_tok, n, x, scratch);
    }
  }
  if (n_tok > 1 && gemm_takes_bf16_from_producer(d, n_tok, n_ff) && d.m.rows == n && matrix(w_gate).m.rows == n_ff &&
      matrix(w_up).m.rows == n_ff && matrix(w_gate).m.cols == n && matrix(w_up).m.cols == n) {
    ensure_device(x_bf16_, x_bf16_bytes_, n_tok * std::max(n, n_ff) * 2, "the GEMM activations (bf16)");
    {
      const ProducedX px = norm_to_gemm_x(x, gain, n_tok, n, eps, h, {w_gate, w_up});
      const bool normed = px != ProducedX::kNone;
      if (!normed) rmsnorm(x, gain, n_tok, n, eps, h);  // FP8 gate/up: W8A8 quantizes the F32 h
      const SharedX scope(x_shared_, normed ? h : nullptr, normed ? n_tok * n : 0, px);
      gemm_group({{w_gate, gate_scratch}, {w_up, up_scratch}}, h, n_tok);
    }
    // SwiGLU writes the down GEMM's input: f16 kMma columns for the fused kernel, else BF16.
    ProducedX pa = ProducedX::kBf16;
    if (fused_takes_all({w_down}, n_tok, n_ff)) {
      ensure_device(x_mma_, x_mma_bytes_, n_tok * n_ff * 2, "the GEMM activations (f16, kMma order)");
      swiglu_f16_mma(gate_scratch, up_scratch, n_tok * n_ff, static_cast<uint16_t*>(x_mma_), stream_);
      pa = ProducedX::kF16Mma;
    } else {
      swiglu_bf16(gate_scratch, up_scratch, n_tok * n_ff, static_cast<uint16_t*>(x_bf16_), stream_);
    }
    const SharedX scope(x_shared_, act, n_tok * n_ff, pa);
    return gemm(d, act, n_tok, x, /*accumulate=*/true);
  }
  Backend::rmsnorm_ffn_swiglu_add(x, gain, n_tok, n, eps, h, w_gate, w_up, w_down, n_ff, gate_scratch, up_scratch, act,
                                  scratch);
}

// Prefill FP8 W8A8 GEMMs of the per-token tiers (tensor, channel scales) over `cols`
// columns: a producer kernel (rmsnorm_fp8, swiglu_fp8) can write their quantized activations.
bool CudaBackend::fp8_takes_produced_x(std::initializer_list<MatrixHandle> ws, int64_t n_tok, int64_t cols) const {
  if (n_tok <= 1 || n_tok > 0x7FFFFFFF - 16 || skip() || mode_ == Mode::kCapture ||
      options_.gemm != CudaGemmPrecision::kBF16) {
    return false;
  }
  for (MatrixHandle w : ws) {
    const DeviceMatrix& m = matrix(w).m;
    if ((m.format != FormatId::FP8_E4M3_TENSOR && m.format != FormatId::FP8_E4M3_CHANNEL) ||
        m.layout != WeightLayout::kNative || m.cols != cols) {
      return false;
    }
  }
  return true;
}

// The FP8 GEMMs y = W·x̂ of a producer's activations (recorded under key by x_slot), side by
// side on lanes (gemm_lanes.h): the activations are ready on stream_ before the fork. False
// as soon as one declines (the lanes are joined either way).
bool CudaBackend::fp8_run_produced(const float* key, int64_t n_tok,
                                   std::initializer_list<std::pair<MatrixHandle, float*>> gemms) {
  const int lanes = lanes_for(gemms.size(), n_tok);
  Fp8RunOptions o;
  o.x_unchanged = true;
  bool ran = true;
  lanes_->fork(lanes);
  int i = 0;
  for (const auto& [w, y] : gemms) {
    o.lane = i++ % lanes;
    if (!(ran = fp8_gemm_->run(matrix(w).m, key, n_tok, y, lanes_->stream(o.lane), o).ran)) break;
  }
  lanes_->join(lanes);
  return ran;
}

// A prefill GEMM (n_tok > 1, eager) in the BF16 mode whose weight is not FP8 (W8A8 quantizes
// F32 activations itself) reads BF16 activations: the kernel producing them may write that
// form into x_bf16_ directly.
bool CudaBackend::gemm_takes_bf16_from_producer(const Matrix& w, int64_t n_tok, int64_t cols) const {
  return n_tok > 1 && n_tok <= 0x7FFFFFFF && !skip() && mode_ != Mode::kCapture &&
         options_.gemm == CudaGemmPrecision::kBF16 && !is_fp8_weight(w.m.format) && w.m.cols == cols &&
         w.m.rows <= 0x7FFFFFFF;
}

void CudaBackend::swiglu(const float* gate, const float* up, int64_t n, float* out) {
  if (skip()) return;
  cuda::swiglu(gate, up, n, out, stream_);
}

void CudaBackend::gelu_tanh(const float* x, int64_t n, float* out) {
  if (skip()) return;
  cuda::gelu_tanh(x, n, out, stream_);
}

void CudaBackend::add(float* y, const float* x, int64_t n) {
  if (skip()) return;
  cuda::add(y, x, n, stream_);
}

void CudaBackend::mul(float* y, const float* x, int64_t n) {
  if (skip()) return;
  cuda::mul(y, x, n, stream_);
}

void CudaBackend::scale(float* x, float s, int64_t n) {
  if (skip()) return;
  cuda::scale(x, s, n, stream_);
}

}  // namespace imp::cuda
