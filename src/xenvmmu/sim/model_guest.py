"""The scenarios' guest on the real model (``xenvmmu.model``).

:class:`ModelGuest` builds a :class:`xenvmmu.model.domain.Domain` in the attacker's (or a
migrating guest's) state with :func:`xenvmmu.model.build.build_domain` and hands the
simulator the model's own operations:

==================  =====================================================================
``log_dirty``       ``paging_domctl(CLEAN|PEEK)``: the walk, XSA-97 cursor, clean hook
``enable``/``off``  ``paging_domctl(ENABLE_LOGDIRTY|OFF)``: mode hooks, resumable trie free
``track_vram``      ``track_dirty_vram``: HAP range retype / ``log_dirty_range``; shadow
                    blow + brute-force ``sh_remove_all_mappings``
``relinquish``      ``paging_teardown`` (-ERESTART -> the toolstack re-issues the destroy)
``final_teardown``  ``paging_final_teardown`` (run by the simulator from an RCU callback)
==================  =====================================================================

Between two operations the scenario calls :meth:`guest_runs`: the guest writes pages (the
model's ``write_range``), so the next CLEAN finds real dirty bits and, before Xen 4.5, rewrites
real ``ram_rw`` entries; a shadow guest rebuilds its shadows. The guest's own work (its faults)
is on its own vCPUs, which are not simulated.

Building costs about 8 ms of CPU per GiB of a fully written guest (the model is per table, not
per page), which is why :func:`~xenvmmu.sim.scenarios.run_scenario` replays the closed forms
(:mod:`xenvmmu.sim.closed_form`) for the attacker's state above ``MODEL_AUTO_MAX_BYTES``; a
clean guest (migration, VRAM tracking) is cheap to build at any size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from xenvmmu.model.attack import VRAM_BEGIN_GFN
from xenvmmu.model.build import DomainSpec, apply_dirty, build_domain
from xenvmmu.model.constants import ShadowOp
from xenvmmu.model.domain import Domain
from xenvmmu.model.domctl import ShadowControl, paging_domctl
from xenvmmu.model.guest import write_range
from xenvmmu.model.shape import Shape
from xenvmmu.model.sink import BitmapSink, DenseBitmap
from xenvmmu.model.teardown import paging_final_teardown, paging_teardown
from xenvmmu.model.vram import VramRequest, track_dirty_vram
from xenvmmu.model.work import Op
from xenvmmu.sim.guest_ops import OpFactory
from xenvmmu.versions import PagingBehaviour

MODEL_AUTO_MAX_BYTES: Final = 256 << 30


class DiscardSink:
    """A caller buffer that accepts every copy and keeps nothing (the work is still counted:
    the model charges ``bytes_copied`` whenever a buffer is given)."""

    def write(self, offset: int, data: npt.NDArray[np.uint8]) -> bool:
        return True

    def zero(self, offset: int, nbytes: int) -> bool:
        return True


class ModelGuest:
    """One guest on the real model, with the operations the scenarios issue."""

    def __init__(self, behaviour: PagingBehaviour, spec: DomainSpec, *, caller: int = 0,
                 vram_unknown_fraction: float = 1.0) -> None:
        """Build ``spec`` (the attack: log-dirty on and every page written - p2m shattered
        to 4 KiB, every trie leaf present, shadow pool full; or a clean guest about to be
        migrated: log-dirty off, nothing written). ``caller`` is the issuing domain's id."""
        if spec.dirty == "all":
            # closed-form counts first: a pool that cannot hold the shattered p2m and the
            # trie raises ValueError here, instead of a page-by-page build that fails slowly
            Shape(spec)
        self.domain: Domain = build_domain(spec, behaviour)
        self.behaviour = behaviour
        self.caller = caller
        self.vram_unknown_fraction = vram_unknown_fraction
        self.sink: BitmapSink = DiscardSink()
        self._vram_frames = 0
        #: ``[start, end)`` gfn ranges written by :meth:`guest_runs` since the last
        #: :meth:`take_record`; ``None`` unless :meth:`record_pages` turned recording on.
        self.written: list[tuple[int, int]] | None = None

    # -- optional recording (tests) ----------------------------------------------------------
    def record_pages(self) -> None:
        """Record which pages the guest writes and keep the bitmap PEEK/CLEAN copy out
        (a dense ``p2m_size``-bit buffer instead of the discarding one). Off by default."""
        self.written = []
        self.sink = DenseBitmap(self.domain.layout.p2m_size)

    def take_record(self) -> tuple[list[tuple[int, int]], npt.NDArray[np.int64]]:
        """The ranges written and the gfns set in the caller's bitmap since the last call
        (both then reset). Needs :meth:`record_pages`."""
        if self.written is None or not isinstance(self.sink, DenseBitmap):
            raise RuntimeError("record_pages() was not called")
        written, self.written = self.written, []
        bits = np.unpackbits(self.sink.array, bitorder="little")
        self.sink.array[:] = 0
        return written, np.flatnonzero(bits).astype(np.int64)

    # -- the guest between operations --------------------------------------------------------
    def guest_runs(self, dirty_pages: int | None) -> None:
        """The guest writes ``dirty_pages`` pages of its working set (``None``: every page,
        the attacker re-dirtying), then (shadow) refills its shadow pool."""
        d = self.domain
        if dirty_pages is None:
            # Only the pre-4.5 sweep's work depends on what was written since the last CLEAN
            # (it rewrites the ram_rw entries); the walk copies and zeroes the same either way.
            if d.hap and self.behaviour.hap_retype == "sweep" and d.log_dirty:
                apply_dirty(d, "all")
        elif dirty_pages > 0:
            left = dirty_pages
            for s, e in d.layout.ram:
                n = min(left, e - s)
                write_range(d, s, s + n)
                if self.written is not None:
                    self.written.append((s, s + n))
                left -= n
                if left <= 0:
                    break
        if self._vram_frames and d.hap:
            write_range(d, VRAM_BEGIN_GFN, VRAM_BEGIN_GFN + self._vram_frames)
        if d.shadow is not None and d.pool.free_pages > 0 and not d.dying:
            d.shadow.fill(d.pool.free_pages)

    # -- operations --------------------------------------------------------------------------
    def _domctl(self, op: ShadowOp, pages: int = 0) -> OpFactory:
        d = self.domain

        def make(resuming: bool) -> Op:
            sc = ShadowControl(op=int(op), pages=pages,
                               dirty_bitmap=self.sink if pages else None)
            return paging_domctl(d, sc, self.caller, resuming)

        return make

    def log_dirty(self, sub_op: Literal["clean", "peek"]) -> OpFactory:
        op = ShadowOp.CLEAN if sub_op == "clean" else ShadowOp.PEEK
        return self._domctl(op, self.domain.layout.p2m_size)

    def enable(self) -> OpFactory:
        return self._domctl(ShadowOp.ENABLE_LOGDIRTY)

    def off(self) -> OpFactory:
        return self._domctl(ShadowOp.OFF)

    def track_vram(self, frames: int) -> OpFactory:
        self._vram_frames = frames
        d = self.domain
        unknown = round(frames * self.vram_unknown_fraction)
        return lambda _resuming: track_dirty_vram(d, VramRequest(VRAM_BEGIN_GFN, frames, unknown))

    def relinquish(self) -> OpFactory:
        d = self.domain
        return lambda _resuming: paging_teardown(d, self.caller)

    def final_teardown(self) -> Callable[[], Op]:
        d = self.domain
        return lambda: paging_final_teardown(d)
