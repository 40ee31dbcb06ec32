#include "formats/q2_k.h"

#include "common/error.h"

namespace imp {

void quantize_row_q2_k(const float*, const RowPlanes&, int64_t) { fail("q2_k: not implemented yet"); }
void dequantize_row_q2_k(const ConstRowPlanes&, float*, int64_t) { fail("q2_k: not implemented yet"); }
float vec_dot_q2_k(const ConstRowPlanes&, const void*, int64_t) { fail("q2_k: not implemented yet"); }

}  // namespace imp
