#include "quant/weighted_ggml.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "formats/f16.h"
#include "formats/iq4_nl.h"
#include "formats/iq4_xs.h"
#include "formats/q2_k.h"
#include "formats/q3_k.h"
#include "formats/q4_0.h"
#include "formats/q4_1.h"
#include "formats/q4_k.h"
#include "formats/q5_0.h"
#include "formats/q5_1.h"
#include "formats/q5_k.h"
#include "formats/q6_k.h"
#include "quant/weighted_fit.h"

namespace imp::quant {

namespace {

template <class B>
void store(uint8_t* dst, int64_t i, const B& b) {
  std::memcpy(dst + i * int64_t(sizeof(B)), &b, sizeof(B));
}

void q2_k(const float* x, uint8_t* dst, int64_t n, const float* qw) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    BlockQ2_K y{};
    uint8_t L[kQK_K], Laux[16], Ls[16], Lm[16];
    float mins[16], scales[16], sw[16] = {}, weight[16];
    float sumx2 = 0;
    for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
    const float sigma2 = sumx2 / kQK_K;
    for (int j = 0; j < 16; ++j) {
      const float* q = qw + kQK_K * i + 16 * j;
      for (int l = 0; l < 16; ++l) weight[l] = q[l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
      for (int l = 0; l < 16; ++l) sw[j] += weight[l];
      scales[j] = make_qkx3_quants_w(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36);
    }
    float dm = make_qp_quants_w(16, 15, scales, Ls, sw);
    float mm = make_qp_quants_w(16, 15, mins, Lm, sw);
    y.d = f32_to_f16(dm);
    y.dmin = f32_to_f16(mm);
    dm = f16_to_f32(y.d);
    mm = f16_to_f32(y.dmin);
    for (int j = 0; j < 16; ++j) y.scales[j] = uint8_t(Ls[j] | (Lm[j] << 4));
    for (int j = 0; j < 16; ++j) {
      const float d = dm * float(y.scales[j] & 0xF);
      if (!d) continue;
      const float m = mm * float(y.scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        L[16 * j + ii] = uint8_t(std::clamp(nearest_int((x[16 * j + ii] + m) / d), 0, 3));
      }
    }
    for (int j = 0; j < kQK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        y.qs[j / 4 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
      }
    }
    store(dst, i, y);
  }
}

void q3_k(const float* x, uint8_t* dst, int64_t n, const float* qw) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    BlockQ3_K y{};
    int8_t L[kQK_K], Ls[16];
    float scales[16], weight[16], sw[16];
    float sumx2 = 0;
    for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
    const float sigma2 = 2 * sumx2 / kQK_K;
    for (int j = 0; j < 16; ++j) {
      const float* q = qw + kQK_K * i + 16 * j;
      for (int l = 0; l < 16; ++l) weight[l] = q[l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
      float sumw = 0;
      for (int l = 0; l < 16; ++l) sumw += weight[l];
      sw[j] = sumw;
      scales[j] = make_qx_quants_w(16, 4, x + 16 * j, L + 16 * j, weight);
    }
    const float d_block = make_qx_quants_w(16, 32, scales, Ls, sw);
    for (int j = 0; j < 16; ++j) {
      int l = Ls[j];
      if (j < 8) y.scales[j] = uint8_t(l & 0xF);
      else y.scales[j - 8] |= uint8_t((l & 0xF) << 4);
      l >>= 4;
      y.scales[j % 4 + 8] |= uint8_t(l << (2 * (j / 4)));
    }
    y.d = f32_to_f16(d_block);
    for (int j = 0; j < 16; ++j) {
      int sc = j < 8 ? y.scales[j] & 0xF : y.scales[j - 8] >> 4;
      sc = (sc | (((y.scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      const float d = f16_to_f32(y.d) * float(sc);
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        L[16 * j + ii] = int8_t(std::clamp(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
      }
    }
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < kQK_K; ++j) {
      if (L[j] > 3) {
        y.hmask[m] |= hm;
        L[j] -= 4;
      }
      if (++m == kQK_K / 8) {
        m = 0;
        hm = uint8_t(hm << 1);
      }
    }
    for (int j = 0; j < kQK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        y.qs[j / 4 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
      }
    }
    store(dst, i, y);
  }
}

// Q4_K and Q5_K share everything but nmax and the code packing.
template <int kNmax>
void qk45_fit(const float* x, const float* qw, uint8_t* L, uint8_t* scales12, uint16_t* d16, uint16_t* dmin16) {
  uint8_t Laux[32], Ls[8], Lm[8];
  float weights[32], sw[8], mins[8], scales[8];
  float sum_x2 = 0;
  for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = 2 * sum_x2 / kQK_K;
  for (int j = 0; j < 8; ++j) {
    const float* q = qw + 32 * j;
    for (int l = 0; l < 32; ++l) weights[l] = q[l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 32; ++l) sumw += weights[l];
    sw[j] = sumw;
    scales[j] = make_qkx3_quants_w(32, kNmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36);
  }
  const float d_block = make_qp_quants_w(8, 63, scales, Ls, sw);
  const float m_block = make_qp_quants_w(8, 63, mins, Lm, sw);
  std::memset(scales12, 0, 12);
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = std::min<uint8_t>(63, Ls[j]), lm = std::min<uint8_t>(63, Lm[j]);
    if (j < 4) {
      scales12[j] = ls;
      scales12[j + 4] = lm;
    } else {
      scales12[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
      scales12[j - 4] |= uint8_t((ls >> 4) << 6);
      scales12[j - 0] |= uint8_t((lm >> 4) << 6);
    }
  }
  *d16 = f32_to_f16(d_block);
  *dmin16 = f32_to_f16(m_block);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, scales12, &sc, &m);
    const float d = f16_to_f32(*d16) * float(sc);
    if (!d) continue;
    const float dm = f16_to_f32(*dmin16) * float(m);
    for (int ii = 0; ii < 32; ++ii) L[32 * j + ii] = uint8_t(std::clamp(nearest_int((x[32 * j + ii] + dm) / d), 0, kNmax));
  }
}

void q4_k(const float* x, uint8_t* dst, int64_t n, const float* qw) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    BlockQ4_K y{};
    uint8_t L[kQK_K];
    qk45_fit<15>(x, qw + kQK_K * i, L, y.scales, &y.d, &y.dmin);
    for (int j = 0; j < kQK_K; j += 64) {
      for (int l = 0; l < 32; ++l) y.qs[j / 2 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
    }
    store(dst, i, y);
  }
}

void q5_k(const float* x, uint8_t* dst, int64_t n, const float* qw) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    BlockQ5_K y{};
    uint8_t L[kQK_K];
    qk45_fit<31>(x, qw + kQK_K * i, L, y.scales, &y.d, &y.dmin);
    uint8_t m1 = 1, m2 = 2;
    for (int nn = 0; nn < kQK_K; nn += 64) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[nn + j], l2 = L[nn + j + 32];
        if (l1 > 15) {
          l1 -= 16;
          y.qh[j] |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          y.qh[j] |= m2;
        }
        y.qs[nn / 2 + j] = uint8_t(l1 | (l2 << 4));
      }
      m1 = uint8_t(m1 << 2);
      m2 = uint8_t(m2 << 2);
    }
    store(dst, i, y);
  }
}

