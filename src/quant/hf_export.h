// Metadata across containers for `imp quantize`:
//   GGUF → HF folder: config.json synthesized from the GGUF's ModelConfig (llama, mistral,
//     qwen2, qwen3, gemma3 → LlamaForCausalLM, …). A GGUF has no tokenizer.json; the
//     tokenizer is not exported (the caller says so).
//   HF folder → GGUF: the llama-family KV pairs llama.cpp's converter writes
//     (general.architecture, {arch}.context_length, embedding_length, block_count,
//     feed_forward_length, attention.head_count(_kv), attention.key_length/value_length,
//     rope.dimension_count, rope.freq_base, attention.layer_norm_rms_epsilon, vocab_size) and
//     the tokenizer from tokenizer.json (tokenizer.ggml.model/pre/tokens/token_type/scores/
//     merges, special ids, add_bos_token, chat_template from tokenizer_config.json).
//   HF folder → HF folder: the auxiliary files (tokenizer*, generation_config.json,
//     chat_template.jinja, …) are copied.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf_writer.h"
#include "quant/quant_input.h"

namespace imp {

nlohmann::json hf_config_from_gguf(const QuantInput& in);
// Adds the model and tokenizer KV pairs of an HF input; returns notes on what is missing.
std::vector<std::string> gguf_metadata_from_hf(GgufWriter& w, const QuantInput& in);
// GGUF → HF folder: writes tokenizer.json and tokenizer_config.json into `dir` from the GGUF's
// tokenizer.ggml.* keys when its vocabulary is byte-level BPE (tokenizer.ggml.model "gpt2"):
// model BPE (vocab, merges, ignore_merges), added_tokens for control / user-defined tokens,
// pre_tokenizer = the pre id's regexes as Split(Isolated) + ByteLevel(use_regex false),
// ByteLevel decoder; tokenizer_config.json: add_bos_token, bos/eos/unk/pad token texts,
// chat_template. Returns a note for what it could not write (no tokenizer; a SentencePiece
// vocabulary, whose GGUF scores have no tokenizer.json BPE equivalent), else nullopt.
std::optional<std::string> write_hf_tokenizer_from_gguf(const QuantInput& in, const std::string& dir);
// Copies every regular file of the HF input folder that is not a weight shard, index or
// config.json (those the writer produces) into `dir`; returns their names.
std::vector<std::string> copy_hf_aux_files(const std::string& in_dir, const std::string& dir);

}  // namespace imp
