"""Grant maptrack loops (XSA-380): the release of a dying domain's grant mappings and
``mapkind()``'s search.

A domain's maptrack table records every grant it has mapped, one entry per mapping handle
(``struct grant_mapping``: 8 bytes, 512 a page, before 4.6; 16 bytes, 256 a page, from 4.6 -
xen-project/xen xen/common/grant_table.c @ RELEASE-4.5.0 / RELEASE-4.6.0). It grows a page at
a time up to the domain's limit (``max_maptrack_frames``), and a guest fills it by mapping
grants - its own suffice (CVE-2021-28698).

* ``gnttab_release_mappings()`` runs when the domain is destroyed (``domain_kill``, the
  toolstack's destroy): before the fix one loop over every handle, releasing each mapping in
  use (xen/common/grant_table.c @ RELEASE-4.15.0 l.3695-3790). With the fix (b1ee10be56, first
  in 4.16.0; 9d954c8c1a 4.13.4, 29aeeda345 4.14.3, 9bfbde40bc 4.15.1; the stable-4.11/4.12
  commits reached no release) it walks down from the top handle and, at each page boundary
  below it, frees the page and checks for preemption, resuming from the shrunk limit.
* ``mapkind()`` (map and unmap of a grant by a domain whose IOMMU mappings Xen keeps: a PV
  domain with passthrough) searched every handle for mappings of the same frame; the fix
  (9781b51efd, the same releases) replaced it with a radix-tree lookup.
"""

from __future__ import annotations

from xenvmmu.model.constants import ERESTART
from xenvmmu.model.work import Op, PreemptCheck, Work, WorkStep
from xenvmmu.versions import PagingBehaviour

_CHECK = PreemptCheck("maptrack_release")


class MaptrackRelease:
    """``gnttab_release_mappings`` of a domain with ``entries`` maptrack handles, every one
    a mapping in use (the guest's worst case), ``per_page`` to a page; resumable."""

    def __init__(self, entries: int, per_page: int, behaviour: PagingBehaviour) -> None:
        if entries < 0 or per_page < 1 or entries % per_page:
            raise ValueError("the maptrack table is whole pages")
        self.limit = entries  # gt->maptrack_limit (shrinks as pages are freed)
        self.per_page = per_page
        self.behaviour = behaviour

    def op(self, resuming: bool) -> Op:
        """One call (``domain_kill`` re-enters it from the saved limit after -ERESTART)."""
        if not self.behaviour.maptrack_bounded:
            yield WorkStep(Work(entries_read=self.limit, grant_releases=self.limit),
                           "maptrack_release")
            return 0
        handle = self.limit
        while handle:
            if handle < self.limit and handle % self.per_page == 0:
                self.limit = handle  # the page above is free now
                yield WorkStep(Work(heap_pages_freed=1), "maptrack_release")
                if (yield _CHECK):
                    return -ERESTART
            handle -= 1
            yield WorkStep(Work(entries_read=1, grant_releases=1), "maptrack_release")
        if self.limit:
            self.limit = 0
            yield WorkStep(Work(heap_pages_freed=1), "maptrack_release")
        return 0


def mapkind_work(entries: int, behaviour: PagingBehaviour) -> Work:
    """One ``mapkind()`` of a domain with ``entries`` handles, all mappings of the granting
    domain read-only (so the search never stops early): each handle read and, for each, the
    granting domain's active entry read. With the fix: one radix-tree lookup."""
    if behaviour.maptrack_bounded:
        return Work(entries_read=4)
    return Work(entries_read=2 * entries)
