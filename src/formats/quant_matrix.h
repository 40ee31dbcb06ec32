// QuantMatrix — a 2-D weight [rows, cols] in any format, with every plane it needs, and
// the checked entry points that turn it into floats or build it from floats.
//
// Planes (row-major, rows = output features, cols = input features):
//   data   : rows × row_data_bytes(format, cols)
//   scales : split formats only; per layout (formats/traits.h ScaleLayout):
//            kPerBlock  rows × cols/block_elems entries of scale_bytes
//            kPerGroup  rows × cols/group entries of scale_bytes (F16)
//            kPerRow    rows entries (F32)
//            kTile128   ceil(rows/128) × ceil(cols/128) entries (F32)
//   zeros  : kPerGroup with zero points: rows × cols/group uint8 (0..15)
// Every size is validated before a byte is read; a mismatch is an imp::Error that names
// the format, the plane and the sizes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "formats/traits.h"

namespace imp {

struct QuantMatrix {
  FormatId format = FormatId::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  std::span<const uint8_t> data;
  std::span<const uint8_t> scales;
  std::span<const uint8_t> zeros;
  float tensor_scale = 1.0f;
  int32_t group = 0;  // INT4_GROUP: elements per group (multiple of 32)
};

struct OwnedQuantMatrix {
  FormatId format = FormatId::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> data;
  std::vector<uint8_t> scales;
  std::vector<uint8_t> zeros;
  float tensor_scale = 1.0f;
  int32_t group = 0;

  QuantMatrix view() const { return {format, rows, cols, data, scales, zeros, tensor_scale, group}; }
};

// Throws unless n is a positive multiple of the format's block (and of `group`).
void check_row_length(FormatId format, int64_t n, int32_t group = 0);
// Bytes of one row's data plane. Throws like check_row_length.
int64_t row_data_bytes(FormatId format, int64_t n);
// Bytes of the whole scales / zeros planes for a rows × cols matrix.
int64_t scale_plane_bytes(FormatId format, int64_t rows, int64_t cols, int32_t group);
int64_t zero_plane_bytes(FormatId format, int64_t rows, int64_t cols, int32_t group);

// Throws if any plane has the wrong size for the shape; overflow-checked.
void validate(const QuantMatrix& m);
// Pointers to row r of every plane (no checks: call validate first).
ConstRowPlanes row_planes(const QuantMatrix& m, int64_t r);

// Reference dequantization of a whole matrix into out (rows × cols floats).
// threads > 1: rows split across that many threads (same results: rows are independent).
void dequantize(const QuantMatrix& m, std::span<float> out, int threads = 1);
std::vector<float> dequantize(const QuantMatrix& m, int threads = 1);
// One self-contained row buffer (GGUF types, scalars): bytes must be whole blocks.
std::vector<float> dequantize_row(FormatId format, std::span<const uint8_t> bytes);

// Reference quantization of rows × cols floats. For formats with a per-tensor scale the
// scale is computed from the whole matrix first (NVFP4: amax / (6·448); FP8: amax / 448).
// threads > 1: the row quantizers run on that many threads (same bytes: after the
// per-tensor / per-tile scales, rows are independent) — e.g. load-time conversions.
OwnedQuantMatrix quantize(FormatId format, std::span<const float> x, int64_t rows, int64_t cols,
                          int32_t group = 0, int threads = 1);

}  // namespace imp
