"""32/64-element GGUF types: bit-exact dequantization against gguf-py and ggml's C reference,
byte-identical reference quantization against both, and the scalar vec_dot against a
float64 dot of the dequantized rows."""
import gguf
import numpy as np
import pytest

import ggml_oracle
import imp_capi
from conftest import AWKWARD_BLOCK_COUNTS
from gguf_blocks import random_blocks

QT = gguf.GGMLQuantizationType
# imp format name -> gguf-py type, for the formats gguf-py can dequantize.
LEGACY = {"q4_0": QT.Q4_0, "q4_1": QT.Q4_1, "q5_0": QT.Q5_0, "q5_1": QT.Q5_1, "q8_0": QT.Q8_0,
          "iq4_nl": QT.IQ4_NL, "mxfp4": QT.MXFP4, "nvfp4": QT.NVFP4}
BLOCK = {"q4_0": 32, "q4_1": 32, "q5_0": 32, "q5_1": 32, "q8_0": 32, "q8_1": 32, "iq4_nl": 32,
         "mxfp4": 32, "nvfp4": 64}
# gguf-py has a numpy quantizer for these (not for IQ4_NL, NVFP4, Q8_1).
GGUF_PY_QUANTIZES = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "mxfp4"]
# ggml type ids of the formats whose llama-quantize path is not quantize_row_*_ref.
CHUNK_ONLY = {"iq4_nl": 20}
# Weight format -> the activation format its vec_dot takes.
DOT_ACTIVATION = {"q4_0": "q8_0", "q4_1": "q8_1", "q5_0": "q8_0", "q5_1": "q8_1", "q8_0": "q8_0",
                  "iq4_nl": "q8_0", "mxfp4": "q8_0", "nvfp4": "q8_0"}
# Q8_1's block: d f16, s f16, qs int8[32].
Q8_1_DTYPE = np.dtype([("d", "<f2"), ("s", "<f2"), ("qs", "i1", 32)])


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def block_bytes(name: str) -> int:
    return imp_capi.lib().imp_format_block_bytes(imp_capi.fid(name))


def ggml_quantize(name: str, x: np.ndarray) -> np.ndarray:
    """What llama-quantize writes for rows x (ggml_quantize_chunk, no imatrix)."""
    rows, cols = x.shape
    if name in CHUNK_ONLY:
        return ggml_oracle.quantize_chunk(CHUNK_ONLY[name], x, rows, cols, block_bytes(name), BLOCK[name])
    return ggml_oracle.quantize_row_ref(name, x.reshape(-1), block_bytes(name), BLOCK[name])


def mixed_rows(rng, rows: int, cols: int, block: int) -> np.ndarray:
    # Mixed scales per row, some exact zeros and ties, as real weights have.
    x = (rng.standard_normal((rows, cols)) * np.exp2(rng.uniform(-8, 4, (rows, 1)))).astype(np.float32)
    x[:, ::7] = np.round(x[:, ::7] * 4) / 4
    x[0, :block] = 0.0
    return x


def tie_blocks(name: str, n_blocks: int, rng) -> np.ndarray:
    """Blocks whose elements sit exactly on the midpoints between codes (and on codes), with
    the block scale forced to an exact power of two (or UE4M3 value), so every rounding
    rule — trunc-cast half up, first-minimum search — is exercised on its ties."""
    qk = BLOCK[name]
    base = np.exp2(rng.integers(-12, 6, (n_blocks, 1))).astype(np.float32)
    sign = rng.choice([-1.0, 1.0], (n_blocks, qk))
    if name in ("q4_0", "q5_0"):
        nmax = 8 if name == "q4_0" else 16
        k = rng.integers(-2 * nmax + 1, 2 * nmax, (n_blocks, qk)) / 2  # half-integers and integers
        k[:, 0] = -nmax  # max = −nmax·base → d = base exactly
        return (k * base).astype(np.float32)
    if name in ("q4_1", "q5_1"):
        levels = 15 if name == "q4_1" else 31
        mn = rng.integers(-40, 10, (n_blocks, 1)) * base
        k = rng.integers(0, 2 * levels + 1, (n_blocks, qk)) / 2
        k[:, 0], k[:, 1] = 0, levels  # min = mn, max − min = levels·base → d = base
        return (mn + k * base).astype(np.float32)
    grid2 = np.array([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 10, 12])  # doubled E2M1 and midpoints
    if name == "mxfp4":
        k = rng.choice(grid2, (n_blocks, qk))
        k[:, 0] = 12  # amax = 12·h → e = log2(h) + 128 exactly
        h = base / 8
        return (sign * k * h).astype(np.float32)
    if name == "nvfp4":
        # Per 16-element sub-block: UE4M3 scale D (normal codes 0x08..0x77), amax = 6·D.
        codes = rng.integers(0x08, 0x78, (n_blocks * 4,))
        e, m = (codes >> 3) & 15, codes & 7
        d = ((1 + m / 8) * np.exp2(e - 7.0)).reshape(n_blocks * 4, 1)
        k = rng.choice(grid2, (n_blocks * 4, 16))
        k[:, 0] = 12
        return (sign.reshape(n_blocks * 4, 16) * k * d / 2).astype(np.float32).reshape(n_blocks, qk)
    raise ValueError(name)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # E8M0 254 × 12 → Inf
