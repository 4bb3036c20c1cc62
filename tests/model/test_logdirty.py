"""paging_log_dirty_op and the trie free: pre-fix vs fixed (xen-paging.md §3.4-§3.6)."""

from __future__ import annotations

import pytest

from xenvmmu.model.constants import EBUSY, EFAULT, ERESTART, ShadowOp
from xenvmmu.model.domctl import ShadowControl, paging_domctl
from xenvmmu.model.guest import dm_mark_dirty, guest_write
from xenvmmu.model.logdirty import free_log_dirty_bitmap, log_dirty_disable
from xenvmmu.model.runner import Always, AtIndices, Never, drive
from xenvmmu.model.sink import DenseBitmap
from xenvmmu.model.work import PreemptCheck

from .helpers import R440, R442, R450, GiB, build, shadow_op

G4 = 1 << 20


def _sites(d: object, op: ShadowOp = ShadowOp.CLEAN) -> list[str]:
    sc = ShadowControl(int(op), pages=d.layout.p2m_size,  # type: ignore[attr-defined]
                       dirty_bitmap=DenseBitmap(d.layout.p2m_size))  # type: ignore[attr-defined]
    run = drive(paging_domctl(d, sc), Never(), record=True)  # type: ignore[arg-type]
    assert run.steps is not None
    return [s.site for s in run.steps if isinstance(s, PreemptCheck)]


def test_prefix_walk_has_no_check() -> None:
    d = build(200 * GiB, R440, log_dirty=True, dirty="per_region")
    assert _sites(d) == []


def test_fixed_walk_checks_per_l2_node_and_per_l3_node() -> None:
    # 200 GiB + 256 MiB relocated: pfn space spans 4 L2 regions of 64 GiB
    d = build(200 * GiB, R442, log_dirty=True, dirty="per_region")
    assert _sites(d) == ["log_dirty_op.i3"] * 4 + ["log_dirty_op.i4"]
    comp, _ = shadow_op(build(200 * GiB, R442, log_dirty=True, dirty="per_region"))
    runs = [w for w, n in comp.calls[0].sections.runs for _ in range(n)]
    # sections: 4 walk steps, the empty one between the last i3 and the i4 check, the hook
    assert len(runs) == 6 and not runs[4]
    walk = runs[1]
    assert walk.bytes_copied == 2 << 20 and walk.bytes_zeroed == 2 << 20  # 512 leaves


def test_small_guest_is_one_chunk_then_two_checks() -> None:
    # below 64 GiB the whole walk is one section; the checks come after it
    d = build(16 * GiB, R450, log_dirty=True, dirty="all")
    assert _sites(d) == ["log_dirty_op.i3", "log_dirty_op.i4"]


def test_preempted_clean_keeps_domain_paused_and_cursor() -> None:
    d = build(200 * GiB, R450, log_dirty=True, dirty="per_region")
    sc = ShadowControl(int(ShadowOp.CLEAN), pages=d.layout.p2m_size,
                       dirty_bitmap=DenseBitmap(d.layout.p2m_size))
    run = drive(paging_domctl(d, sc, caller=0), AtIndices(frozenset({1})))
    assert run.rc == -ERESTART
    assert (d.preempt.dom, d.preempt.op, d.preempt.i4, d.preempt.i3) == (0, ShadowOp.CLEAN, 0, 2)
    assert d.preempt.done == 2 * (1 << 24)
    assert d.paused == 1
    assert d.trie.dirty_count > 0  # counters are zeroed only at completion
    # another domain's CLEAN, and a fresh CLEAN from the same domain, are refused
    other = ShadowControl(int(ShadowOp.CLEAN), pages=d.layout.p2m_size)
    assert drive(paging_domctl(d, other, caller=7)).rc == -EBUSY
    assert drive(paging_domctl(d, other, caller=0)).rc == -EBUSY
    peek = ShadowControl(int(ShadowOp.PEEK), pages=d.layout.p2m_size)
    assert drive(paging_domctl(d, peek, caller=0, resuming=True)).rc == -EBUSY
    ga = ShadowControl(int(ShadowOp.GET_ALLOCATION))
    assert drive(paging_domctl(d, ga, caller=7)).rc == 0 and ga.mb == d.pool.allocation_mb()
    # the continuation finishes, reports the counters, unpauses
    run = drive(paging_domctl(d, sc, caller=0, resuming=True), Never())
    assert run.rc == 0 and d.paused == 0 and d.preempt.dom is None
    # one bit per 128 MiB region: 30 below the hole, 1570 from 4 GiB to 200.25 GiB
    assert sc.dirty_count == 30 + 1570 and d.trie.dirty_count == 0


