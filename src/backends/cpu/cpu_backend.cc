#include "backends/cpu/cpu_backend.h"

#include <fmt/format.h>

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
  return "f32 activations (default): 8-bit activation rounding moves logits by up to 1.25e-1 on "
         "outlier-heavy models (SmolLM2), F32 keeps them within 1e-5";
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
                           float* out) {
  if (path_ == CpuOpsPath::kReference) return attention_ref(q, n_tok, n_head, pos0, kv, out);
  imp::attention(pool_, q, n_tok, n_head, pos0, kv, out);
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

}  // namespace imp
