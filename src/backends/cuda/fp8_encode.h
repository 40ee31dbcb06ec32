// The E4M3 encoder of the FP8 W8A8 activations (fp8_act.cuh), host and device: on the
// device the hardware pair conversion, on the host cuda_fp8.hpp's emulation of it, which the
// CI test holds against formats/fp8_e4m3.h on every class of input
// (tests/cuda/test_fp8_encode.cc).
#pragma once

#include <cuda_fp8.h>

#include <cstdint>
#include <cstring>

namespace imp::cuda::fp8act {

// E4M3 codes of a pair by the hardware conversion (sm_89+: cvt.rn.satfinite.e4m3x2.f32 —
// round to nearest even, ±448 past the range, subnormals included): f32_to_e4m3_saturate's
// code for every non-NaN input, in one instruction per pair instead of ~15 per value. A NaN
// keeps its sign in that reference (sign | 0x7F), which the patch below restores.
// Low byte: a.
__host__ __device__ inline uint32_t e4m3x2_saturate(float a, float b) {
  uint32_t r = __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
  uint32_t ba, bb;
  memcpy(&ba, &a, 4);
  memcpy(&bb, &b, 4);
  if (!(a == a)) r = (r & 0xFF00u) | ((ba >> 24) & 0x80u) | 0x7Fu;
  if (!(b == b)) r = (r & 0x00FFu) | ((bb >> 16) & 0x8000u) | 0x7F00u;
  return r;
}

}  // namespace imp::cuda::fp8act
