#include "quant/quantize_tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/thread_pool.h"
#include "common/error.h"
#include "formats/fp8_scaled.h"
#include "formats/nvfp4_ckpt.h"
#include "quant/gptq.h"
#include "quant/methods.h"
#include "quant/nvfp4_search.h"
#include "quant/weighted_ggml.h"

namespace imp {
namespace {

// fn(begin, end) over [0, n) in chunks, on the pool when there is one.
void for_chunks(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool && pool->size() > 1 && n > 1) {
    pool->parallel_for(n, fn);
  } else {
    fn(0, n);
  }
}

RowPlanes mutable_row(const OwnedQuantMatrix& m, int64_t r) {
  const ConstRowPlanes c = row_planes(m.view(), r);
  return {const_cast<void*>(c.data), const_cast<void*>(c.scales), const_cast<void*>(c.zeros), c.tensor_scale, c.group};
}

OwnedQuantMatrix rtn(const TensorJob& job, ThreadPool* pool) {
  const FormatId f = job.format;
  const auto& t = format_traits(f);
  if (t.scale_layout == ScaleLayout::kTile128) {
    // Bands of 128 rows are independent: quantize() each band and copy its planes in.
    const int64_t bands = (job.rows + kFp8Tile - 1) / kFp8Tile;
    OwnedQuantMatrix m;
    m.format = f;
    m.rows = job.rows;
    m.cols = job.cols;
    m.data.resize(size_t(job.rows * row_data_bytes(f, job.cols)));
    m.scales.resize(size_t(scale_plane_bytes(f, job.rows, job.cols, 0)));
    const int64_t row_bytes = row_data_bytes(f, job.cols);
    const int64_t band_scale_bytes = scale_plane_bytes(f, 1, job.cols, 0);  // one tile-row
    for_chunks(pool, bands, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t r0 = b * kFp8Tile, nr = std::min<int64_t>(kFp8Tile, job.rows - r0);
        const OwnedQuantMatrix q =
            quantize(f, job.data.subspan(size_t(r0 * job.cols), size_t(nr * job.cols)), nr, job.cols);
        std::memcpy(m.data.data() + r0 * row_bytes, q.data.data(), q.data.size());
        std::memcpy(m.scales.data() + b * band_scale_bytes, q.scales.data(), q.scales.size());
      }
    });
    return m;
  }
  OwnedQuantMatrix m;
  m.format = f;
  m.rows = job.rows;
  m.cols = job.cols;
  m.group = job.group;
  m.data.resize(size_t(job.rows * row_data_bytes(f, job.cols)));
  m.scales.resize(size_t(scale_plane_bytes(f, job.rows, job.cols, job.group)));
  m.zeros.resize(size_t(zero_plane_bytes(f, job.rows, job.cols, job.group)));
  if (t.needs_tensor_scale) {
    // The same fmax reduction in the same order as formats::quantize(), so G is identical.
    float amax = 0.0f;
    for (float v : job.data) amax = std::fmax(amax, std::fabs(v));
    m.tensor_scale = f == FormatId::NVFP4_CKPT ? nvfp4_ckpt_tensor_scale(amax) : fp8_e4m3_tensor_scale(amax);
  }
  for_chunks(pool, job.rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) t.quantize_ref(job.data.data() + r * job.cols, mutable_row(m, r), job.cols);
  });
  return m;
}

}  // namespace

OwnedQuantMatrix quantize_tensor(const TensorJob& job, const QuantOptions& opt) {
  const auto& t = format_traits(job.format);
  if (t.is_activation_only) fail("{}: {} is an activation format, not a weight format", job.name, t.name);
  if (job.rows <= 0 || job.cols <= 0) fail("{}: empty tensor ({} × {})", job.name, job.rows, job.cols);
  if (int64_t(job.data.size()) != job.rows * job.cols) {
    fail("{}: {} values for a {} × {} tensor", job.name, job.data.size(), job.rows, job.cols);
  }
  try {
    check_row_length(job.format, job.cols, job.group);
  } catch (const Error& e) {
    fail("{}: {}", job.name, e.what());
  }
  if (!quant::known_method(opt.method)) fail("{}: unknown quantization method '{}'", job.name, opt.method);
  const std::span<const float> imp =
      opt.importance ? std::span<const float>(opt.importance, size_t(job.cols)) : std::span<const float>();
  if (opt.method == "gptq" && opt.gptq && quant::gptq_supports(job.format)) {
    quant::GptqOptions g;
    g.format = job.format;
    g.group = job.group;
    g.importance = imp;
    return quant::gptq_quantize(job.data, job.rows, job.cols, *opt.gptq, g).q;
  }
  if (!imp.empty()) {
    if (job.format == FormatId::NVFP4_CKPT || job.format == FormatId::NVFP4)
      return quant::quantize_nvfp4_weighted(job.format, job.data, job.rows, job.cols, imp);
    if (quant::has_weighted_quantizer(job.format)) {
      OwnedQuantMatrix m;
      m.format = job.format;
      m.rows = job.rows;
      m.cols = job.cols;
      const int64_t rb = row_data_bytes(job.format, job.cols);
      m.data.resize(size_t(job.rows * rb));
      for_chunks(opt.pool, job.rows, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          quant::quantize_row_weighted(job.format, job.data.data() + r * job.cols, m.data.data() + r * rb, job.cols,
                                       imp.data());
      });
      return m;
    }
  }
  return rtn(job, opt.pool);
}

}  // namespace imp
