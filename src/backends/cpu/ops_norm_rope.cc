// RMSNorm and RoPE (shapes and conventions in ops.h).
#include <cmath>
#include <vector>

#include "backends/cpu/ops.h"
#include "common/error.h"

namespace imp {

void rmsnorm_ref(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* out) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* xt = x + t * n;
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += double(xt[i]) * double(xt[i]);
    const double scale = 1.0 / std::sqrt(ss / double(n) + double(eps));
    for (int64_t i = 0; i < n; ++i) out[t * n + i] = float(double(xt[i]) * scale * double(gain[i]));
  }
}

void rmsnorm(ThreadPool& pool, const float* x, const float* gain, int64_t n_tok, int64_t n, float eps,
             float* out) {
  pool.parallel_for(n_tok, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* xt = x + t * n;
      // Eight partial sums: independent chains the compiler keeps in one vector register.
      float part[8] = {};
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; ++j) part[j] += xt[i + j] * xt[i + j];
      }
      float ss = 0.0f;
      for (; i < n; ++i) ss += xt[i] * xt[i];
      for (float p : part) ss += p;
      const float scale = 1.0f / std::sqrt(ss / float(n) + eps);
      float* ot = out + t * n;
      for (int64_t k = 0; k < n; ++k) ot[k] = xt[k] * scale * gain[k];
    }
  });
}

namespace {

void check_rope(int64_t head_dim) {
  if (head_dim <= 0 || head_dim % 2 != 0) fail("rope: head_dim {} must be positive and even", head_dim);
}

// Index of the two elements of pair i within a head.
inline void rope_pair(RopeStyle style, int64_t head_dim, int64_t i, int64_t& a, int64_t& b) {
  if (style == RopeStyle::kAdjacent) {
    a = 2 * i;
    b = 2 * i + 1;
  } else {
    a = i;
    b = i + head_dim / 2;
  }
}

}  // namespace

void rope_ref(float* x, std::span<const int32_t> positions, int64_t n_head, int64_t head_dim,
              const RopeParams& p) {
  check_rope(head_dim);
  for (size_t t = 0; t < positions.size(); ++t) {
    for (int64_t h = 0; h < n_head; ++h) {
      float* v = x + (int64_t(t) * n_head + h) * head_dim;
      for (int64_t i = 0; i < head_dim / 2; ++i) {
        const double freq = std::pow(double(p.theta), -2.0 * double(i) / double(head_dim));
        const double angle = double(positions[t]) / double(p.freq_scale) * freq;
        const double c = std::cos(angle), s = std::sin(angle);
        int64_t a, b;
        rope_pair(p.style, head_dim, i, a, b);
        const double x0 = v[a], x1 = v[b];
        v[a] = float(x0 * c - x1 * s);
        v[b] = float(x0 * s + x1 * c);
      }
    }
  }
}

void rope(ThreadPool& pool, float* x, std::span<const int32_t> positions, int64_t n_head, int64_t head_dim,
          const RopeParams& p) {
  check_rope(head_dim);
  const int64_t half = head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[size_t(i)] = float(std::pow(double(p.theta), -2.0 * double(i) / double(head_dim)) / p.freq_scale);
  }
  const int64_t n_tok = int64_t(positions.size());
  pool.parallel_for(n_tok, [&](int64_t t0, int64_t t1) {
    std::vector<float> cs(static_cast<size_t>(head_dim));  // cos for i < half, sin after
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t i = 0; i < half; ++i) {
        const float angle = float(positions[size_t(t)]) * inv_freq[size_t(i)];
        cs[size_t(i)] = std::cos(angle);
        cs[size_t(half + i)] = std::sin(angle);
      }
      for (int64_t h = 0; h < n_head; ++h) {
        float* v = x + (t * n_head + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          int64_t a, b;
          rope_pair(p.style, head_dim, i, a, b);
          const float x0 = v[a], x1 = v[b], c = cs[size_t(i)], s = cs[size_t(half + i)];
          v[a] = x0 * c - x1 * s;
          v[b] = x0 * s + x1 * c;
        }
      }
    }
  });
}

}  // namespace imp
