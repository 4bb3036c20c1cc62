"""The paging-mode hooks log-dirty ENABLE / CLEAN / OFF run, as generators of work.

HAP (xen-project/xen xen/arch/x86/mm/hap/hap.c @ RELEASE-4.4.0):

* enable: set ``PG_log_dirty``; for global log-dirty retype every ``ram_rw`` entry to
  ``ram_logdirty`` (``p2m_change_entry_type_global``) and flush TLBs;
* clean: the same global retype plus a TLB flush - run after **every** CLEAN;
* disable: clear ``PG_log_dirty`` and retype ``ram_logdirty`` back to ``ram_rw``.

The global retype is a full sweep of all p2m tables up to 4.4.x (``Profile.hap_retype ==
"sweep"``, still non-preemptible in the XSA-97-fixed 4.4.2) and root marking from 4.5
(``"lazy"``), see :mod:`p2m_retype`.

Shadow (shadow/common.c @ RELEASE-4.4.0): enable and clean call ``shadow_blow_tables`` (clean
under the paging lock), disable just drops the mode bit. None of these has a preemption point in
any release: the advisory had no fix for shadow mode.
"""

from __future__ import annotations

from collections.abc import Generator

from xenvmmu.model.domain import Domain
from xenvmmu.model.p2m import LD, RW
from xenvmmu.model.p2m_retype import mark_root, sweep_chunk, sweep_root
from xenvmmu.model.work import Step, Work, WorkStep

Hook = Generator[Step, "bool | int | None", None]

_FLUSH = Work(tlb_flushes=1)


def npt_locks(d: Domain, w: Work) -> Work:
    """NPT writes each entry through ``hap_write_p2m_entry``: the paging lock and a CPU-mask
    test per entry written (xen/arch/x86/mm/p2m-pt.c @ RELEASE-4.4.4 l.600, 698;
    xen/arch/x86/mm/hap/hap.c @ RELEASE-4.4.4 l.682-709); EPT rewrites entries in place."""
    if d.flavour != "npt" or not w.entries_written:
        return w
    return w + Work(lock_round_trips=w.entries_written)


def global_retype(d: Domain, ot: int, nt: int) -> Hook:
    """``p2m_change_entry_type_global(d, ot, nt)`` under the p2m lock, no preemption check."""
    p2m = d.p2m
    if d.behaviour.hap_retype == "sweep":
        yield WorkStep(sweep_root(), "p2m.retype_global", "p2m")
        for r in sorted(p2m.chunks):
            w = npt_locks(d, sweep_chunk(p2m.chunks[r], ot, nt))
            yield WorkStep(w, "p2m.retype_global", "p2m")
        yield WorkStep(_FLUSH, "p2m.retype_global", "p2m")  # one ept_sync_domain at the end
        return
    w = npt_locks(d, mark_root(p2m))
    p2m.global_logdirty = nt == LD
    yield WorkStep(w + (_FLUSH if w.entries_written else Work()), "p2m.retype_global", "p2m")


def enable_log_dirty(d: Domain, log_global: bool = True) -> Hook:
    d.log_dirty = True
    if d.hap:
        if log_global:
            yield from global_retype(d, RW, LD)
            yield WorkStep(_FLUSH, "hap.enable_log_dirty", None)
        return
    assert d.shadow is not None
    yield WorkStep(d.shadow.blow_tables(), "shadow.enable_log_dirty", "paging")


def clean_dirty_bitmap(d: Domain) -> Hook:
    if d.hap:
        yield from global_retype(d, RW, LD)
        yield WorkStep(_FLUSH, "hap.clean_dirty_bitmap", None)
        return
    assert d.shadow is not None
    yield WorkStep(d.shadow.blow_tables(), "shadow.clean_dirty_bitmap", "paging")


def disable_log_dirty(d: Domain) -> Hook:
    d.log_dirty = False
    if d.hap:
        yield from global_retype(d, LD, RW)
        return
    # shadow_one_bit_disable: mode bit, then sh_update_paging_modes on each vCPU
    yield WorkStep(Work(entries_written=d.vcpus), "shadow.disable_log_dirty", "paging")
