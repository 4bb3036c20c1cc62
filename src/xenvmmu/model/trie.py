"""The log-dirty bitmap, kept exactly as Xen keeps it: a 4-level trie of pool pages.

``d->arch.paging.log_dirty`` (xen-project/xen xen/arch/x86/mm/paging.c @ RELEASE-4.4.0, macros in
asm-x86/paging.h):

* the top node (L4) and L3/L2 nodes hold 512 machine-frame slots; a leaf (L1) is one page of
  bits, 32768 pfns = 128 MiB of guest memory. Pfn ``p`` lives at leaf bit ``p & 0x7fff``, L2 slot
  ``(p >> 15) & 511``, L3 slot ``(p >> 24) & 511``, top slot ``(p >> 33) & 511``;
* nodes are allocated lazily on the first mark below them, from the paging pool (they count as
  p2m pages); a failed allocation bumps ``failed_allocs`` and silently drops the mark;
* CLEAN only zeroes leaves - the trie never shrinks until log-dirty is switched off or the
  domain dies.

Leaves are ``numpy.uint8[4096]`` arrays with Xen's bit order (bit ``i`` = byte ``i>>3``, bit
``i&7``); interior nodes are dicts of present slots. Memory therefore grows with the number of
128 MiB regions ever dirtied, not with the guest's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from xenvmmu.model.constants import ENTRIES, L2_SHIFT, L3_SHIFT, LEAF_BITS, LEAF_SHIFT, PAGE_SIZE
from xenvmmu.model.pool import PagingPool
from xenvmmu.model.work import ZERO, Work

Leaf = npt.NDArray[np.uint8]
L2Node = dict[int, Leaf]
L3Node = dict[int, L2Node]
Top = dict[int, L3Node]

_MARK_WORK = Work(dirty_marks=1, pages_mapped=4)


def new_leaf() -> Leaf:
    return np.zeros(PAGE_SIZE, dtype=np.uint8)


def popcount_bytes(a: npt.NDArray[np.uint8]) -> int:
    return int(np.bitwise_count(a).sum(dtype=np.int64))


def split_pfn(pfn: int) -> tuple[int, int, int, int]:
    """(i4, i3, i2, i1) of a pfn."""
    return (
        (pfn >> L3_SHIFT) & (ENTRIES - 1),
        (pfn >> L2_SHIFT) & (ENTRIES - 1),
        (pfn >> LEAF_SHIFT) & (ENTRIES - 1),
        pfn & (LEAF_BITS - 1),
    )


@dataclass(frozen=True)
class TrieCounts:
    """Pages of each trie level (the top counts as one)."""

    top: int
    l3: int
    l2: int
    leaves: int

    @property
    def pages(self) -> int:
        return self.top + self.l3 + self.l2 + self.leaves


class LogDirtyTrie:
    """``struct log_dirty_domain``: the trie plus its counters."""

    def __init__(self, pool: PagingPool) -> None:
        self.pool = pool
        self.top: Top | None = None
        self.allocs = 0
        self.failed_allocs = 0
        self.fault_count = 0
        self.dirty_count = 0

    # -- allocation ----------------------------------------------------------------------------
    def _new_page(self) -> bool:
        if self.pool.alloc_p2m_page():
            self.allocs += 1
            return True
        self.failed_allocs += 1
        return False

    def _leaf_for(self, i4: int, i3: int, i2: int) -> tuple[Leaf | None, Work]:
        """Find or allocate the leaf on the path, as ``paging_mark_dirty`` does (top first)."""
        n = 0
        if self.top is None:
            if not self._new_page():
                return None, ZERO
            self.top, n = {}, n + 1
        l3 = self.top.get(i4)
        if l3 is None:
            if not self._new_page():
                return None, Work(pages_allocated=n, bytes_zeroed=n * PAGE_SIZE)
            l3 = self.top[i4] = {}
            n += 1
        l2 = l3.get(i3)
        if l2 is None:
            if not self._new_page():
                return None, Work(pages_allocated=n, bytes_zeroed=n * PAGE_SIZE)
            l2 = l3[i3] = {}
            n += 1
        leaf = l2.get(i2)
        if leaf is None:
            if not self._new_page():
                return None, Work(pages_allocated=n, bytes_zeroed=n * PAGE_SIZE)
            leaf = l2[i2] = new_leaf()
            n += 1
        return leaf, Work(pages_allocated=n, bytes_zeroed=n * PAGE_SIZE)

    # -- marking -------------------------------------------------------------------------------
    def mark(self, pfn: int) -> Work:
        """``paging_mark_dirty`` for one pfn (the caller checks log-dirty mode)."""
        i4, i3, i2, i1 = split_pfn(pfn)
        leaf, w = self._leaf_for(i4, i3, i2)
        if leaf is None:
            return w + Work(dirty_marks=1)
        byte, bit = i1 >> 3, np.uint8(1 << (i1 & 7))
        if not leaf[byte] & bit:
            leaf[byte] |= bit
            self.dirty_count += 1
        return w + _MARK_WORK

    def mark_bytes(self, pfn0: int, bits: npt.NDArray[np.uint8], n_marks: int) -> Work:
        """Mark, in ascending order, the pfns whose bits are set in ``bits``, a byte-aligned
        slice of one leaf starting at ``pfn0`` (multiple of 8). ``n_marks`` = bits set."""
        if n_marks == 0:
            return ZERO
        i4, i3, i2, i1 = split_pfn(pfn0)
        leaf, w = self._leaf_for(i4, i3, i2)
        if leaf is None:
            # Every one of these marks retries the missing allocation and fails (pool empty).
            self.failed_allocs += n_marks - 1
            return w + Work(dirty_marks=n_marks)
        lo = i1 >> 3
        view = leaf[lo : lo + len(bits)]
        self.dirty_count += popcount_bytes(bits & ~view)
        view |= bits
        return w + _MARK_WORK * n_marks

    def mark_range(self, start: int, end: int) -> Work:
        """Mark every pfn of ``[start, end)`` in ascending order (bulk ``paging_mark_dirty``)."""
        total = ZERO
        p = start
        while p < end:
            leaf_end = min(end, ((p >> LEAF_SHIFT) + 1) << LEAF_SHIFT)
            a, b = p & (LEAF_BITS - 1), ((leaf_end - 1) & (LEAF_BITS - 1)) + 1
            i4, i3, i2, _ = split_pfn(p)
            leaf, w = self._leaf_for(i4, i3, i2)
            n = leaf_end - p
            if leaf is None:
                self.failed_allocs += n - 1
                total = total + w + Work(dirty_marks=n)
            else:
                before = _count_bits(leaf, a, b)
                _set_bits(leaf, a, b)
                self.dirty_count += n - before
                total = total + w + _MARK_WORK * n
            p = leaf_end
        return total

    # -- queries -------------------------------------------------------------------------------
    def leaf(self, i4: int, i3: int, i2: int) -> Leaf | None:
        if self.top is None:
            return None
        l3 = self.top.get(i4)
        l2 = None if l3 is None else l3.get(i3)
        return None if l2 is None else l2.get(i2)

    def is_dirty(self, pfn: int) -> bool:
        i4, i3, i2, i1 = split_pfn(pfn)
        leaf = self.leaf(i4, i3, i2)
        return leaf is not None and bool(leaf[i1 >> 3] & (1 << (i1 & 7)))

    def counts(self) -> TrieCounts:
        if self.top is None:
            return TrieCounts(0, 0, 0, 0)
        l3 = len(self.top)
        l2 = sum(len(n) for n in self.top.values())
        leaves = sum(len(m) for n in self.top.values() for m in n.values())
        return TrieCounts(1, l3, l2, leaves)

    def bitmap(self, npages: int) -> npt.NDArray[np.uint8]:
        """A dense copy of the first ``npages`` bits (tests and small guests only)."""
        out = np.zeros((npages + 7) >> 3, dtype=np.uint8)
        for (i4, i3, i2), leaf in self.leaves():
            slot = (i4 << (L3_SHIFT - LEAF_SHIFT)) | (i3 << (L2_SHIFT - LEAF_SHIFT)) | i2
            off = slot * PAGE_SIZE
            if off < len(out):
                n = min(PAGE_SIZE, len(out) - off)
                out[off : off + n] = leaf[:n]
        if npages & 7:
            out[-1] &= (1 << (npages & 7)) - 1
        return out

    def leaves(self) -> list[tuple[tuple[int, int, int], Leaf]]:
        if self.top is None:
            return []
        return [
            ((i4, i3, i2), leaf)
            for i4, l3 in sorted(self.top.items())
            for i3, l2 in sorted(l3.items())
            for i2, leaf in sorted(l2.items())
        ]

    def snapshot(self) -> tuple[object, ...]:
        """Structure, bits and counters, for equality tests."""
        nodes = (
            None
            if self.top is None
            else tuple(
                (i4, tuple((i3, tuple(sorted(l2))) for i3, l2 in sorted(l3.items())))
                for i4, l3 in sorted(self.top.items())
            )
        )
        bits = tuple((k, leaf.tobytes()) for k, leaf in self.leaves())
        return (nodes, bits, self.allocs, self.failed_allocs, self.fault_count, self.dirty_count)


def _count_bits(leaf: Leaf, a: int, b: int) -> int:
    """Set bits of ``leaf`` in bit range ``[a, b)``."""
    if a >= b:
        return 0
    ba, bb = a >> 3, (b - 1) >> 3
    if ba == bb:
        m = ((1 << (b - a)) - 1) << (a & 7)
        return int(leaf[ba] & m).bit_count()
    n = int(leaf[ba] & (0xFF << (a & 7)) & 0xFF).bit_count()
    n += int(leaf[bb] & ((1 << (((b - 1) & 7) + 1)) - 1)).bit_count()
    return n + popcount_bytes(leaf[ba + 1 : bb])


def _set_bits(leaf: Leaf, a: int, b: int) -> None:
    if a >= b:
        return
    ba, bb = a >> 3, (b - 1) >> 3
    if ba == bb:
        leaf[ba] |= np.uint8((((1 << (b - a)) - 1) << (a & 7)) & 0xFF)
        return
    leaf[ba] |= np.uint8((0xFF << (a & 7)) & 0xFF)
    leaf[bb] |= np.uint8((1 << (((b - 1) & 7) + 1)) - 1)
    leaf[ba + 1 : bb] = 0xFF