void q6_k(const float* x, uint8_t* dst, int64_t n, const float* qw) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    BlockQ6_K y{};
    int8_t L[kQK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      const float scale = make_qx_quants_w(16, 32, x + 16 * ib, L + 16 * ib, qw + kQK_K * i + 16 * ib);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      store(dst, i, BlockQ6_K{});
      continue;
    }
    const float iscale = -128.f / max_scale;
    y.d = f32_to_f16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) y.scales[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < 16; ++j) {
      const float d = f16_to_f32(y.d) * float(y.scales[j]);
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) L[16 * j + ii] = int8_t(std::clamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
    for (int j = 0; j < kQK_K; j += 128) {
      uint8_t* ql = y.ql + j / 2;
      uint8_t* qh = y.qh + j / 4;
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l] = uint8_t(q1 | (q3 << 4));
        ql[l + 32] = uint8_t(q2 | (q4 << 4));
        qh[l] = uint8_t((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                        ((L[j + l + 96] >> 4) << 6));
      }
    }
    store(dst, i, y);
  }
}

// σ² of the legacy types: over the whole row.
float row_sigma2(const float* x, int64_t n) {
  float s = 0;
  for (int64_t j = 0; j < n; ++j) s += x[j] * x[j];
  return s / float(n);
}

void block_weights(const float* xb, const float* q, float sigma2, float* w) {
  for (int j = 0; j < 32; ++j) w[j] = q[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
}

void q4_0(const float* x, uint8_t* dst, int64_t n, const float* qw) {
  const float sigma2 = row_sigma2(x, n);
  for (int64_t ib = 0; ib < n / 32; ++ib) {
    float w[32];
    int8_t L[32];
    block_weights(x + 32 * ib, qw + 32 * ib, sigma2, w);
    BlockQ4_0 y{};
    y.d = f32_to_f16(make_qx_quants_w(32, 8, x + 32 * ib, L, w));
    for (int j = 0; j < 16; ++j) y.qs[j] = uint8_t(L[j] | (L[j + 16] << 4));
    store(dst, ib, y);
  }
}

void q5_0(const float* x, uint8_t* dst, int64_t n, const float* qw) {
  const float sigma2 = row_sigma2(x, n);
  for (int64_t ib = 0; ib < n / 32; ++ib) {
    float w[32];
    int8_t L[32];
    block_weights(x + 32 * ib, qw + 32 * ib, sigma2, w);
    BlockQ5_0 y{};
    y.d = f32_to_f16(make_qx_quants_w(32, 16, x + 32 * ib, L, w));
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const uint8_t a = uint8_t(L[j]), b = uint8_t(L[j + 16]);
      y.qs[j] = uint8_t((a & 0x0F) | ((b & 0x0F) << 4));
      qh |= uint32_t((a & 0x10u) >> 4) << j;
      qh |= uint32_t((b & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(y.qh, &qh, 4);
    store(dst, ib, y);
  }
}

template <class B, int kNmax>
void q_1(const float* x, uint8_t* dst, int64_t n, const float* qw) {
  const float sigma2 = row_sigma2(x, n);
  for (int64_t ib = 0; ib < n / 32; ++ib) {
    float w[32], min;
    uint8_t L[32], Laux[32];
    block_weights(x + 32 * ib, qw + 32 * ib, sigma2, w);
    B y{};
    const float d = make_qkx3_quants_w(32, kNmax, x + 32 * ib, w, L, &min, Laux, -0.9f, 0.05f, 36);
    y.d = f32_to_f16(d);
    y.m = f32_to_f16(-min);
    if constexpr (kNmax == 15) {
      for (int j = 0; j < 16; ++j) y.qs[j] = uint8_t(L[j] | (L[j + 16] << 4));
    } else {
      uint32_t qh = 0;
      for (int j = 0; j < 16; ++j) {
        y.qs[j] = uint8_t((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
        qh |= uint32_t((L[j] & 0x10u) >> 4) << j;
        qh |= uint32_t((L[j + 16] & 0x10u) >> 4) << (j + 16);
      }
      std::memcpy(y.qh, &qh, 4);
    }
    store(dst, ib, y);
  }
}

// ggml quantize_row_iq4_nl_impl with quant weights and ntry = 7, for a super-block of
// `sb` elements in blocks of 32 (sb = 32: IQ4_NL; 256: IQ4_XS).
void iq4_superblock(int sb, const float* x, const float* qw, uint16_t* dh, uint8_t* q4, uint16_t* scales_h,
                    uint8_t* scales_l) {
  constexpr int kNtry = 7;
  const int8_t* values = kIq4nlValues;
  uint8_t L[kQK_K];
  float scales[kQK_K / 32], weight[32];
  float sigma2 = 0;
  for (int j = 0; j < sb; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.f / float(sb);
  std::memset(q4, 0, size_t(sb / 2));
  *dh = f32_to_f16(0.f);
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < sb / 32; ++ib) {
    const float* xb = x + ib * 32;
    uint8_t* Lb = L + ib * 32;
    block_weights(xb, qw + ib * 32, sigma2, weight);
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    if (amax < kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    float d = -max / float(values[0]);
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
      const int l = iq4nl_best_index(id * xb[j]);
      Lb[j] = uint8_t(l);
      const float q = values[l];
      sumqx += weight[j] * q * xb[j];
      sumq2 += weight[j] * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -kNtry; itry <= kNtry; ++itry) {
      id = float(itry + values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < 32; ++j) {
        const float q = values[iq4nl_best_index(id * xb[j])];
        sumqx += weight[j] * q * xb[j];
        sumq2 += weight[j] * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    if (std::fabs(d) > amax_scale) {
      amax_scale = std::fabs(d);
      max_scale = d;
    }
  }
  if (sb > 32) {
    *scales_h = 0;
    const float d = -max_scale / 32;
    *dh = f32_to_f16(d);
    const float id = d ? 1 / d : 0.f;
    for (int ib = 0; ib < sb / 32; ++ib) {
      int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
      const float dl = d * float(l);
      const float idl = dl ? 1 / dl : 0.f;
      for (int j = 0; j < 32; ++j) L[ib * 32 + j] = uint8_t(iq4nl_best_index(idl * x[ib * 32 + j]));
      l += 32;
      const uint8_t l_l = uint8_t(l & 0xf), l_h = uint8_t(l >> 4);
      if (ib % 2 == 0) scales_l[ib / 2] = l_l;
      else scales_l[ib / 2] |= uint8_t(l_l << 4);
      *scales_h = uint16_t(*scales_h | (l_h << 2 * (ib % 8)));
    }
  } else {
    *dh = f32_to_f16(scales[0]);
    const float id = scales[0] ? 1 / scales[0] : 0;
    for (int j = 0; j < sb; ++j) L[j] = uint8_t(iq4nl_best_index(id * x[j]));
  }
  for (int i = 0; i < sb / 32; ++i) {
    for (int j = 0; j < 16; ++j) q4[16 * i + j] = uint8_t(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
  }
}

void iq4_nl(const float* x, uint8_t* dst, int64_t n, const float* qw) {
  for (int64_t ib = 0; ib < n / 32; ++ib) {
    BlockIQ4_NL y{};
    uint16_t unused_h = 0;
    iq4_superblock(32, x + 32 * ib, qw + 32 * ib, &y.d, y.qs, &unused_h, nullptr);
    store(dst, ib, y);
  }
}

void iq4_xs(const float* x, uint8_t* dst, int64_t n, const float* qw) {
  for (int64_t ib = 0; ib < n / kQK_K; ++ib) {
    BlockIq4_XS y{};
    uint16_t d = 0, sh = 0;
    iq4_superblock(kQK_K, x + kQK_K * ib, qw + kQK_K * ib, &d, y.qs, &sh, y.scales_l);
    y.d = d;
    y.scales_h = sh;
    store(dst, ib, y);
  }
}

using RowFn = void (*)(const float*, uint8_t*, int64_t, const float*);

RowFn row_fn(FormatId f) {
  switch (f) {
    case FormatId::Q2_K: return q2_k;
    case FormatId::Q3_K: return q3_k;
    case FormatId::Q4_K: return q4_k;
    case FormatId::Q5_K: return q5_k;
    case FormatId::Q6_K: return q6_k;
    case FormatId::Q4_0: return q4_0;
    case FormatId::Q5_0: return q5_0;
    case FormatId::Q4_1: return q_1<BlockQ4_1, 15>;
    case FormatId::Q5_1: return q_1<BlockQ5_1, 31>;
    case FormatId::IQ4_NL: return iq4_nl;
    case FormatId::IQ4_XS: return iq4_xs;
    default: return nullptr;
  }
}

}  // namespace

bool has_weighted_quantizer(FormatId format) { return row_fn(format) != nullptr; }

void quantize_row_weighted(FormatId format, const float* x, uint8_t* dst, int64_t n, const float* qw) {
  const RowFn fn = row_fn(format);
  if (!fn) fail("{} has no importance-weighted quantizer", format_name(format));
  check_row_length(format, n);
  fn(x, dst, n, qw);
}

OwnedQuantMatrix quantize_weighted(FormatId format, std::span<const float> x, int64_t rows, int64_t cols,
                                   std::span<const float> qw) {
  if (int64_t(qw.size()) != cols) fail("importance has {} entries for a matrix of {} columns", qw.size(), cols);
  if (int64_t(x.size()) != rows * cols) fail("quantize_weighted: {} values for {} × {}", x.size(), rows, cols);
  OwnedQuantMatrix m;
  m.format = format;
  m.rows = rows;
  m.cols = cols;
  const int64_t rb = row_data_bytes(format, cols);
  m.data.resize(size_t(rows * rb));
  for (int64_t r = 0; r < rows; ++r) quantize_row_weighted(format, x.data() + r * cols, m.data.data() + r * rb, cols, qw.data());
  return m;
}

}  // namespace imp::quant
