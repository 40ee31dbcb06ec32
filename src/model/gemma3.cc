#include "model/gemma3.h"

#include <fmt/format.h>

#include <cmath>

#include "common/error.h"

namespace imp {

Gemma3Model::Gemma3Model(const ModelFile& file, const StoragePlan& plan, Backend& backend)
    : backend_(backend), weights_(file, plan, backend), config_(file.config) {
  ModelConfig& c = config_;
  if (c.architecture != "gemma3") fail("{}: architecture '{}' is not gemma3", file.path, c.architecture);
  // Hugging Face checkpoints store the norm weight w of the (1 + w) gain; GGUF stores 1 + w,
  // which is what the forward multiplies by: a folder's norms get 1 added at load.
  const float norm_add = file.find("token_embd.weight") ? 0.0f : 1.0f;
  if (c.n_embd <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_ff <= 0 || c.head_dim <= 0) {
    fail("{}: incomplete gemma3 config (n_embd {}, n_layer {}, n_head {}, n_ff {}, head_dim {})", file.path, c.n_embd,
         c.n_layer, c.n_head, c.n_ff, c.head_dim);
  }
  if (c.n_head_kv <= 0) c.n_head_kv = c.n_head;
  if (c.n_head % c.n_head_kv != 0) fail("{}: n_head {} is not a multiple of n_head_kv {}", file.path, c.n_head, c.n_head_kv);
  const TensorSource& embd = weight_at(file, "token_embd.weight");
  if (c.n_vocab <= 0 && embd.shape.size() == 2) c.n_vocab = embd.shape[0];
  if (c.n_ctx_train <= 0) fail("{}: context length missing (gemma3.context_length)", file.path);
  if (c.sliding_window <= 0) fail("{}: gemma3.attention.sliding_window missing", file.path);

  rope_local_ = {RopeStyle::kHalfSplit, 10000.0f, 1.0f};
  rope_global_ = {RopeStyle::kHalfSplit, c.rope_theta, 1.0f};
  const std::string& scaling = c.rope_scaling.type;
  if (scaling == "linear") {
    rope_global_.freq_scale = c.rope_scaling.factor;
  } else if (!scaling.empty() && scaling != "none") {
    fail("{}: rope scaling '{}' is not supported yet (none, linear)", file.path, scaling);
  }
  // transformers: scaling = query_pre_attn_scalar ** -0.5; llama.cpp (GGUF has no key):
  // 1/sqrt(head_dim), except n_embd/n_head for the 27B model (62 layers).
  double scalar = double(c.head_dim);
  if (c.n_layer == 62) scalar = double(c.n_embd / c.n_head);
  if (file.metadata.is_object() && file.metadata.contains("query_pre_attn_scalar") &&
      file.metadata["query_pre_attn_scalar"].is_number()) {
    scalar = file.metadata["query_pre_attn_scalar"].get<double>();
  }
  if (!(scalar > 0.0)) fail("{}: query_pre_attn_scalar {} must be positive", file.path, scalar);
  attn_scale_ = float(1.0 / std::sqrt(scalar));
  // transformers: embed_scale = torch.tensor(hidden_size ** 0.5), a float32 scalar.
  embd_scale_ = float(std::sqrt(double(c.n_embd)));

  const int64_t E = c.n_embd, hd = c.head_dim, q_dim = c.n_head * hd, kv_dim = c.n_head_kv * hd;
  token_embd_ = weights_.host_matrix("token_embd.weight", c.n_vocab, E);
  output_norm_ = weights_.vector("output_norm.weight", E, false, norm_add);
  output_ = find_weight(file, "output.weight") ? weights_.matrix("output.weight", c.n_vocab, E)
                                               : backend_.add_matrix(token_embd_, "token_embd.weight");
  backend_.describe_matrix_input(output_, std::nullopt, true);
  layers_.resize(size_t(c.n_layer));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    Layer& L = layers_[size_t(l)];
    const std::string p = fmt::format("blk.{}.", l);
    L.attn_norm = weights_.vector(p + "attn_norm.weight", E, false, norm_add);
    L.post_attn_norm = weights_.vector(p + "post_attention_norm.weight", E, false, norm_add);
    L.ffn_norm = weights_.vector(p + "ffn_norm.weight", E, false, norm_add);
    L.post_ffw_norm = weights_.vector(p + "post_ffw_norm.weight", E, false, norm_add);
    L.q_norm = weights_.vector(p + "attn_q_norm.weight", hd, false, norm_add);
    L.k_norm = weights_.vector(p + "attn_k_norm.weight", hd, false, norm_add);
    L.wq = weights_.matrix(p + "attn_q.weight", q_dim, E);
    L.wk = weights_.matrix(p + "attn_k.weight", kv_dim, E);
    L.wv = weights_.matrix(p + "attn_v.weight", kv_dim, E);
    L.wo = weights_.matrix(p + "attn_output.weight", E, q_dim);
    L.w_gate = weights_.matrix(p + "ffn_gate.weight", c.n_ff, E);
    L.w_up = weights_.matrix(p + "ffn_up.weight", c.n_ff, E);
    L.w_down = weights_.matrix(p + "ffn_down.weight", E, c.n_ff);
  }
}

