// Calibration statistics of every linear layer's input, gathered through the runtime's
// forward pass (LlamaModel::set_observer) for imp imatrix, AWQ, GPTQ and SmoothQuant.
//
// Per weight W (rows = out features, cols = in features) whose input X is (n_tok, cols):
//   sum_x2[j]  = Σ_t X[t,j]²        (llama.cpp's imatrix "in_sum2"; counts = n_tok)
//   sum_abs[j] = Σ_t |X[t,j]|       (AWQ's per-channel mean |x| = sum_abs / n_tok)
//   amax_col[j] = max_t |X[t,j]|    (SmoothQuant's activation range per channel)
//   amax       = max over all       (NVFP4 input_scale = amax/(6·448), FP8 = amax/448)
//   xtx        = XᵀX, cols × cols row-major doubles (GPTQ's Hessian H = 2·XᵀX/n), optional
//   samples    = up to max_samples rows of X kept by reservoir sampling (AWQ's search), optional
// Weights that see the same input buffer in the same call sequence (q/k/v after attn_norm,
// gate/up after ffn_norm) share one statistics object: `alias` maps them to the first name.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "eval/chunks.h"
#include "model/llama.h"

namespace imp::quant {

struct LinearStats {
  int64_t cols = 0;
  int64_t n_tok = 0;
  std::vector<double> sum_x2, sum_abs;
  std::vector<float> amax_col;
  float amax = 0.0f;
  std::vector<double> xtx;       // empty unless CalibOptions::xtx
  std::vector<float> samples;    // n_samples × cols
  int64_t n_samples = 0;

  std::vector<float> mean_abs() const;  // sum_abs / n_tok
};

struct CalibOptions {
  bool xtx = false;          // accumulate XᵀX (GPTQ)
  int64_t max_samples = 0;   // activation rows kept per input (AWQ)
  uint32_t seed = 1234;
};

class CalibCollector {
 public:
  explicit CalibCollector(CalibOptions options);

  // The observer to hand to LlamaModel::set_observer; valid while this collector lives.
  const LlamaModel::LinearObserver& observer() const { return observer_; }
  // Accumulates one call directly (tests, or a runtime other than LlamaModel).
  void observe(const std::string& weight, const float* x, int64_t n_tok, int64_t cols);

  // Statistics of `weight` (following aliases); nullptr when it was never observed.
  const LinearStats* find(const std::string& weight) const;
  const std::map<std::string, LinearStats>& stats() const { return stats_; }
  const std::map<std::string, std::string>& aliases() const { return alias_; }
  std::vector<std::string> weight_names() const;  // every observed weight, aliases included

 private:
  CalibOptions opt_;
  std::map<std::string, LinearStats> stats_;
  std::map<std::string, std::string> alias_;  // weight -> owner of its statistics
  LlamaModel::LinearObserver observer_;
  std::mt19937_64 rng_;
  // The previous call, to recognise a weight fed the same buffer as the one before it.
  const float* last_x_ = nullptr;
  int64_t last_n_ = 0, last_cols_ = 0;
  std::string last_owner_;
};

// Tokenizes `text_path` with the model's tokenizer (eval/chunks.h: BOS per the metadata,
// at the head of every chunk) and runs n_chunk chunks of n_ctx tokens with the collector's
// observer installed. The chunks are taken from the END of the text, so that evaluating on
// its beginning (imp perplexity / kld) measures text the calibration did not see. Returns
// the number of tokens observed. Throws when the text holds fewer than 2·n_ctx tokens.
int64_t run_calibration(eval::LoadedModel& m, const std::string& text_path, int64_t n_ctx, int64_t n_chunk,
                        CalibCollector& collector, bool progress);

}  // namespace imp::quant
