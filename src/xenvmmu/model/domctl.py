"""``paging_domctl``: the XEN_DOMCTL_shadow_op entry point, with XSA-97's busy/resume rules.

One call of :func:`paging_domctl` is one hypercall (or one continuation) reaching
``paging_domctl()`` (xen-project/xen xen/arch/x86/mm/paging.c @ RELEASE-4.5.0):

* a dying domain: the op is ignored and succeeds;
* fixed releases: a fresh call while ``preempt.dom`` is set gets -EBUSY unless it is
  GET_ALLOCATION; a resumed call must come from the same domain with the same sub-op;
* ENABLE(LOG_DIRTY)/ENABLE_LOGDIRTY, OFF, CLEAN, PEEK go to the log-dirty code, the
  allocation ops to the mode (``hap_domctl``/``shadow_domctl``).

Continuations: -ERESTART from CLEAN/PEEK/OFF means "call again with ``resuming=True``" (Xen:
hypercall ``__HYPERVISOR_arch_1``, which re-takes the domctl lock with trylock); -ERESTART from
SET_ALLOCATION means "re-issue the same domctl" (``resuming=False``; progress is in the pool).
The global domctl lock itself is the simulator's business.
"""

from __future__ import annotations

from xenvmmu.model.allocation import set_allocation
from xenvmmu.model.constants import EBUSY, EINVAL, ERESTART, SHADOW_ENABLE_LOG_DIRTY, ShadowOp
from xenvmmu.model.domain import Domain
from xenvmmu.model.logdirty import ShadowControl, log_dirty_disable, log_dirty_enable, log_dirty_op
from xenvmmu.model.work import Op

__all__ = ["ShadowControl", "paging_domctl"]


def paging_domctl(d: Domain, sc: ShadowControl, caller: int = 0, resuming: bool = False) -> Op:
    """Run one XEN_DOMCTL_shadow_op call for domain ``d`` issued by domain ``caller``."""
    if d.dying:
        return 0
    pre = d.preempt
    if d.behaviour.logdirty_preemptible:
        busy = (
            (pre.dom != caller or pre.op != sc.op)
            if resuming
            else (pre.dom is not None and sc.op != ShadowOp.GET_ALLOCATION)
        )
        if busy:
            return -EBUSY
    op = sc.op
    if op == ShadowOp.ENABLE and not sc.mode & SHADOW_ENABLE_LOG_DIRTY:
        return -EINVAL  # other ENABLE modes make no sense for a running HVM guest
    if op in (ShadowOp.ENABLE, ShadowOp.ENABLE_LOGDIRTY):
        return (yield from log_dirty_enable(d, True))
    if op == ShadowOp.OFF:
        return (yield from log_dirty_disable(d, caller, resuming))
    if op in (ShadowOp.CLEAN, ShadowOp.PEEK):
        return (yield from log_dirty_op(d, sc, caller, resuming))
    if op == ShadowOp.SET_ALLOCATION:
        if sc.mb == 0 and d.paging == "shadow":
            return -EINVAL  # "Can't set shadow allocation to zero" while shadows are in use
        rc = yield from set_allocation(d, sc.mb << 8, preemptible=True)
        if rc == -ERESTART:
            return rc
        sc.mb = d.pool.allocation_mb()
        return rc
    if op == ShadowOp.GET_ALLOCATION:
        sc.mb = d.pool.allocation_mb()
        return 0
    return -EINVAL
