"""imp's activation fake quantization (`--act-emulate`, src/backends/cpu/act_emulation.h)
against a numpy + ml_dtypes transcription of the recipes, bit for bit, on fresh random data.

NVFP4 is ModelOpt's NVFP4 quantizer applied to activations (what TensorRT-LLM runs on
Blackwell): G = input_scale or amax/(6·448); per 16 elements S = E4M3(block_amax/(6·G))
(0 → 1, floor 2^-9, saturating at 448 as the hardware's satfinite cast); x̂ = E2M1(x/(S·G))·S·G.
MXFP4: OCP MX v1.0, E8M0 exponent floor(log2 amax) − 2 per 32. FP8: E4M3(x/s)·s, s = amax/448.
ml_dtypes' casts are round-to-nearest-even; values are clipped to the format's max first
(satfinite) because its overflow behaviour is not the hardware's.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import imp_capi

F32 = np.float32


def e2m1(v: np.ndarray) -> np.ndarray:
    return np.clip(v, -6, 6).astype(ml_dtypes.float4_e2m1fn).astype(F32)


def e4m3(v: np.ndarray) -> np.ndarray:
    return np.clip(v, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(F32)


def nvfp4_ref(x: np.ndarray, g: F32 | None):
    if g is None:
        g = F32(np.abs(x).max()) / (F32(6) * F32(448))
        g = g if g > 0 else F32(1)
    b = x.reshape(x.shape[0], -1, 16)
    s = np.abs(b).max(axis=2, keepdims=True) / (F32(6) * g)  # float32 throughout
    s = np.where(s == 0, F32(1), s)
    s = np.maximum(s, F32(2.0**-9))
    d = e4m3(s) * g
    return (e2m1(b / d) * d).reshape(x.shape).astype(F32), g


def mxfp4_ref(x: np.ndarray):
    b = x.reshape(x.shape[0], -1, 32)
    amax = np.abs(b).max(axis=2, keepdims=True).astype(F32)
    e = ((amax.view(np.uint32) >> 23) & 0xFF).astype(np.int64) - 127 - 2
    scale = np.ldexp(F32(1), np.maximum(e, -127)).astype(F32)
    return (e2m1(b / scale) * scale).reshape(x.shape).astype(F32)


def fp8_ref(x: np.ndarray, s: F32 | None):
    if s is None:
        s = F32(np.abs(x).max()) / F32(448)
    return (e4m3(x / s) * s).astype(F32), s


def activations(rng, n_tok: int, cols: int) -> np.ndarray:
    x = rng.standard_normal((n_tok, cols)).astype(F32)
    # Outliers and exact zeros, as real activations have.
    idx = rng.integers(0, x.size, 4)
    x.flat[idx[:3]] *= 30
    if cols >= 64:
        x[:, :16] = 0
    return x


@pytest.mark.parametrize("blocks", [1, 3, 17, 37])
@pytest.mark.parametrize("n_tok", [1, 5])
def test_nvfp4_dynamic_matches_transcription(rng, blocks, n_tok):
    x = activations(rng, n_tok, 32 * blocks)
    got, g = imp_capi.fake_quant_activations("nvfp4", x)
    want, g_want = nvfp4_ref(x, None)
    assert g == g_want
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, x)


@pytest.mark.parametrize("blocks", [1, 3, 17])
def test_nvfp4_static_scale_matches_transcription_including_saturation(rng, blocks):
    x = activations(rng, 3, 32 * blocks)
    amax = F32(np.abs(x).max())
    # A calibrated scale from a smaller amax than this batch has: some block scales exceed 448.
    for g in (amax / F32(6 * 448), amax / F32(6 * 448) / F32(40), F32(rng.uniform(1e-4, 1e-2))):
        got, used = imp_capi.fake_quant_activations("nvfp4", x, float(g))
        assert used == F32(g)
        want, _ = nvfp4_ref(x, F32(g))
        np.testing.assert_array_equal(got, want)
        assert np.isfinite(got).all()


@pytest.mark.parametrize("blocks", [1, 3, 17, 37])
def test_mxfp4_matches_transcription(rng, blocks):
    x = activations(rng, 3, 32 * blocks)
    x[0, -32:] *= F32(1e-39)  # a subnormal block: the exponent clamps at -127
    got, _ = imp_capi.fake_quant_activations("mxfp4", x)
    np.testing.assert_array_equal(got, mxfp4_ref(x))


@pytest.mark.parametrize("blocks", [1, 3, 17])
def test_fp8_matches_transcription(rng, blocks):
    x = activations(rng, 3, 32 * blocks)
    got, s = imp_capi.fake_quant_activations("fp8", x)
    want, s_want = fp8_ref(x, None)
    assert s == s_want
    np.testing.assert_array_equal(got, want)
    static = F32(np.abs(x).max()) / F32(448 * 8)  # saturates the largest elements
    got, _ = imp_capi.fake_quant_activations("fp8", x, float(static))
    np.testing.assert_array_equal(got, fp8_ref(x, static)[0])


def test_bad_row_length_is_an_error(rng):
    with pytest.raises(imp_capi.ImpError, match="not a positive multiple of the 16-element block"):
        imp_capi.fake_quant_activations("nvfp4", rng.standard_normal((2, 40)).astype(F32))
