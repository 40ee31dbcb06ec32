#include "backends/cpu/cpu_backend.h"

#include <fmt/format.h>

#include <cstring>

#include "common/error.h"

namespace imp {

bool cpu_supports(WeightOp op, StorageTier tier, FormatId disk_format) {
  const FormatId held = tier_format(tier, disk_format);
  const FormatTraits& t = format_traits(held);
  if (t.is_activation_only) return false;
  switch (op) {
    case WeightOp::kMatmul:
      return t.vec_dot_ref != nullptr && t.dequantize_ref != nullptr;
    case WeightOp::kEmbeddingLookup:
      return t.dequantize_ref != nullptr;
    case WeightOp::kVector:
      return held == FormatId::F32;
  }
  return false;
}

bool cpu_supports_kv(KvType type, int64_t head_dim) { return kv_type_fits_head_dim(type, head_dim); }

DeviceCaps cpu_device_caps() {
  return {fmt::format("cpu ({})", cpu_isa_name(best_cpu_isa())), cpu_supports, cpu_supports_kv};
}

ActQuant parse_act_quant(std::string_view name) {
  if (name == "f32") return ActQuant::kNone;
  if (name == "q8") return ActQuant::kQ8;
  if (name == "i16") return ActQuant::kI16;
  fail("--act-quant: '{}' is not f32, i16 or q8", name);
}

std::string_view act_quant_name(ActQuant a) {
  switch (a) {
    case ActQuant::kNone: return "f32";
    case ActQuant::kQ8: return "q8";
    case ActQuant::kI16: return "i16";
  }
  return "?";
}

CpuBackend::CpuBackend(CpuOpsPath path, int n_threads, ActQuant act_quant, ActEmulation act_emulation)
    : path_(path), isa_(path == CpuOpsPath::kFast ? best_cpu_isa() : CpuIsa::kScalar),
      // Emulation defines the activations' numerics itself, so it overrides a q8 choice.
      act_quant_(path == CpuOpsPath::kFast && act_emulation == ActEmulation::kNone ? act_quant : ActQuant::kNone),
      emu_(act_emulation), pool_(path == CpuOpsPath::kFast ? n_threads : 1) {}

const char* CpuBackend::act_quant_reason() const {
  if (path_ == CpuOpsPath::kReference) return "reference path: exact decode, double accumulation";
  if (act_quant_ == ActQuant::kQ8) {
    return "q8 activations (requested): ggml integer dot products; ~1e-1 logit error on models with "
           "activation outliers";
  }
  if (act_quant_ == ActQuant::kI16) {
    return "i16 activations (default): 16-bit integer dot products for Q4_0/Q4_1/Q8_0, outliers exact; "
           "≤ 5.3e-4 logit error on SmolLM2, where q8 costs 1e-1";
  }
  return "f32 activations (requested): weights decoded to F32, within 1e-5 of the reference";
}

void CpuBackend::matmul(const QuantMatrix& w, const float* x, int64_t n_tok, float* y) {
  x = emu_.apply(w, x, n_tok, emu_buf_);
  if (path_ == CpuOpsPath::kReference) return matmul_ref(w, x, n_tok, y);
  imp::matmul(pool_, w, x, n_tok, y, isa_, act_quant_);
}

void CpuBackend::embedding(const QuantMatrix& w, std::span<const int32_t> ids, float* out) {
  embedding_lookup(w, ids, out);
}

void CpuBackend::rmsnorm(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* out) {
  if (path_ == CpuOpsPath::kReference) return rmsnorm_ref(x, gain, n_tok, n, eps, out);
  imp::rmsnorm(pool_, x, gain, n_tok, n, eps, out);
}

void CpuBackend::rope(float* x, std::span<const int32_t> positions, int64_t n_head, int64_t head_dim,
                      const RopeParams& p) {
  if (path_ == CpuOpsPath::kReference) return rope_ref(x, positions, n_head, head_dim, p);
  imp::rope(pool_, x, positions, n_head, head_dim, p);
}

void CpuBackend::attention(const float* q, int64_t n_tok, int64_t n_head, int64_t pos0, const KvLayerView& kv,
                           float* out, int64_t window, float scale) {
  if (path_ == CpuOpsPath::kReference) return attention_ref(q, n_tok, n_head, pos0, kv, out, window, scale);
  imp::attention(pool_, q, n_tok, n_head, pos0, kv, out, window, scale);
}

void CpuBackend::swiglu(const float* gate, const float* up, int64_t n, float* out) {
  if (path_ == CpuOpsPath::kReference) return swiglu_ref(gate, up, n, out);
  imp::swiglu(pool_, gate, up, n, out);
}

void CpuBackend::gelu_tanh(const float* x, int64_t n, float* out) {
  if (path_ == CpuOpsPath::kReference) return gelu_tanh_ref(x, n, out);
  imp::gelu_tanh(pool_, x, n, out);
}

void CpuBackend::softmax(float* x, int64_t n_rows, int64_t n) {
  if (path_ == CpuOpsPath::kReference) return softmax_ref(x, n_rows, n);
  imp::softmax(pool_, x, n_rows, n);
}

void CpuBackend::add_bias(float* x, const float* bias, int64_t n_tok, int64_t n) {
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t i = 0; i < n; ++i) x[t * n + i] += bias[i];
  }
}

