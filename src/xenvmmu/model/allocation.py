"""``{hap,sh}_set_allocation``: resize the paging pool one page per iteration.

Every release checks for preemption after **every** page (``hypercall_preempt_check``, since
2016 ``general_preempt_check``) - including after the last one, when the continuation finds
nothing left to do - when the caller allows it (the SET_ALLOCATION domctl always does; teardown
only since the 2015 change, ``Profile.pool_teardown_preemptible``). A shrinking shadow pool first
runs ``_shadow_prealloc``, which may destroy a whole pinned shadow tree to free one page.
(xen-project/xen xen/arch/x86/mm/hap/hap.c, shadow/common.c @ RELEASE-4.4.0.)

The result is ``0``, ``-ENOMEM`` (heap empty when growing; HAP: free list empty when shrinking)
or ``-ERESTART`` (preempted: Xen's ``*preempted = 1``; call again to continue).
"""

from __future__ import annotations

from xenvmmu.model.constants import ENOMEM, ERESTART
from xenvmmu.model.domain import Domain
from xenvmmu.model.work import Loop, Op, PreemptCheck, Work, WorkStep, fired

_GROW = Work(heap_pages_allocated=1)
_SHRINK = Work(heap_pages_freed=1)
CHECK = PreemptCheck("set_allocation", general=True)


def set_allocation(d: Domain, pages: int, preemptible: bool, what: str = "set_allocation") -> Op:
    """Move ``total_pages`` to the target for ``pages`` (p2m pages and floors applied)."""
    pool = d.pool
    target = pool.target(pages)
    while pool.total_pages != target:
        grow = pool.total_pages < target
        if grow:
            n = target - pool.total_pages
            if pool.heap_limit is not None:
                n = min(n, pool.heap_limit)
            work = _GROW
        else:
            n = min(pool.total_pages - target, pool.free_pages)
            work = _SHRINK
        if n == 0:
            if grow or d.paging == "hap":
                return -ENOMEM
            # shadow: _shadow_prealloc evicts a pinned tree to free one page, then frees it (a
            # dying domain's evicted pages already went to the heap, XSA-410)
            if pool.reclaim is None:
                return -ENOMEM
            evicted = pool.reclaim(1)
            if not evicted:
                return -ENOMEM
            if pool.free_pages:
                pool.shrink_one()
                evicted = evicted + _SHRINK
            yield WorkStep(evicted, what, "paging")
            if preemptible and fired((yield CHECK)):
                return -ERESTART
            continue
        fired_at = 0
        if preemptible:
            reply = yield Loop(work, n, CHECK, what, "paging")
            fired_at = int(reply or 0)
        else:
            yield WorkStep(work * n, what, "paging")
        done = fired_at or n
        sign = 1 if grow else -1
        pool.total_pages += sign * done
        pool.free_pages += sign * done
        pool.heap_pages += sign * done
        if pool.heap_limit is not None:
            pool.heap_limit -= sign * done
        if fired_at:
            return -ERESTART
    return 0
