// `imp perplexity -m MODEL -f TEXT [--ctx N] [--chunks K] [--batch B] [--kv-dtype f16|f32]
//  [--act-emulate nvfp4|mxfp4|fp8] [--threads T] [--json]`
//
// llama.cpp's perplexity (eval/chunks.h gives the chunking): prints the running estimate
// after every chunk as llama.cpp does ("[1]x.xxxx,[2]…") and then
// "Final estimate: PPL = X +/- SE" (eval/stats.h gives the error formula). --json prints
// one JSON object instead (every number at full precision). Progress goes to stderr.
#include <fmt/core.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "eval/chunks.h"
#include "formats/kv_type.h"
#include "eval/stats.h"
#include "tools/commands.h"
#include "tools/device_select.h"
#include "tools/plan_options.h"

namespace imp {
namespace {

struct PerplexityArgs {
  std::string model, text, kv_dtype = "f32";  // as imp run: f16 KV moves logits ~1e-3
  std::string tokenizer;                       // --tokenizer: another model's
  std::string act_emulate = "none";
  int64_t ctx = 512, chunks = 0, batch = 0;
  int threads = 0;
  std::string device = "cpu", gemm = "bf16";
  PlanOptions plan_opts;
  bool json = false, no_progress = false;
};

void run_perplexity(const PerplexityArgs& a) {
  const KvType kv_dtype = parse_kv_type(a.kv_dtype);
  auto m = eval::load_model(a.model, device_caps(a.device),
                            make_backend(a.device, CpuOpsPath::kFast, a.threads, ActQuant::kNone, a.gemm,
                                         parse_act_emulation(a.act_emulate)),
                            a.tokenizer, a.plan_opts.policy());
  const std::vector<int32_t> tokens = eval::tokenize_file(*m, a.text);
  const eval::ChunkSpec spec = eval::plan_chunks(*m, int64_t(tokens.size()), a.ctx, a.chunks, a.batch);
  const int64_t n_vocab = m->model->n_vocab();
  if (!a.json)
    fmt::print(stderr, "perplexity: {} tokens, {} chunks of {} (scoring {} per chunk), batch {}\n", tokens.size(),
               spec.n_chunk, spec.n_ctx, spec.n_scored(), spec.n_batch);

  eval::MeanAccumulator nll;
  std::vector<double> running;
  eval::run_chunks(*m, tokens, spec, kv_dtype, !a.no_progress, [&](int64_t c, std::span<const float> logits, std::span<const int32_t> targets) {
    for (size_t i = 0; i < targets.size(); ++i) {
      const std::span<const float> row = logits.subspan(i * size_t(n_vocab), size_t(n_vocab));
      nll.add(eval::log_sum_exp(row) - double(row[size_t(targets[i])]));
    }
    running.push_back(std::exp(nll.mean()));
    if (!a.json) {
      fmt::print("[{}]{:.4f},", c + 1, running.back());
      std::fflush(stdout);
    }
  });
  const eval::Perplexity p = eval::perplexity(nll);
  if (a.json) {
    nlohmann::json j = {{"model", m->name},         {"n_ctx", spec.n_ctx},       {"n_chunk", spec.n_chunk},
                        {"n_batch", spec.n_batch},  {"n_tokens", tokens.size()}, {"n_scored", nll.count},
                        {"nll_mean", nll.mean()},   {"ppl", p.ppl},              {"ppl_error", p.error},
                        {"running_ppl", running}, {"kv_type", a.kv_dtype},
                        {"act_emulation", eval::act_emulation_summary(*m)}};
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("\nFinal estimate: PPL = {:.4f} +/- {:.5f}\n", p.ppl, p.error);
    if (eval::act_emulation_of(*m) != ActEmulation::kNone)
      fmt::print(stderr, "activation emulation: {}\n", eval::act_emulation_summary(*m));
  }
}

}  // namespace

void register_perplexity_command(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a model on a text (llama.cpp's method)");
  cmd->add_option("-m,--model", a->model, "GGUF file or Hugging Face folder")->required();
  cmd->add_option("-f,--file", a->text, "UTF-8 text file")->required();
  cmd->add_option("-c,--ctx", a->ctx, "Tokens per chunk (default 512)");
  cmd->add_option("--chunks", a->chunks, "Evaluate at most this many chunks (default: all)");
  cmd->add_option("-b,--batch", a->batch, "Tokens per forward pass (default: the whole chunk)");
  cmd->add_option("--kv-type,--kv-dtype", a->kv_dtype, "KV cache type: f32, f16, bf16, fp8_e4m3, int8, int4, nvfp4");
  cmd->add_option("--tokenizer", a->tokenizer,
                  "take the tokenizer from this model file (GGUF or folder) — for a folder written from a GGUF "
                  "whose SentencePiece tokenizer imp quantize does not export");
  cmd->add_option("--act-emulate", a->act_emulate,
                  "Fake-quantize every linear's input activations: none (default), nvfp4 (W4A4), mxfp4, fp8");
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all hardware threads)");
  cmd->add_option("--device", a->device, "Backend: cpu (default) or cuda");
  a->plan_opts.add_to(cmd, true);
  cmd->add_option("--gemm", a->gemm, "CUDA prefill GEMM precision: bf16 (default) or f32");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->add_flag("--no-progress", a->no_progress, "No progress bar on stderr");
  cmd->callback([a] { run_perplexity(*a); });
}

}  // namespace imp
