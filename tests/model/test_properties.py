"""Hypothesis properties: preemption never changes results, no dirty bit is lost, work grows
linearly without the fix and stays bounded between checks with it (DESIGN.md principles)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenvmmu.model import analytic
from xenvmmu.model.constants import ERESTART, ShadowOp
from xenvmmu.model.domctl import ShadowControl, paging_domctl
from xenvmmu.model.guest import dm_mark_dirty, write_pages
from xenvmmu.model.runner import Bernoulli, Never, Policy, drive, run_to_completion
from xenvmmu.model.sink import DenseBitmap
from xenvmmu.model.spec import DomainSpec
from xenvmmu.model.teardown import paging_final_teardown, paging_teardown
from xenvmmu.model.work import Work

from .helpers import R417, R440, R442, R450, R460, GiB, build

SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
fixed_profiles = st.sampled_from([R442, R450, R460, R417])
any_profile = st.sampled_from([R440, R442, R450, R460, R417])
guests = st.fixed_dictionaries({
    "ram": st.sampled_from([3 * GiB, 70 * GiB, 130 * GiB + (5 << 20), 200 * GiB]),
    "paging": st.sampled_from(["hap", "shadow"]),
    "vendor": st.sampled_from(["intel", "amd"]),
    "superpages": st.sampled_from(["1g", "2m"]),
    "vcpus": st.integers(1, 3),
})


def _build(g: dict[str, Any], prof: object, seed: int, *, extra: int = 40) -> Any:
    d = build(g["ram"], prof, paging=g["paging"], vendor=g["vendor"],  # type: ignore[arg-type]
              superpages=g["superpages"], vcpus=g["vcpus"], log_dirty=True, dirty="per_region")
    rng = np.random.default_rng(seed)
    gfns = np.unique(rng.integers(0, d.layout.ram_pages, extra))
    write_pages(d, np.array([_nth_ram(d, int(i)) for i in gfns], np.int64))
    return d


def _nth_ram(d: Any, i: int) -> int:
    for s, e in d.layout.ram:
        if i < e - s:
            return int(s + i)
        i -= e - s
    raise IndexError(i)


def _op(d: Any, op: ShadowOp, policy: Policy, caller: int = 0) -> tuple[int, Any, ShadowControl]:
    sc = ShadowControl(int(op), pages=d.layout.p2m_size,
                       dirty_bitmap=DenseBitmap(d.layout.p2m_size))
    comp = run_to_completion(lambda r: paging_domctl(d, sc, caller, r), policy)
    return comp.rc, comp, sc


# -- (a) preemption never changes results -----------------------------------------------------
@SETTINGS
@given(g=guests, prof=fixed_profiles, seed=st.integers(0, 2**16), p=st.floats(0.05, 1.0),
       op=st.sampled_from([ShadowOp.CLEAN, ShadowOp.PEEK, ShadowOp.OFF]))
def test_resumed_equals_uninterrupted(
    g: dict[str, Any], prof: object, seed: int, p: float, op: ShadowOp
) -> None:
    a, b = _build(g, prof, seed), _build(g, prof, seed)
    rc_a, _, sc_a = _op(a, op, Never())
    rc_b, comp_b, sc_b = _op(b, op, Bernoulli(p, seed))
    assert rc_a == rc_b == 0
    assert a.state() == b.state()
    if op != ShadowOp.OFF:
        assert (sc_a.pages, sc_a.dirty_count, sc_a.fault_count) == (
            sc_b.pages, sc_b.dirty_count, sc_b.fault_count)
        assert (sc_a.dirty_bitmap.to_array() == sc_b.dirty_bitmap.to_array()).all()  # type: ignore[union-attr]
    if len(comp_b.calls) > 1:
        assert all(c.rc == -ERESTART for c in comp_b.calls[:-1])


@SETTINGS
@given(g=guests, prof=fixed_profiles, seed=st.integers(0, 2**16), p=st.floats(0.01, 1.0))
def test_teardown_resumed_equals_uninterrupted(
    g: dict[str, Any], prof: object, seed: int, p: float
) -> None:
    """Relinquish re-runs the pool loop on every retry (as domain_kill does), so pages a
    preempted trie free returned to the pool may reach the heap one stage earlier; once the
    final teardown has run, both end with everything freed."""
    a, b = _build(g, prof, seed), _build(g, prof, seed)
    ca = run_to_completion(lambda _r: paging_teardown(a, 0), Never())
    cb = run_to_completion(lambda _r: paging_teardown(b, 0), Bernoulli(p, seed))
    assert ca.rc == cb.rc == 0
    assert drive(paging_final_teardown(a)).rc == drive(paging_final_teardown(b)).rc == 0
    assert a.state() == b.state()
    assert a.pool.heap_pages == 0 and a.trie.top is None


@SETTINGS
@given(prof=any_profile, seed=st.integers(0, 2**16), p=st.floats(0.0, 1.0),
       delta=st.integers(-3000, 3000))
def test_set_allocation_resumed_equals_uninterrupted(
    prof: object, seed: int, p: float, delta: int
) -> None:
    a = build(4 * GiB, prof)  # type: ignore[arg-type]
    b = build(4 * GiB, prof)  # type: ignore[arg-type]
    mb = max(1, a.pool.allocation_mb() + delta // 256)
    pol: Policy
    for d, pol in ((a, Never()), (b, Bernoulli(p, seed))):
        sc = ShadowControl(int(ShadowOp.SET_ALLOCATION), mb=mb)

        def start(_resuming: bool, d: Any = d, sc: ShadowControl = sc) -> Any:
            return paging_domctl(d, sc)

        comp = run_to_completion(start, pol)
        assert comp.rc in (0, -12)
    assert a.state() == b.state()


# -- (b) no dirty bit is lost -------------------------------------------------------------------
def _bits(sc: ShadowControl) -> set[int]:
    arr = sc.dirty_bitmap.to_array()  # type: ignore[union-attr]
    return {int(i) for i in np.flatnonzero(np.unpackbits(arr, bitorder="little"))}


@SETTINGS
@given(g=guests, prof=any_profile, seed=st.integers(0, 2**16), p=st.floats(0.0, 1.0),
       n_writes=st.integers(1, 300))
def test_no_dirty_bit_is_lost(
    g: dict[str, Any], prof: object, seed: int, p: float, n_writes: int
) -> None:
    d = _build(g, prof, seed)
    rng = np.random.default_rng(seed)

    def ram_pages(n: int) -> list[int]:
        return sorted({_nth_ram(d, int(i)) for i in rng.integers(0, d.layout.ram_pages, n)})

    def clean_with_dma(policy: Policy) -> tuple[ShadowControl, set[int]]:
        """CLEAN through its continuations; between two calls (domain paused, walk pending)
        the device model DMA-marks a few pages."""
        sc = ShadowControl(int(ShadowOp.CLEAN), pages=d.layout.p2m_size,
                           dirty_bitmap=DenseBitmap(d.layout.p2m_size))
        marked: set[int] = set()
        resuming = False
        while (rc := drive(paging_domctl(d, sc, 0, resuming), policy).rc) == -ERESTART:
            for pfn in ram_pages(3):
                dm_mark_dirty(d, pfn)
                marked.add(pfn)
            resuming = True
        assert rc == 0
        return sc, marked

    sc1, during = clean_with_dma(Bernoulli(p, seed))
    first = _bits(sc1)
    writes = ram_pages(n_writes)
    write_pages(d, np.array(writes, np.int64))
    dmas = ram_pages(5)
    for pfn in dmas:
        dm_mark_dirty(d, pfn)
    sc2, during2 = clean_with_dma(Bernoulli(p, seed + 1))
    second = _bits(sc2)
    assert set(writes) <= second and set(dmas) <= second
    assert during <= first | second  # marked during CLEAN #1: reported by #1 or by #2
    assert all(pfn in second or d.trie.is_dirty(pfn) for pfn in during2)
    assert sc2.dirty_count >= len(set(writes) | set(dmas)) - len(during & (set(writes) | set(dmas)))
    # and the p2m is write-protected again: the next write faults and is caught
    w = write_pages(d, np.array(writes[:1], np.int64))
    assert w.dirty_marks == (1 if g["paging"] == "shadow" or d.hap else 0)


# -- (c) growth of work between checks -------------------------------------------------------------
SIZES = [1 << k for k in range(30, 45)]  # 1 GiB .. 16 TiB


def _longest(prof: object, ram: int, paging: str = "hap") -> Work:
    spec = DomainSpec(ram_bytes=ram, paging=paging, log_dirty=True, dirty="all")  # type: ignore[arg-type]
    return analytic.clean(spec, prof).longest()  # type: ignore[arg-type]


def test_prefix_work_grows_linearly() -> None:
    prev = None
    for ram in SIZES[2:]:
        w = _longest(R440, ram)
        if prev is not None:
            for f in ("entries_read", "entries_written", "bytes_copied", "pages_mapped"):
                ratio = getattr(w, f) / getattr(prev, f)
                assert 1.9 < ratio < 2.1, (ram, f, ratio)
        prev = w


@settings(max_examples=60, deadline=None)
@given(ram=st.integers(1 << 30, 1 << 44).map(lambda b: b & ~((1 << 21) - 1)))
def test_fixed_release_bounded_between_checks(ram: int) -> None:
    w = _longest(R450, ram)
    assert w.entries_read <= 1024 and w.entries_written <= 512
    assert w.bytes_copied <= 2 << 20 and w.bytes_zeroed <= 2 << 20
    assert w.pages_mapped <= 515 and w.tlb_flushes <= 2
    # 4.4.2 bounds the walk but its HAP hook still sweeps the whole p2m
    big = _longest(R442, ram)
    assert big.entries_read >= 512 * (ram >> 21) // 2


def test_fixed_bound_holds_on_the_generator_up_to_16tib() -> None:
    bound = None
    for ram in (1 * GiB, 64 * GiB, 1 << 40, 1 << 44):
        d = build(ram, R450, log_dirty=True, dirty="per_region")
        _, comp, _ = _op(d, ShadowOp.CLEAN, Never())
        w = comp.longest()
        assert w.entries_read <= 1024 and w.bytes_copied <= 2 << 20
        bound = w if bound is None else bound
    assert bound is not None


def test_shadow_has_no_fix() -> None:
    small = _longest(R450, 64 * GiB, "shadow")
    large = _longest(R450, 1 << 40, "shadow")
    assert large.shadows_destroyed > 10 * small.shadows_destroyed  # scales with the pool
    run = drive(paging_teardown(build(64 * GiB, R450, paging="shadow"), 0))
    assert run.checks == 0  # 4.5.0: pool teardown not yet preemptible
