#include "eval/chunks.h"

#include <fmt/core.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/error.h"
#include "runtime/kv_cache.h"

namespace imp::eval {

std::unique_ptr<LoadedModel> load_model(const std::string& path, int threads, ActEmulation act_emulation) {
  return load_model(path, cpu_device_caps(),
                    std::make_unique<CpuBackend>(CpuOpsPath::kFast, threads, ActQuant::kNone, act_emulation));
}

ActEmulation act_emulation_of(const LoadedModel& m) {
  const auto* cpu = dynamic_cast<const CpuBackend*>(m.backend.get());
  return cpu ? cpu->act_emulator().mode() : ActEmulation::kNone;
}

std::string act_emulation_summary(const LoadedModel& m) {
  const auto* cpu = dynamic_cast<const CpuBackend*>(m.backend.get());
  return cpu ? cpu->act_emulator().summary() : std::string("none");
}

std::unique_ptr<LoadedModel> load_model(const std::string& path, const DeviceCaps& caps,
                                        std::unique_ptr<Backend> backend, const std::string& tokenizer_from,
                                        const PlanPolicy& policy) {
  auto m = std::make_unique<LoadedModel>();
  m->file = open_model_file(path);
  m->plan = plan_storage(*m->file, caps, policy);
  if (policy.decode_cache_nvfp4 || policy.nvfp4_lm_head) m->plan = as_decode_plan(std::move(m->plan));
  m->backend = std::move(backend);
  m->model = create_model(*m->file, m->plan, *m->backend);
  if (tokenizer_from.empty()) {
    m->tokenizer = Tokenizer::from_model(*m->file);
  } else {
    m->tokenizer = Tokenizer::from_model(*open_model_file(tokenizer_from));
    if (m->tokenizer->n_vocab() > m->model->n_vocab()) {
      fail("--tokenizer {}: {} tokens, but {} has {} logits", tokenizer_from, m->tokenizer->n_vocab(), path,
           m->model->n_vocab());
    }
  }
  m->name = !m->file->config.name.empty() ? m->file->config.name : std::filesystem::path(path).filename().string();
  return m;
}

std::vector<int32_t> tokenize_file(const LoadedModel& m, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("-f: cannot open '{}'", path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) fail("-f: '{}' is empty", path);
  return m.tokenizer->encode(text, m.tokenizer->add_bos_default(), false);
}

ChunkSpec plan_chunks(const LoadedModel& m, int64_t n_tokens, int64_t n_ctx, int64_t max_chunks, int64_t n_batch) {
  if (n_ctx < 4) fail("--ctx {} is too small (at least 4 tokens)", n_ctx);
  if (n_ctx > m.model->n_ctx()) fail("--ctx {} exceeds the model's trained context of {} tokens", n_ctx, m.model->n_ctx());
  if (n_tokens < 2 * n_ctx)
    fail("the text has {} tokens; evaluating with a context of {} needs at least {} (2·ctx)", n_tokens, n_ctx, 2 * n_ctx);
  ChunkSpec s;
  s.n_ctx = n_ctx;
  s.n_chunk = n_tokens / n_ctx;
  if (max_chunks > 0) s.n_chunk = std::min(s.n_chunk, max_chunks);
  s.first = n_ctx / 2;
  s.n_batch = n_batch > 0 ? std::min(n_batch, n_ctx) : n_ctx;
  s.bos = m.tokenizer->add_bos_default() ? m.tokenizer->bos_id() : -1;
  return s;
}

void run_chunks(LoadedModel& m, std::span<const int32_t> tokens, const ChunkSpec& s, KvType kv_dtype, bool progress,
                const ChunkCallback& on_chunk) {
  if (int64_t(tokens.size()) < s.n_chunk * s.n_ctx) fail("run_chunks: {} tokens for {} chunks of {}", tokens.size(), s.n_chunk, s.n_ctx);
  const int64_t n_vocab = m.model->n_vocab();
  const std::unique_ptr<KvStore> kv_ptr = m.backend->create_kv_cache(m.model->kv_config(s.n_ctx, kv_dtype));
  KvStore& kv = *kv_ptr;
  std::vector<int32_t> chunk(size_t(s.n_ctx));
  std::vector<float> batch_logits, scored(size_t(s.n_scored() * n_vocab));
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < s.n_chunk; ++c) {
    std::copy_n(tokens.begin() + c * s.n_ctx, s.n_ctx, chunk.begin());
    const std::vector<int32_t> targets(chunk.begin() + s.first + 1, chunk.end());  // before BOS replacement
    if (s.bos >= 0) chunk[0] = s.bos;
    kv.clear();
    for (int64_t b = 0; b < s.n_ctx; b += s.n_batch) {
      const int64_t n = std::min(s.n_batch, s.n_ctx - b);
      m.model->forward(std::span(chunk).subspan(size_t(b), size_t(n)), kv, true, batch_logits);
      // Keep rows of positions first … n_ctx − 2.
      for (int64_t i = 0; i < n; ++i) {
        const int64_t pos = b + i;
        if (pos < s.first || pos > s.n_ctx - 2) continue;
        std::copy_n(batch_logits.begin() + i * n_vocab, n_vocab, scored.begin() + (pos - s.first) * n_vocab);
      }
    }
    on_chunk(c, scored, targets);
    if (progress) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const int width = 30;
      const int done = int(width * (c + 1) / s.n_chunk);
      const double eta = secs / double(c + 1) * double(s.n_chunk - c - 1);
      fmt::print(stderr, "\r[{}{}] {}/{} chunks, {:.1f} s elapsed, ETA {:.1f} s", std::string(size_t(done), '#'),
                 std::string(size_t(width - done), ' '), c + 1, s.n_chunk, secs, eta);
      if (c + 1 == s.n_chunk) fmt::print(stderr, "\n");
      std::fflush(stderr);
    }
  }
}

}  // namespace imp::eval
