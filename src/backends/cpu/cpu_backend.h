// CpuBackend — the CPU op set behind one switch (reference or fast path) and one thread
// pool, plus the backend's supports(op, tier) answer for the planner.
//
// The model's forward pass calls these methods; with CpuOpsPath::kReference every call
// goes to the scalar reference op (one thread), with kFast to the threaded op that uses
// the ISA's row kernels. Both paths run the same sequence of ops, so the two can be
// compared end to end.
//
// It implements the Backend interface (runtime/backend.h) by forwarding to the same ops:
// activations are host buffers, matrices stay the host views the model holds, the KV cache
// is the host KvCache, and a step just records its positions.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>
#include <string_view>

#include "backends/cpu/act_emulation.h"
#include "backends/cpu/ops.h"
#include "planner/device_caps.h"
#include "runtime/backend.h"
#include "runtime/kv_cache.h"

namespace imp {

enum class CpuOpsPath { kReference, kFast };

// The CPU backend runs: matmul on any tier whose format has a vec_dot (every weight format
// imp decodes), embedding lookup on any decodable format, vectors only as F32.
bool cpu_supports(WeightOp op, StorageTier tier, FormatId disk_format);
// KV cache: every KvType through its reference row codec, where the type fits head_dim.
bool cpu_supports_kv(KvType type, int64_t head_dim);
DeviceCaps cpu_device_caps();

// --act-quant spellings: f32 (kNone), q8 (kQ8), i16 (kI16); anything else is an Error.
ActQuant parse_act_quant(std::string_view name);
std::string_view act_quant_name(ActQuant a);
// The fast path's default: 16-bit activations with outliers split off (act_i16.h): 1.7×
// faster per Q4_1 block than F32 and within 5.3e-4 of HF's logits on the demo model (bound 1e-3).
inline constexpr ActQuant kDefaultActQuant = ActQuant::kI16;

class CpuBackend final : public Backend {
 public:
  // act_quant picks the fast matmul's activation handling (ops.h); the reference path
  // ignores it (always exact). act_emulation fake-quantizes every matmul's activations
  // (act_emulation.h) on either path, which then runs with F32 activations (overriding
  // act_quant).
  CpuBackend(CpuOpsPath path, int n_threads, ActQuant act_quant = kDefaultActQuant,
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

  // --- Backend (runtime/backend.h)
  std::string name() const override;
  float* alloc(int64_t n_floats) override;
  void release(float* buffer) override;
  MatrixHandle add_matrix(const QuantMatrix& w, std::string_view name) override;
  void set_decode_matrix(MatrixHandle w, const QuantMatrix& decode, std::string_view name) override;
  const float* add_vector(const float* host, int64_t n, std::string_view name) override;
  void describe_matrix_input(MatrixHandle w, std::optional<float> input_scale, bool output_head) override;
  std::unique_ptr<KvStore> create_kv_cache(const KvCacheConfig& config) override;
  void read(const float* src, int64_t n, float* host_dst) override;
  void begin_step(KvStore& kv, int64_t pos0, int64_t n_tok) override;
  void end_step() override {}
  void embedding(const QuantMatrix& w, std::span<const int32_t> ids, float* out) override;
  void rmsnorm(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* out) override;
  void matmul(MatrixHandle w, const float* x, int64_t n_tok, float* y) override;
  void add_bias(float* x, const float* bias, int64_t n_tok, int64_t n) override;
  void rope(float* x, int64_t n_tok, int64_t n_head, int64_t head_dim, const RopeParams& p) override;
  void kv_write(KvStore& kv, int64_t layer, const float* k, const float* v, int64_t n_tok) override;
  void attention(const float* q, int64_t n_tok, int64_t n_head, KvStore& kv, int64_t layer, int64_t window,
                 float scale, float* out) override;
  void swiglu(const float* gate, const float* up, int64_t n, float* out) override;
  void gelu_tanh(const float* x, int64_t n, float* out) override;
  // y += x elementwise.
  void add(float* y, const float* x, int64_t n) override;
  // y *= x elementwise (gated GELU: gelu(gate) · up).
  void mul(float* y, const float* x, int64_t n) override;
  // x *= s (gemma's embedding scale).
  void scale(float* x, float s, int64_t n) override;

  // --- direct ops on host data (tests, tools)
  void matmul(const QuantMatrix& w, const float* x, int64_t n_tok, float* y);
  void rope(float* x, std::span<const int32_t> positions, int64_t n_head, int64_t head_dim, const RopeParams& p);
  // window > 0: sliding-window attention; scale 0: 1/sqrt(head_dim) (ops.h).
  void attention(const float* q, int64_t n_tok, int64_t n_head, int64_t pos0, const KvLayerView& kv, float* out,
                 int64_t window = 0, float scale = 0.0f);
  void softmax(float* x, int64_t n_rows, int64_t n);

 private:
  static KvCache& host_cache(KvStore& kv);

  CpuOpsPath path_;
  CpuIsa isa_;
  ActQuant act_quant_;
  ActEmulator emu_;
  std::vector<float> emu_buf_;
  ThreadPool pool_;
  std::vector<QuantMatrix> matrices_;
  std::vector<std::optional<QuantMatrix>> decode_matrices_;  // per handle: the single-token copy
  std::unordered_map<float*, std::unique_ptr<float[]>> buffers_;
  int64_t pos0_ = 0;
  std::vector<int32_t> positions_;  // of the current step
};

}  // namespace imp
