#include "formats/nvfp4.h"

#include "common/error.h"

namespace imp {

void quantize_row_nvfp4(const float*, const RowPlanes&, int64_t) { fail("nvfp4: not implemented yet"); }
void dequantize_row_nvfp4(const ConstRowPlanes&, float*, int64_t) { fail("nvfp4: not implemented yet"); }
float vec_dot_nvfp4(const ConstRowPlanes&, const void*, int64_t) { fail("nvfp4: not implemented yet"); }

}  // namespace imp
