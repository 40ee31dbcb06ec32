"""Checkpoint ("split") formats — scales in separate planes: NVFP4_CKPT, MXFP4_CKPT, scaled
FP8, INT8_CHANNEL, INT4_GROUP, NF4. Independent numpy / ml_dtypes transcriptions of the
published recipes (../shared/specs/formats.md §1, §6, §7, §8) are the references:
quantization byte-for-byte, dequantization bit-for-bit, the matvec against float64."""
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import imp_capi
from conftest import AWKWARD_BLOCK_COUNTS

F32 = np.float32
E4M3 = ml_dtypes.float8_e4m3fn
E2M1 = ml_dtypes.float4_e2m1fn
E8M0 = ml_dtypes.float8_e8m0fnu


def assert_same_floats(ours, ref):
    """Bit-equal, except that any NaN matches any NaN."""
    ours = np.ascontiguousarray(ours, F32)
    ref = np.ascontiguousarray(ref, F32)
    assert ours.shape == ref.shape
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(ours[~nan].view(np.uint32), ref[~nan].view(np.uint32))


def weights(rng, rows, cols):
    """Gaussian rows at mixed magnitudes, with an all-zero stretch and exact zeros."""
    x = (rng.standard_normal((rows, cols)) * np.exp2(rng.uniform(-6, 3, (rows, 1)))).astype(F32)
    x[0, : min(cols, 64)] = 0.0
    x[:, 5::11] = 0.0
    return x


def e4m3_bytes(v):
    return np.asarray(v, F32).astype(E4M3).view(np.uint8)


def e4m3_values(b):
    return np.asarray(b, np.uint8).view(E4M3).astype(F32)


def e2m1_values(codes):
    return np.asarray(codes, np.uint8).view(E2M1).astype(F32)


def unpack_low_first(packed, cols):
    p = np.asarray(packed, np.uint8).reshape(-1, cols // 2)
    out = np.empty((p.shape[0], cols), np.uint8)
    out[:, 0::2] = p & 0xF
    out[:, 1::2] = p >> 4
    return out


def pack_low_first(codes):
    codes = np.asarray(codes, np.uint8)
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).reshape(-1)


# --- NVFP4_CKPT: ModelOpt NVFP4QTensor, transcribed --------------------------------------

E2M1_BOUNDS = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5], F32)


def modelopt_cast_fp4(v):
    """NVFP4QTensor._cast_fp4: searchsorted over the bounds, +1 on the ties that round up."""
    sign = (v < 0).astype(np.uint8)
    a = np.abs(v)
    ordinal = np.searchsorted(E2M1_BOUNDS, a, side="left").astype(np.uint8)
    ties_up = np.isin(a, E2M1_BOUNDS[[1, 3, 5]]).astype(np.uint8)
    return (sign << 3) + ordinal + ties_up


def modelopt_nvfp4(x):
    """Returns (packed codes, E4M3 scale bytes, G) for a [rows, cols] fp32 weight."""
    rows, cols = x.shape
    g = F32(np.abs(x).max()) / F32(6.0 * 448.0)
    if g == 0:
        g = F32(1.0)  # imp's choice for an all-zero tensor (ModelOpt would compute 0/0)
    blocks = x.reshape(rows, cols // 16, 16)
    s = np.abs(blocks).max(-1) / (F32(6.0) * g)
    s[s == 0] = F32(1.0)
    s = np.maximum(s, F32(2.0**-9))  # current ModelOpt: clamp_(min=2**-9) before the cast
    sbytes = e4m3_bytes(s)
    v = blocks / (e4m3_values(sbytes) * g)[..., None]
    codes = modelopt_cast_fp4(v.astype(F32))
    return pack_low_first(codes.reshape(rows, cols)), sbytes.reshape(-1), g


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_nvfp4_ckpt_quantize_matches_modelopt(rows, n_blocks, rng):
    cols = 16 * n_blocks
    x = weights(rng, rows, cols)
    if n_blocks > 1:
        x[-1, 16:32] *= F32(1e-7)  # tiny block: its scale hits the 2^-9 floor
    data, sbytes, g = modelopt_nvfp4(x)
    q = imp_capi.quantize("nvfp4_ckpt", x)
    assert q.tensor_scale == g
    np.testing.assert_array_equal(q.scales, sbytes)
    np.testing.assert_array_equal(q.data, data)


def test_nvfp4_ckpt_quantize_ties():
    # amax 2688 makes G = 1 exactly, so a block of amax 6 has S = 1 and v = x: every E2M1
    # rounding tie, both signs, is hit exactly; amax 6.375 gives s = 1.0625, an E4M3 tie.
    ties = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0], F32)
    row = np.concatenate([ties, -ties, ties * F32(1.0625), -ties * F32(1.0625),
                          np.full(16, 2688.0, F32)]).astype(F32)
    x = row[None, :]
    data, sbytes, g = modelopt_nvfp4(x)
    assert g == 1.0 and sbytes[0] == 0x38 and sbytes[1] == 0x38  # 1.0625 ties to 1.0
    q = imp_capi.quantize("nvfp4_ckpt", x)
    np.testing.assert_array_equal(q.scales, sbytes)
    np.testing.assert_array_equal(q.data, data)
    # 0.25 → 0, 0.75 → 1.0, 1.25 → 1.0, 1.75 → 2.0, 2.5 → 2.0, 3.5 → 4.0, 5 → 4.0, 6 → 6.
    assert list(unpack_low_first(q.data, x.shape[1])[0, :8]) == [0, 2, 2, 4, 4, 6, 6, 7]


