#include "formats/int8_channel.h"

#include "common/error.h"

namespace imp {

void quantize_row_int8_channel(const float*, const RowPlanes&, int64_t) { fail("int8_channel: not implemented yet"); }
void dequantize_row_int8_channel(const ConstRowPlanes&, float*, int64_t) { fail("int8_channel: not implemented yet"); }
float vec_dot_int8_channel(const ConstRowPlanes&, const void*, int64_t) { fail("int8_channel: not implemented yet"); }

}  // namespace imp