def test_prefix_clean_zeroes_counters_at_start() -> None:
    d = build(2 * GiB, R440, log_dirty=True, dirty="all")
    n = d.trie.dirty_count
    sc = ShadowControl(int(ShadowOp.CLEAN), pages=d.layout.p2m_size, dirty_bitmap=None)
    gen = paging_domctl(d, sc)
    next(gen)  # the walk has started
    assert d.trie.dirty_count == 0 and sc.dirty_count == n
    drive(gen)


def test_null_bitmap_still_walks_and_cleans() -> None:
    d = build(2 * GiB, R450, log_dirty=True, dirty="all")
    comp, _ = shadow_op(d, bitmap=False)
    assert comp.rc == 0 and comp.total.bytes_copied == 0
    assert not d.trie.bitmap(d.layout.p2m_size).any()


def test_short_buffer_faults() -> None:
    d = build(2 * GiB, R450, log_dirty=True, dirty="all")
    sc = ShadowControl(int(ShadowOp.CLEAN), pages=d.layout.p2m_size,
                       dirty_bitmap=DenseBitmap(0, nbytes=100))
    assert drive(paging_domctl(d, sc)).rc == -EFAULT
    assert d.paused == 0 and d.preempt.dom is None


def test_bitmap_content_and_short_sc_pages() -> None:
    d = build(1 * GiB, R450, log_dirty=True)
    for g in (0, 5, 0x9F, 0xC0, 70_000, 262_143):
        guest_write(d, g)
    sc = ShadowControl(int(ShadowOp.PEEK), pages=70_001, dirty_bitmap=DenseBitmap(70_001))
    assert drive(paging_domctl(d, sc)).rc == 0
    bits = sc.dirty_bitmap.to_array()  # type: ignore[union-attr]
    got = [i for i in range(70_001) if bits[i >> 3] >> (i & 7) & 1]
    assert got == [0, 5, 0x9F, 0xC0, 70_000]
    assert sc.pages == 70_001  # not clamped: the walk covered it


def test_off_frees_the_trie_with_checks_per_node() -> None:
    d = build(200 * GiB, R450, log_dirty=True, dirty="per_region")
    pages = d.trie.counts().pages
    free_before = d.pool.free_pages
    sc = ShadowControl(int(ShadowOp.OFF))
    run = drive(paging_domctl(d, sc), Never(), record=True)
    assert run.rc == 0 and not d.log_dirty and d.trie.top is None
    assert [s.site for s in run.steps or [] if isinstance(s, PreemptCheck)] == (
        ["free_log_dirty.i3"] * 4 + ["free_log_dirty.i4"]
    )
    assert d.pool.free_pages == free_before + pages and run.total.pages_freed == pages


def test_off_resumes_without_rerunning_the_hook() -> None:
    d = build(200 * GiB, R442, log_dirty=True, dirty="per_region")
    assert drive(log_dirty_disable(d, 3), AtIndices(frozenset({0}))).rc == -ERESTART
    assert not d.log_dirty and d.preempt.dom == 3 and d.paused == 1
    assert drive(free_log_dirty_bitmap(d, 0, caller=4)).rc == -EBUSY
    run = drive(log_dirty_disable(d, 3, resuming=True))
    assert run.rc == 0 and run.total.tlb_flushes == 0 and d.paused == 0
    assert d.trie.allocs == 0


def test_prefix_off_is_one_section() -> None:
    d = build(200 * GiB, R440, log_dirty=True, dirty="per_region")
    run = drive(log_dirty_disable(d), Always())
    assert run.rc == 0 and run.checks == 0 and len(run.sections.runs) == 1


@pytest.mark.parametrize("paging", ["hap", "shadow"])
def test_dm_marks_while_preempted_are_not_lost(paging: str) -> None:
    d = build(200 * GiB, R450, paging=paging, log_dirty=True, dirty="per_region")
    sc = ShadowControl(int(ShadowOp.CLEAN), pages=d.layout.p2m_size,
                       dirty_bitmap=DenseBitmap(d.layout.p2m_size))
    assert drive(paging_domctl(d, sc), AtIndices(frozenset({1}))).rc == -ERESTART
    walked, ahead = 5, 3 << 24  # one region already cleaned, one not yet walked
    dm_mark_dirty(d, walked)
    dm_mark_dirty(d, ahead)
    assert drive(paging_domctl(d, sc, resuming=True)).rc == 0
    bits = sc.dirty_bitmap.to_array()  # type: ignore[union-attr]
    assert bits[ahead >> 3] & 1 and not bits[walked >> 3] & (1 << 5)
    assert d.trie.is_dirty(walked) and not d.trie.is_dirty(ahead)