def test_nvfp4_ckpt_divides_by_the_product_of_the_scales(rng):
    # v = x / (S·G) with the product rounded first: put x exactly on ±0.25·fp32(S·G), where
    # v is a tie, and dividing by S and then by G would often land one ulp off it.
    for _ in range(40):
        amax = F32(rng.uniform(0.5, 100.0))
        g = amax / F32(6.0 * 448.0)
        b = F32(amax * F32(rng.uniform(0.01, 0.9)))
        p = e4m3_values(e4m3_bytes(b / (F32(6.0) * g))) * g
        block = np.concatenate([[b], np.tile(np.array([0.25, -0.25], F32) * p, 7), [0.0]]).astype(F32)
        x = np.concatenate([block, [amax], np.zeros(15, F32)]).astype(F32)[None, :]
        data, sbytes, g_ref = modelopt_nvfp4(x)
        q = imp_capi.quantize("nvfp4_ckpt", x)
        assert q.tensor_scale == g_ref == g
        np.testing.assert_array_equal(q.scales, sbytes)
        np.testing.assert_array_equal(q.data, data)


def test_nvfp4_ckpt_all_zero_tensor():
    q = imp_capi.quantize("nvfp4_ckpt", np.zeros((2, 32), F32))
    assert q.tensor_scale == 1.0
    assert set(q.scales) == {0x38} and not q.data.any()
    assert not imp_capi.dequantize(q).any()