void CpuBackend::add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

std::string CpuBackend::name() const { return fmt::format("cpu ({})", cpu_isa_name(isa_)); }

float* CpuBackend::alloc(int64_t n_floats) {
  if (n_floats <= 0) fail("cpu backend: cannot allocate a buffer of {} floats", n_floats);
  auto buf = std::make_unique_for_overwrite<float[]>(size_t(n_floats));
  float* p = buf.get();
  buffers_.emplace(p, std::move(buf));
  return p;
}

void CpuBackend::release(float* buffer) {
  if (buffers_.erase(buffer) == 0) fail("cpu backend: release of a buffer it did not allocate");
}

MatrixHandle CpuBackend::add_matrix(const QuantMatrix& w, std::string_view /*name*/) {
  matrices_.push_back(w);
  decode_matrices_.emplace_back();
  return MatrixHandle(matrices_.size() - 1);
}

void CpuBackend::set_decode_matrix(MatrixHandle w, const QuantMatrix& decode, std::string_view name) {
  if (w < 0 || size_t(w) >= matrices_.size()) fail("cpu backend: unknown matrix handle {}", w);
  const QuantMatrix& m = matrices_[size_t(w)];
  if (decode.rows != m.rows || decode.cols != m.cols) {
    fail("cpu backend: decode copy of '{}' is {}×{}, the matrix {}×{}", name, decode.rows, decode.cols, m.rows, m.cols);
  }
  decode_matrices_[size_t(w)] = decode;
}

const float* CpuBackend::add_vector(const float* host, int64_t /*n*/, std::string_view /*name*/) { return host; }

void CpuBackend::describe_matrix_input(MatrixHandle w, std::optional<float> input_scale, bool output_head) {
  if (w < 0 || size_t(w) >= matrices_.size()) fail("cpu backend: unknown matrix handle {}", w);
  for (const QuantMatrix* m : {&matrices_[size_t(w)], decode_matrices_[size_t(w)] ? &*decode_matrices_[size_t(w)] : nullptr}) {
    if (!m) continue;
    if (output_head) emu_.exclude(*m);
    if (input_scale) emu_.set_input_scale(*m, *input_scale);
  }
}

std::unique_ptr<KvStore> CpuBackend::create_kv_cache(const KvCacheConfig& config) {
  return std::make_unique<KvCache>(config);
}

void CpuBackend::read(const float* src, int64_t n, float* host_dst) {
  if (n > 0) std::memcpy(host_dst, src, size_t(n) * sizeof(float));
}

KvCache& CpuBackend::host_cache(KvStore& kv) {
  auto* c = dynamic_cast<KvCache*>(&kv);
  if (!c) fail("cpu backend: the KV cache was created by another backend");
  return *c;
}

void CpuBackend::begin_step(KvStore& /*kv*/, int64_t pos0, int64_t n_tok) {
  if (pos0 < 0 || n_tok < 1) fail("cpu backend: step at position {} with {} tokens", pos0, n_tok);
  pos0_ = pos0;
  positions_.resize(size_t(n_tok));
  for (int64_t t = 0; t < n_tok; ++t) positions_[size_t(t)] = int32_t(pos0 + t);
}

void CpuBackend::matmul(MatrixHandle w, const float* x, int64_t n_tok, float* y) {
  if (w < 0 || size_t(w) >= matrices_.size()) fail("cpu backend: unknown matrix handle {}", w);
  const auto& decode = decode_matrices_[size_t(w)];
  matmul(n_tok == 1 && decode ? *decode : matrices_[size_t(w)], x, n_tok, y);
}

void CpuBackend::rope(float* x, int64_t n_tok, int64_t n_head, int64_t head_dim, const RopeParams& p) {
  if (size_t(n_tok) > positions_.size()) fail("cpu backend: rope of {} tokens in a step of {}", n_tok, positions_.size());
  rope(x, std::span<const int32_t>(positions_.data(), size_t(n_tok)), n_head, head_dim, p);
}

void CpuBackend::kv_write(KvStore& kv, int64_t layer, const float* k, const float* v, int64_t n_tok) {
  host_cache(kv).write(layer, pos0_, n_tok, k, v);
}

void CpuBackend::attention(const float* q, int64_t n_tok, int64_t n_head, KvStore& kv, int64_t layer,
                           int64_t window, float scale, float* out) {
  attention(q, n_tok, n_head, pos0_, host_cache(kv).layer_view(layer), out, window, scale);
}


void CpuBackend::mul(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= x[i];
}

void CpuBackend::scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

}  // namespace imp
