// CPU format benchmarks (Google Benchmark).
//
//   BM_memory_read / BM_memory_copy   measured ceilings: bytes read (and written) per second
//                                     over a 512 MiB buffer, far past any cache.
//   BM_dequantize/<format>            fast row dequantizer over a ~96 MiB quantized matrix,
//                                     rows written into one L1-resident buffer.
//   BM_matvec/<format>                y = W·x with the format's dot product (x quantized to the
//                                     paired activation format once), the decode GEMV.
// Each format benchmark reports GB/s of quantized bytes read and `of_read_bw`, its fraction
// of the measured read bandwidth (1.0 = memory-bound at the ceiling). Every rate here is
// per second of this thread's CPU time (Google Benchmark's default for bytes_per_second),
// the ceiling included, so that a shared, loaded machine skews both sides alike.
// Before timing, each format checks its kernels against the scalar references (dequant
// bit-identical, vec_dot within 1e-5 of Σ|w·a|) and reports an error instead of a number
// when they disagree.
#include <benchmark/benchmark.h>

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <numeric>
#include <random>
#include <vector>

#include "backends/cpu/row_kernels.h"
#include "formats/quant_matrix.h"
#include "formats/traits.h"

namespace imp {
namespace {

constexpr size_t kBandwidthBytes = size_t(512) << 20;
constexpr size_t kMatrixBytes = size_t(96) << 20;

double g_read_bw = 0;  // bytes/s, measured once before the format benchmarks

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double measure_read_bandwidth() {
  std::vector<uint64_t> buf(kBandwidthBytes / 8, 1);
  uint64_t sink = 0;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = thread_cpu_seconds();
    sink += std::accumulate(buf.begin(), buf.end(), uint64_t(0));
    best = std::max(best, double(kBandwidthBytes) / (thread_cpu_seconds() - t0));
  }
  benchmark::DoNotOptimize(sink);
  return best;
}

void BM_memory_read(benchmark::State& state) {
  std::vector<uint64_t> buf(kBandwidthBytes / 8, 1);
  for (auto _ : state) benchmark::DoNotOptimize(std::accumulate(buf.begin(), buf.end(), uint64_t(0)));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kBandwidthBytes));
}
BENCHMARK(BM_memory_read)->Unit(benchmark::kMillisecond)->MinTime(1.0);

void BM_memory_copy(benchmark::State& state) {
  std::vector<char> a(kBandwidthBytes / 2, 1), b(kBandwidthBytes / 2);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), a.size());
    benchmark::ClobberMemory();
  }
  // Bytes read plus bytes written.
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kBandwidthBytes));
}
BENCHMARK(BM_memory_copy)->Unit(benchmark::kMillisecond)->MinTime(1.0);

// A rows × cols matrix of ~kMatrixBytes: 64 distinct quantized rows tiled down the matrix
// (quantizing 96 MiB with the reference K-quant search would dominate the run).
struct BenchMatrix {
  OwnedQuantMatrix m;
  int64_t bytes = 0;
};

BenchMatrix make_matrix(FormatId f, int64_t cols) {
  const int32_t group = f == FormatId::INT4_GROUP ? 128 : 0;
  constexpr int64_t kSeedRows = 64;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal;
  std::vector<float> x(size_t(kSeedRows * cols));
  for (auto& v : x) v = normal(rng);
  const OwnedQuantMatrix seed = quantize(f, x, kSeedRows, cols, group);
  const int64_t row_bytes = row_data_bytes(f, cols);
  const int64_t rows = std::max<int64_t>(kSeedRows, int64_t(kMatrixBytes) / row_bytes / kSeedRows * kSeedRows);
  BenchMatrix b;
  b.m.format = f;
  b.m.rows = rows;
  b.m.cols = cols;
  b.m.group = group;
  b.m.tensor_scale = seed.tensor_scale;
  // Planes with one entry (or run of entries) per row repeat with the rows; the 128×128
  // tile scales of FP8_E4M3_BLOCK128 do not, and are filled below.
  const auto tile = [&](const std::vector<uint8_t>& src, std::vector<uint8_t>& dst) {
    if (src.empty()) return;
    const size_t reps = size_t(rows / kSeedRows);
    dst.resize(src.size() * reps);
    for (size_t r = 0; r < reps; ++r) std::memcpy(dst.data() + r * src.size(), src.data(), src.size());
  };
  tile(seed.data, b.m.data);
  tile(seed.zeros, b.m.zeros);
  if (format_traits(f).scale_layout == ScaleLayout::kTile128) {
    b.m.scales.assign(size_t(scale_plane_bytes(f, rows, cols, group)), 0);
    for (size_t i = 0; i < b.m.scales.size(); i += 4) std::memcpy(&b.m.scales[i], seed.scales.data(), 4);
  } else {
    tile(seed.scales, b.m.scales);
  }
  b.bytes = int64_t(b.m.data.size() + b.m.scales.size() + b.m.zeros.size());
  return b;
}

