#include "formats/q4_1.h"

#include "common/error.h"

namespace imp {

void quantize_row_q4_1(const float*, const RowPlanes&, int64_t) { fail("q4_1: not implemented yet"); }
void dequantize_row_q4_1(const ConstRowPlanes&, float*, int64_t) { fail("q4_1: not implemented yet"); }
float vec_dot_q4_1(const ConstRowPlanes&, const void*, int64_t) { fail("q4_1: not implemented yet"); }

}  // namespace imp
