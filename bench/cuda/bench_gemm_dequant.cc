// imp_bench_cuda_gemm — prefill GEMM throughput of the quantized tiers on the Llama-3-8B
// shapes, each way CudaBackend can run them, against the BF16 GEMM and the measured bf16
// matrix rate (../shared/DESIGN.md, "What fast means here").
//
// For each format, shape and token count: what a prefill layer runs for it in the default
// BF16 mode — CudaBackend::matmul for one matrix, matmul_qkv for Q·K·V (4096 + 2 × 1024
// rows), ffn_gate_up_swiglu for gate·up (2 × 14336 rows, SwiGLU included) — on copies of
// the random matrices, enough copies that together they exceed 4× the L2, so no GEMM finds
// its weights in cache, one after another, timed with CUDA events on the backend's stream;
// the time is the median of --runs samples of one pass over the copies, divided by the
// copies. Ways:
//   bf16    BF16 weights, cuBLAS (what the 4-bit tiers are held to: ≥ 0.9×);
//   cublas  kMma weights dequantized to BF16 chunks, then cuBLAS (gemm_mma_pipelined); Q5_K,
//           Q6_K: their own layouts (the default until IMP_CUDA_Q5K_Q6K_MMA is), the other ways kMma;
//   fused   kMma weights through gemm_dequant (wgmma with the dequantization fused in; the
//           hooks' matrices in one grouped launch), 128 tokens per CTA; fused256: 256;
//   fused   (lead 1), lead2   fused, 128 tokens, decoding with two units of wgmmas queued
//           (fused_gemm_lead; auto takes gemm_dequant_lead_for's by-format choice);
//   auto    the backend's default: by size (gemm_dequant.h, fused_gemm_takes and
//           gemm_dequant_tile_tokens).
// The matrices hold random codes with fixed, finite scales (the GEMM's time does not depend
// on the values). Every row prints TFLOP/s, its fraction of the bf16 matrix rate, and the
// ratio to the bf16 row of the same shape.
//
// Usage: imp_bench_cuda_gemm [--runs N] [--tokens 512,2048] [--formats q4_0,q8_0,q4_k,q5_k,q6_k,nvfp4,mxfp4]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/device.h"
#include "backends/cuda/gemm_dequant.h"
#include "backends/cuda/gemv.h"
#include "backends/cuda/matrix_rate.h"
#include "bench_device.h"
#include "formats/quant_matrix.h"
#include "formats/traits.h"

namespace {

using imp::FormatId;
using namespace imp::cuda;

// A prefill layer's GEMM (one matrix) or fused hook (Q·K·V: three, gate·up: two).
struct Shape {
  const char* name;
  std::vector<int64_t> rows;
  int64_t cols;
  int64_t total_rows() const {
    int64_t n = 0;
    for (int64_t r : rows) n += r;
    return n;
  }
};
const Shape kShapes[] = {{"q/o 4096x4096", {4096}, 4096},
                         {"qkv 4096+2x1024", {4096, 1024, 1024}, 4096},
                         {"gate+up 2x14336", {14336, 14336}, 4096},
                         {"down 4096x14336", {4096}, 14336}};

// Random native GGUF blocks whose scales are fixed finite values: d = dmin = 2^-8 (f16 0x1C00);
// NVFP4 / MXFP4 (scale planes of their own) through the reference quantizer from Gaussian
// values, on all host threads.
imp::OwnedQuantMatrix random_matrix(FormatId f, int64_t rows, int64_t cols, uint64_t seed) {
  if (f == FormatId::NVFP4_CKPT || f == FormatId::MXFP4_CKPT) {
    std::vector<float> v(size_t(rows * cols));
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    for (float& e : v) e = nd(rng);
    return imp::quantize(f, v, rows, cols, 0, int(std::max(1u, std::thread::hardware_concurrency())));
  }
  imp::OwnedQuantMatrix m;
  m.format = f;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(size_t(rows * imp::row_data_bytes(f, cols)));
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= m.data.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(&m.data[i], &v, 8);
  }
  if (f == FormatId::BF16) {
    for (size_t i = 0; i + 1 < m.data.size(); i += 2) m.data[i + 1] = uint8_t(0x3C | (m.data[i + 1] & 0x80));  // |w| < 2^-6
    return m;
  }
  const int block_bytes = f == FormatId::Q4_0   ? 18
                          : f == FormatId::Q8_0 ? 34
                          : f == FormatId::Q6_K ? 210
                          : f == FormatId::Q5_K ? 176
                                                : 144;
  const int scale_bytes = f == FormatId::Q4_K || f == FormatId::Q5_K ? 4 : 2;
  const size_t d_at = f == FormatId::Q6_K ? 208 : 0;  // Q6_K keeps d last; its int8 scales stay random
  for (size_t b = 0; b < m.data.size(); b += size_t(block_bytes)) {
    for (int i = 0; i < scale_bytes; i += 2) m.data[b + d_at + size_t(i)] = 0x00, m.data[b + d_at + size_t(i) + 1] = 0x1C;
  }
  return m;
}

