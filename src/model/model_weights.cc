#include "model/model_weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <thread>

#include "common/error.h"
#include "io/schemes/gptq.h"
#include "model/model.h"

namespace imp {

QuantMatrix ModelWeights::host_matrix(const std::string& name, int64_t rows, int64_t cols) {
  const TensorSource& t = weight_at(file_, name);
  const std::vector<int64_t> want = {rows, cols};
  if (t.shape != want) {
    fail("{}: tensor '{}' has shape [{}] but the config wants [{}]", file_.path, name, fmt::join(t.shape, ", "),
         fmt::join(want, ", "));
  }
  const StoragePlanRow& row = plan_.at(t.name);
  if (t.layout != StoredLayout::kCanonical) return repacked(t, row, rows, cols);
  if (row.tier == StorageTier::kMapped) return t.matrix();
  owned_.push_back(quantize(row.held_format, dequantize(t.matrix()), rows, cols));
  return owned_.back().view();
}

QuantMatrix ModelWeights::repacked(const TensorSource& t, const StoragePlanRow& row, int64_t rows, int64_t cols) {
  Int4Repacked r;
  if (t.layout == StoredLayout::kAwqGemm) {
    r.matrix = repack_awq_to_int4_group(t);
  } else {
    r = repack_gptq_to_int4_group(t);
  }
  if (row.tier == StorageTier::kMapped) {
    if (!r.input_perm.empty()) fail("{}: act-order tensor '{}' planned as mapped (a planner bug)", file_.path, t.name);
    owned_.push_back(std::move(r.matrix));
    return owned_.back().view();
  }
  // Matrix column j holds input feature input_perm[j]: scatter the columns back.
  std::vector<float> x = dequantize(r.matrix.view());
  if (!r.input_perm.empty()) {
    std::vector<float> y(x.size());
    for (int64_t n = 0; n < rows; ++n) {
      for (int64_t j = 0; j < cols; ++j) y[size_t(n * cols + r.input_perm[size_t(j)])] = x[size_t(n * cols + j)];
    }
    x = std::move(y);
  }
  owned_.push_back(quantize(row.held_format, x, rows, cols));
  return owned_.back().view();
}

MatrixHandle ModelWeights::matrix(const std::string& name, int64_t rows, int64_t cols) {
  const size_t owned_before = owned_.size();
  const QuantMatrix held = host_matrix(name, rows, cols);
  const MatrixHandle h = backend_.add_matrix(held, name);
  // The plan's decode-cache copy (storage_plan.h): made from the held values, handed over as
  // the matrix that single-token steps multiply.
  const StoragePlanRow& row = plan_.at(weight_at(file_, name).name);
  if (row.has_decode_copy()) {
    // Load-time work over every weight of the model: all hardware threads.
    const int threads = int(std::max(1u, std::thread::hardware_concurrency()));
    owned_.push_back(quantize(row.decode_format, dequantize(held, threads), rows, cols, 0, threads));
    backend_.set_decode_matrix(h, owned_.back().view(), name);
  }
  // A prequantized checkpoint's static activation scale (ModelOpt/llm-compressor input_scale).
  if (const auto s = weight_at(file_, name).input_scale) backend_.describe_matrix_input(h, s, false);
  // A backend that copied the weights (CUDA) does not need what was converted for it here:
  // free it rather than hold a second copy of the model in host memory.
  if (!backend_.keeps_host_weights()) owned_.resize(owned_before);
  return h;
}

const float* ModelWeights::vector(const std::string& name, int64_t n, bool optional, float add) {
  const TensorSource* t = find_weight(file_, name);
  if (!t) {
    if (optional) return nullptr;
    weight_at(file_, name);  // throws naming the tensor and file
  }
  if (t->shape.size() != 1 || t->shape[0] != n) {
    fail("{}: tensor '{}' has shape [{}] but the config wants [{}]", file_.path, name, fmt::join(t->shape, ", "), n);
  }
  // The plan decides: F32 vectors are used in place, anything else converted (storage_plan.cc).
  const StoragePlanRow& row = plan_.at(t->name);
  if (row.held_format != FormatId::F32) {
    fail("{}: plan holds vector '{}' as {}, not f32", file_.path, name, format_name(row.held_format));
  }
  if (row.tier == StorageTier::kMapped && add == 0.0f) {
    return backend_.add_vector(reinterpret_cast<const float*>(t->data.data()), n, name);
  }
  std::vector<float> x = dequantize(t->matrix());
  for (float& v : x) v += add;
  owned_.push_back(quantize(FormatId::F32, x, 1, n));
  return backend_.add_vector(reinterpret_cast<const float*>(owned_.back().data.data()), n, name);
}

void ForwardActivations::ensure(Backend& backend, const ModelConfig& c, int64_t n) {
  if (cap >= n) return;
  *this = ForwardActivations{};
  x = BackendBuffer(backend, n * c.n_embd);
  h = BackendBuffer(backend, n * c.n_embd);
  q = BackendBuffer(backend, n * c.n_head * c.head_dim);
  k = BackendBuffer(backend, n * c.n_head_kv * c.head_dim);
  v = BackendBuffer(backend, n * c.n_head_kv * c.head_dim);
  att = BackendBuffer(backend, n * c.n_head * c.head_dim);
  o = BackendBuffer(backend, n * c.n_embd);
  g = BackendBuffer(backend, n * c.n_ff);
  u = BackendBuffer(backend, n * c.n_ff);
  logits = BackendBuffer(backend, n * c.n_vocab);
  cap = n;
}

}  // namespace imp
