"""ggml's own C reference quantizers and dequantizers, built from source as a test oracle.

The oracle is ggml as vendored by the `ggml-py` sdist on PyPI (pinned below): its
src/ggml-quants.c and src/ggml.c are compiled, exactly as ggml-base is (plain -O2, no
-march, so no FMA contraction on x86-64), into a shared library that the tests call with
ctypes. Nothing from it is copied into imp; it is fetched and built in the build tree.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

GGML_PY_VERSION = "0.10.1"

# ggml-base calls into the backend for a few helpers ggml-quants.c never reaches; the
# oracle does not link the backend, so those symbols are stubbed to abort.
_STUBS = r"""
#include <stdlib.h>
void ggml_backend_tensor_set(void) { abort(); }
void ggml_backend_tensor_get(void) { abort(); }
void ggml_backend_tensor_memset(void) { abort(); }
void ggml_backend_buffer_is_host(void) { abort(); }
void ggml_backend_buffer_get_usage(void) { abort(); }
void ggml_backend_buffer_free(void) { abort(); }
void ggml_backend_buft_is_host(void) { abort(); }
void ggml_backend_buffer_get_base(void) { abort(); }
void ggml_backend_buffer_get_alloc_size(void) { abort(); }
void ggml_backend_buffer_init_tensor(void) { abort(); }
void ggml_backend_view_init(void) { abort(); }
void ggml_backend_buffer_clear(void) { abort(); }
void ggml_backend_buffer_set_usage(void) { abort(); }
"""

_lib = None


def _oracle_dir() -> Path:
    return Path(os.environ.get("IMP_ORACLE_DIR", Path(tempfile.gettempdir()) / "imp-ggml-oracle"))


def build() -> Path:
    out = _oracle_dir()
    so = out / f"libggml_oracle-{GGML_PY_VERSION}.so"
    if so.exists():
        return so
    out.mkdir(parents=True, exist_ok=True)
    # Several pytest processes (one per file under ctest -j) may get here at once.
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not so.exists():
            _build_locked(out, so)
    return so


def _build_locked(out: Path, so: Path) -> None:
    sdist_dir = out / "sdist"
    sdist_dir.mkdir(exist_ok=True)
    sdists = list(sdist_dir.glob(f"ggml_py-{GGML_PY_VERSION}.tar.gz"))
    if not sdists:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
                        "-d", str(sdist_dir), f"ggml-py=={GGML_PY_VERSION}"], check=True)
        sdists = list(sdist_dir.glob(f"ggml_py-{GGML_PY_VERSION}.tar.gz"))
    src_root = out / "src"
    with tarfile.open(sdists[0]) as tar:
        members = [m for m in tar.getmembers() if "/vendor/ggml/src/" in m.name or "/vendor/ggml/include/" in m.name]
        tar.extractall(src_root, members=members, filter="data")
    ggml = next(src_root.glob("*/vendor/ggml"))
    stub = out / "stubs.c"
    stub.write_text(_STUBS)
    inc = ["-I", str(ggml / "include"), "-I", str(ggml / "src")]
    objs = []
    for src, compiler in ((ggml / "src/ggml-quants.c", "cc"), (ggml / "src/ggml.c", "cc"),
                          (ggml / "src/ggml-threading.cpp", "c++"), (stub, "cc")):
        obj = out / (src.name + ".o")
        extra = ["-std=c++17"] if compiler == "c++" else ["-std=gnu11"]
        subprocess.run([compiler, "-O2", "-fPIC", "-c", *extra, *inc, '-DGGML_VERSION="oracle"',
                        '-DGGML_COMMIT="oracle"', str(src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    tmp = so.with_suffix(".tmp")
    subprocess.run(["c++", "-shared", "-o", str(tmp), *objs, "-lm", "-lpthread"], check=True)
    tmp.rename(so)


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(str(build()))
        _lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        _lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                             ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
        _lib.ggml_quantize_init.argtypes = [ctypes.c_int]
    return _lib


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def quantize_row_ref(name: str, x: np.ndarray, block_bytes: int, block_elems: int) -> np.ndarray:
    """ggml's quantize_row_<name>_ref over a 1-D float32 array."""
    x = np.ascontiguousarray(x, np.float32)
    out = np.zeros(x.size // block_elems * block_bytes, np.uint8)
    getattr(lib(), f"quantize_row_{name}_ref")(_ptr(x), _ptr(out), ctypes.c_int64(x.size))
    return out


def quantize_chunk(ggml_type: int, x: np.ndarray, rows: int, cols: int, block_bytes: int,
                   block_elems: int, imatrix: np.ndarray | None = None) -> np.ndarray:
    """ggml_quantize_chunk: what llama-quantize runs, with an importance matrix (one
    float per column, mean x²) when `imatrix` is given."""
    x = np.ascontiguousarray(x, np.float32)
    lib().ggml_quantize_init(ggml_type)
    out = np.zeros(rows * cols // block_elems * block_bytes, np.uint8)
    qw = None if imatrix is None else np.ascontiguousarray(imatrix, np.float32)
    assert qw is None or qw.size == cols
    lib().ggml_quantize_chunk(ggml_type, _ptr(x), _ptr(out), 0, rows, cols, None if qw is None else _ptr(qw))
    return out


def dequantize_row(name: str, data: np.ndarray, n: int) -> np.ndarray:
    """ggml's dequantize_row_<name> (ggml-base to_float)."""
    data = np.ascontiguousarray(data, np.uint8)
    out = np.zeros(n, np.float32)
    getattr(lib(), f"dequantize_row_{name}")(_ptr(data), _ptr(out), ctypes.c_int64(n))
    return out
