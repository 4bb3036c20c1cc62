"""Build a guest in a given paging state without touching every page.

:func:`build_domain` does what the toolstack and the guest would have done, in order, through
the model's own operations (so the state is exactly what they produce):

1. size the paging pool (``SET_ALLOCATION``; default: xl's ``1 MiB per vCPU + 8 KiB per MiB``),
   give each vCPU a monitor table, map the layout with the largest leaves allowed;
2. optionally switch log-dirty on (``ENABLE_LOGDIRTY``, which runs the mode hook);
3. let the guest write the pages of a dirty pattern once each, in ascending order:
   ``"none"``, ``"all"`` (every RAM page), ``"per_region"`` (the first RAM page of each 128 MiB
   region - the same trie as "all" with one bit per leaf), or ``("random", fraction, seed)``;
   bulk writes go table by table (see :mod:`guest`);
4. shadow mode: fill the pool's free pages with shadows (a busy guest's steady state), or
   ``shadow_pages`` of them.

Memory and time grow with the pages the pattern touches (per table), not with the RAM size.
"""

from __future__ import annotations

import numpy as np

from xenvmmu.model.allocation import set_allocation
from xenvmmu.model.constants import LEAF_SHIFT
from xenvmmu.model.domain import Domain
from xenvmmu.model.guest import write_pages, write_range
from xenvmmu.model.layout import first_page_per_block, hvm_layout
from xenvmmu.model.logdirty import log_dirty_enable
from xenvmmu.model.runner import drive
from xenvmmu.model.spec import DirtyPattern, DomainSpec, default_pool_mb
from xenvmmu.model.work import ZERO, Work
from xenvmmu.versions import PagingBehaviour

__all__ = ["BuildError", "DomainSpec", "apply_dirty", "build_domain", "default_pool_mb"]

_RANDOM_BATCH = 1 << 20  # pages drawn per batch for the random pattern


class BuildError(RuntimeError):
    """The requested state cannot exist (pool too small for the p2m, ...)."""


def build_domain(spec: DomainSpec, behaviour: PagingBehaviour) -> Domain:
    """A domain in the state ``spec`` describes, with one release's paging ``behaviour``."""
    layout = hvm_layout(
        spec.ram_bytes, mmio_hole_bytes=spec.mmio_hole_bytes, mmio_direct=spec.mmio_direct
    )
    d = Domain(behaviour, layout, spec.paging, spec.vendor, spec.vcpus, spec.domid)
    if drive(set_allocation(d, spec.pool_pages, preemptible=False)).rc:
        raise BuildError("could not size the paging pool")
    for _ in range(spec.vcpus):
        if not d.pool.alloc_page():
            raise BuildError("paging pool too small for the monitor tables")
        d.monitor_pages += 1
    try:
        d.p2m.init_root()
        d.p2m.populate(spec.superpages)
    except RuntimeError as e:
        raise BuildError(str(e)) from e
    if spec.log_dirty:
        drive(log_dirty_enable(d))
    apply_dirty(d, spec.dirty)
    if d.shadow is not None:
        n = d.pool.free_pages if spec.shadow_pages is None else spec.shadow_pages
        d.shadow.fill(n)
    return d


def apply_dirty(d: Domain, pattern: DirtyPattern) -> Work:
    """The guest writes the pattern's pages once each, in ascending order."""
    if pattern == "none":
        return ZERO
    if pattern == "all":
        w = ZERO
        for s, e in d.layout.ram:
            w = w + write_range(d, s, e)
        return w
    if pattern == "per_region":
        firsts = np.array(first_page_per_block(d.layout.ram, LEAF_SHIFT), np.int64)
        return write_pages(d, firsts)
    if isinstance(pattern, tuple) and pattern[0] == "random":
        _, fraction, seed = pattern
        rng = np.random.default_rng(int(seed))
        w = ZERO
        for s, e in d.layout.ram:
            for lo in range(s, e, _RANDOM_BATCH):
                hi = min(e, lo + _RANDOM_BATCH)
                pick = np.flatnonzero(rng.random(hi - lo) < float(fraction)).astype(np.int64)
                w = w + write_pages(d, pick + lo)
        return w
    raise ValueError(f"unknown dirty pattern {pattern!r}")
