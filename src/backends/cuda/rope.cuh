// One RoPE rotation on the device, shared by rope_kv_kernel (norm_rope.cu) and the QKV
// GEMV's epilogue (gemv_mma.cu) so both give the same bits.
#pragma once

#include "backends/cuda/forward_kernels.h"

namespace imp::cuda {

// Rotates the pair (x0, x1) of frequency index i (0 … hd/2 − 1) at position pos. Same
// recipe as the CPU fast path: inv_freq in double, angle and rotation in float.
__device__ __forceinline__ void rope_rotate(float& x0, float& x1, int i, int hd, int pos, const RopeArgs& r) {
  const float inv_freq = float(pow(double(r.theta), -2.0 * double(i) / double(hd)) / double(r.freq_scale));
  const float angle = float(pos) * inv_freq;
  float s, c;
  sincosf(angle, &s, &c);
  const float a = x0, b = x1;
  x0 = a * c - b * s;
  x1 = a * s + b * c;
}

}  // namespace imp::cuda
