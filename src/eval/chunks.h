// Chunked evaluation of a tokenized text, llama.cpp's perplexity scheme:
//   the text is tokenized whole (BOS prepended when the model's metadata asks for it);
//   n_chunk = min(--chunks, n_tokens / n_ctx) chunks of n_ctx consecutive tokens, starting
//   at 0, n_ctx, 2·n_ctx …; at least 2·n_ctx tokens are required (llama.cpp's check);
//   when the model adds BOS, each chunk's first token is replaced by BOS;
//   each chunk runs from an empty KV cache, fed in batches of n_batch tokens;
//   positions first = n_ctx/2 … n_ctx − 2 are scored, each predicting the token after it,
//   so n_scored = n_ctx − 1 − first tokens per chunk (the first half only gives context).
#pragma once

#include "formats/kv_type.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "io/model_file.h"
#include "model/model.h"
#include "planner/storage_plan.h"
#include "runtime/tokenizer.h"

namespace imp::eval {

struct LoadedModel {
  std::unique_ptr<ModelFile> file;
  StoragePlan plan;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string name;  // general.name, else the file name
};

// Loads a model for evaluation on the CPU (fast op path with F32 activations — quality is
// measured exactly — mapped weights), optionally with activation-quantization emulation
// (backends/cpu/act_emulation.h).
std::unique_ptr<LoadedModel> load_model(const std::string& path, int threads,
                                        ActEmulation act_emulation = ActEmulation::kNone);
// The same on a given backend, planned with its caps (tools: `--device`). tokenizer_from:
// another model file (GGUF or HF folder) whose tokenizer to use (`--tokenizer`), e.g. for a
// folder written from a GGUF whose SentencePiece tokenizer imp quantize could not export;
// an error when it has more tokens than the model has logits. Empty: the model's own.
// policy: the plan policy (--storage); with a decode cache or the NVFP4 lm_head opt-in the
// model is planned as a decode step reads it (as_decode_plan), so every pass scores the copies.
std::unique_ptr<LoadedModel> load_model(const std::string& path, const DeviceCaps& caps,
                                        std::unique_ptr<Backend> backend, const std::string& tokenizer_from = "",
                                        const PlanPolicy& policy = {});
// The activation emulation the model runs with (CPU backend only; "none" elsewhere).
ActEmulation act_emulation_of(const LoadedModel& m);
std::string act_emulation_summary(const LoadedModel& m);

// Tokenizes a text file whole as llama.cpp's perplexity does: BOS per the model's metadata,
// special-token text left as plain text. Throws when the file cannot be read or is empty.
std::vector<int32_t> tokenize_file(const LoadedModel& m, const std::string& path);

struct ChunkSpec {
  int64_t n_ctx = 0, n_chunk = 0, first = 0, n_batch = 0;
  int32_t bos = -1;  // put at the head of every chunk; -1 = tokens as they are
  int64_t n_scored() const { return n_ctx - 1 - first; }
};

// max_chunks ≤ 0 means every whole chunk. n_batch ≤ 0 means n_ctx. Throws with the token
// counts when the text is shorter than 2·n_ctx tokens or the context exceeds the model's.
ChunkSpec plan_chunks(const LoadedModel& m, int64_t n_tokens, int64_t n_ctx, int64_t max_chunks, int64_t n_batch);

// Runs every chunk; on_chunk(c, logits, targets) gets the scored rows (n_scored × n_vocab)
// and the tokens they predict. Draws a progress bar on stderr when progress is set.
using ChunkCallback = std::function<void(int64_t, std::span<const float>, std::span<const int32_t>)>;
void run_chunks(LoadedModel& m, std::span<const int32_t> tokens, const ChunkSpec& spec, KvType kv_dtype, bool progress,
                const ChunkCallback& on_chunk);


}  // namespace imp::eval
