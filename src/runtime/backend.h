// Backend — the op set a model's forward pass runs on (CPU: backends/cpu/cpu_backend.h,
// CUDA: backends/cuda/cuda_backend.h).
//
// Memory. Activations live in buffers the backend owns (alloc/release; host memory on the
// CPU, device memory on CUDA): every float* an op takes or returns is such a buffer (or a
// vector from add_vector). Weights are handed over once at load: add_matrix takes the
// planned, held QuantMatrix (host view, alive as long as the backend) and returns a handle;
// add_vector returns a backend pointer to an F32 vector (norm gains, biases). The embedding
// table stays a host QuantMatrix: a lookup decodes n_tok rows (exactly, as the CPU
// reference does) and the backend moves them where its activations live.
//
// KV cache. Each backend creates its own KvStore (create_kv_cache): host paged blocks on
// the CPU, device paged blocks on CUDA, both with the formats/kv_type.h row bytes. Only
// the backend that created a store reads or writes its rows (kv_write, attention); it
// fails on a store of another backend. So the model sees one KvStore& and never the bytes.
//
// Steps. A forward pass is bracketed by begin_step(kv, pos0, n_tok) … end_step(): the
// step's token positions are pos0 … pos0 + n_tok − 1, and rope / kv_write / attention take
// them from the step (so a CUDA backend can keep them in device memory and replay a
// captured graph of the whole step). Between the two calls ops only enqueue work; results
// reach the host through read(), called after end_step().
//
// Shapes are row-major (n_tok, width); q is (n_tok, n_head, head_dim), k and v
// (n_tok, n_kv_head, head_dim).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "backends/cpu/ops.h"
#include "common/error.h"
#include "formats/quant_matrix.h"
#include "runtime/kernel_trace.h"
#include "runtime/kv_store.h"

namespace imp {

using MatrixHandle = int32_t;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Counters worth a line in a benchmark (CUDA: graphs captured and replayed); may be empty.
  virtual std::string stats() const { return {}; }
  // Device seconds of the last single-token step alone, replayed reps times (CUDA: the
  // captured decode graph between two events, no host work); 0 where there is nothing to
  // replay. A benchmark divides it into the wall time per token to show the host's share.
  virtual double replay_decode_step_seconds(int /*reps*/) { return 0.0; }
  // The same replays, kernel by kernel (runtime/kernel_trace.h). CUDA: needs
  // start_kernel_trace() before the decode graph was captured; fails where the backend
  // cannot trace.
  virtual void start_kernel_trace() { fail("{}: kernel tracing is a CUDA backend feature", name()); }
  virtual KernelTrace trace_decode_step(int /*reps*/) { fail("{}: kernel tracing is a CUDA backend feature", name()); }
  // Any other window (e.g. a prefill): mark its start, run it, then collect every kernel
  // that ran since the mark (after waiting for the device), as `steps` repetitions.
  virtual uint64_t kernel_trace_mark() { fail("{}: kernel tracing is a CUDA backend feature", name()); }
  virtual KernelTrace kernel_trace_since(uint64_t /*mark*/, int /*steps*/) {
    fail("{}: kernel tracing is a CUDA backend feature", name());
  }

  // --- memory
  virtual float* alloc(int64_t n_floats) = 0;  // uninitialized; fails when out of memory
  virtual void release(float* buffer) = 0;
  virtual MatrixHandle add_matrix(const QuantMatrix& w, std::string_view name) = 0;
  // A second copy of matrix w (same shape, e.g. the planner's NVFP4 decode cache) that
  // single-token matmuls use instead; multi-token ones keep the original.
  virtual void set_decode_matrix(MatrixHandle w, const QuantMatrix& decode, std::string_view name) = 0;
  // Whether the host bytes of matrices handed to add_matrix / set_decode_matrix must stay
  // alive (the CPU multiplies them in place); false: the backend copied them (a loader may
  // free weights it converted).
  virtual bool keeps_host_weights() const { return true; }
  virtual const float* add_vector(const float* host, int64_t n, std::string_view name) = 0;
  // Facts about a matrix's input activations, for a backend that uses them (the CPU's
  // activation emulation, backends/cpu/act_emulation.h): the checkpoint's static input
  // scale, and whether the matmul is the output head (ModelOpt recipes leave it
  // unquantized). Default: ignored.
  virtual void describe_matrix_input(MatrixHandle /*w*/, std::optional<float> /*input_scale*/, bool /*output_head*/) {}
  virtual std::unique_ptr<KvStore> create_kv_cache(const KvCacheConfig& config) = 0;
  // Copies n floats of a backend buffer to host memory; waits for the step's work.
  virtual void read(const float* src, int64_t n, float* host_dst) = 0;

