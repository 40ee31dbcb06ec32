#include "formats/nvfp4_ckpt.h"

#include "common/error.h"

namespace imp {

void quantize_row_nvfp4_ckpt(const float*, const RowPlanes&, int64_t) { fail("nvfp4_ckpt: not implemented yet"); }
void dequantize_row_nvfp4_ckpt(const ConstRowPlanes&, float*, int64_t) { fail("nvfp4_ckpt: not implemented yet"); }
float vec_dot_nvfp4_ckpt(const ConstRowPlanes&, const void*, int64_t) { fail("nvfp4_ckpt: not implemented yet"); }

float nvfp4_ckpt_tensor_scale(float) { fail("nvfp4_ckpt_tensor_scale: not implemented yet"); }

}  // namespace imp
