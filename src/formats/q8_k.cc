#include "formats/q8_k.h"

#include "common/error.h"

namespace imp {

void quantize_row_q8_k(const float*, const RowPlanes&, int64_t) { fail("q8_k: not implemented yet"); }
void dequantize_row_q8_k(const ConstRowPlanes&, float*, int64_t) { fail("q8_k: not implemented yet"); }
float vec_dot_q8_k(const ConstRowPlanes&, const void*, int64_t) { fail("q8_k: not implemented yet"); }

}  // namespace imp
