"""Shadow paging's pool of shadow pages, as counts of work (no per-shadow objects).

What matters for XSA-97 (CVE-2014-5149) is how much whole-pool work the shadow code does without a
preemption point (xen-project/xen xen/arch/x86/mm/shadow/common.c @ RELEASE-4.4.0):

* ``shadow_blow_tables``: unpin every pinned shadow, unhook the top-level shadows the vCPUs
  still use, flush TLBs. Every shadow whose last reference goes is destroyed, which scans its
  512 entries to drop references. Run by **every** log-dirty CLEAN, by ENABLE and by VRAM
  tracking start.
* ``sh_remove_all_mappings`` brute force: ``hash_foreach`` over the 251 hash buckets, scanning
  every L1/FL1 shadow's 512 entries, once per frame.
* ``_shadow_prealloc``: when the pool has no free page, unpin (and so destroy) the oldest pinned
  top-level shadows until enough pages are free.

The guest is 64-bit (4-on-4 shadows, one page per shadow). A pinned top-level shadow is assumed
to own an equal, unshared share of the lower-level shadows (``share_pages``) - an approximation:
Xen shares lower-level shadows between address spaces that share guest page tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenvmmu.model.constants import ENTRIES, SHADOW_HASH_BUCKETS
from xenvmmu.model.pool import PagingPool
from xenvmmu.model.work import ZERO, Work

_DESTROY = Work(entries_read=ENTRIES, shadows_destroyed=1, pages_freed=1)


def hash_unlink_hops(before: int, after: int) -> int:
    """Hops along the 251-bucket hash chains to unlink shadows until ``before`` shadows become
    ``after`` (``shadow_hash_delete`` searches a destroyed shadow's chain for its predecessor,
    xen/arch/x86/mm/shadow/common.c @ RELEASE-4.4.0 l.1957ff). Deleting in an order unrelated
    to chain position, a chain of ``L`` costs ``(L - 1) / 2`` hops on average, so going from
    ``n`` shadows to none costs ``n (n - 1) / (4 * 251)`` (xen-fidelity-review.md 3.3)."""

    def total(n: int) -> int:
        return n * (n - 1) // (4 * SHADOW_HASH_BUCKETS)

    return total(before) - total(after)


def destroy_all_work(l1: int, total: int, survivors: int) -> Work:
    """What destroying every shadow but ``survivors`` of ``total`` costs beyond the per-shadow
    scan: a reference drop for each present entry of each destroyed L1 shadow (all 512
    present: ASSUMED worst case, guest page tables full of distinct frames;
    ``shadow_put_page_from_l1e``, xen/arch/x86/mm/shadow/multi.c @ RELEASE-4.4.0
    l.1989-2022) and the hash unlinks. Shadow teardown (tree evictions) counts neither: per
    tree the L1 share and the chain lengths differ, which the closed form does not follow."""
    return Work(refcount_drops=ENTRIES * l1, hash_hops=hash_unlink_hops(total, survivors))


@dataclass(frozen=True)
class ShadowCounts:
    l4: int
    l3: int
    l2: int
    l1: int
    fl1: int
    pinned: int

    @property
    def pages(self) -> int:
        return self.l4 + self.l3 + self.l2 + self.l1 + self.fl1


class ShadowPool:
    """Counts of the shadows living in a domain's paging pool."""

    def __init__(self, pool: PagingPool, vcpus: int) -> None:
        self.pool = pool
        self.vcpus = vcpus
        self.l4 = self.l3 = self.l2 = self.l1 = self.fl1 = 0
        self.pinned = 0  # pinned top-level (l4) shadows, including those in use
        self.in_use = 0  # top-level shadows loaded by a vCPU (<= vcpus)
        pool.reclaim = self.evict

    @property
    def pages(self) -> int:
        return self.l4 + self.l3 + self.l2 + self.l1 + self.fl1

    def counts(self) -> ShadowCounts:
        return ShadowCounts(self.l4, self.l3, self.l2, self.l1, self.fl1, self.pinned)

    # -- population (what running the guest would have built) ----------------------------------
    def populate(self, *, l4: int, l3: int, l2: int, l1: int, fl1: int = 0) -> Work:
        """Allocate shadows from the pool (all top-levels pinned, ``min(l4, vcpus)`` in use).
        Raises ValueError if the pool lacks free pages (shadows are never over-committed)."""
        n = l4 + l3 + l2 + l1 + fl1
        if n > self.pool.free_pages:
            raise ValueError(f"{n} shadows do not fit in {self.pool.free_pages} free pool pages")
        self.pool.free_pages -= n
        self.l4 += l4
        self.l3 += l3
        self.l2 += l2
        self.l1 += l1
        self.fl1 += fl1
        self.pinned += l4
        self.in_use = min(self.l4, self.vcpus)
        return Work(pages_allocated=n)

    def fill(self, pages: int, *, tops: int | None = None) -> Work:
        """Populate ``pages`` shadows shaped like a busy 64-bit guest: ``tops`` pinned l4s
        (default one per 256 pages, at least one per vCPU), two l3 and four l2 per top, the rest
        l1."""
        if tops is None:
            tops = max(self.vcpus, pages // 256)
        tops = min(tops, pages)
        l3 = min(2 * tops, pages - tops)
        l2 = min(4 * tops, pages - tops - l3)
        return self.populate(l4=tops, l3=l3, l2=l2, l1=pages - tops - l3 - l2)

    # -- whole-pool operations ----------------------------------------------------------------
    def blow_tables(self) -> Work:
        """``shadow_blow_tables``: everything but the in-use top-levels is destroyed."""
        if self.pages == 0:
            return Work(tlb_flushes=1)
        in_use = self.in_use
        unhook_writes = (self.l3 * in_use) // self.l4 if self.l4 else 0
        destroyed = self.pages - in_use
        w = Work(
            shadows_unpinned=self.pinned,
            entries_read=ENTRIES * in_use,  # unhooking scans the in-use tops
            entries_written=unhook_writes,
            tlb_flushes=1,
        ) + _DESTROY * destroyed + destroy_all_work(self.l1 + self.fl1, self.pages, in_use)
        self.release(destroyed)
        self.l4, self.l3, self.l2, self.l1, self.fl1 = in_use, 0, 0, 0, 0
        self.pinned = 0
        return w

    def evict(self, n: int) -> Work:
        """``_shadow_prealloc``: unpin the oldest pinned tops (destroying what they own) until
        ``n`` pool pages are free. A top still in use by a vCPU survives (it is unhooked). A dying
        domain's pages go to the heap (XSA-410): then one tree is evicted per page wanted."""
        w = ZERO
        want = n - self.pool.free_pages
        got = 0
        while got < want and self.pinned > 0:
            share = self.share_pages()
            in_use_top = self.pinned <= self.in_use
            lower = share - 1
            self._take_lower(lower)
            freed = lower
            if not in_use_top:
                self.l4 -= 1
                freed += 1
            self.pinned -= 1
            w = w + Work(shadows_unpinned=1) + _DESTROY * freed
            self.release(freed)
            got += freed
        return w

    def share_pages(self) -> int:
        """Pages a pinned top owns: itself plus an equal share of the lower levels."""
        if self.pinned == 0:
            return 0
        lower = self.pages - self.l4
        return 1 + -(-lower // self.pinned)

    def _take_lower(self, n: int) -> None:
        """Destroy ``n`` lower-level shadows, in proportion to the level counts."""
        lower = self.l3 + self.l2 + self.l1 + self.fl1
        n = min(n, lower)
        if n <= 0:
            return
        cut = {name: getattr(self, name) * n // lower for name in ("l3", "l2", "fl1")}
        for name, k in cut.items():
            setattr(self, name, getattr(self, name) - k)
        rest = n - sum(cut.values())
        for name in ("l1", "l2", "l3", "fl1"):
            k = min(rest, getattr(self, name))
            setattr(self, name, getattr(self, name) - k)
            rest -= k

    def release(self, n: int) -> None:
        """Destroyed shadows' pages go back to the free list (or, dying under XSA-410, to the
        heap)."""
        if self.pool.dying_to_heap:
            self.pool.total_pages -= n
            self.pool.heap_pages -= n
        else:
            self.pool.free_pages += n

    def remove_all_mappings(self, frames: int = 1) -> Work:
        """``sh_remove_all_mappings`` by brute force for ``frames`` frames: hash walk over every
        L1/FL1 shadow (the search stops early in Xen once the mapping count drops; the worst
        case - the one that matters - scans everything)."""
        per = Work(entries_read=SHADOW_HASH_BUCKETS + ENTRIES * (self.l1 + self.fl1),
                   entries_written=1)
        return per * frames + Work(tlb_flushes=1 if frames else 0)

    def snapshot(self) -> tuple[int, ...]:
        return (self.l4, self.l3, self.l2, self.l1, self.fl1, self.pinned, self.in_use)
