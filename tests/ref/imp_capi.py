"""ctypes wrapper over libimp_capi (tests/ref/capi.cc): imp's formats core from Python."""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

import numpy as np

_lib = None


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        path = os.environ.get("IMP_CAPI")
        if not path:
            raise RuntimeError("IMP_CAPI is not set: run these tests through ctest")
        _lib = ctypes.CDLL(path)
        _lib.imp_last_error.restype = ctypes.c_char_p
        _lib.imp_format_name.restype = ctypes.c_char_p
    return _lib


class ImpError(RuntimeError):
    pass


def _check(rc: int) -> None:
    if rc != 0:
        raise ImpError(lib().imp_last_error().decode())


def format_ids() -> dict[str, int]:
    return {lib().imp_format_name(i).decode(): i for i in range(lib().imp_format_count())}


def fid(name: str) -> int:
    return format_ids()[name]


def _p(a: np.ndarray | None):
    return None if a is None or a.size == 0 else a.ctypes.data_as(ctypes.c_void_p)


@dataclass
class Quantized:
    format: str
    rows: int
    cols: int
    data: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray
    tensor_scale: float = 1.0
    group: int = 0


def plane_bytes(fmt: str, rows: int, cols: int, group: int = 0) -> tuple[int, int, int]:
    d, s, z = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
    _check(lib().imp_plane_bytes(fid(fmt), ctypes.c_int64(rows), ctypes.c_int64(cols), ctypes.c_int32(group),
                                 ctypes.byref(d), ctypes.byref(s), ctypes.byref(z)))
    return d.value, s.value, z.value


def quantize(fmt: str, x: np.ndarray, group: int = 0) -> Quantized:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    rows, cols = x.shape
    nd, ns, nz = plane_bytes(fmt, rows, cols, group)
    data, scales, zeros = (np.zeros(n, np.uint8) for n in (nd, ns, nz))
    ts = ctypes.c_float()
    _check(lib().imp_quantize(fid(fmt), _p(x), ctypes.c_int64(rows), ctypes.c_int64(cols), ctypes.c_int32(group),
                              _p(data), _p(scales), _p(zeros), ctypes.byref(ts)))
    return Quantized(fmt, rows, cols, data, scales, zeros, ts.value, group)


def dequantize(q: Quantized, fast: bool = False) -> np.ndarray:
    out = np.empty((q.rows, q.cols), np.float32)
    _check(lib().imp_dequantize(fid(q.format), ctypes.c_int(1 if fast else 0), _p(q.data), ctypes.c_int64(q.data.size),
                                _p(q.scales), ctypes.c_int64(q.scales.size), _p(q.zeros), ctypes.c_int64(q.zeros.size),
                                ctypes.c_float(q.tensor_scale), ctypes.c_int32(q.group), ctypes.c_int64(q.rows),
                                ctypes.c_int64(q.cols), _p(out)))
    return out


def dequantize_bytes(fmt: str, data: np.ndarray, rows: int, cols: int, fast: bool = False) -> np.ndarray:
    """Self-contained formats: data is the raw rows of blocks."""
    empty = np.zeros(0, np.uint8)
    return dequantize(Quantized(fmt, rows, cols, np.ascontiguousarray(data, np.uint8), empty, empty), fast)


def matvec(q: Quantized, x: np.ndarray, fast: bool = False) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty(q.rows, np.float32)
    _check(lib().imp_matvec(fid(q.format), ctypes.c_int(1 if fast else 0), _p(q.data), ctypes.c_int64(q.data.size),
                            _p(q.scales), ctypes.c_int64(q.scales.size), _p(q.zeros), ctypes.c_int64(q.zeros.size),
                            ctypes.c_float(q.tensor_scale), ctypes.c_int32(q.group), ctypes.c_int64(q.rows),
                            ctypes.c_int64(q.cols), _p(x), _p(y)))
    return y


ACT_EMULATION = {"none": 0, "nvfp4": 1, "mxfp4": 2, "fp8": 3}


def fake_quant_activations(mode: str, x: np.ndarray, static_scale: float | None = None) -> tuple[np.ndarray, float]:
    """imp's activation fake quantization of x (n_tok, cols): (values, global scale used)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(x)
    used = ctypes.c_float()
    _check(lib().imp_fake_quant_activations(
        ctypes.c_int(ACT_EMULATION[mode]), _p(x), ctypes.c_int64(x.shape[0]), ctypes.c_int64(x.shape[1]),
        ctypes.c_int(static_scale is not None), ctypes.c_float(static_scale or 0.0), _p(out), ctypes.byref(used)))
    return out, used.value