@pytest.mark.parametrize("name", sorted(LEGACY))
@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_dequantize_bit_exact_vs_gguf_py(name, n_blocks, rng):
    data = random_blocks(name, n_blocks, rng)
    n = n_blocks * BLOCK[name]
    ours = imp_capi.dequantize_bytes(name, data, 1, n).reshape(-1)
    theirs = gguf.quants.dequantize(data, LEGACY[name]).reshape(-1)
    np.testing.assert_array_equal(bits(ours), bits(theirs))


@pytest.mark.parametrize("name", sorted(LEGACY))
@pytest.mark.parametrize("n_blocks", [1, 37, 257])
def test_dequantize_bit_exact_vs_ggml(name, n_blocks, rng):
    data = random_blocks(name, n_blocks, rng)
    n = n_blocks * BLOCK[name]
    ours = imp_capi.dequantize_bytes(name, data, 1, n).reshape(-1)
    theirs = ggml_oracle.dequantize_row(name, data, n)
    np.testing.assert_array_equal(bits(ours), bits(theirs))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("name", ["mxfp4", "nvfp4"])
def test_every_scale_byte_decodes_as_ggml(name, rng):
    # random_blocks keeps scales finite; here every byte 0..255 appears as a scale, with
    # ggml's readings: E8M0 0xFF is 2^127 (no NaN), UE4M3 ignores bit 7, 0x00/0x7F → 0,
    # 0xFF → 240 (×0.5).
    data = random_blocks(name, 256, rng).reshape(256, -1)
    scales = rng.permutation(256).astype(np.uint8)
    if name == "mxfp4":
        data[:, 0] = scales
    else:
        data[:, 0:4] = np.stack([np.roll(scales, k) for k in range(4)], axis=1)
    n = 256 * BLOCK[name]
    ours = imp_capi.dequantize_bytes(name, data.reshape(-1), 1, n).reshape(-1)
    np.testing.assert_array_equal(bits(ours), bits(ggml_oracle.dequantize_row(name, data.reshape(-1), n)))
    np.testing.assert_array_equal(bits(ours), bits(gguf.quants.dequantize(data.reshape(-1), LEGACY[name]).reshape(-1)))


@pytest.mark.parametrize("n_blocks", AWKWARD_BLOCK_COUNTS)
def test_q8_1_dequantize_is_qs_times_d(n_blocks, rng):
    # ggml has no dequantize_row_q8_1 (it is a dot-product intermediate); y = qs·d exactly.
    data = random_blocks("q8_1", n_blocks, rng)
    blk = data.view(Q8_1_DTYPE)
    want = (blk["qs"].astype(np.float32) * blk["d"].astype(np.float32)[:, None]).reshape(-1)
    ours = imp_capi.dequantize_bytes("q8_1", data, 1, n_blocks * 32).reshape(-1)
    np.testing.assert_array_equal(bits(ours), bits(want))


