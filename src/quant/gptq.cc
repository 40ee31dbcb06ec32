#include "quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "common/error.h"
#include "formats/e2m1.h"
#include "formats/f16.h"
#include "formats/fp8_e4m3.h"
#include "formats/nvfp4_ckpt.h"
#include "quant/linalg.h"
#include "quant/weighted_ggml.h"

namespace imp::quant {

namespace {

bool columnwise(FormatId f) { return f == FormatId::INT4_GROUP || f == FormatId::NVFP4_CKPT; }

bool block_format(FormatId f) {
  const FormatTraits& t = format_traits(f);
  return t.scale_layout == ScaleLayout::kInBlock && t.gguf_type >= 0 && !t.is_activation_only;
}

float round_clamp_u4(float v) {
  const float r = std::nearbyint(v);
  return r > 0.0f ? std::fmin(r, 15.0f) : 0.0f;
}

// Per-column quantizer of the one-column formats: block parameters are fixed at first use.
struct ColumnQuantizer {
  FormatId f;
  int64_t rows, cols, bw;   // bw: columns per parameter block
  float g = 1.0f;           // NVFP4_CKPT tensor scale
  std::vector<uint8_t> set; // per block: parameters fixed?
  std::vector<float> scale; // rows × blocks: INT4 F16 scale / NVFP4 decoded S·G
  std::vector<uint8_t> zero, sbyte;
  std::vector<uint8_t> codes;  // rows × cols codes (one per byte; packed at the end)

  ColumnQuantizer(FormatId fmt, int64_t r, int64_t c, int32_t group, float tensor_scale)
      : f(fmt), rows(r), cols(c), bw(fmt == FormatId::INT4_GROUP ? group : kNvfp4CkptBlock), g(tensor_scale) {
    const int64_t nb = cols / bw;
    set.assign(size_t(nb), 0);
    scale.assign(size_t(rows * nb), 0);
    zero.assign(size_t(rows * nb), 0);
    sbyte.assign(size_t(rows * nb), 0);
    codes.assign(size_t(rows * cols), 0);
  }

