"""The hypervisor's paging state and operations, without time.

State like Xen's (:mod:`domain`): the paging :mod:`pool`, the :mod:`p2m` (counts per table,
4K/2M/1G leaves, lazy-recalc markers), the log-dirty :mod:`trie` (numpy leaf bitmaps allocated on
demand), the :mod:`shadow` pool as counts. Operations are generators that yield the work they do
and the release's preemption checks (the protocol is in :mod:`work`):

* :func:`domctl.paging_domctl` - XEN_DOMCTL_shadow_op: log-dirty ENABLE / PEEK / CLEAN / OFF
  (:mod:`logdirty`, :mod:`hooks`), SET/GET_ALLOCATION (:mod:`allocation`);
* :func:`teardown.paging_teardown` / :func:`teardown.paging_final_teardown`;
* :func:`vram.track_dirty_vram`;
* guest-side events, plain functions returning :class:`~work.Work`: :mod:`guest`.

:func:`build.build_domain` puts a guest described by a :class:`~spec.DomainSpec` in a given
state cheaply; :mod:`runner` drives operations under a preemption :class:`~runner.Policy`;
:mod:`analytic` gives the same work in closed form. Per-release behaviour comes only from
:class:`xenvmmu.versions.PagingBehaviour` (``logdirty_preemptible``, ``hap_retype``,
``pool_teardown_preemptible``, ``p2m_free_preemptible``; a release's
:class:`~xenvmmu.versions.Profile` carries it as ``.paging``).

Importing this package imports none of its submodules: each name below is loaded from its
submodule on first access, so ``import xenvmmu.model.work`` (as the cost profile does) does
not bring in numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenvmmu._lazy import export_dir, load_export

if TYPE_CHECKING:
    from xenvmmu.model.build import BuildError, apply_dirty, build_domain
    from xenvmmu.model.constants import P2MType, ShadowOp
    from xenvmmu.model.domain import Domain, PreemptState, VramTracking
    from xenvmmu.model.domctl import paging_domctl
    from xenvmmu.model.logdirty import ShadowControl
    from xenvmmu.model.runner import (
        Always,
        AtIndices,
        Bernoulli,
        Completion,
        Never,
        OpRun,
        Policy,
        drive,
        run_to_completion,
    )
    from xenvmmu.model.sink import DenseBitmap, SparseBitmap
    from xenvmmu.model.spec import DomainSpec, default_pool_mb
    from xenvmmu.model.teardown import paging_final_teardown, paging_teardown
    from xenvmmu.model.vram import VramRequest, track_dirty_vram
    from xenvmmu.model.work import (
        FIELDS,
        PROXY_WEIGHTS,
        ZERO,
        Loop,
        Op,
        PreemptCheck,
        Step,
        Work,
        WorkStep,
    )

__all__ = [
    "FIELDS",
    "PROXY_WEIGHTS",
    "ZERO",
    "Always",
    "AtIndices",
    "Bernoulli",
    "BuildError",
    "Completion",
    "DenseBitmap",
    "Domain",
    "DomainSpec",
    "Loop",
    "Never",
    "Op",
    "OpRun",
    "P2MType",
    "Policy",
    "PreemptCheck",
    "PreemptState",
    "ShadowControl",
    "ShadowOp",
    "SparseBitmap",
    "Step",
    "VramRequest",
    "VramTracking",
    "Work",
    "WorkStep",
    "apply_dirty",
    "build_domain",
    "default_pool_mb",
    "drive",
    "paging_domctl",
    "paging_final_teardown",
    "paging_teardown",
    "run_to_completion",
    "track_dirty_vram",
]

_EXPORTS = {
    "build": ("BuildError", "apply_dirty", "build_domain"),
    "constants": ("P2MType", "ShadowOp"),
    "domain": ("Domain", "PreemptState", "VramTracking"),
    "domctl": ("paging_domctl",),
    "logdirty": ("ShadowControl",),
    "runner": (
        "Always", "AtIndices", "Bernoulli", "Completion", "Never", "OpRun", "Policy", "drive",
        "run_to_completion",
    ),
    "sink": ("DenseBitmap", "SparseBitmap"),
    "spec": ("DomainSpec", "default_pool_mb"),
    "teardown": ("paging_final_teardown", "paging_teardown"),
    "vram": ("VramRequest", "track_dirty_vram"),
    "work": (
        "FIELDS", "PROXY_WEIGHTS", "ZERO", "Loop", "Op", "PreemptCheck", "Step", "Work",
        "WorkStep",
    ),
}


def __getattr__(name: str) -> object:
    return load_export(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return export_dir(_EXPORTS, globals())
