#include "quant/methods.h"

#include <chrono>
#include <fmt/format.h>

#include "common/error.h"
#include "eval/chunks.h"
#include "formats/traits.h"
#include "quant/awq.h"
#include "quant/smoothquant.h"

namespace imp::quant {

namespace {

const InputTensor* by_gguf(const QuantInput& in, const std::string& name, size_t* index) {
  for (size_t i = 0; i < in.tensors.size(); ++i) {
    if (in.tensors[i].gguf_name == name) {
      if (index) *index = i;
      return &in.tensors[i];
    }
  }
  return nullptr;
}

}  // namespace

bool known_method(const std::string& m) {
  return m == "rtn" || m == "imatrix" || m == "awq" || m == "gptq" || m == "smoothquant";
}

std::unique_ptr<MethodContext> MethodContext::prepare(const MethodParams& mp, const std::string& model_path,
                                                      const QuantInput& in, const std::vector<Decision>& decisions,
                                                      std::FILE* log) {
  if (!known_method(mp.method)) fail("quantize: unknown --method '{}' (rtn, imatrix, awq, gptq, smoothquant)", mp.method);
  const bool needs_calib = mp.method == "awq" || mp.method == "gptq" || mp.method == "smoothquant";
  if (needs_calib && mp.calib.empty()) fail("quantize: --method {} needs --calib TEXT", mp.method);
  if (mp.method == "imatrix" && mp.calib.empty() && mp.imatrix.empty())
    fail("quantize: --method imatrix needs --imatrix FILE or --calib TEXT");
  if (mp.method == "rtn" && mp.calib.empty() && mp.imatrix.empty()) return nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  auto ctx = std::unique_ptr<MethodContext>(new MethodContext());
  ctx->mp_ = mp;
  if (!mp.calib.empty()) {
    CalibOptions co;
    co.xtx = mp.method == "gptq";
    co.max_samples = mp.method == "awq" ? mp.awq_samples : 0;
    ctx->calib_ = std::make_unique<CalibCollector>(co);
    auto m = eval::load_model(model_path, mp.threads);
    const int64_t n = run_calibration(*m, mp.calib, mp.ctx, mp.chunks, *ctx->calib_, log != nullptr);
    if (log) fmt::print(log, "calibration: {} tokens ({} chunks of {}) from the end of {}\n", n, n / mp.ctx, mp.ctx, mp.calib);
  }
  if (!mp.imatrix.empty()) {
    const Imatrix im = read_imatrix(mp.imatrix);
    for (const auto& [name, e] : im.entries) ctx->importance_[name] = im.importance(name);
    if (log) fmt::print(log, "imatrix: {} entries from {}\n", im.entries.size(), mp.imatrix);
  } else if (ctx->calib_) {
    for (const std::string& w : ctx->calib_->weight_names()) {
      const LinearStats* s = ctx->calib_->find(w);
      std::vector<float> v(size_t(s->cols));
      for (int64_t j = 0; j < s->cols; ++j) v[size_t(j)] = float(s->sum_x2[size_t(j)] / double(s->n_tok));
      ctx->importance_[w] = std::move(v);
    }
  }

  if (mp.method == "awq" || mp.method == "smoothquant") {
    const ModelConfig& c = in.model->config;
    const bool v_to_o = c.n_head > 0 && c.n_head == c.n_head_kv;
    int64_t n_groups = 0;
    double err_rtn = 0, err_best = 0;
    for (const ScaleGroup& g : llama_scale_groups(c.n_layer, v_to_o)) {
      const LinearStats* st = ctx->calib_->find(g.weights[0]);
      size_t prev_i = 0;
      if (!st || !by_gguf(in, g.prev, &prev_i)) continue;
      std::vector<std::vector<float>> data;
      std::vector<WeightView> views;
      bool ok = true;
      for (const std::string& w : g.weights) {
        size_t i = 0;
        const InputTensor* t = by_gguf(in, w, &i);
        if (!t || t->cols() != st->cols) {
          ok = false;
          break;
        }
        data.push_back(load_f32(*t));
      }
      if (!ok) continue;
      for (size_t k = 0; k < g.weights.size(); ++k) {
        size_t i = 0;
        const InputTensor* t = by_gguf(in, g.weights[k], &i);
        const Decision& d = decisions[i];
        FormatId f = d.quantize ? d.to : FormatId::F32;
        const bool plain = f == FormatId::F32 || f == FormatId::F16 || f == FormatId::BF16;
        if (plain && !mp.awq_target.empty()) {
          const auto tf = format_from_name(mp.awq_target);
          if (!tf) fail("quantize: --awq-target '{}' is not a format name", mp.awq_target);
          f = *tf;
        }
        views.push_back({data[k], t->rows(), t->cols(), f, f == FormatId::INT4_GROUP ? 128 : 0});
      }
      std::vector<float> s;
      if (mp.method == "awq") {
        const auto imp_it = ctx->importance_.find(g.weights[0]);
        const std::span<const float> imp =
            imp_it == ctx->importance_.end() ? std::span<const float>() : std::span<const float>(imp_it->second);
        const AwqScales a = awq_search(views, st->mean_abs(), std::span<const float>(st->samples).first(size_t(st->n_samples * st->cols)),
                                       st->n_samples, imp);
        s = a.s;
        err_rtn += a.err_rtn;
        err_best += a.err_best;
      } else {
        s = smoothquant_scales(views, st->amax_col);
      }
      for (const std::string& w : g.weights) ctx->col_scale_[w] = s;
      ctx->row_div_[g.prev] = s;
      ++n_groups;
    }
    // The folded weights see x/s: their importance becomes mean(x²)/s².
    for (auto& [w, s] : ctx->col_scale_) {
      auto it = ctx->importance_.find(w);
      if (it == ctx->importance_.end()) continue;
      for (size_t j = 0; j < s.size(); ++j) it->second[j] /= s[j] * s[j];
    }
    if (log) {
      fmt::print(log, "{}: {} scale groups folded", mp.method, n_groups);
      if (mp.method == "awq" && err_rtn > 0) fmt::print(log, "; calibration output error {:.4g} of RTN's", err_best / err_rtn);
      fmt::print(log, "\n");
    }
  }
  ctx->prepare_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ctx;
}

bool MethodContext::changes(const std::string& n) const { return col_scale_.count(n) || row_div_.count(n); }

void MethodContext::transform(const std::string& n, std::vector<float>& x, int64_t rows, int64_t cols) const {
  if (auto it = col_scale_.find(n); it != col_scale_.end()) {
    const std::vector<float>& s = it->second;
    if (int64_t(s.size()) != cols) fail("{}: fold scale has {} entries for {} columns", n, s.size(), cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) x[size_t(r * cols + j)] *= s[size_t(j)];
  }
  if (auto it = row_div_.find(n); it != row_div_.end()) {
    const std::vector<float>& s = it->second;
    if (int64_t(x.size()) == int64_t(s.size())) {  // a norm gain
      for (size_t j = 0; j < s.size(); ++j) x[j] /= s[j];
    } else {
      if (int64_t(s.size()) != rows) fail("{}: fold scale has {} entries for {} rows", n, s.size(), rows);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j) x[size_t(r * cols + j)] /= s[size_t(r)];
    }
  }
}

