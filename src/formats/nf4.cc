#include "formats/nf4.h"

#include "common/error.h"

namespace imp {

void quantize_row_nf4(const float*, const RowPlanes&, int64_t) { fail("nf4: not implemented yet"); }
void dequantize_row_nf4(const ConstRowPlanes&, float*, int64_t) { fail("nf4: not implemented yet"); }
float vec_dot_nf4(const ConstRowPlanes&, const void*, int64_t) { fail("nf4: not implemented yet"); }

}  // namespace imp
