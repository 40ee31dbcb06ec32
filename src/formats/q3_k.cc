#include "formats/q3_k.h"

#include "common/error.h"

namespace imp {

void quantize_row_q3_k(const float*, const RowPlanes&, int64_t) { fail("q3_k: not implemented yet"); }
void dequantize_row_q3_k(const ConstRowPlanes&, float*, int64_t) { fail("q3_k: not implemented yet"); }
float vec_dot_q3_k(const ConstRowPlanes&, const void*, int64_t) { fail("q3_k: not implemented yet"); }

}  // namespace imp