@pytest.mark.parametrize("name", sorted(BLOCK))
@pytest.mark.parametrize("rows,blocks_per_row", [(1, 1), (3, 17), (5, 37), (2, 129)])
def test_quantize_bytes_match_ggml(name, rows, blocks_per_row, rng):
    x = mixed_rows(rng, rows, blocks_per_row * BLOCK[name], BLOCK[name])
    ours = imp_capi.quantize(name, x).data
    np.testing.assert_array_equal(ours, ggml_quantize(name, x))


@pytest.mark.parametrize("name", GGUF_PY_QUANTIZES)
@pytest.mark.parametrize("rows,blocks_per_row", [(1, 1), (3, 17), (5, 37)])
def test_quantize_bytes_match_gguf_py(name, rows, blocks_per_row, rng):
    x = mixed_rows(rng, rows, blocks_per_row * BLOCK[name], BLOCK[name])
    ours = imp_capi.quantize(name, x).data
    np.testing.assert_array_equal(ours, gguf.quants.quantize(x, LEGACY[name]).reshape(-1))


@pytest.mark.parametrize("name", ["q4_0", "q4_1", "q5_0", "q5_1", "mxfp4", "nvfp4"])
@pytest.mark.parametrize("n_blocks", [3, 129])
def test_quantize_ties_match_ggml(name, n_blocks, rng):
    x = tie_blocks(name, n_blocks, rng).reshape(1, -1)
    ours = imp_capi.quantize(name, x).data
    np.testing.assert_array_equal(ours, ggml_quantize(name, x))


@pytest.mark.parametrize("name", sorted(BLOCK))
def test_quantize_degenerate_blocks_match_ggml(name, rng):
    # Constant, all-zero, negligible (< 1e-15, IQ4_NL's cut-off), subnormal, fp32-extreme
    # blocks and infinities: scale reciprocals that overflow, exponents below E8M0's range,
    # float→int casts out of range (reproduced as x86-64 ggml does them).
    qk = BLOCK[name]
    specials = [np.zeros(qk), np.full(qk, 0.3), np.full(qk, -2.5), rng.standard_normal(qk) * 1e-17,
                rng.standard_normal(qk) * 1e-39, rng.standard_normal(qk) * 1e-44,
                rng.standard_normal(qk) * 3e38, np.where(np.arange(qk) == 5, np.inf, rng.standard_normal(qk)),
                np.where(np.arange(qk) == 9, -np.inf, rng.standard_normal(qk)),
                np.where(np.arange(qk) % 2 == 0, 3.4e38, -3.4e38), rng.standard_normal(qk)]
    with np.errstate(over="ignore"):  # 3e38·N(0, 1) overflows to ±Inf in fp32: wanted
        x = np.concatenate(specials).astype(np.float32).reshape(1, -1)
    ours = imp_capi.quantize(name, x).data
    np.testing.assert_array_equal(ours, ggml_quantize(name, x))


def test_mxfp4_exponent_uses_fp32_log2f(rng):
    # amax one ulp below 2^k: fp32 log2f rounds up to k (so floor gives k, not k − 1) for
    # most k; a double-precision log2 would pick the exponent below. ggml is the judge.
    k = np.arange(-120, 120, 3)
    amax = np.nextafter(np.exp2(k).astype(np.float32), np.float32(0))
    x = (rng.uniform(-1, 1, (k.size, 32)) * amax[:, None]).astype(np.float32)
    x[:, 7] = amax * rng.choice([-1, 1], k.size)
    ours = imp_capi.quantize("mxfp4", x.reshape(1, -1)).data
    np.testing.assert_array_equal(ours, ggml_quantize("mxfp4", x.reshape(1, -1)))


