#include "formats/q5_0.h"

#include "common/error.h"

namespace imp {

void quantize_row_q5_0(const float*, const RowPlanes&, int64_t) { fail("q5_0: not implemented yet"); }
void dequantize_row_q5_0(const ConstRowPlanes&, float*, int64_t) { fail("q5_0: not implemented yet"); }
float vec_dot_q5_0(const ConstRowPlanes&, const void*, int64_t) { fail("q5_0: not implemented yet"); }

}  // namespace imp
