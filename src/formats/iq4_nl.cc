#include "formats/iq4_nl.h"

#include "common/error.h"

namespace imp {

void quantize_row_iq4_nl(const float*, const RowPlanes&, int64_t) { fail("iq4_nl: not implemented yet"); }
void dequantize_row_iq4_nl(const ConstRowPlanes&, float*, int64_t) { fail("iq4_nl: not implemented yet"); }
float vec_dot_iq4_nl(const ConstRowPlanes&, const void*, int64_t) { fail("iq4_nl: not implemented yet"); }

}  // namespace imp
