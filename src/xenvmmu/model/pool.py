"""The paging pool: the pages a domain's paging code may use, as Xen counts them.

Counters follow ``struct paging_domain`` (4.4 kept them per mode in ``hap.*``/``shadow.*``):

* ``total_pages`` - pool pages *not* lent to the p2m: free ones plus those holding shadows or
  monitor tables;
* ``free_pages`` - on the free list;
* ``p2m_pages`` - lent through ``alloc_p2m_page``: p2m tables **and log-dirty trie nodes** (the
  trie allocates through ``d->arch.paging.alloc_page``, which is the mode's p2m allocator).

Rules (xen-project/xen xen/arch/x86/mm/hap/hap.c and shadow/common.c @ RELEASE-4.4.0):

* HAP ``hap_alloc_p2m_page``: take a free page (free-1, total-1, p2m+1); an empty free list fails,
  sets ``p2m_alloc_failed`` once and the p2m update returns -ENOMEM.
* shadow ``shadow_alloc_p2m_page``: refused while ``total < min_acceptable + 1``; otherwise
  ``shadow_prealloc`` may first evict shadows to free a page.
* freeing a p2m page: p2m-1, total+1, free+1 - unless the domain is dying under XSA-410, when
  ``hap_free``/``shadow_free`` hand the page straight back to the heap.
* ``get_allocation`` reports ``total + p2m`` rounded **up** to whole MiB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xenvmmu.model.constants import SHADOW_MIN_PAGES_PER_VCPU
from xenvmmu.model.work import ZERO, Work
from xenvmmu.versions import Paging


@dataclass(frozen=True)
class PoolState:
    """A comparable snapshot of the pool counters."""

    total_pages: int
    free_pages: int
    p2m_pages: int
    p2m_alloc_failed: bool
    heap_pages: int


class PagingPool:
    """Counters of one domain's paging pool (no page objects)."""

    def __init__(self, mode: Paging, vcpus: int, tot_pages: int) -> None:
        self.mode: Paging = mode
        self.vcpus = vcpus
        self.tot_pages = tot_pages  # the domain's RAM pages (d->tot_pages), for the shadow floor
        self.total_pages = 0
        self.free_pages = 0
        self.p2m_pages = 0
        self.p2m_alloc_failed = False
        self.heap_pages = 0  # pages currently held from Xen's heap (total + p2m when consistent)
        self.heap_limit: int | None = None  # pages the host heap can still give; None = plenty
        self.dying_to_heap = False  # XSA-410: frees go straight to the heap while dying
        #: shadow mode: evict shadows until ``n`` pages are free; returns the work it did.
        self.reclaim: Callable[[int], Work] | None = None
        self.side_work: Work = ZERO  # work done by reclaim on behalf of an allocation

    # -- floors -----------------------------------------------------------------------------
    def min_acceptable(self) -> int:
        """``shadow_min_acceptable_pages``: 128 pages per vCPU, counting from one (4.4)."""
        if self.mode == "hap":
            return 0
        return (self.vcpus + 1) * SHADOW_MIN_PAGES_PER_VCPU

    def target(self, pages: int) -> int:
        """What ``set_allocation(d, pages)`` aims ``total_pages`` at (p2m pages subtracted;
        shadow: never below the floor of 128/vCPU + 1 page per MiB, except for 0)."""
        pages = 0 if pages < self.p2m_pages else pages - self.p2m_pages
        if self.mode == "shadow" and pages > 0:
            pages = max(pages, self.min_acceptable() + self.tot_pages // 256)
        return pages

    def allocation_mb(self) -> int:
        """``{hap,shadow}_get_allocation``: total + p2m pages, rounded up to MiB."""
        pg = self.total_pages + self.p2m_pages
        return (pg >> 8) + (1 if pg & 0xFF else 0)

    # -- lending to the p2m and the log-dirty trie --------------------------------------------
    def alloc_p2m_page(self) -> bool:
        """Lend one page to the p2m or the trie; False (and ``p2m_alloc_failed``) if none."""
        if self.mode == "shadow":
            if self.total_pages < self.min_acceptable() + 1:
                self.p2m_alloc_failed = True
                return False
            if self.free_pages == 0 and not self._reclaim(1):
                self.p2m_alloc_failed = True
                return False
        elif self.free_pages == 0:
            self.p2m_alloc_failed = True
            return False
        self.free_pages -= 1
        self.total_pages -= 1
        self.p2m_pages += 1
        return True

    def free_p2m_page(self) -> bool:
        """Take back one lent page. Returns True if it went straight to the heap (XSA-410)."""
        self.p2m_pages -= 1
        if self.dying_to_heap:
            self.heap_pages -= 1
            return True
        self.total_pages += 1
        self.free_pages += 1
        return False

    def lend_p2m(self, n: int) -> None:
        """``n`` successful ``alloc_p2m_page`` calls at once (the caller checked can_lend)."""
        assert self.can_lend(n)
        self.free_pages -= n
        self.total_pages -= n
        self.p2m_pages += n

    def can_lend(self, n: int) -> bool:
        """Whether ``n`` p2m pages can be lent without evicting anything."""
        if self.mode == "shadow" and self.total_pages - n < self.min_acceptable():
            return False
        return self.free_pages >= n

    # -- pool-internal use (shadows, monitor tables) -----------------------------------------
    def alloc_page(self) -> bool:
        """``hap_alloc`` / ``shadow_alloc`` of one page for the pool's own use."""
        if self.free_pages == 0 and not self._reclaim(1):
            return False
        self.free_pages -= 1
        return True

    def free_page(self) -> bool:
        """Return a pool-internal page; True if it went straight to the heap (XSA-410)."""
        if self.dying_to_heap:
            self.total_pages -= 1
            self.heap_pages -= 1
            return True
        self.free_pages += 1
        return False

    # -- resizing against the heap -------------------------------------------------------------
    def grow_one(self) -> bool:
        """One iteration of set_allocation growing: a heap page onto the free list."""
        if self.heap_limit is not None:
            if self.heap_limit == 0:
                return False
            self.heap_limit -= 1
        self.free_pages += 1
        self.total_pages += 1
        self.heap_pages += 1
        return True

    def shrink_one(self) -> bool:
        """One iteration of set_allocation shrinking; False when no page can be freed (HAP:
        empty free list -> -ENOMEM; shadow: ``_shadow_prealloc`` first evicts shadows)."""
        if self.free_pages == 0 and (self.mode == "hap" or not self._reclaim(1)):
            return False
        self.free_pages -= 1
        self.total_pages -= 1
        self.heap_pages -= 1
        if self.heap_limit is not None:
            self.heap_limit += 1
        return True

    def _reclaim(self, n: int) -> bool:
        if self.reclaim is None:
            return False
        self.side_work = self.side_work + self.reclaim(n)
        return self.free_pages >= n

    def take_side_work(self) -> Work:
        """Work that reclaim did during the last allocations (and forget it)."""
        w, self.side_work = self.side_work, ZERO
        return w

    def state(self) -> PoolState:
        return PoolState(
            self.total_pages, self.free_pages, self.p2m_pages, self.p2m_alloc_failed,
            self.heap_pages,
        )
