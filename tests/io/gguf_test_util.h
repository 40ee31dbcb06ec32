// Test helpers for the GGUF reader/writer: a valid example file with every KV type and
// tensors of several formats built from fresh random data, and byte patching.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "formats/quant_matrix.h"
#include "io/gguf_writer.h"

namespace imp::test {

template <class T>
std::vector<uint8_t> raw_of(const std::vector<T>& v) {
  std::vector<uint8_t> r(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(r.data(), v.data(), r.size());
  return r;
}

// Every scalar type, an array of every element type (strings included, one empty array),
// and the llama keys open_gguf_model reads.
inline void add_example_kv(GgufWriter& w, std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> any;
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.set("general.name", GgufValue::of_string("example ünïcode"));
  w.set("t.u8", GgufValue::of_uint(GgufType::kUint8, 200));
  w.set("t.i8", GgufValue::of_int(GgufType::kInt8, -100));
  w.set("t.u16", GgufValue::of_uint(GgufType::kUint16, 65000));
  w.set("t.i16", GgufValue::of_int(GgufType::kInt16, -32000));
  w.set("t.u32", GgufValue::of_uint(GgufType::kUint32, uint64_t(any(rng)) >> 32));
  w.set("t.i32", GgufValue::of_int(GgufType::kInt32, -(any(rng) >> 33)));
  w.set("t.f32", GgufValue::of_float(GgufType::kFloat32, std::normal_distribution<float>()(rng)));
  w.set("t.bool", GgufValue::of_bool(true));
  w.set("t.str", GgufValue::of_string("hello"));
  w.set("t.u64", GgufValue::of_uint(GgufType::kUint64, uint64_t(any(rng)) | (uint64_t(1) << 63)));
  w.set("t.i64", GgufValue::of_int(GgufType::kInt64, -any(rng)));
  w.set("t.f64", GgufValue::of_float(GgufType::kFloat64, std::normal_distribution<double>()(rng)));
  w.set("t.arr_u8", GgufValue::of_array(GgufType::kUint8, {1, 2, 3}));
  w.set("t.arr_i16", GgufValue::of_array(GgufType::kInt16, raw_of(std::vector<int16_t>{-1, 7, 300})));
  w.set("t.arr_f32", GgufValue::of_array(GgufType::kFloat32, raw_of(std::vector<float>{0.5f, -2.25f})));
  w.set("t.arr_bool", GgufValue::of_array(GgufType::kBool, {1, 0, 1}));
  w.set("t.arr_u64", GgufValue::of_array(GgufType::kUint64, raw_of(std::vector<uint64_t>{uint64_t(any(rng))})));
  w.set("t.arr_empty", GgufValue::of_array(GgufType::kInt32, {}));
  w.set("t.arr_str", GgufValue::of_strings({"a", "", "bc d"}));
  w.set("llama.context_length", GgufValue::of_uint(GgufType::kUint32, 4096));
  w.set("llama.embedding_length", GgufValue::of_uint(GgufType::kUint32, 64));
  w.set("llama.block_count", GgufValue::of_uint(GgufType::kUint32, 1));
  w.set("llama.attention.head_count", GgufValue::of_uint(GgufType::kUint32, 4));
  w.set("tokenizer.ggml.model", GgufValue::of_string("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::of_strings({"<unk>", "<s>", "</s>", "a", "b"}));
}

struct ExampleTensor {
  std::string name;
  std::vector<int64_t> shape;
  FormatId format;
  std::vector<uint8_t> bytes;
};

// Awkward shapes, random values quantized by the reference quantizers (or raw bits).
inline std::vector<ExampleTensor> example_tensors(std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  auto values = [&](int64_t n) {
    std::vector<float> x(static_cast<size_t>(n), 0.0f);
    for (auto& v : x) v = normal(rng);
    return x;
  };
  std::vector<ExampleTensor> t;
  auto add_quant = [&](std::string name, std::vector<int64_t> shape, FormatId f) {
    const int64_t cols = shape.back();
    const int64_t rows = [&] { int64_t r = 1; for (size_t k = 0; k + 1 < shape.size(); ++k) r *= shape[k]; return r; }();
    const auto q = quantize(f, values(rows * cols), rows, cols);
    t.push_back({std::move(name), std::move(shape), f, q.data});
  };
  add_quant("token_embd.weight", {5, 64}, FormatId::F32);
  add_quant("output_norm.weight", {17}, FormatId::F32);
  add_quant("blk.0.attn_q.weight", {3, 37 * 32}, FormatId::Q4_0);
  add_quant("blk.0.attn_k.weight", {17, 32}, FormatId::Q8_0);
  add_quant("blk.0.ffn_up.weight", {2, 3, 96}, FormatId::F16);
  add_quant("blk.0.ffn_down.weight", {1, 1, 3, 33}, FormatId::BF16);
  // A K-quant with random bytes: the reader and writer never look inside blocks.
  std::vector<uint8_t> qk(size_t(3 * 144));
  for (auto& b : qk) b = uint8_t(rng());
  t.push_back({"blk.0.ffn_gate.weight", {3, 256}, FormatId::Q4_K, qk});
  return t;
}

// A whole valid file in memory. `keep` receives the tensors (their bytes back the file).
inline std::vector<uint8_t> example_gguf(uint64_t seed, uint32_t alignment = 32,
                                         std::vector<ExampleTensor>* keep = nullptr) {
  std::mt19937_64 rng(seed);
  GgufWriter w;
  add_example_kv(w, rng);
  if (alignment != 32) w.set("general.alignment", GgufValue::of_uint(GgufType::kUint32, alignment));
  std::vector<ExampleTensor> tensors = example_tensors(rng);
  for (const auto& x : tensors) w.add_tensor(x.name, x.shape, x.format, x.bytes);
  auto bytes = w.to_bytes();
  if (keep) *keep = std::move(tensors);
  return bytes;
}

template <class T>
void patch(std::vector<uint8_t>& b, uint64_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

}  // namespace imp::test
