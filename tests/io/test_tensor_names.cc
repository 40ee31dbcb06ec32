#include "io/tensor_names.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace imp {
namespace {

TEST(TensorNames, LlamaRoundTrip) {
  const char* hf[] = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                      "model.layers.0.self_attn.q_proj.weight", "model.layers.12.self_attn.k_proj.bias",
                      "model.layers.3.self_attn.o_proj.weight_scale", "model.layers.7.mlp.down_proj.input_scale",
                      "model.layers.1.post_attention_layernorm.weight", "model.layers.2.self_attn.q_norm.weight"};
  const char* gg[] = {"token_embd.weight", "output_norm.weight", "output.weight", "blk.0.attn_q.weight",
                      "blk.12.attn_k.bias", "blk.3.attn_output.weight_scale", "blk.7.ffn_down.input_scale",
                      "blk.1.ffn_norm.weight", "blk.2.attn_q_norm.weight"};
  for (size_t k = 0; k < std::size(hf); ++k) {
    EXPECT_EQ(hf_to_gguf_name(hf[k], "llama").value_or("?"), gg[k]);
    EXPECT_EQ(gguf_to_hf_name(gg[k], "llama").value_or("?"), hf[k]);
  }
  EXPECT_FALSE(hf_to_gguf_name("model.layers.x.mlp.up_proj.weight", "llama"));
  EXPECT_FALSE(hf_to_gguf_name("model.layers.1.mlp.unknown.weight", "llama"));
  EXPECT_FALSE(gguf_to_hf_name("blk.1.post_ffw_norm", "llama"));  // no suffix
}

TEST(TensorNames, GemmaNorms) {
  EXPECT_EQ(hf_to_gguf_name("model.layers.4.post_attention_layernorm.weight", "gemma3").value_or("?"),
            "blk.4.post_attention_norm.weight");
  EXPECT_EQ(hf_to_gguf_name("model.layers.4.pre_feedforward_layernorm.weight", "gemma3").value_or("?"),
            "blk.4.ffn_norm.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.4.post_ffw_norm.weight", "gemma3").value_or("?"),
            "model.layers.4.post_feedforward_layernorm.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.4.ffn_norm.weight", "gemma3").value_or("?"),
            "model.layers.4.pre_feedforward_layernorm.weight");
}

TEST(TensorNames, RopePermutationMatchesConvertScript) {
  // 2 heads of head_dim 6, one byte per row: GGUF row h·6 + 2i + j holds HF row h·6 + 3j + i.
  std::vector<uint8_t> hf(12), gguf(12), back(12);
  std::iota(hf.begin(), hf.end(), uint8_t(0));
  rope_permute_rows(hf, gguf, 2, 6, 1, true);
  const std::vector<uint8_t> want = {0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11};
  EXPECT_EQ(gguf, want);
  rope_permute_rows(gguf, back, 2, 6, 1, false);
  EXPECT_EQ(back, hf);
  EXPECT_THROW(rope_permute_rows(hf, gguf, 2, 5, 1, true), std::exception);
  std::vector<uint8_t> small(11);
  EXPECT_THROW(rope_permute_rows(hf, small, 2, 6, 1, true), std::exception);
}

}  // namespace
}  // namespace imp
