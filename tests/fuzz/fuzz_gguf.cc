// libFuzzer target for the GGUF reader (built by scripts/fuzz.sh with ASan + UBSan).
// Any input must either parse or throw imp::Error; a parsed file must survive everything a
// loader does next (metadata JSON, config, tokenizer, dequantizing small tensors) and
// write back to bytes that parse to the same KV pairs and tensors.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "formats/quant_matrix.h"
#include "io/gguf_config.h"
#include "io/gguf_reader.h"
#include "io/gguf_writer.h"

namespace {

constexpr uint64_t kMaxDequantElements = 1 << 16;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void exercise(const imp::GgufFile& f) {
  (void)imp::gguf_metadata_json(f).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::vector<std::string> warnings;
  try {
    (void)imp::gguf_model_config(f, warnings);
    (void)imp::gguf_tokenizer_info(f);
  } catch (const imp::Error&) {
  }
  for (const auto& t : f.tensors) {
    const auto data = f.tensor_data(t);
    check(data.size() == t.size);
    if (t.elements() == 0 || t.elements() > kMaxDequantElements) continue;
    imp::QuantMatrix m;
    m.format = t.format;
    m.cols = t.ne.empty() ? 1 : int64_t(t.ne[0]);
    m.rows = int64_t(t.elements()) / m.cols;
    m.data = data;
    try {
      (void)imp::dequantize(m);
    } catch (const imp::Error&) {  // activation-only or not-yet-implemented formats
    }
  }
}

void round_trip(const imp::GgufFile& f) {
  imp::GgufWriter w;
  for (const auto& [key, value] : f.kv) w.set(key, value);
  for (const auto& t : f.tensors) w.add_tensor(t.name, t.shape(), t.format, f.tensor_data(t));
  const std::vector<uint8_t> bytes = w.to_bytes();
  const imp::GgufFile g = imp::parse_gguf(bytes, "round-trip");
  check(g.kv.size() == f.kv.size() && g.tensors.size() == f.tensors.size());
  for (size_t k = 0; k < f.kv.size(); ++k) check(g.kv[k].first == f.kv[k].first && g.kv[k].second == f.kv[k].second);
  for (size_t k = 0; k < f.tensors.size(); ++k) {
    const auto a = f.tensor_data(f.tensors[k]);
    const auto b = g.tensor_data(g.tensors[k]);
    check(g.tensors[k].name == f.tensors[k].name && g.tensors[k].ne == f.tensors[k].ne &&
          g.tensors[k].format == f.tensors[k].format && std::equal(a.begin(), a.end(), b.begin(), b.end()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  imp::GgufFile f;
  try {
    f = imp::parse_gguf(std::span<const uint8_t>(data, size), "fuzz.gguf");
  } catch (const imp::Error&) {
    return 0;
  }
  exercise(f);
  round_trip(f);
  return 0;
}
