// Causal grouped-query attention over a paged KV cache (conventions in ops.h).
#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "backends/cpu/ops.h"
#include "backends/cpu/row_kernels.h"
#include "common/error.h"

namespace imp {

namespace {

void check_attention(int64_t n_head, const KvLayerView& kv) {
  if (kv.n_kv_head <= 0 || n_head <= 0 || n_head % kv.n_kv_head != 0) {
    fail("attention: n_head {} is not a multiple of n_kv_head {}", n_head, kv.n_kv_head);
  }
  if (kv.block_tokens <= 0 || !kv_type_fits_head_dim(kv.dtype, kv.head_dim) ||
      kv.row_bytes != kv_row_bytes(kv.dtype, kv.head_dim)) {
    fail("attention: KV view has block_tokens {} and row_bytes {} (want {} for {} × {})", kv.block_tokens,
         kv.row_bytes, kv_type_fits_head_dim(kv.dtype, kv.head_dim) ? kv_row_bytes(kv.dtype, kv.head_dim) : 0,
         kv.head_dim, kv_type_name(kv.dtype));
  }
}

void check_positions(int64_t pos0, int64_t n_tok, const KvLayerView& kv) {
  const int64_t have = int64_t(kv.k_blocks.size()) * kv.block_tokens;
  if (pos0 < 0 || pos0 + n_tok > have) {
    fail("attention: positions {}..{} exceed the {} cached tokens", pos0, pos0 + n_tok - 1, have);
  }
}

void check_window(int64_t window, float scale) {
  if (window < 0) fail("attention: sliding window {} is negative", window);
  if (!(scale >= 0.0f) || !std::isfinite(scale)) fail("attention: scale {} is not a finite non-negative number", scale);
}

// First cache position a query at position `pos` sees: all of 0..pos without a window;
// with one, the last `window` positions pos − window + 1 .. pos (transformers' sliding
// mask kv_idx > q_idx − window, llama.cpp's p1 − p0 < n_swa).
int64_t first_visible(int64_t pos, int64_t window) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0; }

}  // namespace

void attention_ref(const float* q, int64_t n_tok, int64_t n_head, int64_t pos0, const KvLayerView& kv,
                   float* out, int64_t window, float scale_override) {
  check_attention(n_head, kv);
  check_window(window, scale_override);
  check_positions(pos0, n_tok, kv);
  const int64_t hd = kv.head_dim, group = n_head / kv.n_kv_head;
  const KvDecodeRowFn decode_row = kv_decode_row_fn(kv.dtype);
  const double scale = scale_override > 0.0f ? double(scale_override) : 1.0 / std::sqrt(double(hd));
  std::vector<float> row(static_cast<size_t>(hd));
  for (int64_t t = 0; t < n_tok; ++t) {
    const int64_t n_ctx = pos0 + t + 1;
    const int64_t j0 = first_visible(pos0 + t, window);
    for (int64_t h = 0; h < n_head; ++h) {
      const float* qh = q + (t * n_head + h) * hd;
      const int64_t g = h / group;
      std::vector<double> score(static_cast<size_t>(n_ctx - j0));
      for (int64_t j = j0; j < n_ctx; ++j) {
        decode_row(kv.k_row(j, g), row.data(), hd);
        double dot = 0.0;
        for (int64_t d = 0; d < hd; ++d) dot += double(qh[d]) * double(row[size_t(d)]);
        score[size_t(j - j0)] = dot * scale;
      }
      const double mx = *std::max_element(score.begin(), score.end());
      double sum = 0.0;
      for (double& s : score) sum += (s = std::exp(s - mx));
      std::vector<double> acc(size_t(hd), 0.0);
      for (int64_t j = j0; j < n_ctx; ++j) {
        decode_row(kv.v_row(j, g), row.data(), hd);
        for (int64_t d = 0; d < hd; ++d) acc[size_t(d)] += score[size_t(j - j0)] / sum * double(row[size_t(d)]);
      }
      for (int64_t d = 0; d < hd; ++d) out[(t * n_head + h) * hd + d] = float(acc[size_t(d)]);
    }
  }
}