// cpu_seconds: this thread's CPU time over the timed loop.
void report(benchmark::State& state, int64_t bytes, double cpu_seconds) {
  state.SetBytesProcessed(int64_t(state.iterations()) * bytes);
  state.counters["of_read_bw"] = double(bytes) * double(state.iterations()) / cpu_seconds / g_read_bw;
}

// The fast kernels against the references on the first rows; an error message or "".
std::string check_against_reference(FormatId f, const QuantMatrix& v, const CpuRowKernels& k) {
  const auto& t = format_traits(f);
  const int64_t n = v.cols;
  std::vector<float> want(static_cast<size_t>(n)), got(want.size()), a(want.size());
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (auto& e : a) e = normal(rng);
  std::vector<uint8_t> act(size_t(row_data_bytes(t.dot_activation, n)));
  RowPlanes ap;
  ap.data = act.data();
  k.quantize_activation(a.data(), ap, n);
  format_traits(t.dot_activation).dequantize_ref(ap, a.data(), n);
  for (int64_t r = 0; r < 4; ++r) {
    const ConstRowPlanes w = row_planes(v, r);
    t.dequantize_ref(w, want.data(), n);
    k.dequantize(w, got.data(), n);
    if (std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) != 0) {
      return "dequantize differs from the reference in row " + std::to_string(r);
    }
    double abs_sum = 0;
    for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(double(want[size_t(i)]) * double(a[size_t(i)]));
    const double diff = std::fabs(double(k.vec_dot(w, act.data(), n)) - double(t.vec_dot_ref(w, act.data(), n)));
    if (!(diff <= 1e-5 * abs_sum)) return "vec_dot differs from the reference in row " + std::to_string(r);
  }
  return "";
}

void BM_dequantize(benchmark::State& state, FormatId f) {
  const BenchMatrix b = make_matrix(f, 4096);
  const QuantMatrix v = b.m.view();
  const auto k = cpu_row_kernels(f);
  if (const std::string err = check_against_reference(f, v, k); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  std::vector<float> row(size_t(v.cols));
  const double t0 = thread_cpu_seconds();
  for (auto _ : state) {
    for (int64_t r = 0; r < v.rows; ++r) {
      k.dequantize(row_planes(v, r), row.data(), v.cols);
      benchmark::DoNotOptimize(row.data());
    }
  }
  const double cpu_seconds = thread_cpu_seconds() - t0;
  state.SetLabel(std::string(cpu_isa_name(k.dequantize_isa)));
  report(state, b.bytes, cpu_seconds);
}

void BM_matvec(benchmark::State& state, FormatId f) {
  const BenchMatrix b = make_matrix(f, 4096);
  const QuantMatrix v = b.m.view();
  const auto k = cpu_row_kernels(f);
  std::vector<float> x(size_t(v.cols));
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (auto& e : x) e = normal(rng);
  std::vector<uint8_t> act(size_t(row_data_bytes(format_traits(f).dot_activation, v.cols)));
  RowPlanes ap;
  ap.data = act.data();
  k.quantize_activation(x.data(), ap, v.cols);
  if (const std::string err = check_against_reference(f, v, k); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  std::vector<float> y(size_t(v.rows));
  const double t0 = thread_cpu_seconds();
  for (auto _ : state) {
    for (int64_t r = 0; r < v.rows; ++r) y[size_t(r)] = k.vec_dot(row_planes(v, r), act.data(), v.cols);
    benchmark::DoNotOptimize(y.data());
  }
  const double cpu_seconds = thread_cpu_seconds() - t0;
  state.SetLabel(std::string(cpu_isa_name(k.vec_dot_isa)));
  report(state, b.bytes, cpu_seconds);
}

}  // namespace
}  // namespace imp

int main(int argc, char** argv) {
  using namespace imp;
  g_read_bw = measure_read_bandwidth();
  std::printf("measured read bandwidth: %.2f GB/s (ceiling for of_read_bw), cpu isa: %s\n", g_read_bw / 1e9,
              std::string(cpu_isa_name(best_cpu_isa())).c_str());
  for (int i = 0; i < kFormatCount; ++i) {
    const auto& t = format_traits(FormatId(i));
    if (!t.vec_dot_ref) continue;
    const std::string name(t.name);
    benchmark::RegisterBenchmark(("BM_dequantize/" + name).c_str(), BM_dequantize, t.id)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("BM_matvec/" + name).c_str(), BM_matvec, t.id)->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
