"""The p2m: population, superpage shattering, lazy recalculation (xen-paging.md §4, §6)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenvmmu.model import guest
from xenvmmu.model.constants import P2MType
from xenvmmu.model.p2m import LD, RW
from xenvmmu.model.work import ZERO

from .helpers import R440, R442, R450, GiB, MiB, build, shadow_op

G4 = (1 << 32) >> 12  # first gfn above 4 GiB


def test_population_uses_superpages() -> None:
    d = build(8 * GiB, R450)
    c = d.p2m.counts()
    # low: 4K head (VGA hole) + 511 2M + 2 1G + 384 2M (3G..3.75G); high: 4 1G + 256 2M tail
    assert (c.leaves_1g, c.leaves_2m) == (6, 511 + 384 + 128)
    assert (c.root, c.l3, c.l2, c.l1) == (1, 1, 3, 1)
    assert d.pool.p2m_pages == c.tables
    s = build(2 * GiB, R450, paging="shadow")
    assert (s.p2m.counts().leaves_1g, s.p2m.counts().leaves_2m) == (0, 0)  # shadow: 4K only


def test_enable_sweep_retypes_every_leaf() -> None:
    d = build(8 * GiB, R440, log_dirty=True)
    assert d.p2m.type_of(G4 + 5) == LD and d.p2m.type_of(0x100) == LD
    assert d.p2m.type_of(0xA0) == int(P2MType.mmio_dm)  # VGA hole: not mapped


@pytest.mark.parametrize(("vendor", "tables", "exits"), [("intel", 513, 1), ("amd", 2, 1)])
def test_write_fault_shatters_a_1g_leaf(vendor: str, tables: int, exits: int) -> None:
    d = build(8 * GiB, R442, vendor=vendor, log_dirty=True)
    before = d.pool.p2m_pages
    w = guest.guest_write(d, G4 + 12345)
    # EPT splits every child down to 4K at once; NPT one level at a time along the path
    assert w.pages_allocated == tables + 4  # + the trie's top, L3, L2 and leaf
    assert d.pool.p2m_pages == before + tables + 4
    assert w.vm_exits == exits and w.dirty_marks == 1
    assert d.p2m.type_of(G4 + 12345) == RW and d.p2m.type_of(G4 + 12346) == LD
    assert guest.guest_write(d, G4 + 12345) == ZERO  # now writable: no fault


def test_lazy_clean_marks_only_the_root() -> None:
    d = build(8 * GiB, R450, log_dirty=True, dirty="all")
    comp, _ = shadow_op(d)
    hook = comp.calls[-1].sections.runs[-1][0]
    assert hook.entries_written == 1  # one present root entry
    assert d.p2m.type_of(G4) == LD  # logically log-dirty, resolved later


def test_ept_resolves_a_whole_table_npt_one_leaf() -> None:
    for vendor in ("intel", "amd"):
        d = build(8 * GiB, R450, vendor=vendor, log_dirty=True, dirty="all")
        shadow_op(d)
        w = guest.guest_write(d, G4 + 7)
        if vendor == "intel":  # misconfig exit (push-downs + 512 recalcs), then EPT violation
            assert w.vm_exits == 2
            assert w.entries_written == (9 + 1) + (512 + 1) + (512 + 1) + 512 + 1
        else:  # one NPF: push-downs, one leaf recalculated, write handled
            assert w.vm_exits == 1
            assert w.entries_written == (9 + 1) + (512 + 1) + (512 + 1) + 1 + 1
        w2 = guest.guest_write(d, G4 + 8)
        # same 4K table: EPT recalculated it already (one violation); NPT still has to
        # recalculate this leaf, in the same NPF that handles the write
        assert w2.vm_exits == 1
        assert w2.entries_written == (1 if vendor == "intel" else 2)


def test_pool_exhaustion_during_split_leaves_the_entry_read_only() -> None:
    d = build(8 * GiB, R442, log_dirty=True, pool_mb=30)
    d.pool.free_pages = 8  # room for the trie, not for an EPT 1G split
    w = guest.guest_write(d, G4 + 1)
    assert d.p2m.type_of(G4 + 1) == LD and d.pool.p2m_alloc_failed
    assert w.dirty_marks == 1  # marked before the failed retype, as hvm.c does


#: (guest RAM, fraction of pages written per round): small enough for the per-page reference
_cases = st.sampled_from(
    [(64 * MiB, 0.6), (64 * MiB, 0.05), (1 * GiB + 9 * MiB, 0.01), (5 * GiB, 0.0004)]
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=_cases,
    vendor=st.sampled_from(["intel", "amd"]),
    sp=st.sampled_from(["1g", "2m", "4k"]),
    prof=st.sampled_from([R442, R450]),
    seed=st.integers(0, 10_000),
    cleans=st.integers(0, 2),
)
def test_bulk_writes_equal_page_by_page(
    case: tuple[int, float], vendor: str, sp: str, prof: object, seed: int, cleans: int
) -> None:
    """Table-by-table writes give the same state and work as one write at a time."""
    ram, frac = case
    a = build(ram, prof, vendor=vendor, superpages=sp, log_dirty=True)  # type: ignore[arg-type]
    b = build(ram, prof, vendor=vendor, superpages=sp, log_dirty=True)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    for round_ in range(cleans + 1):
        picks = []
        for s, e in a.layout.ram:
            sel = np.flatnonzero(rng.random(e - s) < frac).astype(np.int64) + s
            picks.append(sel)
        gfns = np.concatenate(picks)
        wa = ZERO
        for g in gfns.tolist():
            wa = wa + guest.guest_write(a, g)
        wb = guest.write_pages(b, gfns)
        assert a.state() == b.state()
        assert wa == wb
        if round_ < cleans:
            shadow_op(a)
            shadow_op(b)


def _dirty_half_then_clean(d: object) -> None:
    guest.write_range(d, 0, 1 << 17)  # type: ignore[arg-type]
    shadow_op(d)  # type: ignore[arg-type]


def test_bulk_range_equals_page_by_page() -> None:
    """One whole 1 GiB block (the vectorised path) against page-by-page writes."""
    a = build(2 * GiB, R450, vendor="intel", log_dirty=True)
    b = build(2 * GiB, R450, vendor="intel", log_dirty=True)
    _dirty_half_then_clean(a)
    _dirty_half_then_clean(b)
    stop = (1 << 18) + (1 << 12)
    wa = ZERO
    for s, e in a.layout.ram:
        for g in range(s, min(e, stop)):
            wa = wa + guest.guest_write(a, g)
    wb = ZERO
    for s, e in b.layout.ram:
        wb = wb + guest.write_range(b, s, min(e, stop))
    assert a.state() == b.state() and wa == wb


@pytest.mark.parametrize("vendor", ["intel", "amd"])
@pytest.mark.parametrize("prof", [R442, R450])
@pytest.mark.parametrize("sp", ["1g", "2m"])
def test_block_path_equals_slot_path(vendor: str, prof: object, sp: str) -> None:
    """write_block (numpy over 512 slots) against 512 write_slot calls, after a CLEAN."""
    from xenvmmu.model.constants import FULL_MASK
    from xenvmmu.model.p2m_bulk import write_block
    from xenvmmu.model.p2m_write import write_slot

    a = build(3 * GiB, prof, vendor=vendor, superpages=sp, log_dirty=True)  # type: ignore[arg-type]
    b = build(3 * GiB, prof, vendor=vendor, superpages=sp, log_dirty=True)  # type: ignore[arg-type]
    for d in (a, b):
        _dirty_half_then_clean(d)
    for blk in (1, 2):
        got = write_block(a.p2m, blk)
        assert got is not None
        wa, faulted = got
        wb, masks = ZERO, list[bool]()
        for i in range(512):
            w, f = write_slot(b.p2m, (blk << 9) | i, FULL_MASK)
            wb, masks = wb + w, [*masks, f == FULL_MASK]
            assert f in (0, FULL_MASK)
        assert wa == wb and list(faulted) == masks
        assert a.p2m.snapshot() == b.p2m.snapshot()
