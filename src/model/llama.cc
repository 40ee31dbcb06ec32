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
  // llama.cpp stores llama/mistral Q/K rows permuted for adjacent-pair RoPE (formats.md §4.7),
  // which the GGUF loader records; HF checkpoints and qwen2/qwen3 GGUFs are unpermuted.
  const RopeStyle rope = f.rope_rows_permuted ? RopeStyle::kAdjacent : RopeStyle::kHalfSplit;
  if (a == "llama" || a == "mistral") return {rope, false, false};
  if (a == "qwen2") return {rope, true, false};
  if (a == "qwen3") return {rope, false, true};
  fail("{}: unknown architecture '{}' (the llama family runs llama, mistral, qwen2, qwen3)", f.path, a);
}

}  // namespace

QuantMatrix LlamaModel::host_matrix(const std::string& name, int64_t rows, int64_t cols) {
  const TensorSource& t = weight_at(file_, name);
  const std::vector<int64_t> want = {rows, cols};
  if (t.shape != want) {
    fail("{}: tensor '{}' has shape [{}] but the config wants [{}]", file_.path, name, fmt::join(t.shape, ", "),
         fmt::join(want, ", "));
  }
  const StoragePlanRow& row = plan_.at(t.name);
  if (row.tier == StorageTier::kMapped) return t.matrix();
  const std::vector<float> decoded = dequantize(t.matrix());
  owned_.push_back(quantize(row.held_format, decoded, rows, cols));
  return owned_.back().view();
}

MatrixHandle LlamaModel::matrix(const std::string& name, int64_t rows, int64_t cols) {
  const MatrixHandle h = backend_.add_matrix(host_matrix(name, rows, cols), name);
  // A prequantized checkpoint's static activation scale (ModelOpt/llm-compressor input_scale).
  if (const auto s = weight_at(file_, name).input_scale) backend_.describe_matrix_input(h, s, false);
  return h;
}

const float* LlamaModel::vector(const std::string& name, int64_t n, bool optional) {
  const TensorSource* t = find_weight(file_, name);
  if (!t) {
    if (optional) return nullptr;
    weight_at(file_, name);  // throws naming the tensor and file
  }
  if (t->shape.size() != 1 || t->shape[0] != n) {
    fail("{}: tensor '{}' has shape [{}] but the config wants [{}]", file_.path, name, fmt::join(t->shape, ", "), n);
  }
  // The plan decides: F32 vectors are used in place, anything else converted (storage_plan.cc).
  const StoragePlanRow& row = plan_.at(t->name);
  if (row.held_format != FormatId::F32) fail("{}: plan holds vector '{}' as {}, not f32", file_.path, name, format_name(row.held_format));
  if (row.tier == StorageTier::kMapped) {
    return backend_.add_vector(reinterpret_cast<const float*>(t->data.data()), n, name);
  }
  owned_.push_back(quantize(FormatId::F32, dequantize(t->matrix()), 1, n));
  return backend_.add_vector(reinterpret_cast<const float*>(owned_.back().data.data()), n, name);
}

LlamaModel::LlamaModel(const ModelFile& file, const StoragePlan& plan, Backend& backend)
    : file_(file), plan_(plan), backend_(backend), config_(file.config) {
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
  token_embd_ = host_matrix("token_embd.weight", c.n_vocab, E);
  output_norm_ = vector("output_norm.weight", E);
  output_ = find_weight(file, "output.weight") ? matrix("output.weight", c.n_vocab, E)
                                               : backend_.add_matrix(token_embd_, "token_embd.weight");
  backend_.describe_matrix_input(output_, std::nullopt, true);  // lm_head: unquantized in ModelOpt's recipes
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

void LlamaModel::ensure(Activations& a, int64_t n_tok) {
  if (a.cap >= n_tok) return;
  const ModelConfig& c = config_;
  const int64_t n = n_tok;
  a = Activations{};
  a.x = BackendBuffer(backend_, n * c.n_embd);
  a.h = BackendBuffer(backend_, n * c.n_embd);
  a.q = BackendBuffer(backend_, n * c.n_head * c.head_dim);
  a.k = BackendBuffer(backend_, n * c.n_head_kv * c.head_dim);
  a.v = BackendBuffer(backend_, n * c.n_head_kv * c.head_dim);
  a.att = BackendBuffer(backend_, n * c.n_head * c.head_dim);
  a.o = BackendBuffer(backend_, n * c.n_embd);
  a.g = BackendBuffer(backend_, n * c.n_ff);
  a.u = BackendBuffer(backend_, n * c.n_ff);
  a.logits = BackendBuffer(backend_, n * c.n_vocab);
  a.cap = n;
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
  Activations& a = n == 1 ? decode_acts_ : prefill_acts_;
  ensure(a, n);
  float *x = a.x.data(), *h = a.h.data(), *q = a.q.data(), *k = a.k.data(), *v = a.v.data(), *att = a.att.data(),
        *o = a.o.data(), *g = a.g.data(), *u = a.u.data();

  backend_.begin_step(kv, pos0, n);
  backend_.embedding(token_embd_, tokens, x);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Layer& L = layers_[size_t(l)];
    backend_.rmsnorm(x, L.attn_norm, n, E, eps, h);
    observe(l, "attn_q", h, n, E);
    observe(l, "attn_k", h, n, E);
    observe(l, "attn_v", h, n, E);
    backend_.matmul_qkv(L.wq, L.wk, L.wv, h, n, q, k, v);
    if (L.bq) {
      backend_.add_bias(q, L.bq, n, H * hd);
      backend_.add_bias(k, L.bk, n, KV * hd);
      backend_.add_bias(v, L.bv, n, KV * hd);
    }
    if (L.q_norm) {  // per head: rows of hd
      backend_.rmsnorm(q, L.q_norm, n * H, hd, eps, q);
      backend_.rmsnorm(k, L.k_norm, n * KV, hd, eps, k);
    }
    backend_.rope_kv_write(q, k, v, n, H, hd, rope_, kv, l);
    backend_.attention(q, n, H, kv, l, 0, 0.0f, att);
    observe(l, "attn_output", att, n, H * hd);
    backend_.matmul(L.wo, att, n, o);
    backend_.add(x, o, n * E);

    backend_.rmsnorm(x, L.ffn_norm, n, E, eps, h);
    observe(l, "ffn_gate", h, n, E);
    observe(l, "ffn_up", h, n, E);
    backend_.ffn_gate_up_swiglu(L.w_gate, L.w_up, h, n, F, g, u, g);
    observe(l, "ffn_down", g, n, F);
    backend_.matmul(L.w_down, g, n, o);
    backend_.add(x, o, n * E);
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
