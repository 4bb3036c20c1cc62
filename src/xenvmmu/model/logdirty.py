"""``paging_log_dirty_op`` (PEEK/CLEAN) and the trie free, before and after XSA-97.

Pre-fix (xen-project/xen xen/arch/x86/mm/paging.c @ RELEASE-4.4.0): pause the domain, take the
paging lock, snapshot the counters (CLEAN zeroes them at once), then one uninterrupted i4/i3/i2
walk bounded by ``sc->pages``: each leaf slot copies ``min(4096, remaining/8)`` bytes to the
caller (``clear_guest`` for a missing leaf) and CLEAN zeroes the leaf. Unlock, run the mode's
clean hook, unpause. Freeing the trie is one uninterrupted walk too.

Fixed (C:070493dfd2, 4.5.0; backports 4.4.2, 4.3.4 - which return -EAGAIN where 4.5 returns
-ERESTART): the walk resumes from ``d->arch.paging.preempt`` (i4, i3, done); after each i3 step
it checks ``hypercall_preempt_check()`` if ``i3 < 511``, after each i4 step if ``i4 < 511`` -
even over empty regions, and even when ``sc->pages`` ended the walk early (the resumed call then
walks nothing). The domain stays paused across continuations; counters are zeroed and the clean
hook runs once, at completion. A fresh call while another domain's (or another sub-op's) walk is
pending gets -EBUSY. The free checks after each freed L2 node (with its leaves) and each freed L3
node, skipping missing slots without a check, and resets freed slots so nothing is freed twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenvmmu.model.constants import (
    EBUSY,
    EFAULT,
    EINVAL,
    ENOMEM,
    ENTRIES,
    ERESTART,
    LEAF_BITS,
    PAGE_SIZE,
    ShadowOp,
)
from xenvmmu.model.domain import Domain
from xenvmmu.model.hooks import clean_dirty_bitmap, disable_log_dirty, enable_log_dirty
from xenvmmu.model.sink import BitmapSink
from xenvmmu.model.trie import L2Node, LogDirtyTrie
from xenvmmu.model.work import ZERO, Op, PreemptCheck, Work, WorkStep, fired

LOCK = "paging"


@dataclass
class ShadowControl:
    """``struct xen_domctl_shadow_op``: IN op/mode/mb/dirty_bitmap/pages, OUT pages/mb/stats."""

    op: int
    pages: int = 0
    dirty_bitmap: BitmapSink | None = None
    mode: int = 0
    mb: int = 0
    fault_count: int = 0
    dirty_count: int = 0


def walk_slot(
    l2: L2Node | None, pages: int, limit: int, sink: BitmapSink | None, clean: bool, fixed: bool
) -> tuple[int, Work, bool]:
    """The i2 loop over one L2 node's 512 leaf slots; returns (pages, work, copy_ok)."""
    k = min(ENTRIES, -(-(limit - pages) // LEAF_BITS))
    if k <= 0:
        return pages, ZERO, True
    nbytes = [PAGE_SIZE] * k
    last = (limit - (pages + (k - 1) * LEAF_BITS) + 7) >> 3
    nbytes[-1] = min(PAGE_SIZE, last)
    total = sum(nbytes)
    copied = zeroed = mapped = 0
    off0 = pages >> 3
    ok = True
    present = [] if l2 is None else sorted(i for i in l2 if i < k)
    cursor = 0  # next slot whose bytes are not yet sent
    for i2 in [*present, k]:
        if sink is not None and cursor < i2:  # a gap of missing leaves: zeroes
            gap = sum(nbytes[cursor:i2])
            ok = sink.zero(off0 + cursor * PAGE_SIZE, gap)
            if fixed:
                copied += gap  # copy_to_guest from a static zero page
            else:
                zeroed += gap  # clear_guest_offset
            if not ok:
                break
        if i2 == k:
            break
        assert l2 is not None
        leaf = l2[i2]
        mapped += 1
        if sink is not None:
            ok = sink.write(off0 + i2 * PAGE_SIZE, leaf[: nbytes[i2]])
            if not ok:
                break
            copied += nbytes[i2]
        if clean:
            leaf.fill(0)
            zeroed += PAGE_SIZE
        cursor = i2 + 1
    work = Work(
        entries_read=k if l2 is not None else 0,
        bytes_copied=copied,
        bytes_zeroed=zeroed,
        pages_mapped=mapped + (1 if l2 is not None else 0),
    )
    return pages + 8 * total, work, ok


def log_dirty_op(d: Domain, sc: ShadowControl, caller: int = 0, resuming: bool = False) -> Op:
    """PEEK or CLEAN, as this domain's Xen release runs it."""
    if d.behaviour.logdirty_preemptible:
        return _op_fixed(d, sc, caller, resuming)
    return _op_prefix(d, sc)


def _stats(trie: LogDirtyTrie, sc: ShadowControl) -> None:
    sc.fault_count, sc.dirty_count = trie.fault_count, trie.dirty_count


def _op_prefix(d: Domain, sc: ShadowControl) -> Op:
    trie = d.trie
    clean = sc.op == ShadowOp.CLEAN
    d.pause()
    _stats(trie, sc)
    if clean:
        trie.fault_count = trie.dirty_count = 0
    if trie.failed_allocs:
        d.unpause()
        return -ENOMEM
    pages = 0
    top = trie.top
    yield WorkStep(Work(pages_mapped=1 if top is not None else 0), "log_dirty_op.enter", LOCK)
    for i4 in range(ENTRIES):
        if pages >= sc.pages:
            break
        l3 = None if top is None else top.get(i4)
        enter = Work(pages_mapped=1) if l3 is not None else ZERO
        for i3 in range(ENTRIES):
            if pages >= sc.pages:
                break
            l2 = None if l3 is None else l3.get(i3)
            pages, w, ok = walk_slot(l2, pages, sc.pages, sc.dirty_bitmap, clean, fixed=False)
            yield WorkStep(enter + w, "log_dirty_op.walk", LOCK)
            enter = ZERO
            if not ok:
                d.unpause()
                return -EFAULT
    if pages < sc.pages:
        sc.pages = pages
    if clean:
        yield from clean_dirty_bitmap(d)
    d.unpause()
    return 0


def _op_fixed(d: Domain, sc: ShadowControl, caller: int, resuming: bool) -> Op:
    trie, pre = d.trie, d.preempt
    if not resuming:
        d.pause()
    if pre.dom is None:
        pre.i4 = pre.i3 = pre.done = 0
    elif pre.dom != caller or pre.op != sc.op:
        d.unpause()
        return -EBUSY
    clean = sc.op == ShadowOp.CLEAN
    _stats(trie, sc)
    if trie.failed_allocs:
        pre.dom = None
        d.unpause()
        return -ENOMEM
    top = trie.top
    i4, i3, pages = pre.i4, pre.i3, pre.done
    rv = 0
    yield WorkStep(Work(pages_mapped=1 if top is not None else 0), "log_dirty_op.enter", LOCK)
    while pages < sc.pages and i4 < ENTRIES:
        l3 = None if top is None else top.get(i4)
        enter = Work(pages_mapped=1) if l3 is not None else ZERO
        while pages < sc.pages and i3 < ENTRIES:
            l2 = None if l3 is None else l3.get(i3)
            pages, w, ok = walk_slot(l2, pages, sc.pages, sc.dirty_bitmap, clean, fixed=True)
            yield WorkStep(enter + w, "log_dirty_op.walk", LOCK)
            enter = ZERO
            if not ok:
                pre.dom = None
                d.unpause()
                return -EFAULT
            if i3 < ENTRIES - 1 and fired((yield PreemptCheck("log_dirty_op.i3"))):
                pre.i4, pre.i3 = i4, i3 + 1
                rv = -ERESTART
                break
            i3 += 1
        if not rv and i4 < ENTRIES - 1 and fired((yield PreemptCheck("log_dirty_op.i4"))):
            pre.i4, pre.i3 = i4 + 1, 0
            rv = -ERESTART
        if rv:
            break
        i4, i3 = i4 + 1, 0
    if not rv:
        pre.dom = None
        if clean:
            trie.fault_count = trie.dirty_count = 0
    else:
        pre.dom, pre.op, pre.done = caller, sc.op, pages
        return rv  # the domain stays paused until the walk completes
    if pages < sc.pages:
        sc.pages = pages
    if clean:
        yield from clean_dirty_bitmap(d)
    d.unpause()
    return 0


# -- freeing the trie ---------------------------------------------------------------------------
def _free_node(trie: LogDirtyTrie, n: int) -> Work:
    heap = 0
    for _ in range(n):
        trie.allocs -= 1
        heap += trie.pool.free_p2m_page()
    return Work(pages_freed=n, heap_pages_freed=heap)


def free_log_dirty_bitmap(d: Domain, rc: int = 0, caller: int = 0) -> Op:
    """``paging_free_log_dirty_bitmap``: give every trie page back (OFF, teardown)."""
    trie, pre = d.trie, d.preempt
    top = trie.top
    if top is None:
        return 0
    preemptible = d.behaviour.logdirty_preemptible
    if preemptible:
        if pre.dom is None:
            pre.i4 = pre.i3 = 0
            pre.done = -rc
        elif pre.dom != caller or pre.op != ShadowOp.OFF:
            return -EBUSY
    start4, start3 = (pre.i4, pre.i3) if preemptible else (0, 0)
    rv = 0
    yield WorkStep(Work(pages_mapped=1, entries_read=ENTRIES - start4), "free_log_dirty.top", LOCK)
    for i4 in sorted(k for k in top if k >= start4):
        l3 = top[i4]
        first3 = start3 if i4 == start4 else 0
        scan = Work(pages_mapped=1, entries_read=ENTRIES - first3)
        for i3 in sorted(k for k in l3 if k >= first3):
            l2 = l3.pop(i3)
            w = scan + _free_node(trie, len(l2) + 1) + Work(
                pages_mapped=1, entries_read=ENTRIES, entries_written=1 if preemptible else 0
            )
            scan = ZERO
            yield WorkStep(w, "free_log_dirty.l2", LOCK)
            if preemptible and i3 < ENTRIES - 1 and fired(
                (yield PreemptCheck("free_log_dirty.i3"))
            ):
                pre.i4, pre.i3 = i4, i3 + 1
                rv = -ERESTART
                break
        if rv:
            break
        del top[i4]
        w = scan + _free_node(trie, 1) + Work(entries_written=1 if preemptible else 0)
        yield WorkStep(w, "free_log_dirty.l3", LOCK)
        if preemptible and i4 < ENTRIES - 1 and fired((yield PreemptCheck("free_log_dirty.i4"))):
            pre.i4, pre.i3 = i4 + 1, 0
            rv = -ERESTART
            break
    if rv:
        pre.dom, pre.op = caller, int(ShadowOp.OFF)
        return rv
    yield WorkStep(_free_node(trie, 1), "free_log_dirty.top", LOCK)
    trie.top = None
    assert trie.allocs == 0, "trie page accounting"
    trie.failed_allocs = 0
    if preemptible:
        rv = -pre.done
        pre.dom = None
    return rv


# -- enable / disable ---------------------------------------------------------------------------
def log_dirty_enable(d: Domain, log_global: bool = True) -> Op:
    """``paging_log_dirty_enable``: -EINVAL if already on; pause, run the mode hook, unpause."""
    if d.log_dirty:
        return -EINVAL
    d.pause()
    yield from enable_log_dirty(d, log_global)
    d.unpause()
    return 0


def log_dirty_disable(d: Domain, caller: int = 0, resuming: bool = False) -> Op:
    """``paging_log_dirty_disable``: the disable hook, then the trie free (resumable when fixed)."""
    if not d.behaviour.logdirty_preemptible:
        if not d.log_dirty:
            return 0
        d.pause()
        yield from disable_log_dirty(d)
        rc = yield from free_log_dirty_bitmap(d, 0, caller)
        d.unpause()
        return rc
    ret = 0
    if not resuming:
        d.pause()
        if d.log_dirty:
            yield from disable_log_dirty(d)
    ret = yield from free_log_dirty_bitmap(d, ret, caller)
    if ret == -ERESTART:
        return ret
    d.unpause()
    return ret
