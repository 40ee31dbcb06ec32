#!/usr/bin/env python3
"""Extract character-vector data sets of an installed R package's lazy-load database
(data/Rdata.rdx + data/Rdata.rdb) as UTF-8 text, one element per line.

Format (R Internals, "Serialization formats" and "Lazy loading"):
  Rdata.rdx — a gzip file (saveRDS) holding a serialized list(variables =, references =,
              compressed =); variables maps each data set's name to c(offset, length) in
              Rdata.rdb.
  blob      — 4-byte big-endian uncompressed length, then (compressed = 1) a zlib stream,
              or (2, 3) a type byte 'Z' bzip2 / 'X' xz / '0' none, then the stream.
  serialized object — "X\\n" (XDR, big-endian), version 2 or 3 header, then items: a 32-bit
              flags word (type = low 8 bits, object bit 8, attribute bit 9, tag bit 10,
              "levels" = bits 12+, which for CHARSXP carry the encoding) and the payload.
Only what data sets of text use is read: pairlists, symbols, character/logical/integer/
double vectors, generic vectors, references and the compact ALTREP classes; anything else
is an error naming the type. Written from the R documentation, not from R's sources.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import sys
import zlib
from pathlib import Path

NILVALUE, SYM, LIST, CHAR, LGL, INT, REAL, STR, VEC = 254, 1, 2, 9, 10, 13, 14, 16, 19
REF, ALTREP, GLOBALENV, EMPTYENV, BASEENV, MISSINGARG, BASENAMESPACE = 255, 238, 253, 242, 241, 251, 247


class Reader:
    def __init__(self, data: bytes):
        if data[:2] != b"X\n":
            raise ValueError(f"not an XDR serialization (starts with {data[:2]!r})")
        self.d, self.i, self.refs = data, 2, []
        version = self.int()
        self.int(), self.int()  # R version writing, minimal R version reading
        if version == 3:
            n = self.int()  # native encoding name
            self.i += n
        elif version != 2:
            raise ValueError(f"serialization version {version} is not 2 or 3")

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.d, self.i)
        self.i += 4
        return v

    def length(self) -> int:
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def item(self):
        flags = self.int()
        t, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if t in (NILVALUE, GLOBALENV, EMPTYENV, BASEENV, MISSINGARG, BASENAMESPACE):
            return None
        if t == REF:
            idx = flags >> 8 or self.int()
            return self.refs[idx - 1]
        if t == SYM:
            name = self.item()
            self.refs.append(name)
            return name
        if t == CHAR:
            n = self.int()
            if n == -1:
                return None
            s = self.d[self.i:self.i + n]
            self.i += n
            return s.decode("latin-1" if (flags >> 12) & 4 else "utf-8")
        if t == LIST:
            out = {}
            k = 0
            while t == LIST:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else f"#{k}"
                out[tag] = self.item()
                k += 1
                flags = self.int()
                t, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
            if t != NILVALUE:
                raise ValueError(f"pairlist ends in type {t}")
            return out
        if t == ALTREP:
            info, state, attr = self.item(), self.item(), self.item()
            cls = next(iter(info.values())) if isinstance(info, dict) else None
            if cls in ("compact_intseq", "compact_realseq"):
                n, start, step = state
                return [start + step * j for j in range(int(n))]
            if cls and cls.startswith("wrap_"):
                return state[0]
            if cls == "deferred_string":
                return [str(x) for x in next(iter(state.values()))]
            raise ValueError(f"ALTREP class {cls!r} is not supported")
        if t in (LGL, INT):
            n = self.length()
            v = list(struct.unpack_from(f">{n}i", self.d, self.i))
            self.i += 4 * n
        elif t == REAL:
            n = self.length()
            v = list(struct.unpack_from(f">{n}d", self.d, self.i))
            self.i += 8 * n
        elif t in (STR, VEC):
            v = [self.item() for _ in range(self.length())]
        else:
            raise ValueError(f"R type {t} is not supported by this reader")
        if has_attr:
            attrs = self.item()
            if t == VEC and isinstance(attrs, dict) and isinstance(attrs.get("names"), list):
                return dict(zip(attrs["names"], v))  # a named list
        return v


def unblob(blob: bytes, compressed: int) -> bytes:
    (n,) = struct.unpack_from(">I", blob, 0)
    if compressed == 1:
        out = zlib.decompress(blob[4:])
    else:
        kind, body = blob[4:5], blob[5:]
        out = {b"Z": zlib.decompress, b"2": bz2.decompress, b"X": lzma.decompress, b"0": bytes}[kind](body)
    if len(out) != n:
        raise ValueError(f"blob decompressed to {len(out)} bytes, header says {n}")
    return out


def read_lazyload(rdx: Path) -> dict[str, object]:
    raw = rdx.read_bytes()
    index = Reader(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else unblob(raw, 1)).item()
    rdb = rdx.with_suffix(".rdb").read_bytes()
    compressed = int(index["compressed"][0]) if index.get("compressed") else 1
    out = {}
    for name, (off, n) in index["variables"].items():
        out[name] = Reader(unblob(rdb[int(off):int(off) + int(n)], compressed)).item()
    return out


def main() -> int:
    if len(sys.argv) != 4:
        print("usage: rdata_text.py DATA/Rdata.rdx VARIABLE OUT.txt", file=sys.stderr)
        return 2
    data = read_lazyload(Path(sys.argv[1]))
    v = data.get(sys.argv[2])
    if not isinstance(v, list) or not all(isinstance(x, (str, type(None))) for x in v):
        print(f"no character vector '{sys.argv[2]}' (have: {', '.join(sorted(data))})", file=sys.stderr)
        return 1
    Path(sys.argv[3]).write_text("\n".join(x or "" for x in v) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
