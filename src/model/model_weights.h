// What every architecture's loader and forward pass share (llama.cc, gemma3.cc):
//
// ModelWeights takes a model's weights by GGUF name (a Hugging Face name in the file is
// found too, model.h find_weight): it checks each tensor's shape against the config, holds
// it as the StoragePlan row says — mapped in place, or converted once at load into memory
// it owns (tiers f32/bf16; vectors always F32) — and hands it to the backend. Nothing here
// picks a tier: the planner did. Checkpoint packings (GPTQ v1/v2, AutoAWQ GEMM int4 words)
// are repacked to INT4_GROUP's canonical planes here (io/schemes/gptq.h), owned; act-order
// GPTQ (columns permuted across groups) is dequantized and un-permuted into the f32/bf16
// tier the planner gives it.
//
// ForwardActivations: one decoder step's activation buffers on the backend, (cap, width)
// each, logits (cap, n_vocab). A model keeps one set for decode (fixed pointers, so a
// backend can replay a captured graph) and one for prefill (grows with the batch).
#pragma once

#include <deque>
#include <string>

#include "io/model_file.h"
#include "planner/storage_plan.h"
#include "runtime/backend.h"

namespace imp {

class ModelWeights {
 public:
  ModelWeights(const ModelFile& file, const StoragePlan& plan, Backend& backend)
      : file_(file), plan_(plan), backend_(backend) {}

  // (rows, cols) matrix as a host view (the embedding table, looked up on the host).
  QuantMatrix host_matrix(const std::string& name, int64_t rows, int64_t cols);
  // The same handed to the backend, with the checkpoint's static input scale if it has one.
  MatrixHandle matrix(const std::string& name, int64_t rows, int64_t cols);
  // An F32 vector of n (norm gains, biases) as a backend pointer; optional: nullptr when absent.
  // add: a constant added to every element (an owned copy), e.g. 1 for Gemma norm gains read
  // from a Hugging Face checkpoint, which stores w where GGUF stores 1 + w.
  const float* vector(const std::string& name, int64_t n, bool optional = false, float add = 0.0f);

 private:
  // A GPTQ/AWQ-packed tensor as canonical INT4_GROUP planes (or, act-order, f32/bf16 values).
  QuantMatrix repacked(const TensorSource& t, const StoragePlanRow& row, int64_t rows, int64_t cols);

  const ModelFile& file_;
  const StoragePlan& plan_;
  Backend& backend_;
  std::deque<OwnedQuantMatrix> owned_;  // weights converted at load (matrices: freed after the upload
                                        // when the backend keeps no host weights)
};

struct ForwardActivations {
  int64_t cap = 0;
  BackendBuffer x, h, q, k, v, att, o, g, u, logits;
  // Reallocates (empty) for n_tok tokens when the buffers are smaller.
  void ensure(Backend& backend, const ModelConfig& c, int64_t n_tok);
};

}  // namespace imp
