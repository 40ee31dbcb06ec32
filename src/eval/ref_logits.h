// Reference logits for `imp kld`: what the full-precision model predicted at every scored
// position, stored compactly so a quantized model can be compared against it later.
//
// File layout (little-endian, no padding):
//   header   char[8] "IMPREFL1"
//            u32 n_vocab, n_ctx, n_chunk, n_scored (positions scored per chunk), top_k
//            u64 tokens_hash   FNV-1a 64 over the first n_chunk·n_ctx token ids (i32 LE),
//                              as tokenized, before BOS is put at the head of each chunk
//            u32 name_len, then name_len bytes of model name (general.name or file name)
//   records  n_chunk · n_scored of, in scoring order:
//            f64 lse           log Σ_v exp(logit_v) of the full row
//            f32 next_logit    logit of the token that actually follows
//            i32 ids[top_k]    the top_k ids, logit descending (lower id first on ties)
//            f32 logits[top_k] their logits
//   trailer  char[8] "IMPREFND"
// A file whose size is not exactly header + records + trailer is reported as truncated.
//
// Why top-k + lse instead of llama.cpp's full rows of uint16 log-probs (2·n_vocab bytes a
// token, 96 KB for a 49k vocabulary): every stored log-prob (logit − lse) is exact rather
// than rounded to 16/65535 nats, so a model compared against its own file gives a KLD of
// exactly 0, and the file is as small as the accuracy asked for. What is given up is the
// inside of the reference's tail (eval/kld.h). Measured on SmolLM2-135M Q4_1 (F16 against
// F32 KV cache, 126 tokens of Pride and Prejudice, exact mean KLD 0.0037149 from
// --top-k n_vocab):
//   top_k     bytes/token   mean KLD    error   mean tail mass
//   32           268        0.0030763   −17 %   0.115
//   256         2060        0.0035370   −4.8 %  0.031
//   1024        8204        0.0036577   −1.5 %  0.0099
//   4096       32780        0.0037041   −0.3 %  0.0018
// so imp kld defaults to 4096: three significant digits at a third of llama.cpp's size.
// The reference PPL, same-top-1 and Δp need only lse, next_logit and ids[0]: exact at any k.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace imp::eval {

struct RefHeader {
  uint32_t n_vocab = 0, n_ctx = 0, n_chunk = 0, n_scored = 0, top_k = 0;
  uint64_t tokens_hash = 0;
  std::string model_name;
};

// One scored position, as read back (views into RefLogits' storage).
struct RefToken {
  double lse = 0.0;
  float next_logit = 0.0f;
  std::span<const int32_t> ids;
  std::span<const float> logits;
};

uint64_t hash_tokens(std::span<const int32_t> tokens);

// The top k ids of a row by logit (descending; lower id first on ties), k ≤ row size.
std::vector<int32_t> top_k_ids(std::span<const float> logits, int64_t k);

class RefLogitsWriter {
 public:
  RefLogitsWriter(const std::string& path, const RefHeader& header);
  ~RefLogitsWriter();
  RefLogitsWriter(const RefLogitsWriter&) = delete;
  RefLogitsWriter& operator=(const RefLogitsWriter&) = delete;
  // Appends one record from a full logits row (n_vocab floats) and the next token.
  void add(std::span<const float> logits, int32_t next);
  // Writes the trailer; throws unless exactly n_chunk · n_scored records were added.
  void finish();

 private:
  std::string path_;
  RefHeader header_;
  std::FILE* f_ = nullptr;
  uint64_t records_ = 0;
};

class RefLogits {
 public:
  // Reads and validates the whole file; throws imp::Error naming the file and the problem.
  static RefLogits load(const std::string& path);
  const RefHeader& header() const { return header_; }
  uint64_t size() const { return n_records_; }
  RefToken token(uint64_t i) const;

 private:
  RefHeader header_;
  uint64_t n_records_ = 0;
  // The records split into arrays (n_records_, and n_records_ · top_k for ids/logits).
  std::vector<double> lse_;
  std::vector<float> next_logit_;
  std::vector<int32_t> ids_;
  std::vector<float> logits_;
};

}  // namespace imp::eval