void attention(ThreadPool& pool, const float* q, int64_t n_tok, int64_t n_head, int64_t pos0,
               const KvLayerView& kv, float* out, int64_t window, float scale_override) {
  check_attention(n_head, kv);
  check_window(window, scale_override);
  check_positions(pos0, n_tok, kv);
  const int64_t hd = kv.head_dim, group = n_head / kv.n_kv_head;
  // Reference decode first: dequantize each cache row to F32, then dot. The plain scalar
  // types (f16, bf16) use the ISA's fast row dequantizer; the scaled types their codec.
  const std::optional<FormatId> scalar = kv_type_scalar_format(kv.dtype);
  const DequantizeRowFn fast_row = scalar ? cpu_row_kernels(*scalar).dequantize : nullptr;
  const KvDecodeRowFn codec_row = kv_decode_row_fn(kv.dtype);
  const auto dequantize_row = [&](const uint8_t* src, float* dst) {
    if (fast_row) {
      fast_row({src}, dst, hd);
    } else {
      codec_row(src, dst, hd);
    }
  };
  const bool f32 = kv.dtype == KvType::F32;  // rows used in place, no decode
  const float scale = scale_override > 0.0f ? scale_override : 1.0f / std::sqrt(float(hd));
  // One task per (token, kv head): each cache row is decoded once for the `group` query
  // heads that read it (decoding per query head cost 3× the decode work on SmolLM2's GQA,
  // ~15 % of a decode step). Per head the arithmetic is unchanged. Token t sees cache
  // positions j0 .. pos0 + t (j0 > 0 only with a sliding window).
  pool.parallel_for(n_tok * kv.n_kv_head, [&](int64_t i0, int64_t i1) {
    std::vector<float> score, row(static_cast<size_t>(hd)), acc(static_cast<size_t>(group * hd)),
        mx(static_cast<size_t>(group)), inv(static_cast<size_t>(group));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / kv.n_kv_head, g = i % kv.n_kv_head;
      const int64_t n_ctx = pos0 + t + 1, j0 = first_visible(pos0 + t, window), len = n_ctx - j0;
      const float* qg = q + (t * n_head + g * group) * hd;  // the group's heads, consecutive
      score.resize(size_t(group * len));
      std::fill(mx.begin(), mx.end(), -INFINITY);
      for (int64_t j = j0; j < n_ctx; ++j) {
        const float* k = reinterpret_cast<const float*>(kv.k_row(j, g));
        if (!f32) {
          dequantize_row(kv.k_row(j, g), row.data());
          k = row.data();
        }
        for (int64_t hh = 0; hh < group; ++hh) {
          const float* qh = qg + hh * hd;
          float part[8] = {};
          int64_t d = 0;
          for (; d + 8 <= hd; d += 8) {
            for (int l = 0; l < 8; ++l) part[l] += qh[d + l] * k[d + l];
          }
          float dot = 0.0f;
          for (; d < hd; ++d) dot += qh[d] * k[d];
          for (float p : part) dot += p;
          float& sc = score[size_t(hh * len + (j - j0))];
          sc = dot * scale;
          mx[size_t(hh)] = std::max(mx[size_t(hh)], sc);
        }
      }
      for (int64_t hh = 0; hh < group; ++hh) {
        float sum = 0.0f;
        float* sh = score.data() + hh * len;
        for (int64_t j = 0; j < len; ++j) sum += (sh[j] = std::exp(sh[j] - mx[size_t(hh)]));
        inv[size_t(hh)] = 1.0f / sum;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = j0; j < n_ctx; ++j) {
        const float* v = reinterpret_cast<const float*>(kv.v_row(j, g));
        if (!f32) {
          dequantize_row(kv.v_row(j, g), row.data());
          v = row.data();
        }
        for (int64_t hh = 0; hh < group; ++hh) {
          const float p = score[size_t(hh * len + (j - j0))];
          float* a = acc.data() + hh * hd;
          for (int64_t d = 0; d < hd; ++d) a[d] += p * v[d];
        }
      }
      for (int64_t hh = 0; hh < group; ++hh) {
        float* o = out + (t * n_head + g * group + hh) * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] = acc[size_t(hh * hd + d)] * inv[size_t(hh)];
      }
    }
  });
}

}  // namespace imp
