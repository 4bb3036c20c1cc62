"""Helpers for the model tests: paging behaviours built directly (no dependency on the release
table), one per behaviour class of the releases."""

from __future__ import annotations

from xenvmmu.versions import PagingBehaviour

make_profile = PagingBehaviour


#: The releases the issue names, by behaviour (xen-paging.md §10).
R440 = make_profile(
    logdirty_preemptible=False, hap_retype="sweep", pool_teardown_preemptible=False,
    p2m_free_preemptible=False, ept_flush_deferred=False,
)
R442 = make_profile(
    logdirty_preemptible=True, hap_retype="sweep", pool_teardown_preemptible=False,
    p2m_free_preemptible=False, ept_flush_deferred=False,
)
R450 = make_profile(
    logdirty_preemptible=True, hap_retype="lazy", pool_teardown_preemptible=False,
    p2m_free_preemptible=False, ept_flush_deferred=False,
)
R460 = make_profile(pool_teardown_preemptible=True, p2m_free_preemptible=False,
                    ept_flush_deferred=False)
R417 = make_profile()  # XSA-410
RELEASES = {"4.4.0": R440, "4.4.2": R442, "4.5.0": R450, "4.6": R460, "xsa410": R417}


# -- small drivers ---------------------------------------------------------------------------
from collections import Counter  # noqa: E402

from xenvmmu.model.build import DomainSpec, build_domain  # noqa: E402
from xenvmmu.model.constants import ShadowOp  # noqa: E402
from xenvmmu.model.domain import Domain  # noqa: E402
from xenvmmu.model.domctl import ShadowControl, paging_domctl  # noqa: E402
from xenvmmu.model.runner import Completion, Policy, run_to_completion  # noqa: E402
from xenvmmu.model.sink import DenseBitmap  # noqa: E402
from xenvmmu.model.work import Work  # noqa: E402

GiB = 1 << 30
MiB = 1 << 20


def build(ram: int, profile: PagingBehaviour = R450, **kw: object) -> Domain:
    return build_domain(DomainSpec(ram_bytes=ram, **kw), profile)  # type: ignore[arg-type]


def shadow_op(
    d: Domain, op: ShadowOp = ShadowOp.CLEAN, policy: Policy | None = None, *,
    bitmap: bool = True, caller: int = 0,
) -> tuple[Completion, ShadowControl]:
    """Run one PEEK/CLEAN/OFF through all its continuations."""
    sink = DenseBitmap(d.layout.p2m_size) if bitmap else None
    sc = ShadowControl(int(op), pages=d.layout.p2m_size, dirty_bitmap=sink)
    comp = run_to_completion(lambda r: paging_domctl(d, sc, caller, r), policy)
    return comp, sc


def counter(runs: list[tuple[Work, int]] | tuple[tuple[Work, int], ...]) -> Counter[Work]:
    c: Counter[Work] = Counter()
    for w, n in runs:
        c[w] += n
    return c
