#include "model/llama.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"

namespace imp {

namespace {

struct ArchTraits {
  RopeStyle rope;
  bool qkv_bias;
  bool qk_norm;
};

ArchTraits arch_traits(const ModelFile& f) {
  const std::string& a = f.config.architecture;
  // llama.cpp stores llama/mistral Q/K rows permuted for adjacent-pair RoPE (formats.md §4.7);
  // qwen2/qwen3 are NEOX-rope archs stored unpermuted.
  if (a == "llama" || a == "mistral") return {RopeStyle::kAdjacent, false, false};
  if (a == "qwen2") return {RopeStyle::kHalfSplit, true, false};
  if (a == "qwen3") return {RopeStyle::kHalfSplit, false, true};
  fail("{}: unknown architecture '{}' (the llama family runs llama, mistral, qwen2, qwen3)", f.path, a);
}

}  // namespace

QuantMatrix LlamaModel::matrix(const std::string& name, int64_t rows, int64_t cols) {
  const TensorSource& t = file_.at(name);
  const std::vector<int64_t> want = {rows, cols};
  if (t.shape != want) {
    fail("{}: tensor '{}' has shape [{}] but the config wants [{}]", file_.path, name, fmt::join(t.shape, ", "),
         fmt::join(want, ", "));
  }
  const StoragePlanRow& row = plan_.at(name);
  QuantMatrix m = t.matrix();
  if (row.tier != StorageTier::kMapped) {
    owned_.push_back(quantize(row.held_format, dequantize(m), rows, cols));
    m = owned_.back().view();
  }
  if (t.input_scale) backend_.act_emulator().set_input_scale(m, *t.input_scale);
  return m;
}

const float* LlamaModel::vector(const std::string& name, int64_t n, bool optional) {
  const TensorSource* t = file_.find(name);
  if (!t) {
    if (optional) return nullptr;
    file_.at(name);  // throws naming the tensor and file
  }
  if (t->shape.size() != 1 || t->shape[0] != n) {
    fail("{}: tensor '{}' has shape [{}] but the config wants [{}]", file_.path, name, fmt::join(t->shape, ", "), n);
  }
  const StoragePlanRow& row = plan_.at(name);
  if (row.tier == StorageTier::kMapped && t->format == FormatId::F32) {
    return reinterpret_cast<const float*>(t->data.data());
  }
  owned_.push_back(quantize(FormatId::F32, dequantize(t->matrix()), 1, n));
  return reinterpret_cast<const float*>(owned_.back().data.data());
}

LlamaModel::LlamaModel(const ModelFile& file, const StoragePlan& plan, CpuBackend& backend)
    : file_(file), plan_(plan), backend_(backend), config_(file.config) {
  const ArchTraits arch = arch_traits(file);
  ModelConfig& c = config_;
  if (c.n_embd <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_ff <= 0 || c.head_dim <= 0) {
    fail("{}: incomplete llama config (n_embd {}, n_layer {}, n_head {}, n_ff {}, head_dim {})", file.path, c.n_embd,
         c.n_layer, c.n_head, c.n_ff, c.head_dim);
  }
  if (c.n_head_kv <= 0) c.n_head_kv = c.n_head;
  if (c.n_head % c.n_head_kv != 0) fail("{}: n_head {} is not a multiple of n_head_kv {}", file.path, c.n_head, c.n_head_kv);
  const TensorSource& embd = file.at("token_embd.weight");
  if (c.n_vocab <= 0 && embd.shape.size() == 2) c.n_vocab = embd.shape[0];
  if (c.n_ctx_train <= 0) fail("{}: context length missing ({}.context_length)", file.path, c.architecture);

  rope_.style = arch.rope;
  rope_.theta = c.rope_theta;
  const std::string& scaling = c.rope_scaling.type;
  if (scaling == "linear") {
    rope_.freq_scale = c.rope_scaling.factor;
  } else if (!scaling.empty() && scaling != "none") {
    fail("{}: rope scaling '{}' is not supported yet (none, linear)", file.path, scaling);
  }

  const int64_t E = c.n_embd, hd = c.head_dim, q_dim = c.n_head * hd, kv_dim = c.n_head_kv * hd;
  token_embd_ = matrix("token_embd.weight", c.n_vocab, E);
  output_norm_ = vector("output_norm.weight", E);
  output_ = file.find("output.weight") ? matrix("output.weight", c.n_vocab, E) : token_embd_;
  backend_.act_emulator().exclude(output_);  // lm_head: unquantized in ModelOpt's recipes (act_emulation.h)
  layers_.resize(size_t(c.n_layer));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    Layer& L = layers_[size_t(l)];
    const std::string p = fmt::format("blk.{}.", l);
    L.attn_norm = vector(p + "attn_norm.weight", E);
    L.ffn_norm = vector(p + "ffn_norm.weight", E);
    L.wq = matrix(p + "attn_q.weight", q_dim, E);
    L.wk = matrix(p + "attn_k.weight", kv_dim, E);
    L.wv = matrix(p + "attn_v.weight", kv_dim, E);
    L.wo = matrix(p + "attn_output.weight", E, q_dim);
    L.w_gate = matrix(p + "ffn_gate.weight", c.n_ff, E);
    L.w_up = matrix(p + "ffn_up.weight", c.n_ff, E);
    L.w_down = matrix(p + "ffn_down.weight", E, c.n_ff);
    if (arch.qkv_bias) {
      L.bq = vector(p + "attn_q.bias", q_dim);
      L.bk = vector(p + "attn_k.bias", kv_dim);
      L.bv = vector(p + "attn_v.bias", kv_dim);
    }
    if (arch.qk_norm) {
      L.q_norm = vector(p + "attn_q_norm.weight", hd);
      L.k_norm = vector(p + "attn_k_norm.weight", hd);
    }
  }
}

