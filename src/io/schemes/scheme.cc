#include "io/schemes/scheme.h"

#include <cmath>
#include <cstring>
#include <map>
#include <regex>

#include "common/error.h"
#include "formats/bf16.h"
#include "formats/e8m0.h"
#include "formats/f16.h"

namespace imp {

void fail_tensor(const StTensor& t, const std::string& what) {
  fail("{}: tensor '{}': {}", t.file ? *t.file : std::string("?"), t.name, what);
}

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

const StTensor* SchemeContext::get(const std::string& name) const {
  const auto it = st.by_name.find(name);
  return it == st.by_name.end() ? nullptr : it->second;
}

const StTensor* SchemeContext::opt(const std::string& name, std::initializer_list<StDtype> dtypes, const char* role) {
  const StTensor* t = get(name);
  if (!t) return nullptr;
  bool ok = false;
  std::string allowed;
  for (StDtype d : dtypes) {
    ok |= t->dtype == d;
    allowed += (allowed.empty() ? "" : " or ") + std::string(st_dtype_name(d));
  }
  if (!ok) fail_tensor(*t, fmt::format("{} has dtype {}, {} needs {}", role, st_dtype_name(t->dtype), quant.label, allowed));
  consumed.insert(name);
  return t;
}

const StTensor& SchemeContext::need(const std::string& name, std::initializer_list<StDtype> dtypes, const char* role) {
  if (const StTensor* t = opt(name, dtypes, role)) return *t;
  fail("{}: {} tensor '{}' is missing ({})", model.path, role, name, quant.label);
}

void SchemeContext::expect_shape(const StTensor& t, const std::vector<int64_t>& want, const char* role) const {
  if (t.shape != want) fail_tensor(t, fmt::format("{} has shape {}, expected {}", role, shape_str(t.shape), shape_str(want)));
}

float SchemeContext::scalar(const StTensor& t, const char* role) const {
  if (!(t.shape.empty() || (t.shape.size() == 1 && t.shape[0] == 1))) {
    fail_tensor(t, fmt::format("{} must be a scalar (shape [] or [1]), has shape {}", role, shape_str(t.shape)));
  }
  float v = 0.0f;
  if (t.dtype == StDtype::F32) {
    std::memcpy(&v, t.data.data(), 4);
  } else if (t.dtype == StDtype::BF16 || t.dtype == StDtype::F16) {
    uint16_t h = 0;
    std::memcpy(&h, t.data.data(), 2);
    v = t.dtype == StDtype::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
  } else {
    fail_tensor(t, fmt::format("{} has dtype {}, expected F32, BF16 or F16", role, st_dtype_name(t.dtype)));
  }
  if (!std::isfinite(v)) fail_tensor(t, fmt::format("{} is not finite ({})", role, v));
  return v;
}

std::span<const uint8_t> SchemeContext::as_f32(const StTensor& t, const char* role) {
  if (t.dtype == StDtype::F32) return t.data;
  const int64_t n = t.elements();
  auto buf = std::make_unique<std::vector<uint8_t>>(size_t(n) * 4);
  for (int64_t i = 0; i < n; ++i) {
    float v = 0.0f;
    if (t.dtype == StDtype::F8_E8M0) {
      v = e8m0_to_f32(t.data[size_t(i)]);
    } else if (t.dtype == StDtype::F16 || t.dtype == StDtype::BF16) {
      uint16_t h = 0;
      std::memcpy(&h, t.data.data() + 2 * i, 2);
      v = t.dtype == StDtype::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
    } else {
      fail_tensor(t, fmt::format("{} has dtype {}, expected F32, F16, BF16 or F8_E8M0", role, st_dtype_name(t.dtype)));
    }
    std::memcpy(buf->data() + 4 * i, &v, 4);
  }
  model.owned.push_back(std::move(buf));
  return *model.owned.back();
}

TensorSource SchemeContext::source_for(const StTensor& t, const std::string& name, FormatId format) const {
  TensorSource s;
  s.name = name;
  s.shape = t.shape;
  s.format = format;
  s.data = t.data;
  s.file = t.file ? *t.file : std::string();
  return s;
}

void SchemeContext::add(TensorSource s) {
  if (s.layout == StoredLayout::kCanonical) (void)s.matrix();  // plane sizes vs shape, with the tensor named
  model.tensors.push_back(std::move(s));
}

void warn_fused_scale_mismatch(ModelFile& model) {
  // Partitions that inference engines fuse into one GEMM; with one per-tensor scale per
  // partition, a fused kernel must requantize or (as vLLM does) take the max.
  static const std::regex kPart(R"((.*)\.(q_proj|k_proj|v_proj|gate_proj|up_proj)\.weight)");
  struct Part {
    std::string which;
    float scale;
    std::optional<float> input;
  };
  std::map<std::string, std::vector<Part>> groups;  // "<parent> q/k/v" → partitions
  for (const auto& t : model.tensors) {
    if (!format_traits(t.format).needs_tensor_scale) continue;
    std::smatch m;
    if (!std::regex_match(t.name, m, kPart)) continue;
    const std::string p = m[2];
    const bool attn = p == "q_proj" || p == "k_proj" || p == "v_proj";
    groups[m[1].str() + (attn ? " q/k/v" : " gate/up")].push_back({p, t.tensor_scale, t.input_scale});
  }
  for (const auto& [key, parts] : groups) {
    if (parts.size() < 2) continue;
    bool w_differs = false, in_differs = false;
    for (const auto& p : parts) {
      w_differs |= p.scale != parts[0].scale;
      in_differs |= p.input != parts[0].input;
    }
    if (!w_differs && !in_differs) continue;
    std::string list;
    for (const auto& p : parts) {
      list += fmt::format("{}{} {}", list.empty() ? "" : ", ", p.which, p.scale);
      if (p.input) list += fmt::format(" (input {})", *p.input);
    }
    model.warnings.push_back(fmt::format(
        "{}: fused partitions carry different {} global scales ({}); a fused GEMM needs one (vLLM takes the max, "
        "which is lossy)",
        key, w_differs ? (in_differs ? "weight and input" : "weight") : "input", list));
  }
}

}  // namespace imp
