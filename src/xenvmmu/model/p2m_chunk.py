"""The storage of one p2m root slot, and the entry kinds and types every p2m module shares.

Below :mod:`~xenvmmu.model.p2m` (the table and its queries) and the modules that change it
(:mod:`~xenvmmu.model.p2m_populate`, :mod:`~xenvmmu.model.p2m_write`, ...), so that none of
them needs another to describe an entry. Layout of a :class:`Chunk` (one L3 table and
everything below it):

* L3 entries: ``kind``/``ptype``/``mark`` arrays of 512;
* entries of the L2 tables below: ``(512, 512)`` arrays, allocated with the first L2 table;
* each L1 table as counts: ``l1_ram`` (RAM entries, typed ram_rw or ram_logdirty), ``l1_fixed``
  (present non-RAM entries, e.g. mmio_direct), ``l1_ld`` (how many RAM entries are logdirty);
  which entries those are is implied when uniform (0 or all) and kept as a 512-bit mask in
  ``wp`` only for mixed tables; recalc markers of L1 entries likewise in ``l1mark``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from xenvmmu.model.constants import ENTRIES, P2MType

#: The p2m's table format: EPT (Intel HAP), NPT (AMD HAP) or the software p2m-pt (shadow).
Flavour = Literal["ept", "npt", "pt"]
#: What an entry holds: nothing, a leaf (a mapping), or the next table.
NONE, LEAF, TABLE = 0, 1, 2
RW, LD = int(P2MType.ram_rw), int(P2MType.ram_logdirty)
U8 = npt.NDArray[np.uint8]
I16 = npt.NDArray[np.int16]
B = npt.NDArray[np.bool_]


class P2MError(RuntimeError):
    """The pool could not supply the p2m tables a guest's layout needs (-ENOMEM at build)."""


@dataclass
class Chunk:
    """One L3 table (a root slot, 512 GiB of gfns) and everything below it."""

    kind: U8 = field(default_factory=lambda: np.zeros(ENTRIES, np.uint8))
    ptype: U8 = field(default_factory=lambda: np.zeros(ENTRIES, np.uint8))
    mark: B = field(default_factory=lambda: np.zeros(ENTRIES, np.bool_))
    l2_kind: U8 | None = None  # (512, 512): entries of the L2 table under each L3 slot
    l2_ptype: U8 | None = None
    l2_mark: B | None = None
    l1_ram: I16 | None = None  # (512, 512): per L1 table
    l1_fixed: I16 | None = None
    l1_ld: I16 | None = None
    wp: dict[int, int] = field(default_factory=dict)  # local L1 index -> logdirty mask (mixed)
    l1mark: dict[int, int] = field(default_factory=dict)  # local L1 index -> marker mask
    mixed: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(ENTRIES, np.int32))
    n_l2: int = 0
    n_l1: int = 0

    def ensure_l2(self) -> None:
        if self.l2_kind is None:
            self.l2_kind = np.zeros((ENTRIES, ENTRIES), np.uint8)
            self.l2_ptype = np.zeros((ENTRIES, ENTRIES), np.uint8)
            self.l2_mark = np.zeros((ENTRIES, ENTRIES), np.bool_)

    def ensure_l1(self) -> None:
        self.ensure_l2()
        if self.l1_ram is None:
            self.l1_ram = np.zeros((ENTRIES, ENTRIES), np.int16)
            self.l1_fixed = np.zeros((ENTRIES, ENTRIES), np.int16)
            self.l1_ld = np.zeros((ENTRIES, ENTRIES), np.int16)
