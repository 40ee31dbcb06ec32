#include "model/llama.h"

#include <fmt/format.h>

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
  // llama.cpp stores llama/mistral Q/K rows permuted for adjacent-pair RoPE (formats.md §4.7),
  // which the GGUF loader records; HF checkpoints and qwen2/qwen3 GGUFs are unpermuted.
  const RopeStyle rope = f.rope_rows_permuted ? RopeStyle::kAdjacent : RopeStyle::kHalfSplit;
  if (a == "llama" || a == "mistral") return {rope, false, false};
  if (a == "qwen2") return {rope, true, false};
  if (a == "qwen3") return {rope, false, true};
  fail("{}: unknown architecture '{}' (the llama family runs llama, mistral, qwen2, qwen3)", f.path, a);
}

}  // namespace

LlamaModel::LlamaModel(const ModelFile& file, const StoragePlan& plan, Backend& backend)
    : backend_(backend), weights_(file, plan, backend), config_(file.config) {
  const ArchTraits arch = arch_traits(file);
  ModelConfig& c = config_;
  if (c.n_embd <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_ff <= 0 || c.head_dim <= 0) {
    fail("{}: incomplete llama config (n_embd {}, n_layer {}, n_head {}, n_ff {}, head_dim {})", file.path, c.n_embd,
         c.n_layer, c.n_head, c.n_ff, c.head_dim);
  }
  if (c.n_head_kv <= 0) c.n_head_kv = c.n_head;
  if (c.n_head % c.n_head_kv != 0) fail("{}: n_head {} is not a multiple of n_head_kv {}", file.path, c.n_head, c.n_head_kv);
  const TensorSource& embd = weight_at(file, "token_embd.weight");
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
  token_embd_ = weights_.host_matrix("token_embd.weight", c.n_vocab, E);
  output_norm_ = weights_.vector("output_norm.weight", E);
  output_ = find_weight(file, "output.weight") ? weights_.matrix("output.weight", c.n_vocab, E)
                                               : backend_.add_matrix(token_embd_, "token_embd.weight");
  backend_.describe_matrix_input(output_, std::nullopt, true);  // lm_head: unquantized in ModelOpt's recipes
  layers_.resize(size_t(c.n_layer));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    Layer& L = layers_[size_t(l)];
    const std::string p = fmt::format("blk.{}.", l);
    L.attn_norm = weights_.vector(p + "attn_norm.weight", E);
    L.ffn_norm = weights_.vector(p + "ffn_norm.weight", E);
    L.wq = weights_.matrix(p + "attn_q.weight", q_dim, E);
    L.wk = weights_.matrix(p + "attn_k.weight", kv_dim, E);
    L.wv = weights_.matrix(p + "attn_v.weight", kv_dim, E);
    L.wo = weights_.matrix(p + "attn_output.weight", E, q_dim);
    L.w_gate = weights_.matrix(p + "ffn_gate.weight", c.n_ff, E);
    L.w_up = weights_.matrix(p + "ffn_up.weight", c.n_ff, E);
    L.w_down = weights_.matrix(p + "ffn_down.weight", E, c.n_ff);
    if (arch.qkv_bias) {
      L.bq = weights_.vector(p + "attn_q.bias", q_dim);
      L.bk = weights_.vector(p + "attn_k.bias", kv_dim);
      L.bv = weights_.vector(p + "attn_v.bias", kv_dim);
    }
    if (arch.qk_norm) {
      L.q_norm = weights_.vector(p + "attn_q_norm.weight", hd);
      L.k_norm = weights_.vector(p + "attn_k_norm.weight", hd);
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

void LlamaModel::forward(std::span<const int32_t> tokens, KvStore& kv, bool all_logits, std::vector<float>& logits) {
  const ModelConfig& c = config_;
  const int64_t n = int64_t(tokens.size());
  if (n == 0) fail("forward: no tokens");
  const int64_t pos0 = kv.n_tokens();
  if (pos0 + n > kv.config().max_tokens) {
    fail("{} tokens (at position {}) exceed the context length {}", n, pos0, kv.config().max_tokens);
  }
  const int64_t E = c.n_embd, hd = c.head_dim, H = c.n_head, KV = c.n_head_kv, F = c.n_ff;
  const float eps = c.rms_norm_eps;
  ForwardActivations& a = n == 1 ? decode_acts_ : prefill_acts_;
  a.ensure(backend_, config_, n);
  float *x = a.x.data(), *h = a.h.data(), *q = a.q.data(), *k = a.k.data(), *v = a.v.data(), *att = a.att.data(),
        *o = a.o.data(), *g = a.g.data(), *u = a.u.data();

  backend_.begin_step(kv, pos0, n);
  backend_.embedding(token_embd_, tokens, x);
  // The output projections add into the residual stream x (matmul_add), each norm is fused
  // with the matmuls that read it (rmsnorm_matmul_qkv, rmsnorm_ffn_gate_up_swiglu), and the
  // attention output and the FFN block reach their projections through one hook each
  // (attention_matmul_add, rmsnorm_ffn_swiglu_add): a backend may run the norm inside the
  // GEMVs, the add in their epilogue, and hand each GEMM its input in the GEMM's own type.
  // An observer (imatrix) needs h, att and g written, so it gets the separate ops.
  const bool observing = observer() != nullptr;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Layer& L = layers_[size_t(l)];
    // Nothing between the QKV matmuls and RoPE (no bias, no q/k norm, no observer): one hook
    // from the norm to the KV-cache write.
    const bool one_hook = !observing && !L.bq && !L.q_norm;
    if (one_hook) {
      backend_.rmsnorm_qkv_rope_kv_write(x, L.attn_norm, n, E, eps, h, L.wq, L.wk, L.wv, q, k, v, H, hd, rope_, kv, l);
    } else if (observing) {
      backend_.rmsnorm(x, L.attn_norm, n, E, eps, h);
      observe(l, "attn_q", h, n, E);
      observe(l, "attn_k", h, n, E);
      observe(l, "attn_v", h, n, E);
      backend_.matmul_qkv(L.wq, L.wk, L.wv, h, n, q, k, v);
    } else {
      backend_.rmsnorm_matmul_qkv(x, L.attn_norm, n, E, eps, h, L.wq, L.wk, L.wv, q, k, v);
    }
    if (L.bq) {
      backend_.add_bias(q, L.bq, n, H * hd);
      backend_.add_bias(k, L.bk, n, KV * hd);
      backend_.add_bias(v, L.bv, n, KV * hd);
    }
    if (L.q_norm) {  // per head: rows of hd
      backend_.rmsnorm(q, L.q_norm, n * H, hd, eps, q);
      backend_.rmsnorm(k, L.k_norm, n * KV, hd, eps, k);
    }
    if (!one_hook) backend_.rope_kv_write(q, k, v, n, H, hd, rope_, kv, l);
    if (!observing) {  // the hooks may leave att, h and g unwritten
      backend_.attention_matmul_add(q, n, H, kv, l, 0, 0.0f, att, L.wo, E, x, o);
      backend_.rmsnorm_ffn_swiglu_add(x, L.ffn_norm, n, E, eps, h, L.w_gate, L.w_up, L.w_down, F, g, u, g, o);
      continue;
    }
    backend_.attention(q, n, H, kv, l, 0, 0.0f, att);
    observe(l, "attn_output", att, n, H * hd);
    backend_.matmul_add(L.wo, att, n, E, x, o);
    backend_.rmsnorm(x, L.ffn_norm, n, E, eps, h);
    observe(l, "ffn_gate", h, n, E);
    observe(l, "ffn_up", h, n, E);
    backend_.ffn_gate_up_swiglu(L.w_gate, L.w_up, h, n, F, g, u, g);
    observe(l, "ffn_down", g, n, F);
    backend_.matmul_add(L.w_down, g, n, E, x, o);
  }
  const int64_t n_out = all_logits ? n : 1;
  const float* last = x + (n - n_out) * E;
  backend_.rmsnorm(last, output_norm_, n_out, E, eps, h);
  backend_.matmul(output_, h, n_out, a.logits.data());
  backend_.end_step();
  kv.set_n_tokens(pos0 + n);

  logits.resize(size_t(n_out * c.n_vocab));
  backend_.read(a.logits.data(), n_out * c.n_vocab, logits.data());
}

}  // namespace imp