FormatId parse_format(const std::string& s) {
  if (s == "q4_0") return FormatId::Q4_0;
  if (s == "q8_0") return FormatId::Q8_0;
  if (s == "q4_k") return FormatId::Q4_K;
  if (s == "q5_k") return FormatId::Q5_K;
  if (s == "q6_k") return FormatId::Q6_K;
  if (s == "nvfp4") return FormatId::NVFP4_CKPT;
  if (s == "mxfp4") return FormatId::MXFP4_CKPT;
  std::fprintf(stderr, "imp_bench_cuda_gemm: unknown format '%s' (q4_0, q8_0, q4_k, q5_k, q6_k, nvfp4, mxfp4)\n", s.c_str());
  std::exit(2);
}

std::vector<std::string> split(const char* s) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = s; *p; ++p) {
    if (*p == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += *p;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// One copy's GEMMs as a prefill layer runs them (hs: the shape's matrices; y: room for all
// their outputs).
void run_shape(CudaBackend& b, const imp::MatrixHandle* hs, size_t n, const float* x, int64_t n_tok, float* y,
               int64_t n_ff) {
  if (n == 3) return b.matmul_qkv(hs[0], hs[1], hs[2], x, n_tok, y, y, y);  // outputs overwrite: only time counts
  if (n == 2) return b.ffn_gate_up_swiglu(hs[0], hs[1], x, n_tok, n_ff, y, y + n_tok * n_ff, y);
  b.matmul(hs[0], x, n_tok, y);
}

// Median µs of one pass over the copies (each hs.size() / per matrices), per copy.
double time_matmuls(CudaBackend& b, const std::vector<imp::MatrixHandle>& hs, size_t per, const float* x,
                    int64_t n_tok, float* y, int64_t n_ff, int runs) {
  cudaEvent_t start, stop;
  IMP_CUDA_CHECK(cudaEventCreate(&start));
  IMP_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> samples;
  for (int it = 0; it < runs + 2; ++it) {
    IMP_CUDA_CHECK(cudaEventRecord(start, b.stream()));
    for (size_t i = 0; i < hs.size(); i += per) run_shape(b, &hs[i], per, x, n_tok, y, n_ff);
    IMP_CUDA_CHECK(cudaEventRecord(stop, b.stream()));
    IMP_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    IMP_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (it >= 2) samples.push_back(ms * 1e3f / float(hs.size() / per));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  std::vector<int64_t> tokens = {512, 2048};
  std::vector<FormatId> formats = {FormatId::Q4_0, FormatId::Q8_0, FormatId::Q4_K};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--tokens" && i + 1 < argc) {
      tokens.clear();
      for (const std::string& t : split(argv[++i])) tokens.push_back(std::max<int64_t>(2, std::atoll(t.c_str())));
    } else if (a == "--formats" && i + 1 < argc) {
      formats.clear();
      for (const std::string& f : split(argv[++i])) formats.push_back(parse_format(f));
    } else {
      std::fprintf(stderr, "usage: imp_bench_cuda_gemm [--runs N] [--tokens 512,2048] [--formats q4_0,q8_0,q4_k,q5_k,q6_k,nvfp4,mxfp4]\n");
      return 2;
    }
  }
  if (print_device_and_copy_bandwidth("imp_bench_cuda_gemm") == 0.0) return 1;
  const MatrixRates rates = measure_matrix_rates();
  std::printf("bf16 matrix rate (cuBLASLt %lld^3): %.0f TFLOP/s\n\n", static_cast<long long>(rates.n), rates.bf16_tflops);
  const int64_t l2 = device_info(0).l2_bytes;
  const FusedGemm saved = fused_gemm_mode();
  const int saved_tile = fused_gemm_tile_tokens();

  std::printf("%-20s %6s %-8s %-8s %10s %9s %10s %8s\n", "shape", "tokens", "format", "way", "us", "TFLOP/s",
              "of bf16 rate", "x bf16");
  for (const Shape& s : kShapes) {
    for (int64_t n_tok : tokens) {
      double bf16_us = 0.0;
      std::vector<float> xs(size_t(n_tok * s.cols));
      std::mt19937 rng{uint32_t(n_tok)};
      std::normal_distribution<float> nd(0.0f, 1.0f);
      for (float& v : xs) v = nd(rng);
      std::vector<FormatId> fs = {FormatId::BF16};
      fs.insert(fs.end(), formats.begin(), formats.end());
      for (FormatId f : fs) {
        std::vector<imp::OwnedQuantMatrix> ms;
        int64_t bytes = 0;
        for (int64_t r : s.rows) {
          ms.push_back(random_matrix(f, r, s.cols, uint64_t(r * 7 + int(f) + int64_t(ms.size()))));
          bytes += int64_t(ms.back().data.size());
        }
        const int copies = int(std::clamp<int64_t>(4 * l2 / std::max<int64_t>(bytes, 1) + 1, 2, 64));
        for (const char* way : f == FormatId::BF16
                                   ? std::vector<const char*>{"bf16"}
                                   : std::vector<const char*>{"cublas", "fused", "fused256", "lead2", "auto"}) {
          const bool lead2 = std::strcmp(way, "lead2") == 0, fused = lead2 || std::strncmp(way, "fused", 5) == 0;
          set_fused_gemm_lead(lead2 ? 2 : fused ? 1 : 0);  // auto / cublas: the by-format default
          set_fused_gemm_mode(fused ? FusedGemm::kOn : std::strcmp(way, "auto") == 0 ? FusedGemm::kBySize : FusedGemm::kOff);
          set_fused_gemm_tile_tokens(!fused ? 0 : std::strcmp(way, "fused256") == 0 ? 256 : 128);
          // Q5_K, Q6_K: "cublas" is today's default (their own layouts dequantized for cuBLAS);
          // the other ways upload the kMma layout (IMP_CUDA_Q5K_Q6K_MMA), fused256 running 128-token tiles.
          set_mma_high_bit_formats(std::strcmp(way, "cublas") != 0);
          CudaBackend b;
          std::vector<imp::MatrixHandle> hs;
          for (int c = 0; c < copies; ++c) {
            for (const imp::OwnedQuantMatrix& m : ms) hs.push_back(b.add_matrix(m.view(), "w"));
          }
          float* x = b.alloc(n_tok * s.cols);
          float* y = b.alloc(n_tok * s.total_rows());
          b.write(x, xs.data(), n_tok * s.cols);  // random: all-zero operands would flatter the clocks
          const double us = time_matmuls(b, hs, ms.size(), x, n_tok, y, s.rows[0], runs);
          const double tflops = 2.0 * double(s.total_rows()) * double(s.cols) * double(n_tok) / (us * 1e-6) / 1e12;
          if (f == FormatId::BF16) bf16_us = us;
          std::printf("%-20s %6lld %-8s %-8s %10.1f %9.0f %10.3f %8.2f\n", s.name, static_cast<long long>(n_tok),
                      std::string(imp::format_name(f)).c_str(), way, us, tflops, tflops / rates.bf16_tflops,
                      bf16_us / us);
          std::fflush(stdout);
        }
      }
    }
  }
  set_fused_gemm_mode(saved);
  set_fused_gemm_tile_tokens(saved_tile);
  set_fused_gemm_lead(0);
  return 0;
}
