"""The caller's dirty-bitmap buffer (``sc->dirty_bitmap``) that PEEK/CLEAN copy into.

Xen copies with ``copy_to_guest_offset``/``clear_guest_offset`` at byte offsets that are
multiples of 4096 (one leaf per 32768 pfns), except for a short last piece. Two buffers:

* :class:`DenseBitmap` - a plain ``numpy.uint8`` array, like the toolstack's buffer; writing
  past its end fails like a bad guest handle (-EFAULT);
* :class:`SparseBitmap` - stores only 4 KiB chunks that hold a set bit, so a 16 TiB guest that
  touched 1 GiB needs kilobytes, not 512 MiB. Same observable content.

Passing ``None`` as the buffer is Xen's NULL handle: "just clean the state or read the stats".
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from xenvmmu.model.constants import PAGE_SIZE


class BitmapSink(Protocol):
    """Where the log-dirty walk copies bits to. Returns False on a fault (-EFAULT)."""

    def write(self, offset: int, data: npt.NDArray[np.uint8]) -> bool: ...

    def zero(self, offset: int, nbytes: int) -> bool: ...


class DenseBitmap:
    """A caller buffer of ``nbytes`` bytes (``numpy.uint8``)."""

    def __init__(self, nbits: int, *, nbytes: int | None = None) -> None:
        self.array: npt.NDArray[np.uint8] = np.zeros(
            (nbits + 7) >> 3 if nbytes is None else nbytes, dtype=np.uint8
        )

    def write(self, offset: int, data: npt.NDArray[np.uint8]) -> bool:
        if offset + len(data) > len(self.array):
            return False
        self.array[offset : offset + len(data)] = data
        return True

    def zero(self, offset: int, nbytes: int) -> bool:
        if offset + nbytes > len(self.array):
            return False
        self.array[offset : offset + nbytes] = 0
        return True

    def to_array(self) -> npt.NDArray[np.uint8]:
        return self.array


class SparseBitmap:
    """A caller buffer that keeps only non-zero 4 KiB chunks."""

    def __init__(self, nbits: int) -> None:
        self.nbytes = (nbits + 7) >> 3
        self.chunks: dict[int, npt.NDArray[np.uint8]] = {}

    def write(self, offset: int, data: npt.NDArray[np.uint8]) -> bool:
        if offset + len(data) > self.nbytes:
            return False
        pos = 0
        while pos < len(data):
            c, o = divmod(offset + pos, PAGE_SIZE)
            n = min(PAGE_SIZE - o, len(data) - pos)
            piece = data[pos : pos + n]
            chunk = self.chunks.get(c)
            if chunk is None:
                if piece.any():
                    chunk = self.chunks[c] = np.zeros(PAGE_SIZE, dtype=np.uint8)
                    chunk[o : o + n] = piece
            else:
                chunk[o : o + n] = piece
                if not chunk.any():
                    del self.chunks[c]
            pos += n
        return True

    def zero(self, offset: int, nbytes: int) -> bool:
        if offset + nbytes > self.nbytes:
            return False
        first, last = offset // PAGE_SIZE, (offset + nbytes - 1) // PAGE_SIZE
        if last - first > len(self.chunks):
            keys = [c for c in self.chunks if first <= c <= last]
        else:
            keys = [c for c in range(first, last + 1) if c in self.chunks]
        for c in keys:
            lo = max(offset, c * PAGE_SIZE) - c * PAGE_SIZE
            hi = min(offset + nbytes, (c + 1) * PAGE_SIZE) - c * PAGE_SIZE
            self.chunks[c][lo:hi] = 0
            if not self.chunks[c].any():
                del self.chunks[c]
        return True

    def to_array(self) -> npt.NDArray[np.uint8]:
        out = np.zeros(self.nbytes, dtype=np.uint8)
        for c, chunk in self.chunks.items():
            n = min(PAGE_SIZE, self.nbytes - c * PAGE_SIZE)
            out[c * PAGE_SIZE : c * PAGE_SIZE + n] = chunk[:n]
        return out
