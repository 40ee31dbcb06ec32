#include "tools/sampling_options.h"

namespace imp {

void add_sampling_options(CLI::App* cmd, SamplerParams& sampling, int64_t& seed) {
  cmd->add_option("--temp", sampling.temperature, "Temperature (0 = greedy)");
  cmd->add_option("--top-k", sampling.top_k, "Top-k (0 = off)");
  cmd->add_option("--top-p", sampling.top_p, "Top-p (1 = off)");
  cmd->add_option("--min-p", sampling.min_p, "Min-p (0 = off)");
  cmd->add_option("--repeat-penalty", sampling.repeat_penalty, "Repetition penalty (1 = off)");
  cmd->add_option("--repeat-last-n", sampling.repeat_last_n, "Tokens the penalty looks back over");
  cmd->add_option("--seed", seed, "Sampling seed (default: random)");
}

}  // namespace imp