KvCacheConfig LlamaModel::kv_config(int64_t max_tokens, KvType dtype) const {
  KvCacheConfig k;
  k.n_layer = config_.n_layer;
  k.n_kv_head = config_.n_head_kv;
  k.head_dim = config_.head_dim;
  k.max_tokens = max_tokens;
  k.dtype = dtype;
  return k;
}

void LlamaModel::forward(std::span<const int32_t> tokens, KvCache& kv, bool all_logits, std::vector<float>& logits) {
  const ModelConfig& c = config_;
  const int64_t n = int64_t(tokens.size());
  if (n == 0) fail("forward: no tokens");
  const int64_t pos0 = kv.n_tokens();
  if (pos0 + n > kv.config().max_tokens) {
    fail("{} tokens (at position {}) exceed the context length {}", n, pos0, kv.config().max_tokens);
  }
  const int64_t E = c.n_embd, hd = c.head_dim, H = c.n_head, KV = c.n_head_kv, F = c.n_ff;
  const float eps = c.rms_norm_eps;
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) pos[size_t(t)] = int32_t(pos0 + t);

  // Activations, (n, width) each.
  std::vector<float> x(size_t(n * E)), h(size_t(n * E)), q(size_t(n * H * hd)), k(size_t(n * KV * hd)),
      v(size_t(n * KV * hd)), att(size_t(n * H * hd)), o(size_t(n * E)), g(size_t(n * F)), u(size_t(n * F));
  backend_.embedding(token_embd_, tokens, x.data());
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Layer& L = layers_[size_t(l)];
    backend_.rmsnorm(x.data(), L.attn_norm, n, E, eps, h.data());
    backend_.matmul(L.wq, h.data(), n, q.data());
    backend_.matmul(L.wk, h.data(), n, k.data());
    backend_.matmul(L.wv, h.data(), n, v.data());
    if (L.bq) {
      backend_.add_bias(q.data(), L.bq, n, H * hd);
      backend_.add_bias(k.data(), L.bk, n, KV * hd);
      backend_.add_bias(v.data(), L.bv, n, KV * hd);
    }
    if (L.q_norm) {  // per head: rows of hd
      backend_.rmsnorm(q.data(), L.q_norm, n * H, hd, eps, q.data());
      backend_.rmsnorm(k.data(), L.k_norm, n * KV, hd, eps, k.data());
    }
    backend_.rope(q.data(), pos, H, hd, rope_);
    backend_.rope(k.data(), pos, KV, hd, rope_);
    kv.write(l, pos0, n, k.data(), v.data());
    backend_.attention(q.data(), n, H, pos0, kv.layer_view(l), att.data());
    backend_.matmul(L.wo, att.data(), n, o.data());
    backend_.add(x.data(), o.data(), n * E);

    backend_.rmsnorm(x.data(), L.ffn_norm, n, E, eps, h.data());
    backend_.matmul(L.w_gate, h.data(), n, g.data());
    backend_.matmul(L.w_up, h.data(), n, u.data());
    backend_.swiglu(g.data(), u.data(), n * F, g.data());
    backend_.matmul(L.w_down, g.data(), n, o.data());
    backend_.add(x.data(), o.data(), n * E);
  }
  kv.set_n_tokens(pos0 + n);

  const int64_t n_out = all_logits ? n : 1;
  const float* last = x.data() + (n - n_out) * E;
  backend_.rmsnorm(last, output_norm_, n_out, E, eps, h.data());
  logits.resize(size_t(n_out * c.n_vocab));
  backend_.matmul(output_, h.data(), n_out, logits.data());
}

}  // namespace imp
