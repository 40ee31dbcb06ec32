#include "formats/int4_group.h"

#include "common/error.h"

namespace imp {

void quantize_row_int4_group(const float*, const RowPlanes&, int64_t) { fail("int4_group: not implemented yet"); }
void dequantize_row_int4_group(const ConstRowPlanes&, float*, int64_t) { fail("int4_group: not implemented yet"); }
float vec_dot_int4_group(const ConstRowPlanes&, const void*, int64_t) { fail("int4_group: not implemented yet"); }

}  // namespace imp
