// Importance matrices in llama.cpp's file formats (tools/imatrix).
//
// GGUF (current llama-imatrix output), per weight W with `cols` input columns:
//   tensor "<W>.in_sum2"  F32, ggml ne = (cols, 1)  — Σ_t x[t,j]² over the calibration tokens
//   tensor "<W>.counts"   F32, ggml ne = (1, 1)     — number of tokens summed
//   general.type = "imatrix", imatrix.datasets = [text paths] (ARRAY[STRING]),
//   imatrix.chunk_count (U32), imatrix.chunk_size (U32, tokens per chunk)
//   (llama.cpp also writes "<W>.in_sum" and "<W>.stats" in newer builds; readers ignore
//   tensors with other suffixes, and so does this one.)
// Legacy ".dat" (read only): i32 n_entries; per entry i32 len, name bytes, i32 ncall,
//   i32 nval, f32 values[nval] where values = mean(x²)·ncall; then i32 n_call, i32 len,
//   dataset bytes (optional).
// The importance the quantizers use is mean(x²) = in_sum2 / counts per column (what
// llama-quantize passes as quant_weights).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "quant/calib.h"

namespace imp::quant {

struct ImatrixEntry {
  std::vector<float> in_sum2;  // Σx² per column
  float count = 0;             // tokens
};

struct Imatrix {
  std::map<std::string, ImatrixEntry> entries;
  std::vector<std::string> datasets;
  uint32_t chunk_count = 0, chunk_size = 0;

  // mean(x²) per column of `weight`; empty when the weight has no entry.
  std::vector<float> importance(const std::string& weight) const;
};

// Every weight the collector observed (aliases get their own copy, as llama.cpp writes one
// entry per weight).
Imatrix imatrix_from_calibration(const CalibCollector& c, std::vector<std::string> datasets, uint32_t chunk_count,
                                 uint32_t chunk_size);

// Writes GGUF atomically (temporary name, then rename).
void write_imatrix(const Imatrix& m, const std::string& path);
// Reads GGUF, or the legacy .dat when the file does not start with "GGUF". Errors name the
// file and what was wrong (missing counts, size mismatch, truncated entry).
Imatrix read_imatrix(const std::string& path);

}  // namespace imp::quant
