// `imp imatrix -m MODEL -f TEXT -o FILE [--ctx N] [--chunks K] [--threads T]`
//
// Collects llama.cpp's importance matrix: for every linear weight of the model, Σx² of each
// input column over the calibration tokens, through the runtime's forward pass
// (quant/calib.h), and writes it in llama-imatrix's GGUF format (quant/imatrix.h), which
// llama-quantize --imatrix and `imp quantize --imatrix` read. The chunks (of --ctx tokens)
// come from the END of the text, so perplexity/KLD on its beginning stays unseen.
#include <fmt/core.h>

#include <chrono>
#include <filesystem>

#include "common/error.h"
#include "quant/calib.h"
#include "quant/imatrix.h"
#include "tools/commands.h"

namespace imp {
namespace {

struct ImatrixArgs {
  std::string model, text, out;
  int64_t ctx = 512, chunks = 0;
  int threads = 0;
  bool no_progress = false;
};

void run_imatrix(const ImatrixArgs& a) {
  auto m = eval::load_model(a.model, a.threads);
  quant::CalibCollector c(quant::CalibOptions{});
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n_tok = quant::run_calibration(*m, a.text, a.ctx, a.chunks, c, !a.no_progress);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const quant::Imatrix im = quant::imatrix_from_calibration(
      c, {std::filesystem::path(a.text).filename().string()}, uint32_t(n_tok / a.ctx), uint32_t(a.ctx));
  quant::write_imatrix(im, a.out);
  fmt::print(stderr, "imatrix: {} entries from {} tokens ({} chunks of {}) in {:.1f} s -> {}\n", im.entries.size(),
             n_tok, n_tok / a.ctx, a.ctx, secs, a.out);
}

}  // namespace

void register_imatrix_command(CLI::App& app) {
  auto a = std::make_shared<ImatrixArgs>();
  auto* cmd = app.add_subcommand("imatrix", "Importance matrix (llama.cpp GGUF imatrix format) from a calibration text");
  cmd->add_option("-m,--model", a->model, "GGUF file or Hugging Face folder")->required();
  cmd->add_option("-f,--file", a->text, "calibration text (chunks are taken from its end)")->required();
  cmd->add_option("-o,--output", a->out, "output imatrix GGUF")->required();
  cmd->add_option("--ctx", a->ctx, "tokens per chunk")->capture_default_str();
  cmd->add_option("--chunks", a->chunks, "chunks to run (0: every whole chunk)")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "threads (0: all cores)");
  cmd->add_flag("--no-progress", a->no_progress, "no progress bar on stderr");
  cmd->callback([a] { run_imatrix(*a); });
}

}  // namespace imp
