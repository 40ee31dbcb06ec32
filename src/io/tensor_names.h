// Tensor names: Hugging Face (transformers) ↔ GGUF (llama.cpp), for the decoder-only
// families imp runs (llama, mistral, qwen2, qwen3, gemma3). The models (src/model/) use GGUF
// names; the HF loader path and the quantizer's writers translate through these.
//
//   model.embed_tokens.weight                      ↔ token_embd.weight
//   model.norm.weight                              ↔ output_norm.weight
//   lm_head.weight                                 ↔ output.weight
//   model.layers.{i}.self_attn.{q,k,v,o}_proj.*    ↔ blk.{i}.attn_{q,k,v,output}.*
//   model.layers.{i}.self_attn.{q,k}_norm.weight   ↔ blk.{i}.attn_{q,k}_norm.weight
//   model.layers.{i}.input_layernorm.weight        ↔ blk.{i}.attn_norm.weight
//   model.layers.{i}.post_attention_layernorm.weight ↔ blk.{i}.ffn_norm.weight          (llama, qwen)
//                                                    blk.{i}.post_attention_norm.weight (gemma3)
//   model.layers.{i}.pre_feedforward_layernorm.weight  ↔ blk.{i}.ffn_norm.weight        (gemma3)
//   model.layers.{i}.post_feedforward_layernorm.weight ↔ blk.{i}.post_ffw_norm.weight   (gemma3)
//   model.layers.{i}.mlp.{gate,up,down}_proj.*     ↔ blk.{i}.ffn_{gate,up,down}.*
// The suffix after the module (".weight", ".bias", ".weight_scale", ".input_scale", …) is
// carried over unchanged. Names outside this table map to std::nullopt.
//
// Beware: llama/mistral GGUFs store attn_q/attn_k rows permuted for adjacent-pair RoPE
// (../shared/specs/formats.md §4.7); renaming does not permute — see rope_permute_rows().
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace imp {

// `arch` is the GGUF architecture name ("llama", "qwen2", "gemma3", …); it only matters
// for the gemma3 norm names.
std::optional<std::string> hf_to_gguf_name(const std::string& hf, const std::string& arch);
std::optional<std::string> gguf_to_hf_name(const std::string& gguf, const std::string& arch);

// Row permutation between HF (half-split RoPE pairs (i, i+hd/2)) and llama.cpp's GGUF order
// (adjacent pairs (2i, 2i+1)) for a Q or K projection with n_head heads of head_dim rows.
// `to_gguf` = true: HF → GGUF (what convert_hf_to_gguf.py does); false: the inverse.
// rows = n_head·head_dim rows of row_bytes bytes each, permuted within each head.
void rope_permute_rows(std::span<const uint8_t> in, std::span<uint8_t> out, int64_t n_head, int64_t head_dim,
                       int64_t row_bytes, bool to_gguf);

}  // namespace imp