  // Fix block k's parameters from the current weights W (rows × cols, natural order).
  void fix(const std::vector<float>& W, int64_t k) {
    const int64_t nb = cols / bw;
    for (int64_t r = 0; r < rows; ++r) {
      const float* x = W.data() + r * cols + k * bw;
      const size_t at = size_t(r * nb + k);
      if (f == FormatId::INT4_GROUP) {
        float lo = 0, hi = 0;
        for (int64_t j = 0; j < bw; ++j) lo = std::fmin(lo, x[j]), hi = std::fmax(hi, x[j]);
        if (lo == 0.0f && hi == 0.0f) lo = -1.0f, hi = 1.0f;
        const uint16_t sh = f32_to_f16((hi - lo) / 15.0f);
        const float s = f16_to_f32(sh);
        if (!std::isfinite(s)) fail("gptq: int4 group {} spans [{}, {}], beyond an F16 scale", k, lo, hi);
        scale[at] = s;
        zero[at] = uint8_t(s > 0.0f ? round_clamp_u4(-lo / s) : 0.0f);
      } else {
        float amax = 0;
        for (int64_t j = 0; j < bw; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        float s = amax / (6.0f * g);
        if (s == 0.0f) s = 1.0f;
        if (s < 0x1p-9f) s = 0x1p-9f;
        // Error feedback can push a block past the original amax that fixed G: saturate the
        // scale at E4M3's largest finite value instead of overflowing to NaN.
        if (s > 448.0f) s = 448.0f;
        sbyte[at] = f32_to_e4m3(s);
        scale[at] = e4m3_to_f32(sbyte[at]) * g;
      }
    }
    set[size_t(k)] = 1;
  }

  // Quantizes column c (natural index) of W in place of q (rows values); returns decoded.
  void quantize_column(const std::vector<float>& W, int64_t c, float* q) {
    const int64_t k = c / bw, nb = cols / bw;
    if (!set[size_t(k)]) fix(W, k);
    for (int64_t r = 0; r < rows; ++r) {
      const float x = W[size_t(r * cols + c)];
      const size_t at = size_t(r * nb + k);
      if (f == FormatId::INT4_GROUP) {
        const float s = scale[at], z = float(zero[at]);
        const uint8_t code = s > 0.0f ? uint8_t(round_clamp_u4(std::nearbyint(x / s) + z)) : 0;
        codes[size_t(r * cols + c)] = code;
        q[r] = (float(code) - z) * s;
      } else {
        const uint8_t code = f32_to_e2m1_rne(x / scale[at]);
        codes[size_t(r * cols + c)] = code;
        q[r] = e2m1_to_f32(code) * scale[at];
      }
    }
  }

  OwnedQuantMatrix result(int32_t group) const {
    OwnedQuantMatrix m;
    m.format = f;
    m.rows = rows;
    m.cols = cols;
    m.data.assign(size_t(rows * cols / 2), 0);
    for (int64_t e = 0; e < rows * cols; ++e) m.data[size_t(e / 2)] |= uint8_t(codes[size_t(e)] << (4 * (e & 1)));
    if (f == FormatId::INT4_GROUP) {
      m.group = group;
      m.scales.resize(size_t(rows * (cols / bw) * 2));
      for (size_t i = 0; i < scale.size(); ++i) {
        const uint16_t h = f32_to_f16(scale[i]);
        std::memcpy(m.scales.data() + 2 * i, &h, 2);
      }
      m.zeros = zero;
    } else {
      m.tensor_scale = g;
      m.scales = sbyte;
    }
    return m;
  }
};

}  // namespace

bool gptq_supports(FormatId format) { return columnwise(format) || block_format(format); }

GptqFactor gptq_factor(std::span<const double> xtx, int64_t cols, int64_t n_tok, double percdamp, bool act_order) {
  if (int64_t(xtx.size()) != cols * cols) fail("gptq: XᵀX has {} entries for {} columns", xtx.size(), cols);
  if (n_tok <= 0) fail("gptq: no calibration tokens");
  GptqFactor fct;
  fct.cols = cols;
  fct.act_order = act_order;
  std::vector<double> H(size_t(cols * cols));
  for (size_t i = 0; i < H.size(); ++i) H[i] = 2.0 * xtx[i] / double(n_tok);
  fct.dead.assign(size_t(cols), 0);
  for (int64_t j = 0; j < cols; ++j) {
    if (H[size_t(j * cols + j)] == 0) {
      H[size_t(j * cols + j)] = 1;
      fct.dead[size_t(j)] = 1;
    }
  }
  std::vector<int64_t>& perm = fct.perm;
  perm.resize(size_t(cols));
  std::iota(perm.begin(), perm.end(), 0);
  if (act_order) {
    std::stable_sort(perm.begin(), perm.end(),
                     [&](int64_t a, int64_t b) { return H[size_t(a * cols + a)] > H[size_t(b * cols + b)]; });
  }
  std::vector<double> Hp(size_t(cols * cols));
  for (int64_t a = 0; a < cols; ++a)
    for (int64_t b = 0; b < cols; ++b) Hp[size_t(a * cols + b)] = H[size_t(perm[a] * cols + perm[b])];
  double mean_diag = 0;
  for (int64_t j = 0; j < cols; ++j) mean_diag += Hp[size_t(j * cols + j)];
  mean_diag /= double(cols);
  double damp = percdamp * mean_diag;
  for (int tries = 0;; ++tries) {
    std::vector<double> Hd = Hp;
    for (int64_t j = 0; j < cols; ++j) Hd[size_t(j * cols + j)] += damp;
    if (inverse_cholesky_upper(Hd, cols, fct.u)) break;
    if (tries == 6) fail("gptq: the Hessian stays indefinite after damping {}", damp);
    damp = damp > 0 ? damp * 10 : 1e-6;
  }
  fct.damp = damp;
  return fct;
}

GptqResult gptq_quantize(std::span<const float> w, int64_t rows, int64_t cols, std::span<const double> xtx,
                         int64_t n_tok, const GptqOptions& opt) {
  return gptq_quantize(w, rows, cols, gptq_factor(xtx, cols, n_tok, opt.percdamp, opt.act_order), opt);
}

GptqResult gptq_quantize(std::span<const float> w, int64_t rows, int64_t cols, const GptqFactor& fct,
                         const GptqOptions& opt) {
  const FormatId f = opt.format;
  if (!gptq_supports(f)) fail("gptq: no GPTQ for {} (INT4_GROUP, NVFP4_CKPT and the GGUF block types)", format_name(f));
  if (int64_t(w.size()) != rows * cols) fail("gptq: {} weights for {} × {}", w.size(), rows, cols);
  if (fct.cols != cols) fail("gptq: the Hessian is for {} columns, the weight has {}", fct.cols, cols);
  check_row_length(f, cols, f == FormatId::INT4_GROUP ? opt.group : 0);
  if (fct.act_order && !columnwise(f)) fail("gptq: act-order needs a per-column format (int4_group, nvfp4_ckpt), not {}", format_name(f));
  if (!opt.importance.empty() && int64_t(opt.importance.size()) != cols) fail("gptq: importance has {} entries", opt.importance.size());

  GptqResult res;
  std::vector<float> W(w.begin(), w.end());
  for (int64_t j = 0; j < cols; ++j) {
    if (!fct.dead[size_t(j)]) continue;
    for (int64_t r = 0; r < rows; ++r) W[size_t(r * cols + j)] = 0;
    ++res.n_dead;
  }
  // NVFP4's G comes from the original weights, as RTN would set it.
  float amax = 0;
  for (float v : w) amax = std::fmax(amax, std::fabs(v));
  const float g = nvfp4_ckpt_tensor_scale(amax);
  res.perm = fct.perm;
  res.damp = fct.damp;
  const std::vector<int64_t>& perm = fct.perm;
  const std::vector<double>& U = fct.u;

  // Units in processing (permuted) order: [start, start + width).
  const int64_t unit = columnwise(f) ? 1 : format_traits(f).block_elems;
  const int64_t batch = std::max<int64_t>(unit, (opt.block / unit) * unit);
  ColumnQuantizer cq(f, rows, cols, opt.group, g);
  OwnedQuantMatrix out;
  if (!columnwise(f)) {
    out.format = f;
    out.rows = rows;
    out.cols = cols;
    out.data.assign(size_t(rows * row_data_bytes(f, cols)), 0);
  }
  const int64_t row_bytes = columnwise(f) ? 0 : row_data_bytes(f, cols);
  std::vector<float> Wp(size_t(rows * cols));  // W in permuted column order (working copy)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < cols; ++i) Wp[size_t(r * cols + i)] = W[size_t(r * cols + perm[i])];
  std::vector<float> q(size_t(rows * unit)), wb(size_t(rows * unit));
  std::vector<double> err(size_t(rows * batch));  // E of the current batch, rows × batch

  for (int64_t b0 = 0; b0 < cols; b0 += batch) {
    const int64_t b1 = std::min(cols, b0 + batch), bn = b1 - b0;
    std::fill(err.begin(), err.end(), 0.0);
    for (int64_t u0 = b0; u0 < b1; u0 += unit) {
      // Quantize the unit [u0, u0 + unit).
      if (columnwise(f)) {
        // The quantizer reads natural-order weights: write the current column back first.
        const int64_t c = perm[size_t(u0)];
        for (int64_t r = 0; r < rows; ++r) W[size_t(r * cols + c)] = Wp[size_t(r * cols + u0)];
        // Parameters of a block not yet fixed are taken from current values of its columns.
        const int64_t k = c / cq.bw;
        if (!cq.set[size_t(k)]) {
          std::vector<int64_t> inv(static_cast<size_t>(cols));
          for (int64_t i = 0; i < cols; ++i) inv[size_t(perm[i])] = i;
          for (int64_t cc = k * cq.bw; cc < (k + 1) * cq.bw; ++cc)
            for (int64_t r = 0; r < rows; ++r) W[size_t(r * cols + cc)] = Wp[size_t(r * cols + inv[size_t(cc)])];
        }
        cq.quantize_column(W, c, q.data());
      } else {
        for (int64_t r = 0; r < rows; ++r)
          std::copy_n(Wp.begin() + r * cols + u0, unit, wb.begin() + r * unit);
        const OwnedQuantMatrix qb = opt.importance.empty() || !has_weighted_quantizer(f)
                                        ? quantize(f, wb, rows, unit)
                                        : quantize_weighted(f, wb, rows, unit, opt.importance.subspan(size_t(u0), size_t(unit)));
        const int64_t ub = row_data_bytes(f, unit);
        for (int64_t r = 0; r < rows; ++r)
          std::memcpy(out.data.data() + r * row_bytes + (u0 / unit) * ub, qb.data.data() + r * ub, size_t(ub));
        const std::vector<float> deq = dequantize(qb.view());
        // q laid out column-major per unit below: q[j·rows + r].
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < unit; ++j) q[size_t(j * rows + r)] = deq[size_t(r * unit + j)];
      }
      // E = (W_B − Q_B)·U_BB⁻¹ (row vector solve against the upper triangle), then update
      // the rest of the batch now; later batches get it lazily.
      for (int64_t r = 0; r < rows; ++r) {
        double* e = err.data() + r * batch + (u0 - b0);
        for (int64_t j = 0; j < unit; ++j) {
          const int64_t i = u0 + j;
          double s = double(Wp[size_t(r * cols + i)]) - double(q[size_t(j * rows + r)]);
          for (int64_t t = 0; t < j; ++t) s -= e[t] * U[size_t((u0 + t) * cols + i)];
          e[j] = s / U[size_t(i * cols + i)];
        }
        for (int64_t j = 0; j < unit; ++j) Wp[size_t(r * cols + u0 + j)] = q[size_t(j * rows + r)];
        float* wr = Wp.data() + r * cols;
        for (int64_t j = 0; j < unit; ++j) {
          const double ej = e[j];
          if (ej == 0) continue;
          const double* ui = U.data() + (u0 + j) * cols;
          for (int64_t i = u0 + unit; i < b1; ++i) wr[i] -= float(ej * ui[i]);
        }
      }
    }
    // Lazy update of every column after the batch: W[:, b1:] −= E·U[b0:b1, b1:].
    if (b1 < cols) {
      for (int64_t r = 0; r < rows; ++r) {
        float* wr = Wp.data() + r * cols;
        std::vector<double> acc(size_t(cols - b1), 0.0);
        for (int64_t j = 0; j < bn; ++j) {
          const double ej = err[size_t(r * batch + j)];
          if (ej == 0) continue;
          const double* ui = U.data() + (b0 + j) * cols + b1;
          for (int64_t i = 0; i < cols - b1; ++i) acc[size_t(i)] += ej * ui[i];
        }
        for (int64_t i = 0; i < cols - b1; ++i) wr[b1 + i] -= float(acc[size_t(i)]);
      }
    }
  }
  res.q = columnwise(f) ? cq.result(opt.group) : std::move(out);
  if (f == FormatId::INT4_GROUP) {
    res.g_idx.resize(size_t(cols));
    for (int64_t c = 0; c < cols; ++c) res.g_idx[size_t(c)] = int32_t(c / opt.group);
  }
  return res;
}

}  // namespace imp::quant
