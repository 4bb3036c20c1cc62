"""Populate-on-demand emergency sweep (XSA-150): ``p2m_pod_emergency_sweep()``.

An HVM guest started with ``memory < maxmem`` runs on populate-on-demand: its p2m covers
``maxmem`` but only ``memory`` worth of pages back it (the PoD cache). When the guest touches a
PoD entry and the cache is empty, Xen sweeps the p2m from the highest populated gfn
(``pod.max_guest``) down, looking for zeroed pages to reclaim, holding the p2m lock
(xen-project/xen xen/arch/x86/mm/p2m-pod.c @ RELEASE-4.6.0, ``p2m_pod_emergency_sweep``):

* every gfn: one p2m lookup (``get_entry``, a four-level walk);
* every 16 RAM gfns: ``p2m_pod_zero_check``: each page is mapped and its first 16 words read;
  a page whose first 16 words are zero is taken out of the p2m (``p2m_set_entry`` to PoD),
  read whole, and put back when a non-zero word turns up.

Before the fix the sweep stops early only once something was reclaimed, so a guest whose pages
all begin with 128 zero bytes and end with a non-zero word makes it read every page and write
every RAM entry twice, without a preemption point: "a linear memcmp() from 0 to max_gfn"
(101ce53266). The fix (101ce53266, first in 4.7.0; 3638ff0e71 4.4.4, 0b12f70dfc 4.5.2,
4a32fbd95a 4.6.1; the stable-4.3 commit 2d330c121e reached no release) reclaims eagerly on
every populate and lets the sweep stop after ``POD_SWEEP_LIMIT`` gfns when a preemption is
pending (``i < limit && (count > 0 || hypercall_preempt_check())``): the longest section is
then 1024 gfns. The guest starts the sweep (a fault on a PoD entry) and sizes it (``maxmem``,
``memory`` and its own memory contents).

Model: the sweep over ``gfns`` gfns of which ``ram`` are populated RAM, in the guest's worst
case. What a removal and a re-insertion cost follows the p2m's flavour: EPT syncs
for each present entry removed before 4.7 (``ept_flush_deferred``), once per sweep after; NPT
takes the paging lock per entry written (``hap_write_p2m_entry``) and flushes (counted once per
sweep: after the first flush the dirty mask has emptied, xen-fidelity-review.md 3.2).
Shadow-mode unshadowing of a removed entry is not counted (a lower bound for shadow guests).
"""

from __future__ import annotations

from xenvmmu.model.constants import PAGE_SIZE
from xenvmmu.model.work import ZERO, Op, PreemptCheck, Work, WorkStep
from xenvmmu.versions import PagingBehaviour, Vendor

#: The sweep may stop this many gfns below where it started (p2m-pod.c ``POD_SWEEP_LIMIT``).
POD_SWEEP_LIMIT = 1024
#: RAM gfns handed to the zero check at a time (``POD_SWEEP_STRIDE``).
POD_SWEEP_STRIDE = 16
#: Bytes the quick zero check reads first (16 words of 8 bytes).
QUICK_CHECK_BYTES = 16 * 8
#: Entries read by one p2m lookup (a four-level walk of a 4 KiB-mapped p2m).
LOOKUP_READS = 4
_CHECK = PreemptCheck("pod_sweep")


def lookup_work(gfns: int) -> Work:
    """The sweep's p2m lookups of ``gfns`` gfns."""
    return Work(entries_read=LOOKUP_READS * gfns)


def zero_check_work(pages: int, vendor: Vendor, beh: PagingBehaviour) -> Work:
    """``p2m_pod_zero_check`` of ``pages`` RAM pages with the guest's worst contents (first
    16 words zero, a non-zero word at the end): each page looked up again, mapped, read whole,
    removed from the p2m and put back."""
    npt = vendor == "amd"
    return Work(
        entries_read=LOOKUP_READS * pages,
        pages_mapped=pages,
        bytes_scanned=(QUICK_CHECK_BYTES + PAGE_SIZE) * pages,
        entries_written=2 * pages,
        lock_round_trips=2 * pages if npt else 0,
        tlb_flushes=pages if not npt and not beh.ept_flush_deferred else 0,
    )


def sweep_flush(vendor: Vendor, beh: PagingBehaviour, pages: int) -> Work:
    """The flush that ends a sweep which changed ``pages`` entries (EPT from 4.7: the one sync
    of the lock hold; NPT: the first flush; EPT before 4.7 synced per entry already)."""
    if pages == 0 or (vendor != "amd" and not beh.ept_flush_deferred):
        return ZERO
    return Work(tlb_flushes=1)


def sweep_limit(gfns: int) -> int:
    """The gfn below which the fixed sweep checks for preemption (``limit``)."""
    return gfns - POD_SWEEP_LIMIT if gfns > POD_SWEEP_LIMIT else 0


class PodSweep:
    """One emergency sweep from gfn ``gfns`` (``pod.max_guest``) down to 1, of which the top
    ``ram`` gfns are populated RAM, finding nothing to reclaim: the guest's worst case (it
    chooses which gfns it populates; RAM at the top makes the fixed sweep's first section, the
    one before any preemption check, all RAM)."""

    def __init__(self, gfns: int, ram: int, vendor: Vendor, behaviour: PagingBehaviour) -> None:
        if not 0 <= ram <= gfns:
            raise ValueError("RAM gfns must be between 0 and the gfns swept")
        self.gfns, self.ram, self.vendor, self.behaviour = gfns, ram, vendor, behaviour

    def op(self) -> Op:
        """The sweep gfn by gfn: a zero check when 16 RAM gfns are collected and at the end;
        with the fix, a preemption check after every gfn below the limit (the sweep stops at
        the first that fires)."""
        beh, vendor = self.behaviour, self.vendor
        limit = sweep_limit(self.gfns)
        batch = changed = 0
        for gfn in range(self.gfns, 0, -1):
            work = lookup_work(1)
            if gfn > self.gfns - self.ram:
                batch += 1
                if batch == POD_SWEEP_STRIDE:
                    work = work + zero_check_work(batch, vendor, beh)
                    changed, batch = changed + batch, 0
            yield WorkStep(work, "pod_sweep")
            if beh.pod_sweep_bounded and gfn < limit and (yield _CHECK):
                break
        end = (zero_check_work(batch, vendor, beh) if batch else ZERO) + sweep_flush(
            vendor, beh, changed + batch)
        if end:
            yield WorkStep(end, "pod_sweep")
        return 0