KvCacheConfig Gemma3Model::kv_config(int64_t max_tokens, KvType dtype) const {
  KvCacheConfig k;
  k.n_layer = config_.n_layer;
  k.n_kv_head = config_.n_head_kv;
  k.head_dim = config_.head_dim;
  k.max_tokens = max_tokens;
  k.dtype = dtype;
  return k;
}

void Gemma3Model::forward(std::span<const int32_t> tokens, KvStore& kv, bool all_logits, std::vector<float>& logits) {
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
  backend_.scale(x, embd_scale_, n * E);
  // Each residual add is fused with the norm that reads the sum next (add_rmsnorm): the
  // attention output with the FFN norm, the FFN output with the next layer's attention norm.
  if (c.n_layer > 0) backend_.rmsnorm(x, layers_[0].attn_norm, n, E, eps, h);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Layer& L = layers_[size_t(l)];
    const bool global = is_global_layer(l);
    const RopeParams& rope = global ? rope_global_ : rope_local_;
    observe(l, "attn_q", h, n, E);
    observe(l, "attn_k", h, n, E);
    observe(l, "attn_v", h, n, E);
    backend_.matmul_qkv(L.wq, L.wk, L.wv, h, n, q, k, v);
    backend_.rmsnorm(q, L.q_norm, n * H, hd, eps, q);  // per head: rows of hd
    backend_.rmsnorm(k, L.k_norm, n * KV, hd, eps, k);
    backend_.rope_kv_write(q, k, v, n, H, hd, rope, kv, l);
    backend_.attention(q, n, H, kv, l, global ? 0 : c.sliding_window, attn_scale_, att);
    observe(l, "attn_output", att, n, H * hd);
    backend_.matmul(L.wo, att, n, o);
    backend_.rmsnorm(o, L.post_attn_norm, n, E, eps, o);
    backend_.add_rmsnorm(x, o, L.ffn_norm, n, E, eps, h);

    observe(l, "ffn_gate", h, n, E);
    observe(l, "ffn_up", h, n, E);
    backend_.matmul(L.w_gate, h, n, g);
    backend_.matmul(L.w_up, h, n, u);
    backend_.gelu_tanh(g, n * F, g);
    backend_.mul(g, u, n * F);
    observe(l, "ffn_down", g, n, F);
    backend_.matmul(L.w_down, g, n, o);
    backend_.rmsnorm(o, L.post_ffw_norm, n, E, eps, o);
    if (l + 1 < c.n_layer) {
      backend_.add_rmsnorm(x, o, layers_[size_t(l + 1)].attn_norm, n, E, eps, h);
    } else {
      backend_.add(x, o, n * E);
    }
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
