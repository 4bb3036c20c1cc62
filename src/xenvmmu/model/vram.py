"""Dirty-VRAM tracking for the device model (HVMOP_track_dirty_vram), HAP and shadow.

Callable by the device model - a stub domain included - for up to 1 GiB of frames per call, and
non-preemptible in every release (xen-project/xen xen/arch/x86/mm/hap/hap.c and
shadow/common.c @ RELEASE-4.4.0):

* **HAP**: a new range switches log-dirty on (not globally) and retypes the range to
  ``ram_logdirty`` (4.4: gfn by gfn with order-0 updates; 4.5+: marks, recorded in
  ``logdirty_ranges``; the old range goes back to ``ram_rw``) and reports everything dirty. A
  repeated call pauses the domain and runs ``paging_log_dirty_range``: gfn by gfn, a ``ram_rw``
  entry (written since) is reported and set back to ``ram_logdirty``. O(nr) per call.
* **shadow**: a new range blows all shadows (-ENODATA: "could not track this time"). Later calls
  look at each frame: one mapping with a remembered shadow entry -> test and clear its D bit; one
  mapping not remembered -> ``sh_remove_all_mappings`` by brute force over every L1 shadow;
  several mappings -> dirty. Worst case O(nr x shadows). The frame states are in
  :class:`~xenvmmu.model.domain.VramTracking`; by default every frame is "one mapping, not
  remembered" (the worst case a guest can arrange).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from xenvmmu.model.constants import ENODATA, VRAM_MAX_FRAMES
from xenvmmu.model.domain import Domain, VramTracking
from xenvmmu.model.hooks import npt_locks
from xenvmmu.model.p2m import LD, RW
from xenvmmu.model.p2m_retype import (
    change_type_range_eager,
    change_type_range_lazy,
    log_dirty_range,
)
from xenvmmu.model.work import Op, Work, WorkStep


@dataclass
class VramRequest:
    """One call: IN begin/nr; OUT the dirty bitmap (one bit per frame). ``unknown`` (shadow):
    how many frames, when tracking starts, will have a single mapping the shadow code does
    not remember (``None``: all of them, the worst case of
    :class:`~xenvmmu.model.attack.AttackAssumptions`); the others are remembered."""

    begin: int
    nr: int
    unknown: int | None = None
    bitmap: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))


def track_dirty_vram(d: Domain, req: VramRequest) -> Op:
    if req.nr > VRAM_MAX_FRAMES:
        req.nr = VRAM_MAX_FRAMES  # the hypercall rejects more; keep the model total
    if d.hap:
        return _hap(d, req)
    return _shadow(d, req)


def _per_entry(d: Domain, w: Work) -> Work:
    """Per entry written: NPT's lock round trip; before 4.7, EPT's sync (an IPI round) for
    each changed present entry (xen/arch/x86/mm/p2m-ept.c @ RELEASE-4.4.0 l.351, 444;
    deferred by 09fc40ed30 from 4.7.0)."""
    w = npt_locks(d, w)
    if d.flavour == "ept" and not d.behaviour.ept_flush_deferred and w.entries_written:
        w = w + Work(tlb_flushes=w.entries_written)
    return w


def _range_change(d: Domain, s: int, e: int, ot: int, nt: int) -> Work:
    if d.behaviour.hap_retype == "sweep":
        return _per_entry(d, change_type_range_eager(d.p2m, s, e, ot, nt))
    return change_type_range_lazy(d.p2m, s, e, ot, nt)


def _hap(d: Domain, req: VramRequest) -> Op:
    nbytes = (req.nr + 7) >> 3
    old = d.vram
    if req.nr == 0:
        d.vram = None
        if old is not None and d.behaviour.hap_retype == "lazy":
            w = _range_change(d, old.begin, old.begin + old.nr, LD, RW)
            yield WorkStep(w, "hap.track_dirty_vram", "p2m")
        return 0
    w = Work()
    if not d.log_dirty:
        d.log_dirty = True  # paging_log_dirty_enable(d, 0): the mode bit, no global retype
    if old is None or (old.begin, old.nr) != (req.begin, req.nr):
        if old is not None and d.behaviour.hap_retype == "lazy":
            w = w + _range_change(d, old.begin, old.begin + old.nr, LD, RW)
        w = w + _range_change(d, req.begin, req.begin + req.nr, RW, LD)
        d.vram = VramTracking(req.begin, req.nr)
        req.bitmap = np.full(nbytes, 0xFF, np.uint8)
    else:
        d.pause()
        lw, req.bitmap = log_dirty_range(d.p2m, req.begin, req.nr)
        lw = _per_entry(d, lw)
        d.unpause()
        w = w + lw
    if d.vram is not None:
        d.vram.calls += 1
    yield WorkStep(w + Work(bytes_copied=nbytes), "hap.track_dirty_vram", "p2m")
    return 0


def _shadow(d: Domain, req: VramRequest) -> Op:
    assert d.shadow is not None
    nbytes = (req.nr + 7) >> 3
    old = d.vram
    if old is not None and (req.nr == 0 or (old.begin, old.nr) != (req.begin, req.nr)):
        d.vram = old = None
    if req.nr == 0:
        return 0
    if old is None:
        w = d.shadow.blow_tables() + Work(bytes_zeroed=8 * req.nr)  # sl1ma[] = INVALID
        unknown = req.nr if req.unknown is None else min(req.unknown, req.nr)
        d.vram = VramTracking(req.begin, req.nr, known_single=req.nr - unknown,
                              unknown_single=unknown)
        req.bitmap = np.zeros(nbytes, np.uint8)
        yield WorkStep(w, "shadow.track_dirty_vram", "paging")
        return -ENODATA
    old.calls += 1
    if old.clean_since:
        req.bitmap = np.zeros(nbytes, np.uint8)
        yield WorkStep(Work(bytes_copied=2 * nbytes), "shadow.track_dirty_vram", "paging")
        return 0
    w = Work(entries_read=req.nr)  # the p2m lookup of every frame
    w = w + Work(entries_read=old.known_single, entries_written=old.known_single)
    w = w + d.shadow.remove_all_mappings(old.unknown_single)
    req.bitmap = np.zeros(nbytes, np.uint8)
    dirty = old.unknown_single + old.multi
    req.bitmap[: dirty >> 3] = 0xFF
    if dirty & 7:
        req.bitmap[dirty >> 3] = (1 << (dirty & 7)) - 1
    yield WorkStep(w + Work(bytes_copied=2 * nbytes), "shadow.track_dirty_vram", "paging")
    return 0
