#include "io/tensor_names.h"

#include <array>
#include <cstring>
#include <string_view>

#include "common/error.h"

namespace imp {
namespace {

struct Pair {
  std::string_view hf;    // module path inside model.layers.{i}.
  std::string_view gguf;  // module name inside blk.{i}.
};

// Per-layer modules common to every family.
constexpr std::array<Pair, 11> kLayer = {{
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},
    {"self_attn.q_norm", "attn_q_norm"},
    {"self_attn.k_norm", "attn_k_norm"},
    {"input_layernorm", "attn_norm"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
    {"post_feedforward_layernorm", "post_ffw_norm"},
}};

// gemma3 has four norms per layer; the llama family has two.
constexpr std::array<Pair, 2> kLayerGemma = {{
    {"post_attention_layernorm", "post_attention_norm"},
    {"pre_feedforward_layernorm", "ffn_norm"},
}};
constexpr std::array<Pair, 1> kLayerLlama = {{{"post_attention_layernorm", "ffn_norm"}}};

constexpr std::array<Pair, 3> kGlobal = {{
    {"model.embed_tokens", "token_embd"},
    {"model.norm", "output_norm"},
    {"lm_head", "output"},
}};

// Splits "prefix.{i}.rest" into i and rest; false if `s` does not start with prefix.
bool split_layer(std::string_view s, std::string_view prefix, long& layer, std::string_view& rest) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  size_t k = 0;
  layer = 0;
  while (k < s.size() && s[k] >= '0' && s[k] <= '9') {
    if (layer > 1'000'000) return false;
    layer = layer * 10 + (s[k] - '0');
    ++k;
  }
  if (k == 0 || k >= s.size() || s[k] != '.') return false;
  rest = s.substr(k + 1);
  return true;
}

// Finds the table entry whose `from` side is a dotted prefix of `rest`; returns the
// translated module plus the unchanged suffix.
template <size_t N>
std::optional<std::string> map_module(const std::array<Pair, N>& table, std::string_view rest, bool hf_to_gguf) {
  for (const Pair& p : table) {
    const std::string_view from = hf_to_gguf ? p.hf : p.gguf;
    const std::string_view to = hf_to_gguf ? p.gguf : p.hf;
    if (rest.size() > from.size() && rest.starts_with(from) && rest[from.size()] == '.') {
      return std::string(to) + std::string(rest.substr(from.size()));
    }
  }
  return std::nullopt;
}

std::optional<std::string> map_layer_module(std::string_view rest, const std::string& arch, bool hf_to_gguf) {
  if (auto m = map_module(kLayer, rest, hf_to_gguf)) return m;
  if (arch == "gemma3") return map_module(kLayerGemma, rest, hf_to_gguf);
  return map_module(kLayerLlama, rest, hf_to_gguf);
}

}  // namespace

std::optional<std::string> hf_to_gguf_name(const std::string& hf, const std::string& arch) {
  long layer = 0;
  std::string_view rest;
  if (split_layer(hf, "model.layers.", layer, rest)) {
    auto m = map_layer_module(rest, arch, true);
    if (!m) return std::nullopt;
    return "blk." + std::to_string(layer) + "." + *m;
  }
  return map_module(kGlobal, hf, true);
}

std::optional<std::string> gguf_to_hf_name(const std::string& gguf, const std::string& arch) {
  long layer = 0;
  std::string_view rest;
  if (split_layer(gguf, "blk.", layer, rest)) {
    auto m = map_layer_module(rest, arch, false);
    if (!m) return std::nullopt;
    return "model.layers." + std::to_string(layer) + "." + *m;
  }
  return map_module(kGlobal, gguf, false);
}

void rope_permute_rows(std::span<const uint8_t> in, std::span<uint8_t> out, int64_t n_head, int64_t head_dim,
                       int64_t row_bytes, bool to_gguf) {
  if (n_head <= 0 || head_dim <= 0 || head_dim % 2 != 0 || row_bytes <= 0) {
    fail("rope_permute_rows: bad shape (n_head {}, head_dim {}, row_bytes {})", n_head, head_dim, row_bytes);
  }
  const size_t total = size_t(n_head * head_dim * row_bytes);
  if (in.size() != total || out.size() != total) {
    fail("rope_permute_rows: {} / {} bytes given, {} heads × {} rows × {} bytes = {} expected", in.size(), out.size(),
         n_head, head_dim, row_bytes, total);
  }
  // Within a head, HF row r = j·(hd/2) + i (j ∈ {0,1}: first/second half of the pair) sits
  // at GGUF row 2i + j (convert_hf_to_gguf.py's reshape(n_head, 2, hd/2).swapaxes(1, 2)).
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t j = 0; j < 2; ++j) {
      for (int64_t i = 0; i < half; ++i) {
        const int64_t hf_row = h * head_dim + j * half + i;
        const int64_t gguf_row = h * head_dim + 2 * i + j;
        const int64_t src = to_gguf ? hf_row : gguf_row;
        const int64_t dst = to_gguf ? gguf_row : hf_row;
        std::memcpy(out.data() + dst * row_bytes, in.data() + src * row_bytes, size_t(row_bytes));
      }
    }
  }
}

}  // namespace imp
