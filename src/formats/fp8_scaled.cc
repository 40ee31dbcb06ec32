#include "formats/fp8_scaled.h"

#include "common/error.h"

namespace imp {

void quantize_row_fp8_e4m3_tensor(const float*, const RowPlanes&, int64_t) { fail("fp8_e4m3_tensor: not implemented yet"); }
void dequantize_row_fp8_e4m3_tensor(const ConstRowPlanes&, float*, int64_t) { fail("fp8_e4m3_tensor: not implemented yet"); }
float vec_dot_fp8_e4m3_tensor(const ConstRowPlanes&, const void*, int64_t) { fail("fp8_e4m3_tensor: not implemented yet"); }

void quantize_row_fp8_e4m3_channel(const float*, const RowPlanes&, int64_t) { fail("fp8_e4m3_channel: not implemented yet"); }
void dequantize_row_fp8_e4m3_channel(const ConstRowPlanes&, float*, int64_t) { fail("fp8_e4m3_channel: not implemented yet"); }
float vec_dot_fp8_e4m3_channel(const ConstRowPlanes&, const void*, int64_t) { fail("fp8_e4m3_channel: not implemented yet"); }

void quantize_row_fp8_e4m3_block128(const float*, const RowPlanes&, int64_t) { fail("fp8_e4m3_block128: not implemented yet"); }
void dequantize_row_fp8_e4m3_block128(const ConstRowPlanes&, float*, int64_t) { fail("fp8_e4m3_block128: not implemented yet"); }
float vec_dot_fp8_e4m3_block128(const ConstRowPlanes&, const void*, int64_t) { fail("fp8_e4m3_block128: not implemented yet"); }

float fp8_e4m3_tensor_scale(float) { fail("fp8_e4m3_tensor_scale: not implemented yet"); }

}  // namespace imp