@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_nvfp4_ckpt_dequantize_random_codes(n_blocks, rng):
    rows, cols = 3, 16 * n_blocks
    data = rng.integers(0, 256, rows * cols // 2, dtype=np.uint8)
    scales = rng.integers(0, 256, rows * cols // 16, dtype=np.uint8)  # incl. NaN 0x7F/0xFF
    g = F32(rng.uniform(1e-4, 2.0))
    q = imp_capi.Quantized("nvfp4_ckpt", rows, cols, data, scales, np.zeros(0, np.uint8), float(g))
    vals = e2m1_values(unpack_low_first(data, cols)).reshape(rows, -1, 16)
    ref = vals * (e4m3_values(scales).reshape(rows, -1) * g)[..., None]
    assert_same_floats(imp_capi.dequantize(q), ref.reshape(rows, cols))


# --- MXFP4_CKPT: OCP MX v1.0 §6.3 -----------------------------------------------------------


def ocp_mxfp4(x):
    rows, cols = x.shape
    blocks = x.reshape(rows, cols // 32, 32)
    amax = np.abs(blocks).max(-1)
    mant, exp = np.frexp(amax)  # amax = mant·2^exp, mant in [0.5, 1): floor(log2) = exp − 1
    shared = np.where(amax > 0, exp - 1 - 2, -127)
    shared = np.clip(shared, -127, 127)
    scale = np.ldexp(F32(1.0), shared).astype(F32)
    v = (blocks / scale[..., None]).astype(F32)
    v = np.where(v == 0, F32(0.0), v)  # sign bit = (v < 0): −0 is stored as +0
    codes = np.clip(v, -6, 6).astype(E2M1).view(np.uint8)
    return pack_low_first(codes.reshape(rows, cols)), (shared + 127).astype(np.uint8).reshape(-1)


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_mxfp4_ckpt_quantize_matches_ocp(rows, n_blocks, rng):
    cols = 32 * n_blocks
    x = weights(rng, rows, cols)
    x[:, 1::13] *= F32(-0.0)  # −0 inputs
    if n_blocks > 2:
        x[-1, 32:64] *= F32(1e-39)  # subnormal block: exponent clamps to −127
        # amax 3 → shared exponent −1, so x / 2^-1 lands exactly on every E2M1 tie.
        ties = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0], F32) * F32(0.5)
        x[-1, 64:96] = np.concatenate([ties, -ties, [3.0], np.zeros(17, F32)])
    data, scales = ocp_mxfp4(x)
    if n_blocks > 2:
        assert list(unpack_low_first(data, cols)[-1, 64:78]) == [0, 2, 2, 4, 4, 6, 6, 8, 10, 10, 12, 12, 14, 14]
    q = imp_capi.quantize("mxfp4_ckpt", x)
    np.testing.assert_array_equal(q.scales, scales)
    np.testing.assert_array_equal(q.data, data)


@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_mxfp4_ckpt_dequantize_random_codes(n_blocks, rng):
    rows, cols = 3, 32 * n_blocks
    data = rng.integers(0, 256, rows * cols // 2, dtype=np.uint8)
    scales = rng.integers(0, 256, rows * cols // 32, dtype=np.uint8)  # incl. 0 and NaN 0xFF
    q = imp_capi.Quantized("mxfp4_ckpt", rows, cols, data, scales, np.zeros(0, np.uint8))
    vals = e2m1_values(unpack_low_first(data, cols)).reshape(rows, -1, 32)
    with np.errstate(over="ignore"):  # 6 · 2^127 overflows to Inf, as it does in imp
        ref = vals * scales.view(E8M0).astype(F32).reshape(rows, -1)[..., None]
    assert_same_floats(imp_capi.dequantize(q), ref.reshape(rows, cols))


# --- scaled FP8 ------------------------------------------------------------------------------


def fp8_scale(amax):
    s = (np.asarray(amax, F32) / F32(448.0)).astype(F32)
    return np.where(s > 0, s, F32(1.0)).astype(F32)


def fp8_reference(fmt, x):
    rows, cols = x.shape
    if fmt == "fp8_e4m3_tensor":
        s = fp8_scale(np.abs(x).max())
        return e4m3_bytes(x / s), np.zeros(0, np.uint8), float(s), np.broadcast_to(s, x.shape)
    if fmt == "fp8_e4m3_channel":
        s = fp8_scale(np.abs(x).max(1))
        return e4m3_bytes(x / s[:, None]), s.view(np.uint8), 1.0, np.broadcast_to(s[:, None], x.shape)
    tr, tc = -(-rows // 128), -(-cols // 128)
    pad = np.zeros((tr * 128, tc * 128), F32)
    pad[:rows, :cols] = np.abs(x)
    s = fp8_scale(pad.reshape(tr, 128, tc, 128).max((1, 3)))
    full = np.repeat(np.repeat(s, 128, 0), 128, 1)[:rows, :cols]
    return e4m3_bytes(x / full), s.reshape(-1).view(np.uint8), 1.0, full


FP8 = ["fp8_e4m3_tensor", "fp8_e4m3_channel", "fp8_e4m3_block128"]


@pytest.mark.parametrize("fmt", FP8)
@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 17), (5, 129), (130, 37), (257, 200)])
def test_fp8_quantize_and_dequantize_bit_exact_vs_ml_dtypes(fmt, rows, cols, rng):
    x = weights(rng, rows, cols)
    if rows > 128:
        x[128:, :] = 0.0  # an all-zero tile row (scale 1)
    data, scales, ts, full = fp8_reference(fmt, x)
    q = imp_capi.quantize(fmt, x)
    assert q.tensor_scale == ts
    np.testing.assert_array_equal(q.scales, scales)
    np.testing.assert_array_equal(q.data, data.reshape(-1))
    assert_same_floats(imp_capi.dequantize(q), e4m3_values(data).reshape(rows, cols) * full)


@pytest.mark.parametrize("fmt", FP8)
def test_fp8_dequantize_random_codes(fmt, rng):
    rows, cols = 131, 259
    data = rng.integers(0, 256, rows * cols, dtype=np.uint8)  # incl. NaN codes
    _, ns, _ = imp_capi.plane_bytes(fmt, rows, cols)
    s = rng.uniform(1e-3, 10, ns // 4).astype(F32)
    ts = F32(rng.uniform(1e-3, 10)) if fmt == "fp8_e4m3_tensor" else F32(1.0)
    q = imp_capi.Quantized(fmt, rows, cols, data, s.view(np.uint8), np.zeros(0, np.uint8), float(ts))
    vals = e4m3_values(data).reshape(rows, cols)
    if fmt == "fp8_e4m3_tensor":
        ref = vals * ts
    elif fmt == "fp8_e4m3_channel":
        ref = vals * s[:, None]
    else:
        ref = vals * np.repeat(np.repeat(s.reshape(2, 3), 128, 0), 128, 1)[:rows, :cols]
    assert_same_floats(imp_capi.dequantize(q), ref)


# --- INT8_CHANNEL ----------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 4])
@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_int8_channel_quantize_matches_formula(rows, n_blocks, rng):
    cols = 32 * n_blocks
    x = weights(rng, rows, cols)
    x[-1, :] = 0.0
    s = (np.abs(x).max(1) / F32(127.0)).astype(F32)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (x / s[:, None]).astype(F32).astype(np.float64)
    q = np.where(s[:, None] > 0, np.sign(v) * np.floor(np.abs(v) + 0.5), 0)  # half away from 0
    q = np.clip(q, -127, 127).astype(np.int8)
    ours = imp_capi.quantize("int8_channel", x)
    np.testing.assert_array_equal(ours.scales.view(F32), s)
    np.testing.assert_array_equal(ours.data.view(np.int8), q.reshape(-1))
    assert_same_floats(imp_capi.dequantize(ours), q.astype(F32) * s[:, None])


def test_int8_channel_rounds_half_away_from_zero():
    x = np.array([[127.0, 2.5, -2.5, 0.5, -0.5, 1.5] + [0.0] * 26], F32)  # s = 1 exactly
    q = imp_capi.quantize("int8_channel", x).data.view(np.int8)
    assert list(q[:6]) == [127, 3, -3, 1, -1, 2]


# --- INT4_GROUP ------------------------------------------------------------------------------


def gptq_rtn_int4(x, group):
    rows, cols = x.shape
    g = x.reshape(rows, cols // group, group)
    lo = np.minimum(g.min(-1), F32(0))
    hi = np.maximum(g.max(-1), F32(0))
    both = (lo == 0) & (hi == 0)
    lo[both], hi[both] = F32(-1), F32(1)
    s16 = ((hi - lo) / F32(15)).astype(np.float16)
    s = s16.astype(F32)
    z = np.clip(np.round(-lo / s), 0, 15)  # np.round: half to even, as torch.round
    q = np.clip(np.round(g / s[..., None]) + z[..., None], 0, 15).astype(np.uint8)
    return pack_low_first(q.reshape(rows, cols)), s16.view(np.uint8).reshape(-1), z.astype(np.uint8).reshape(-1)


@pytest.mark.parametrize("group", [32, 64, 128])
@pytest.mark.parametrize("n_groups", [1, 3, 17])
def test_int4_group_quantize_matches_gptq_rtn(group, n_groups, rng):
    rows, cols = 3, group * n_groups
    x = weights(rng, rows, cols)
    x[1, :group] = np.abs(x[1, :group]) + F32(0.5)  # all-positive group: zero point 0
    x[2, :group] = -np.abs(x[2, :group]) - F32(0.5)  # all-negative group: zero point 15
    data, scales, zeros = gptq_rtn_int4(x, group)
    q = imp_capi.quantize("int4_group", x, group)
    np.testing.assert_array_equal(q.scales, scales)
    np.testing.assert_array_equal(q.zeros, zeros)
    np.testing.assert_array_equal(q.data, data)
    assert zeros[n_groups] == 0 and zeros[2 * n_groups] == 15


def test_int4_group_rounds_half_to_even():
    # lo = −6.5/8, hi = 8.5/8: s = 1/8 exactly, −lo/s = 6.5 → z = 6; x/s = ±2.5, 3.5 are ties.
    x = np.zeros((1, 32), F32)
    x[0, :6] = np.array([-6.5, 8.5, 2.5, -2.5, 3.5, 0.5], F32) / F32(8)
    q = imp_capi.quantize("int4_group", x, 32)
    assert q.zeros[0] == 6 and q.scales.view(np.float16)[0] == 1 / 8
    codes = unpack_low_first(q.data, 32)[0, :6]
    assert list(codes) == [0, 14, 6 + 2, 6 - 2, 6 + 4, 6 + 0]


@pytest.mark.parametrize("group", [32, 96])
def test_int4_group_dequantize_random_codes(group, rng):
    rows, cols = 5, group * 7
    data = rng.integers(0, 256, rows * cols // 2, dtype=np.uint8)
    s16 = rng.uniform(-2, 2, rows * cols // group).astype(np.float16)
    zeros = rng.integers(0, 16, rows * cols // group, dtype=np.uint8)
    q = imp_capi.Quantized("int4_group", rows, cols, data, s16.view(np.uint8), zeros, 1.0, group)
    codes = unpack_low_first(data, cols).reshape(rows, -1, group).astype(F32)
    ref = (codes - zeros.reshape(rows, -1, 1).astype(F32)) * s16.astype(F32).reshape(rows, -1, 1)
    assert_same_floats(imp_capi.dequantize(q), ref.reshape(rows, cols))


# --- NF4 -------------------------------------------------------------------------------------

NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], F32)
# dQuantizeNF4's decision thresholds: decimal fp32 literals in bitsandbytes csrc/kernels.cu.
NF4_THRESHOLDS = ["-0.8480964004993439", "-0.6106329262256622", "-0.4599952697753906", "-0.33967943489551544",
                  "-0.23460740596055984", "-0.13791173323988914", "-0.045525018125772476", "0.03979014977812767",
                  "0.1202552504837513", "0.2035212516784668", "0.2920137718319893", "0.3893125355243683",
                  "0.5016634166240692", "0.6427869200706482", "0.8614784181118011"]


def f32_literal(text):
    """A C float literal: the decimal rounded once, to nearest fp32 (ties to even). numpy's
    float32(float(text)) rounds twice and differs for 4 of these thresholds, whose exact
    values sit on fp32 midpoints."""
    exact = Fraction(text)
    guess = F32(float(exact))
    cands = [np.nextafter(guess, F32(-np.inf)), guess, np.nextafter(guess, F32(np.inf))]
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - exact), int(np.array(c).view(np.int32)) & 1))


NF4_MID = np.array([f32_literal(t) for t in NF4_THRESHOLDS], F32)


def test_nf4_thresholds_are_the_midpoints():
    exact_mid = (NF4[:-1].astype(np.float64) + NF4[1:].astype(np.float64)) / 2
    ulp = np.spacing(np.abs(NF4_MID))
    assert np.all(np.abs(NF4_MID.astype(np.float64) - exact_mid) <= ulp)


def bnb_nf4(x):
    rows, cols = x.shape
    b = x.reshape(rows, cols // 64, 64)
    absmax = np.abs(b).max(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = b * (F32(1.0) / absmax)[..., None]  # reciprocal first, as kQuantizeBlockwise
    codes = (v[..., None] > NF4_MID).sum(-1).astype(np.uint8)
    codes[absmax == 0] = 7  # imp: zero blocks get code 7 (bitsandbytes: NaN → code 0)
    codes = codes.reshape(rows, cols)
    return ((codes[:, 0::2] << 4) | codes[:, 1::2]).reshape(-1), absmax.astype(F32).reshape(-1)


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_nf4_quantize_matches_bitsandbytes(rows, n_blocks, rng):
    cols = 64 * n_blocks
    x = weights(rng, rows, cols)
    # Last block: amax 1, so v = x — every table value and every midpoint, both signs.
    x[-1, -64:] = np.concatenate([NF4, NF4_MID, -NF4, -NF4_MID, [0.0, 1.0]])
    data, absmax = bnb_nf4(x)
    q = imp_capi.quantize("nf4", x)
    np.testing.assert_array_equal(q.scales.view(F32), absmax)
    np.testing.assert_array_equal(q.data, data)


def test_nf4_midpoints_take_the_lower_code():
    x = np.concatenate([NF4_MID, NF4, [1.0] * 33]).astype(F32)[None, :64]
    codes = imp_capi.quantize("nf4", x).data
    unpacked = np.empty(64, np.uint8)
    unpacked[0::2], unpacked[1::2] = codes >> 4, codes & 0xF
    assert list(unpacked[:15]) == list(range(15))  # midpoint i → code i
    assert list(unpacked[15:31]) == list(range(16))  # table value → its own code


@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_nf4_dequantize_random_codes(n_blocks, rng):
    rows, cols = 2, 64 * n_blocks
    data = rng.integers(0, 256, rows * cols // 2, dtype=np.uint8)
    absmax = rng.uniform(0, 3, rows * cols // 64).astype(F32)
    q = imp_capi.Quantized("nf4", rows, cols, data, absmax.view(np.uint8), np.zeros(0, np.uint8))
    codes = np.empty((rows, cols), np.uint8)
    codes[:, 0::2] = data.reshape(rows, -1) >> 4  # element 2j in the high nibble
    codes[:, 1::2] = data.reshape(rows, -1) & 0xF
    ref = NF4[codes].reshape(rows, -1, 64) * absmax.reshape(rows, -1, 1)
    assert_same_floats(imp_capi.dequantize(q), ref.reshape(rows, cols))


# --- matvec: every format vs float64 ---------------------------------------------------------

ACT_Q8_0 = {"nvfp4_ckpt", "mxfp4_ckpt", "int8_channel", "int4_group"}
MATVEC = {  # format: (cols, group)
    "nvfp4_ckpt": (32 * 37, 0), "mxfp4_ckpt": (32 * 129, 0), "fp8_e4m3_tensor": (1000, 0),
    "fp8_e4m3_channel": (517, 0), "fp8_e4m3_block128": (389, 0), "int8_channel": (32 * 17, 0),
    "int4_group": (128 * 7, 128), "nf4": (64 * 37, 0),
}


@pytest.mark.parametrize("fmt", sorted(MATVEC))
def test_matvec_matches_float64(fmt, rng):
    cols, group = MATVEC[fmt]
    rows = 131
    w = weights(rng, rows, cols)
    x = rng.standard_normal(cols).astype(F32)
    q = imp_capi.quantize(fmt, w, group)
    wd = imp_capi.dequantize(q).astype(np.float64)
    if fmt in ACT_Q8_0:
        act = imp_capi.dequantize(imp_capi.quantize("q8_0", x)).reshape(-1).astype(np.float64)
    else:
        act = x.astype(np.float64)
    ref = wd @ act
    ours = imp_capi.matvec(q, x, fast=False).astype(np.float64)
    # Relative to Σ|w·a| (the scale of the fp32 rounding), so cancellation cannot hide errors.
    bound = 1e-5 * (np.abs(wd) @ np.abs(act)) + 1e-30
    assert np.all(np.abs(ours - ref) <= bound), np.max(np.abs(ours - ref) / bound)
    assert np.abs(ref).max() > 0


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(MATVEC))
def test_wrong_scale_plane_is_an_error(fmt, rng):
    cols, group = MATVEC[fmt]
    q = imp_capi.quantize(fmt, weights(rng, 2, cols), group)
    if fmt == "fp8_e4m3_tensor":
        q.scales = np.zeros(4, np.uint8)  # per-tensor: the scale travels as tensor_scale
    else:
        q.scales = q.scales[:-1]
    with pytest.raises(imp_capi.ImpError, match=f"{fmt} scales plane holds"):
        imp_capi.dequantize(q)
    with pytest.raises(imp_capi.ImpError, match=f"{fmt} scales plane holds"):
        imp_capi.matvec(q, np.zeros(cols, F32))


def test_int4_group_bad_group_is_an_error(rng):
    x = weights(rng, 2, 96)
    with pytest.raises(imp_capi.ImpError, match="not a multiple of the group size 64"):
        imp_capi.quantize("int4_group", x, 64)
    with pytest.raises(imp_capi.ImpError, match="group size 48 must be a positive multiple of 32"):
        imp_capi.quantize("int4_group", x, 48)
    with pytest.raises(imp_capi.ImpError, match="group size 0"):
        imp_capi.quantize("int4_group", x, 0)
    q = imp_capi.quantize("int4_group", x, 32)
    q.zeros = q.zeros[:-1]
    with pytest.raises(imp_capi.ImpError, match="int4_group zeros plane holds"):
        imp_capi.dequantize(q)


@pytest.mark.parametrize("fmt,cols", [("nvfp4_ckpt", 24), ("mxfp4_ckpt", 48), ("nf4", 96), ("int8_channel", 40)])
def test_row_not_whole_blocks_is_an_error(fmt, cols):
    with pytest.raises(imp_capi.ImpError, match="not a multiple of the block size"):
        imp_capi.quantize(fmt, np.ones((1, cols), F32))


def test_nan_tensor_scale_is_an_error(rng):
    q = imp_capi.quantize("nvfp4_ckpt", weights(rng, 1, 32))
    q.tensor_scale = float("nan")
    with pytest.raises(imp_capi.ImpError, match="per-tensor scale is not finite"):
        imp_capi.dequantize(q)