def test_spec_sanity_vectors():
    # ../shared/specs/formats.md §2.5, input A
    x = ((np.arange(32) - 16) * 0.25).astype(np.float32)
    q4 = imp_capi.quantize("q4_0", x).data
    assert bytes(q4).hex() == "0038" + "8091" "91a2a2b3b3c4c4d5d5e6e6f7f7f8"
    q8 = imp_capi.quantize("q8_0", x).data
    assert bytes(q8).hex() == ("0828" "81899199a1a9b1b9c0c8d0d8e0e8f0f8" "00081018202830384047" "4f575f676f77")
    q5 = imp_capi.quantize("q5_0", x)
    assert bytes(q5.data).hex() == "0034" "0000ffff" "00112233445566778899aabbccddeeff"
    np.testing.assert_array_equal(imp_capi.dequantize(q5).reshape(-1), x)  # exact
    mx = imp_capi.quantize("mxfp4", x)
    assert bytes(mx.data).hex() == "7f" "0e0e1d1d2d2d3c3c4c4b4b5a5a595960"
    np.testing.assert_array_equal(imp_capi.dequantize(mx).reshape(-1), [
        -4, -4, -3, -3, -3, -3, -2, -2, -2, -1.5, -1.5, -1, -1, -0.5, -0.5, 0,
        0, 0, 0.5, 0.5, 1, 1, 1.5, 1.5, 2, 2, 2, 3, 3, 3, 3, 4])
    # input B
    xb = ((np.arange(64) - 32) * 0.125).astype(np.float32)
    nv = imp_capi.quantize("nvfp4", xb)
    assert bytes(nv.data).hex() == ("332b2a32" "efefefefefdedededfdfcfcebeae9e9d"
                                    "50616262637474756565767676767676")
    y = imp_capi.dequantize(nv).reshape(-1)
    assert (y[0], y[32], y[63]) == (-4.125, 0.0, 3.75)


def block_mins(wq: imp_capi.Quantized) -> np.ndarray:
    """The f16 m field (offset 2) of every Q4_1/Q5_1 block, (rows, blocks), float64."""
    raw = wq.data.reshape(wq.rows, -1, block_bytes(wq.format))[:, :, 2:4].copy()
    return raw.view("<f2")[..., 0].astype(np.float64)


@pytest.mark.parametrize("name", sorted(DOT_ACTIVATION))
@pytest.mark.parametrize("blocks_per_row", [1, 3, 17, 37, 129])
def test_vec_dot_matches_float64_dot_of_dequantized_rows(name, blocks_per_row, rng):
    rows, cols = 3, blocks_per_row * BLOCK[name]
    w = mixed_rows(rng, rows, cols, BLOCK[name])
    w[0, :BLOCK[name]] = rng.standard_normal(BLOCK[name])  # no all-zero block: the test needs signal
    x = (rng.standard_normal(cols) * np.exp2(rng.uniform(-3, 3))).astype(np.float32)
    wq = imp_capi.quantize(name, w)
    aq = imp_capi.quantize(DOT_ACTIVATION[name], x)
    wd = imp_capi.dequantize(wq).astype(np.float64)
    ad = imp_capi.dequantize(aq).reshape(-1).astype(np.float64)
    got = imp_capi.matvec(wq, x, fast=False).astype(np.float64)
    want, mag = wd @ ad, np.abs(wd) @ np.abs(ad)
    if DOT_ACTIVATION[name] == "q8_1":
        # Q4_1/Q5_1 add each weight block's min m times the activation block's stored
        # s = F16(d·Σqa), d the fp32 scale, not times Σa = F16(d)·Σqa: the plain dot may
        # differ by those two F16 roundings (2^-11 each of |m·Σa| per block, plus half an
        # f16 subnormal step) ...
        m = block_mins(wq)
        s_err = np.abs(ad.reshape(-1, 32).sum(axis=1)) * 2.0**-10 * (1 + 2.0**-10) + 2.0**-25
        np.testing.assert_array_less(np.abs(got - want), 1e-5 * mag + np.abs(m) @ s_err)
        # ... and with s modelled, it must agree to fp32 accumulation error.
        s = aq.data.view(Q8_1_DTYPE)["s"].astype(np.float64)
        want = (wd - np.repeat(m, 32, axis=1)) @ ad + m @ s
        mag = mag + np.abs(m) @ np.abs(s)
    np.testing.assert_array_less(np.abs(got - want), 1e-5 * mag)


@pytest.mark.parametrize("name", sorted(BLOCK))
def test_bad_input_is_an_error_not_a_crash(name):
    with pytest.raises(imp_capi.ImpError, match="multiple of the block size"):
        imp_capi.quantize(name, np.zeros((1, BLOCK[name] + 1), np.float32))
    with pytest.raises(imp_capi.ImpError, match="data plane holds"):
        imp_capi.dequantize_bytes(name, np.zeros(5, np.uint8), 1, BLOCK[name])
