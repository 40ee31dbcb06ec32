// `imp kld -m MODEL -f TEXT --save-logits FILE [--ctx N] [--chunks K] [--top-k K]`
// `imp kld -m QUANT_MODEL -f TEXT --ref FILE`                       [--batch B] [--act-emulate M] [--json] …
//
// The first form runs the reference model over the text (eval/chunks.h) and stores, per
// scored token, the top-k logits and the log-sum-exp of the row (eval/ref_logits.h); it
// prints the reference perplexity. The second runs another model (typically a quantization
// of the same one) over the same tokens and prints llama.cpp's statistics: PPL of both,
// their ratio and difference, mean KLD ± error, percentiles, same-top-1 rate and RMS Δp
// (eval/kld.h says what the KLD measures with a finite top-k). The reference file's
// context and chunk count are reused; a file made from other tokens, another vocabulary
// or a truncated file is an error.
#include <fmt/core.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "eval/chunks.h"
#include "formats/kv_type.h"
#include "eval/kld.h"
#include "eval/ref_logits.h"
#include "eval/stats.h"
#include "tools/commands.h"
#include "tools/device_select.h"
#include "tools/plan_options.h"

namespace imp {
namespace {

struct KldArgs {
  std::string model, text, save, ref, kv_dtype = "f32";  // as imp run
  std::string tokenizer;                                 // --tokenizer: another model's
  std::string act_emulate = "none";
  int64_t ctx = 0, chunks = 0, batch = 0, top_k = 4096;  // ref_logits.h: why 4096
  int threads = 0;
  std::string device = "cpu", gemm = "bf16";
  PlanOptions plan_opts;
  bool json = false, no_progress = false;
};

void save_reference(const KldArgs& a) {
  const KvType kv_dtype = parse_kv_type(a.kv_dtype);
  auto m = eval::load_model(a.model, device_caps(a.device),
                            make_backend(a.device, CpuOpsPath::kFast, a.threads, ActQuant::kNone, a.gemm,
                                         parse_act_emulation(a.act_emulate)),
                            a.tokenizer, a.plan_opts.policy());
  const std::vector<int32_t> tokens = eval::tokenize_file(*m, a.text);
  const eval::ChunkSpec spec = eval::plan_chunks(*m, int64_t(tokens.size()), a.ctx > 0 ? a.ctx : 512, a.chunks, a.batch);
  const int64_t n_vocab = m->model->n_vocab();
  eval::RefHeader h;
  h.n_vocab = uint32_t(n_vocab);
  h.n_ctx = uint32_t(spec.n_ctx);
  h.n_chunk = uint32_t(spec.n_chunk);
  h.n_scored = uint32_t(spec.n_scored());
  if (a.top_k <= 0) fail("--top-k {} must be positive", a.top_k);
  h.top_k = uint32_t(std::min<int64_t>(a.top_k, n_vocab));
  h.tokens_hash = eval::hash_tokens(std::span(tokens).first(size_t(spec.n_chunk * spec.n_ctx)));
  h.model_name = m->name;
  eval::RefLogitsWriter w(a.save, h);
  eval::MeanAccumulator nll;
  eval::run_chunks(*m, tokens, spec, kv_dtype, !a.no_progress, [&](int64_t, std::span<const float> logits, std::span<const int32_t> targets) {
    for (size_t i = 0; i < targets.size(); ++i) {
      const std::span<const float> row = logits.subspan(i * size_t(n_vocab), size_t(n_vocab));
      w.add(row, targets[i]);
      nll.add(eval::log_sum_exp(row) - double(row[size_t(targets[i])]));
    }
  });
  w.finish();
  const eval::Perplexity p = eval::perplexity(nll);
  if (a.json) {
    const nlohmann::json j = {{"model", m->name},   {"saved", a.save},      {"n_ctx", spec.n_ctx}, {"n_chunk", spec.n_chunk},
                              {"top_k", h.top_k},   {"n_scored", nll.count}, {"ppl", p.ppl},        {"ppl_error", p.error},
                              {"kv_type", a.kv_dtype}, {"act_emulation", eval::act_emulation_summary(*m)}};
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("saved reference logits of {} tokens (top-{}) to {}\nFinal estimate: PPL = {:.4f} +/- {:.5f}\n", nll.count,
               h.top_k, a.save, p.ppl, p.error);
  }
}

void print_summary(const eval::KldSummary& s, const std::string& ref_name, const std::string& name) {
  fmt::print("reference: {}\nmodel    : {}\nscored tokens: {}\n\n", ref_name, name, s.n);
  fmt::print("====== Perplexity statistics ======\n");
  fmt::print("Mean PPL(Q)                   : {:10.6f} ± {:10.6f}\n", s.ppl_q.ppl, s.ppl_q.error);
  fmt::print("Mean PPL(base)                : {:10.6f} ± {:10.6f}\n", s.ppl_ref.ppl, s.ppl_ref.error);
  fmt::print("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n", 100.0 * s.cor_ln_ppl);
  fmt::print("Mean ln(PPL(Q)/PPL(base))     : {:10.6f} ± {:10.6f}\n", s.ln_ratio, s.ln_ratio_error);
  fmt::print("Mean PPL(Q)/PPL(base)         : {:10.6f} ± {:10.6f}\n", s.ratio, s.ratio_error);
  fmt::print("Mean PPL(Q)-PPL(base)         : {:10.6f}\n\n", s.ppl_diff);
  fmt::print("====== KL divergence statistics ======\n");
  fmt::print("Mean    KLD: {:10.6f} ± {:10.6f}\n", s.kld_mean, s.kld_error);
  fmt::print("Maximum KLD: {:10.6f}\n", s.kld_max);
  fmt::print("99.9%   KLD: {:10.6f}\n", s.kld_p999);
  fmt::print("99.0%   KLD: {:10.6f}\n", s.kld_p99);
  fmt::print("Median  KLD: {:10.6f}\n", s.kld_median);
  fmt::print("Minimum KLD: {:10.6f}\n", s.kld_min);
  fmt::print("Reference tail mass outside top-k (mean): {:.6f}\n\n", s.tail_ref_mean);
  fmt::print("====== Token probability statistics ======\n");
  fmt::print("Mean    Δp: {:6.3f} ± {:5.3f} %\n", 100.0 * s.dp_mean, 100.0 * s.dp_error);
  fmt::print("RMS Δp    : {:6.3f} ± {:5.3f} %\n", 100.0 * s.rms_dp, 100.0 * s.rms_dp_error);
  fmt::print("Same top p: {:6.3f} ± {:5.3f} %\n", 100.0 * s.same_top, 100.0 * s.same_top_error);
}

nlohmann::json summary_json(const eval::KldSummary& s) {
  return {{"n_scored", s.n},
          {"ppl_q", s.ppl_q.ppl},           {"ppl_q_error", s.ppl_q.error},
          {"ppl_base", s.ppl_ref.ppl},      {"ppl_base_error", s.ppl_ref.error},
          {"cor_ln_ppl", s.cor_ln_ppl},
          {"ln_ppl_ratio", s.ln_ratio},     {"ln_ppl_ratio_error", s.ln_ratio_error},
          {"ppl_ratio", s.ratio},           {"ppl_ratio_error", s.ratio_error},
          {"ppl_diff", s.ppl_diff},
          {"kld_mean", s.kld_mean},         {"kld_error", s.kld_error},
          {"kld_median", s.kld_median},     {"kld_p99", s.kld_p99},
          {"kld_p999", s.kld_p999},         {"kld_max", s.kld_max}, {"kld_min", s.kld_min},
          {"same_top", s.same_top},         {"same_top_error", s.same_top_error},
          {"dp_mean", s.dp_mean},           {"dp_error", s.dp_error},
          {"rms_dp", s.rms_dp},             {"rms_dp_error", s.rms_dp_error},
          {"ref_tail_mass_mean", s.tail_ref_mean}};
}

void compare_reference(const KldArgs& a) {
  const KvType kv_dtype = parse_kv_type(a.kv_dtype);
  const eval::RefLogits ref = eval::RefLogits::load(a.ref);
  const eval::RefHeader& h = ref.header();
  auto m = eval::load_model(a.model, device_caps(a.device),
                            make_backend(a.device, CpuOpsPath::kFast, a.threads, ActQuant::kNone, a.gemm,
                                         parse_act_emulation(a.act_emulate)),
                            a.tokenizer, a.plan_opts.policy());
  const int64_t n_vocab = m->model->n_vocab();
  if (n_vocab != int64_t(h.n_vocab))
    fail("--ref: '{}' was made with n_vocab {} ({}), this model has {}", a.ref, h.n_vocab, h.model_name, n_vocab);
  if (a.ctx > 0 && a.ctx != int64_t(h.n_ctx)) fail("--ctx {} differs from the reference file's context of {}", a.ctx, h.n_ctx);
  if (a.chunks > 0 && a.chunks != int64_t(h.n_chunk)) fail("--chunks {} differs from the reference file's {} chunks", a.chunks, h.n_chunk);
  const std::vector<int32_t> tokens = eval::tokenize_file(*m, a.text);
  const eval::ChunkSpec spec = eval::plan_chunks(*m, int64_t(tokens.size()), h.n_ctx, h.n_chunk, a.batch);
  if (spec.n_chunk != int64_t(h.n_chunk) || spec.n_scored() != int64_t(h.n_scored) ||
      eval::hash_tokens(std::span(tokens).first(size_t(spec.n_chunk * spec.n_ctx))) != h.tokens_hash)
    fail("--ref: '{}' ({}) was computed on other tokens than this text gives with this model's tokenizer "
         "(token hash or chunk count differs)", a.ref, h.model_name);
  std::vector<eval::KldSample> samples;
  samples.reserve(ref.size());
  eval::run_chunks(*m, tokens, spec, kv_dtype, !a.no_progress, [&](int64_t c, std::span<const float> logits, std::span<const int32_t> targets) {
    for (size_t i = 0; i < targets.size(); ++i) {
      const uint64_t r = uint64_t(c) * h.n_scored + i;
      samples.push_back(eval::compare_token(ref.token(r), logits.subspan(i * size_t(n_vocab), size_t(n_vocab)), targets[i]));
    }
  });
  const eval::KldSummary s = eval::summarize_kld(samples);
  if (a.json) {
    nlohmann::json j = summary_json(s);
    j["reference"] = h.model_name;
    j["model"] = m->name;
    j["n_ctx"] = h.n_ctx;
    j["n_chunk"] = h.n_chunk;
    j["top_k"] = h.top_k;
    j["kv_type"] = a.kv_dtype;
    j["act_emulation"] = eval::act_emulation_summary(*m);
    fmt::print("{}\n", j.dump(2));
  } else {
    print_summary(s, h.model_name, m->name);
    if (eval::act_emulation_of(*m) != ActEmulation::kNone)
      fmt::print("Activation emulation: {}\n", eval::act_emulation_summary(*m));
  }
}

void run_kld(const KldArgs& a) {
  if (a.save.empty() == a.ref.empty()) fail("imp kld: give exactly one of --save-logits FILE or --ref FILE");
  if (a.save.empty()) {
    compare_reference(a);
  } else {
    save_reference(a);
  }
}

}  // namespace

void register_kld_command(CLI::App& app) {
  auto a = std::make_shared<KldArgs>();
  auto* cmd = app.add_subcommand("kld", "KL divergence of a model against stored reference logits");
  cmd->add_option("-m,--model", a->model, "GGUF file or Hugging Face folder")->required();
  cmd->add_option("-f,--file", a->text, "UTF-8 text file")->required();
  cmd->add_option("--save-logits", a->save, "Run the reference model and store its logits here");
  cmd->add_option("--ref", a->ref, "Compare against reference logits stored by --save-logits");
  cmd->add_option("-c,--ctx", a->ctx, "Tokens per chunk (saving: default 512; comparing: the file's)");
  cmd->add_option("--chunks", a->chunks, "Saving: evaluate at most this many chunks");
  cmd->add_option("--top-k", a->top_k, "Saving: logits kept per token (default 4096, capped at n_vocab = exact KLD)");
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
  cmd->callback([a] { run_kld(*a); });
}

}  // namespace imp
