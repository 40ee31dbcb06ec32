// CpuBackend — the CPU op set behind one switch (reference or fast path) and one thread
// pool, plus the backend's supports(op, tier) answer for the planner.
//
// The model's forward pass calls these methods; with CpuOpsPath::kReference every call
// goes to the scalar reference op (one thread), with kFast to the threaded op that uses
// the ISA's row kernels. Both paths run the same sequence of ops, so the two can be
// compared end to end.
#pragma once

#include <span>

#include "backends/cpu/act_emulation.h"
#include "backends/cpu/ops.h"
#include "planner/device_caps.h"

namespace imp {

enum class CpuOpsPath { kReference, kFast };

// The CPU backend runs: matmul on any tier whose format has a vec_dot (every weight format
// imp decodes), embedding lookup on any decodable format, vectors only as F32.
bool cpu_supports(WeightOp op, StorageTier tier, FormatId disk_format);
// KV cache: every KvType through its reference row codec, where the type fits head_dim.
bool cpu_supports_kv(KvType type, int64_t head_dim);
DeviceCaps cpu_device_caps();

class CpuBackend {
 public:
  // act_quant picks the fast matmul's activation handling (ops.h); the reference path
  // ignores it (always exact). act_emulation fake-quantizes every matmul's activations
  // (act_emulation.h) on either path, which then runs with F32 activations (overriding
  // ActQuant::kQ8).
  CpuBackend(CpuOpsPath path, int n_threads, ActQuant act_quant = ActQuant::kNone,
             ActEmulation act_emulation = ActEmulation::kNone);

  CpuOpsPath path() const { return path_; }
  int n_threads() const { return pool_.size(); }
  CpuIsa isa() const { return isa_; }
  ActQuant act_quant() const { return act_quant_; }
  // Why matmuls treat activations the way they do, for logs and `imp run`'s summary line.
  const char* act_quant_reason() const;
  // Models register their linears' static input scales and exclusions here at load.
  ActEmulator& act_emulator() { return emu_; }
  const ActEmulator& act_emulator() const { return emu_; }

  void matmul(const QuantMatrix& w, const float* x, int64_t n_tok, float* y);
  void embedding(const QuantMatrix& w, std::span<const int32_t> ids, float* out);
  void rmsnorm(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* out);
  void rope(float* x, std::span<const int32_t> positions, int64_t n_head, int64_t head_dim, const RopeParams& p);
  void attention(const float* q, int64_t n_tok, int64_t n_head, int64_t pos0, const KvLayerView& kv, float* out);
  void swiglu(const float* gate, const float* up, int64_t n, float* out);
  void gelu_tanh(const float* x, int64_t n, float* out);
  void softmax(float* x, int64_t n_rows, int64_t n);
  // x (n_tok, n) += bias (n) for every token.
  void add_bias(float* x, const float* bias, int64_t n_tok, int64_t n);
  // y += x elementwise.
  void add(float* y, const float* x, int64_t n);

 private:
  CpuOpsPath path_;
  CpuIsa isa_;
  ActQuant act_quant_;
  ActEmulator emu_;
  std::vector<float> emu_buf_;
  ThreadPool pool_;
};

}  // namespace imp
