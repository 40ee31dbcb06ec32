#include "quant/calib.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace imp::quant {

std::vector<float> LinearStats::mean_abs() const {
  std::vector<float> m(size_t(cols), 0.0f);
  if (n_tok > 0) {
    for (int64_t j = 0; j < cols; ++j) m[size_t(j)] = float(sum_abs[size_t(j)] / double(n_tok));
  }
  return m;
}

CalibCollector::CalibCollector(CalibOptions options) : opt_(options), rng_(options.seed) {
  observer_ = [this](const std::string& w, const float* x, int64_t n, int64_t cols) { observe(w, x, n, cols); };
}

void CalibCollector::observe(const std::string& weight, const float* x, int64_t n, int64_t cols) {
  if (n <= 0 || cols <= 0) fail("calibration: weight '{}' observed with {} tokens of {} columns", weight, n, cols);
  // Same buffer, same shape as the call just before: the same input (q/k/v, gate/up).
  if (x == last_x_ && n == last_n_ && cols == last_cols_ && !last_owner_.empty() && weight != last_owner_) {
    const auto it = alias_.find(weight);
    if (it == alias_.end()) alias_[weight] = last_owner_;
    else if (it->second != last_owner_) fail("calibration: weight '{}' changed its input group", weight);
    return;
  }
  if (alias_.count(weight)) fail("calibration: weight '{}' was seen sharing an input and now alone", weight);
  LinearStats& s = stats_[weight];
  if (s.cols == 0) {
    s.cols = cols;
    s.sum_x2.assign(size_t(cols), 0.0);
    s.sum_abs.assign(size_t(cols), 0.0);
    s.amax_col.assign(size_t(cols), 0.0f);
    if (opt_.xtx) s.xtx.assign(size_t(cols * cols), 0.0);
  } else if (s.cols != cols) {
    fail("calibration: weight '{}' observed with {} columns, before with {}", weight, cols, s.cols);
  }
  for (int64_t t = 0; t < n; ++t) {
    const float* r = x + t * cols;
    for (int64_t j = 0; j < cols; ++j) {
      const double v = r[j];
      s.sum_x2[size_t(j)] += v * v;
      const float a = std::fabs(r[j]);
      s.sum_abs[size_t(j)] += a;
      s.amax_col[size_t(j)] = std::max(s.amax_col[size_t(j)], a);
    }
  }
  for (float a : s.amax_col) s.amax = std::max(s.amax, a);
  if (opt_.xtx) {
    // Upper triangle, accumulated per call in float (n ≤ one batch), added into doubles;
    // mirrored at the end of each call so xtx is always the full symmetric matrix.
    std::vector<float> acc(size_t(cols * cols), 0.0f);
    for (int64_t t = 0; t < n; ++t) {
      const float* r = x + t * cols;
      for (int64_t a = 0; a < cols; ++a) {
        const float ra = r[a];
        if (ra == 0.0f) continue;
        float* row = acc.data() + a * cols;
        for (int64_t b = a; b < cols; ++b) row[b] += ra * r[b];
      }
    }
    for (int64_t a = 0; a < cols; ++a) {
      for (int64_t b = a; b < cols; ++b) {
        const double v = acc[size_t(a * cols + b)];
        s.xtx[size_t(a * cols + b)] += v;
        if (b != a) s.xtx[size_t(b * cols + a)] += v;
      }
    }
  }
  if (opt_.max_samples > 0) {
    if (s.samples.empty()) s.samples.resize(size_t(opt_.max_samples * cols));
    for (int64_t t = 0; t < n; ++t) {
      const int64_t seen = s.n_tok + t;  // reservoir sampling over every token seen
      int64_t slot = -1;
      if (seen < opt_.max_samples) {
        slot = seen;
      } else {
        const int64_t r = int64_t(rng_() % uint64_t(seen + 1));
        if (r < opt_.max_samples) slot = r;
      }
      if (slot >= 0) std::copy_n(x + t * cols, cols, s.samples.begin() + slot * cols);
    }
    s.n_samples = std::min(opt_.max_samples, s.n_tok + n);
  }
  s.n_tok += n;
  last_x_ = x;
  last_n_ = n;
  last_cols_ = cols;
  last_owner_ = weight;
}

const LinearStats* CalibCollector::find(const std::string& weight) const {
  const auto a = alias_.find(weight);
  const auto it = stats_.find(a == alias_.end() ? weight : a->second);
  return it == stats_.end() ? nullptr : &it->second;
}

std::vector<std::string> CalibCollector::weight_names() const {
  std::vector<std::string> names;
  for (const auto& [k, v] : stats_) names.push_back(k);
  for (const auto& [k, v] : alias_) names.push_back(k);
  std::sort(names.begin(), names.end());
  return names;
}

int64_t run_calibration(eval::LoadedModel& m, const std::string& text_path, int64_t n_ctx, int64_t n_chunk,
                        CalibCollector& collector, bool progress) {
  const std::vector<int32_t> all = eval::tokenize_file(m, text_path);
  eval::ChunkSpec spec = eval::plan_chunks(m, int64_t(all.size()), n_ctx, n_chunk, 0);
  const int64_t used = spec.n_chunk * spec.n_ctx;
  const std::vector<int32_t> tail(all.end() - used, all.end());
  m.model->set_observer(&collector.observer());
  try {
    eval::run_chunks(m, tail, spec, KvType::F32, progress, [](int64_t, std::span<const float>, std::span<const int32_t>) {});
  } catch (...) {
    m.model->set_observer(nullptr);
    throw;
  }
  m.model->set_observer(nullptr);
  return used;
}

}  // namespace imp::quant