std::span<const float> MethodContext::importance(const std::string& n) const {
  const auto it = importance_.find(n);
  return it == importance_.end() ? std::span<const float>() : std::span<const float>(it->second);
}

std::optional<float> MethodContext::input_amax(const std::string& n) const {
  if (!calib_) return std::nullopt;
  const LinearStats* s = calib_->find(n);
  if (!s || s->n_tok == 0) return std::nullopt;
  const auto it = col_scale_.find(n);
  if (it == col_scale_.end() || it->second.size() != s->amax_col.size()) return s->amax;
  float a = 0.0f;
  for (size_t j = 0; j < s->amax_col.size(); ++j) a = std::max(a, s->amax_col[j] / it->second[j]);
  return a;
}

const GptqFactor* MethodContext::gptq(const std::string& n, FormatId format) const {
  if (!calib_) return nullptr;
  const LinearStats* s = calib_->find(n);
  if (!s || s->xtx.empty()) return nullptr;
  std::string owner = n;
  if (auto a = calib_->aliases().find(n); a != calib_->aliases().end()) owner = a->second;
  const bool act = mp_.act_order && (format == FormatId::INT4_GROUP || format == FormatId::NVFP4_CKPT);
  std::lock_guard<std::mutex> lock(mu_);
  auto& f = factors_[owner + (act ? "#act" : "")];
  if (!f) f = std::make_unique<GptqFactor>(gptq_factor(s->xtx, s->cols, s->n_tok, 0.01, act));
  return f.get();
}

}  // namespace imp::quant
