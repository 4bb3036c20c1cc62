"""The guest-physical layout of an x86 HVM guest, and closed-form counts over it.

An HVM guest's RAM is not one range: libxc's HVM builder (``xc_hvm_build_x86.c`` @ RELEASE-4.4.0)
leaves the VGA hole (0xA0000-0xBFFFF) unpopulated and relocates the RAM that would overlap the
below-4G MMIO hole (default 256 MiB, ending at 4 GiB) to above 4 GiB. It populates with 1 GiB
pages where the range allows, then 2 MiB, then 4 KiB. Everything here is arithmetic on a handful
of ranges; nothing loops over pages.

Not modelled: the handful of "special pages" (ioreq, xenstore, console) libxc puts in the hole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from xenvmmu.model.constants import ENTRIES, FULL_MASK, ORDER_1G, ORDER_2M, ORDER_4K, PAGE_SHIFT

GiB: Final = 1 << 30
MiB: Final = 1 << 20
#: Below-4G MMIO hole libxc leaves by default (HVM_BELOW_4G_MMIO_LENGTH).
DEFAULT_MMIO_HOLE: Final = 256 * MiB
VGA_HOLE: Final = (0xA0, 0xC0)  # gfns not populated

Span: TypeAlias = tuple[int, int]  # [start, end) in gfns
Superpages: TypeAlias = Literal["1g", "2m", "4k"]


@dataclass(frozen=True)
class Run:
    """``[start, end)`` mapped with leaves of one order."""

    start: int
    end: int
    order: int

    @property
    def leaves(self) -> int:
        return (self.end - self.start) >> self.order


@dataclass(frozen=True)
class Layout:
    """RAM and directly-mapped MMIO ranges of one guest, in gfns, sorted and disjoint."""

    ram: tuple[Span, ...]
    mmio_direct: tuple[Span, ...] = ()

    @property
    def ram_pages(self) -> int:
        return sum(e - s for s, e in self.ram)

    @property
    def p2m_size(self) -> int:
        """Highest mapped gfn + 1: what the toolstack passes as ``sc->pages``."""
        ends = [e for _, e in self.ram] + [e for _, e in self.mmio_direct]
        return max(ends, default=0)

    def runs(self, superpages: Superpages) -> list[tuple[Run, bool]]:
        """Leaf runs of the populated p2m: ``(run, is_ram)``; MMIO is always 4K (4.4)."""
        out: list[tuple[Run, bool]] = []
        for s, e in self.ram:
            out.extend((r, True) for r in decompose(s, e, superpages))
        out.extend((Run(s, e, ORDER_4K), False) for s, e in self.mmio_direct)
        return sorted(out, key=lambda x: x[0].start)

    def ram_mask(self, table: int) -> int:
        """Bitmask of RAM entries in the 4K table covering gfns ``table*512 ...``."""
        return _mask(self.ram, table)

    def fixed_mask(self, table: int) -> int:
        """Bitmask of present non-RAM (mmio_direct) entries in that table."""
        return _mask(self.mmio_direct, table)


def _mask(spans: Sequence[Span], table: int) -> int:
    lo, hi = table * ENTRIES, (table + 1) * ENTRIES
    m = 0
    for s, e in spans:
        if e <= lo or s >= hi:
            continue
        a, b = max(s, lo) - lo, min(e, hi) - lo
        if a == 0 and b == ENTRIES:
            return FULL_MASK
        m |= ((1 << (b - a)) - 1) << a
    return m


def hvm_layout(
    ram_bytes: int,
    *,
    mmio_hole_bytes: int = DEFAULT_MMIO_HOLE,
    vga_hole: bool = True,
    mmio_direct: Sequence[Span] = (),
) -> Layout:
    """The RAM ranges libxc's HVM builder populates for ``ram_bytes`` of guest memory."""
    pages = ram_bytes >> PAGE_SHIFT
    if pages <= 0:
        raise ValueError("guest RAM must be at least one page")
    hole_start = ((1 << 32) - mmio_hole_bytes) >> PAGE_SHIFT
    four_g = (1 << 32) >> PAGE_SHIFT
    low = min(pages, hole_start)
    ram: list[Span] = []
    if vga_hole and low > VGA_HOLE[0]:
        ram.append((0, VGA_HOLE[0]))
        if low > VGA_HOLE[1]:
            ram.append((VGA_HOLE[1], low))
        # The builder skips the hole, it does not relocate it: RAM shrinks by 32 pages.
    else:
        ram.append((0, low))
    if pages > low:
        ram.append((four_g, four_g + pages - low))
    direct = tuple(sorted(mmio_direct))
    for s, e in direct:
        if any(s < re and rs < e for rs, re in ram):
            raise ValueError(f"mmio_direct range {s:#x}-{e:#x} overlaps RAM")
    return Layout(tuple(ram), direct)


def decompose(start: int, end: int, superpages: Superpages) -> list[Run]:
    """Greedy largest-aligned-leaf decomposition of ``[start, end)`` (at most 5 runs)."""
    orders = {"1g": (ORDER_1G, ORDER_2M), "2m": (ORDER_2M,), "4k": ()}[superpages]
    runs: list[Run] = []

    def go(s: int, e: int, allowed: tuple[int, ...]) -> None:
        if s >= e:
            return
        if not allowed:
            runs.append(Run(s, e, ORDER_4K))
            return
        o = allowed[0]
        size = 1 << o
        a = -(-s // size) * size  # first aligned
        b = (e // size) * size  # last aligned end
        if a >= b:
            go(s, e, allowed[1:])
            return
        go(s, a, allowed[1:])
        runs.append(Run(a, b, o))
        go(b, e, allowed[1:])

    go(start, end, orders)
    return runs


def count_blocks(spans: Iterable[Span], shift: int) -> int:
    """Number of distinct aligned ``2**shift``-page blocks touching any of ``spans`` (sorted)."""
    n = 0
    last = -1
    for s, e in spans:
        if e <= s:
            continue
        first, final = s >> shift, (e - 1) >> shift
        if first <= last:
            first = last + 1
        if final >= first:
            n += final - first + 1
        last = max(last, final)
    return n


def block_starts(spans: Iterable[Span], shift: int) -> list[tuple[int, int]]:
    """Distinct blocks touching ``spans`` as merged ``[first, last]`` block-index intervals."""
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if e <= s:
            continue
        first, final = s >> shift, (e - 1) >> shift
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], final))
        else:
            out.append((first, final))
    return out


def first_page_per_block(spans: Iterable[Span], shift: int) -> list[int]:
    """The lowest gfn of ``spans`` in each ``2**shift`` block ("one page per region")."""
    out: list[int] = []
    last_block = -1
    for s, e in spans:
        b = s >> shift
        p = s
        while p < e:
            b = p >> shift
            if b != last_block:
                out.append(p)
                last_block = b
            p = (b + 1) << shift
    return out