  // --- step bracket (see the header comment). n_tok ≥ 1; pos0 = kv.n_tokens() usually.
  virtual void begin_step(KvStore& kv, int64_t pos0, int64_t n_tok) = 0;
  virtual void end_step() = 0;

  // --- ops
  // out (n_tok, table.cols) = rows ids[t] of the host table, decoded exactly.
  virtual void embedding(const QuantMatrix& table, std::span<const int32_t> ids, float* out) = 0;
  // x, out (n_tok, n); gain (n). out = x / sqrt(mean(x²) + eps) · gain. out may be x.
  virtual void rmsnorm(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* out) = 0;
  // y (n_tok, w.rows) = x (n_tok, w.cols) · Wᵀ.
  virtual void matmul(MatrixHandle w, const float* x, int64_t n_tok, float* y) = 0;
  // x (n_tok, n) += bias (n) for every token.
  virtual void add_bias(float* x, const float* bias, int64_t n_tok, int64_t n) = 0;
  // RoPE in place on x (n_tok, n_head, head_dim), token t at position pos0 + t of the step.
  virtual void rope(float* x, int64_t n_tok, int64_t n_head, int64_t head_dim, const RopeParams& p) = 0;
  // Encodes k, v (n_tok, n_kv_head, head_dim) into the cache rows of the step's positions.
  virtual void kv_write(KvStore& kv, int64_t layer, const float* k, const float* v, int64_t n_tok) = 0;
  // out (n_tok, n_head, head_dim): token t (position pos0 + t) attends causally to cache
  // positions max(0, pos + 1 − window) .. pos (window ≤ 0: no window), GQA, scores · scale
  // (scale 0: 1/sqrt(head_dim); gemma 3 uses query_pre_attn_scalar^-½), FP32 softmax.
  // The step's rows must have been written.
  virtual void attention(const float* q, int64_t n_tok, int64_t n_head, KvStore& kv, int64_t layer,
                         int64_t window, float scale, float* out) = 0;
  // Elementwise over n: out = silu(gate)·up; out = gelu_tanh(x); y += x; y *= x; x *= s.
  virtual void swiglu(const float* gate, const float* up, int64_t n, float* out) = 0;
  virtual void gelu_tanh(const float* x, int64_t n, float* out) = 0;
  virtual void add(float* y, const float* x, int64_t n) = 0;
  virtual void mul(float* y, const float* x, int64_t n) = 0;
  virtual void scale(float* x, float s, int64_t n) = 0;

