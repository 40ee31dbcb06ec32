// A synthetic byte-level BPE vocabulary for random-weight models (`imp synth`): a real,
// loadable GPT-2-style tokenizer of exactly n_vocab tokens, so `imp run -p …` works on a
// synthetic model without downloading one.
//   ids 0..255          : the 256 single bytes, spelled with the GPT-2 byte→unicode map
//   ids 256..n_vocab−3  : merged tokens; merge k joins token `left` with one of 27 common
//                         characters (a–z and 'Ġ', the spelled space), breadth first over
//                         the tokens made so far, so every merge names two existing tokens
//                         and ranks follow creation order
//   n_vocab−2, n_vocab−1: "<|begin_of_text|>" (bos) and "<|end_of_text|>" (eos), control
// Deterministic: the same n_vocab always gives the same vocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace imp {

struct SynthVocab {
  std::vector<std::string> tokens;  // spelled (byte→unicode) token texts, id order
  std::vector<std::string> merges;  // "left right", rank order
  std::vector<int32_t> types;       // GGUF token types: 1 normal, 3 control
  int32_t bos = 0, eos = 0;
};

// n_vocab ≥ 259 (256 bytes, one merge, two control tokens); throws otherwise.
SynthVocab make_synth_vocab(int64_t n_vocab);

}  // namespace imp
