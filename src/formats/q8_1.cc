#include "formats/q8_1.h"

#include "common/error.h"

namespace imp {

void quantize_row_q8_1(const float*, const RowPlanes&, int64_t) { fail("q8_1: not implemented yet"); }
void dequantize_row_q8_1(const ConstRowPlanes&, float*, int64_t) { fail("q8_1: not implemented yet"); }
float vec_dot_q8_1(const ConstRowPlanes&, const void*, int64_t) { fail("q8_1: not implemented yet"); }

}  // namespace imp