  // --- fused hooks; the defaults compose the plain ops, a backend overrides what it fuses.
  // q, k, v = x·Wqᵀ, x·Wkᵀ, x·Wvᵀ.
  virtual void matmul_qkv(MatrixHandle wq, MatrixHandle wk, MatrixHandle wv, const float* x, int64_t n_tok,
                          float* q, float* k, float* v) {
    matmul(wq, x, n_tok, q);
    matmul(wk, x, n_tok, k);
    matmul(wv, x, n_tok, v);
  }
  // out (n_tok, n_ff) = silu(x·Wgᵀ) · (x·Wuᵀ); gate_scratch, up_scratch (n_tok, n_ff) may be
  // used (out may alias gate_scratch).
  virtual void ffn_gate_up_swiglu(MatrixHandle w_gate, MatrixHandle w_up, const float* x, int64_t n_tok,
                                  int64_t n_ff, float* gate_scratch, float* up_scratch, float* out) {
    matmul(w_gate, x, n_tok, gate_scratch);
    matmul(w_up, x, n_tok, up_scratch);
    swiglu(gate_scratch, up_scratch, n_tok * n_ff, out);
  }
  // x += delta (the residual add), then out = rmsnorm(x) · gain over rows of n.
  virtual void add_rmsnorm(float* x, const float* delta, const float* gain, int64_t n_tok, int64_t n, float eps,
                           float* out) {
    add(x, delta, n_tok * n);
    rmsnorm(x, gain, n_tok, n, eps, out);
  }
  // residual (n_tok, n_out) += x·Wᵀ: an output projection added to the residual stream;
  // scratch (n_tok, n_out) may be used.
  virtual void matmul_add(MatrixHandle w, const float* x, int64_t n_tok, int64_t n_out, float* residual,
                          float* scratch) {
    matmul(w, x, n_tok, scratch);
    add(residual, scratch, n_tok * n_out);
  }
  // h = rmsnorm(x)·gain over rows of n, then q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ. A backend that
  // fuses the norm into the matmuls may leave h unwritten.
  virtual void rmsnorm_matmul_qkv(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* h,
                                  MatrixHandle wq, MatrixHandle wk, MatrixHandle wv, float* q, float* k, float* v) {
    rmsnorm(x, gain, n_tok, n, eps, h);
    matmul_qkv(wq, wk, wv, h, n_tok, q, k, v);
  }
  // h = rmsnorm(x)·gain, then ffn_gate_up_swiglu on h (h may be left unwritten, as above).
  virtual void rmsnorm_ffn_gate_up_swiglu(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps,
                                          float* h, MatrixHandle w_gate, MatrixHandle w_up, int64_t n_ff,
                                          float* gate_scratch, float* up_scratch, float* out) {
    rmsnorm(x, gain, n_tok, n, eps, h);
    ffn_gate_up_swiglu(w_gate, w_up, h, n_tok, n_ff, gate_scratch, up_scratch, out);
  }
  // attention into att, then matmul_add of wo into residual: the attention block's output
  // projection. A backend may hand the attention output to its GEMM in the GEMM's own
  // activation type and leave att unwritten.
  virtual void attention_matmul_add(const float* q, int64_t n_tok, int64_t n_head, KvStore& kv, int64_t layer,
                                    int64_t window, float scale, float* att, MatrixHandle wo, int64_t n_out,
                                    float* residual, float* scratch) {
    attention(q, n_tok, n_head, kv, layer, window, scale, att);
    matmul_add(wo, att, n_tok, n_out, residual, scratch);
  }
  // A SwiGLU FFN block: rmsnorm_ffn_gate_up_swiglu of x into act (n_tok, n_ff), then x += act ·
  // W_downᵀ (matmul_add; scratch (n_tok, n)). act may alias gate_scratch; a backend may leave
  // h and act unwritten (the down projection reading act in its own activation type).
  virtual void rmsnorm_ffn_swiglu_add(float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* h,
                                      MatrixHandle w_gate, MatrixHandle w_up, MatrixHandle w_down, int64_t n_ff,
                                      float* gate_scratch, float* up_scratch, float* act, float* scratch) {
    rmsnorm_ffn_gate_up_swiglu(x, gain, n_tok, n, eps, h, w_gate, w_up, n_ff, gate_scratch, up_scratch, act);
    matmul_add(w_down, act, n_tok, n, x, scratch);
  }
  // rmsnorm_matmul_qkv, then rope_kv_write: a decode step's whole attention input in one
  // hook (a backend may run it as one launch).
  virtual void rmsnorm_qkv_rope_kv_write(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* h,
                                         MatrixHandle wq, MatrixHandle wk, MatrixHandle wv, float* q, float* k, float* v,
                                         int64_t n_head, int64_t head_dim, const RopeParams& p, KvStore& kv,
                                         int64_t layer) {
    rmsnorm_matmul_qkv(x, gain, n_tok, n, eps, h, wq, wk, wv, q, k, v);
    rope_kv_write(q, k, v, n_tok, n_head, head_dim, p, kv, layer);
  }
  // RoPE on q and k, then kv_write of k and v.
  virtual void rope_kv_write(float* q, float* k, const float* v, int64_t n_tok, int64_t n_head, int64_t head_dim,
                             const RopeParams& p, KvStore& kv, int64_t layer) {
    rope(q, n_tok, n_head, head_dim, p);
    rope(k, n_tok, kv.config().n_kv_head, head_dim, p);
    kv_write(kv, layer, k, v, n_tok);
  }
};

// An activation buffer of a backend, released on destruction.
class BackendBuffer {
 public:
  BackendBuffer() = default;
  BackendBuffer(Backend& b, int64_t n) : backend_(&b), data_(b.alloc(n)), size_(n) {}
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;
  BackendBuffer(BackendBuffer&& o) noexcept { *this = std::move(o); }
  BackendBuffer& operator=(BackendBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      backend_ = o.backend_;
      data_ = o.data_;
      size_ = o.size_;
      o.backend_ = nullptr;
      o.data_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }
  ~BackendBuffer() { reset(); }

  float* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  void reset() {
    if (backend_ && data_) backend_->release(data_);
    data_ = nullptr;
    size_ = 0;
  }
  Backend* backend_ = nullptr;
  float* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace imp
