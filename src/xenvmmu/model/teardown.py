"""Domain destruction: giving the paging pool, the p2m and the trie back, per release.

Two stages (xen-project/xen xen/arch/x86/domain.c ``domain_relinquish_resources`` and
mm/paging.c ``paging_teardown`` / ``paging_final_teardown``):

1. **relinquish** (:func:`paging_teardown`, from ``domain_kill``; -ERESTART becomes -EAGAIN and
   the toolstack re-issues the destroy domctl): ``hap_teardown``/``shadow_teardown`` free the
   monitor tables (shadow: detach the vCPUs' shadows) and set the pool to 0 pages - one
   uninterrupted loop before the 2015 change (C:0174da5b79, ``pool_teardown_preemptible``),
   checked every page after it; from XSA-410 (``p2m_free_preemptible``) the p2m pages are freed
   here first, checking ``general_preempt_check()`` every 1024 pages, and a dying domain's freed
   pool pages go straight to the heap. Then the log-dirty trie is freed (preemptible with the
   XSA-97 fix).
2. **final** (:func:`paging_final_teardown`, an RCU callback - never preemptible): before
   XSA-410 every p2m page goes back to the pool and the pool is emptied once more; after it only
   the p2m root is left.
"""

from __future__ import annotations

from xenvmmu.model.allocation import set_allocation
from xenvmmu.model.constants import ENTRIES, ERESTART, P2M_TEARDOWN_BATCH, PAGE_SIZE
from xenvmmu.model.domain import Domain
from xenvmmu.model.logdirty import free_log_dirty_bitmap
from xenvmmu.model.work import Loop, Op, PreemptCheck, Work, WorkStep

_P2M_CHECK = PreemptCheck("p2m_teardown", general=True)


def _free_p2m_pages(d: Domain, n: int) -> Work:
    """``n`` pages of the p2m's page list back to the pool (to the heap if dying, XSA-410)."""
    pool = d.pool
    pool.p2m_pages -= n
    d.p2m.pages -= n
    if pool.dying_to_heap:
        pool.heap_pages -= n
        return Work(pages_freed=n, heap_pages_freed=n)
    pool.total_pages += n
    pool.free_pages += n
    return Work(pages_freed=n)


def p2m_teardown(d: Domain, remove_root: bool, preemptible: bool) -> Op:
    """``p2m_teardown``: free the p2m's pages (all, or all but the root, which is cleared)."""
    p2m = d.p2m
    p2m.chunks.clear()  # the mapping structure is gone once the root is cleared
    p2m.root_mark[:] = False
    if not remove_root and p2m.root_allocated:
        yield WorkStep(Work(bytes_zeroed=PAGE_SIZE), "p2m_teardown", "p2m")
    keep = 0 if remove_root else int(p2m.root_allocated)
    n = p2m.pages - keep
    if remove_root:
        p2m.root_allocated = False
    if n <= 0:
        return 0
    if not preemptible:
        yield WorkStep(_free_p2m_pages(d, n), "p2m_teardown", "p2m")
        return 0
    batches, tail = divmod(n, P2M_TEARDOWN_BATCH)
    if batches:
        per = _free_work(d, P2M_TEARDOWN_BATCH)
        reply = yield Loop(per, batches, _P2M_CHECK, "p2m_teardown", "p2m")
        done = int(reply or 0) or batches
        _free_p2m_pages(d, done * P2M_TEARDOWN_BATCH)
        if reply:
            return -ERESTART
    if tail:
        yield WorkStep(_free_p2m_pages(d, tail), "p2m_teardown", "p2m")
    return 0


def _free_work(d: Domain, n: int) -> Work:
    return Work(pages_freed=n, heap_pages_freed=n if d.pool.dying_to_heap else 0)


def _mode_teardown(d: Domain, preemptible: bool) -> Op:
    """``hap_teardown`` / ``shadow_teardown`` (the set-allocation-to-0 part)."""
    if d.shadow is not None and d.shadow.in_use:
        # sh_detach_old_tables on each vCPU: a top-level shadow that is no longer pinned (after
        # a blow) loses its last reference and is destroyed; pinned ones wait for the pool loop.
        sh = d.shadow
        orphans = max(0, sh.l4 - sh.pinned)
        sh.in_use = 0
        sh.l4 -= orphans
        sh.release(orphans)
        yield WorkStep(
            Work(entries_written=d.vcpus, shadows_destroyed=orphans, pages_freed=orphans,
                 entries_read=orphans * ENTRIES),
            "shadow_teardown.detach", "paging",
        )
    if d.monitor_pages:
        n, d.monitor_pages = d.monitor_pages, 0
        heap = sum(d.pool.free_page() for _ in range(n))
        yield WorkStep(Work(pages_freed=n, heap_pages_freed=heap), "teardown.monitor", "paging")
    if d.pool.total_pages:
        return (yield from set_allocation(d, 0, preemptible, "teardown.set_allocation"))
    return 0


def paging_teardown(d: Domain, caller: int = 0) -> Op:
    """Relinquish-time paging teardown; re-run it after -ERESTART until it returns 0."""
    prof = d.behaviour
    d.dying = True
    if prof.p2m_free_preemptible:
        d.pool.dying_to_heap = True
        rc = yield from p2m_teardown(d, remove_root=False, preemptible=True)
        if rc:
            return rc
    rc = yield from _mode_teardown(d, prof.pool_teardown_preemptible)
    if rc:
        return rc
    return (yield from free_log_dirty_bitmap(d, 0, caller))


def paging_final_teardown(d: Domain) -> Op:
    """RCU-time teardown: whatever is left, without any preemption check."""
    d.dying = True
    if d.pool.total_pages:
        rc = yield from _mode_teardown(d, False)
        if rc:
            return rc
    yield from p2m_teardown(d, remove_root=True, preemptible=False)
    if d.pool.total_pages:
        rc = yield from set_allocation(d, 0, False, "final_teardown.set_allocation")
        if rc:
            return rc
    d.teardown_done = True
    return 0
