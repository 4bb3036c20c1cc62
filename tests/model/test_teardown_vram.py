"""Teardown per release, set_allocation on a full shadow pool, dirty-VRAM tracking."""

from __future__ import annotations

import pytest

from xenvmmu.model.constants import ENODATA, ERESTART, P2M_TEARDOWN_BATCH, ShadowOp
from xenvmmu.model.domctl import ShadowControl, paging_domctl
from xenvmmu.model.guest import guest_write
from xenvmmu.model.runner import Always, Never, drive, run_to_completion
from xenvmmu.model.teardown import paging_final_teardown, paging_teardown
from xenvmmu.model.vram import VramRequest, track_dirty_vram
from xenvmmu.model.work import Loop

from .helpers import R417, R440, R442, R450, R460, GiB, build, shadow_op

VRAM = 0x1000  # 16 MiB


def _teardown(d: object, policy: object = None) -> tuple[int, int, int]:
    comp = run_to_completion(lambda _r: paging_teardown(d, 0), policy)  # type: ignore[arg-type]
    final = drive(paging_final_teardown(d))  # type: ignore[arg-type]
    assert comp.rc == 0 and final.rc == 0 and final.checks == 0
    return len(comp.calls), sum(c.checks for c in comp.calls), final.total.pages_freed


@pytest.mark.parametrize("paging", ["hap", "shadow"])
@pytest.mark.parametrize("prof", [R440, R442, R450, R460, R417])
def test_teardown_returns_every_page(paging: str, prof: object) -> None:
    d = build(70 * GiB, prof, paging=paging, log_dirty=True, dirty="all")  # type: ignore[arg-type]
    heap = d.pool.heap_pages
    assert heap == d.pool.total_pages + d.pool.p2m_pages
    tables = d.p2m.pages
    calls, checks, final_freed = _teardown(d, Always())
    pool = d.pool
    assert (pool.total_pages, pool.free_pages, pool.p2m_pages, pool.heap_pages) == (0, 0, 0, 0)
    if prof is R440:
        assert calls == 1 and checks == 0  # one uninterrupted relinquish
    if prof is R417:
        assert final_freed == 1  # XSA-410: only the root is left for the RCU callback
    else:
        assert final_freed == tables  # every p2m page, in the RCU callback


def test_xsa410_checks_every_1024_p2m_pages() -> None:
    d = build(70 * GiB, R417, log_dirty=True, dirty="all")
    n = d.p2m.pages - 1  # the root stays
    run = drive(paging_teardown(d, 0), Never(), record=True)
    loops = [s for s in run.steps or [] if isinstance(s, Loop) and s.what == "p2m_teardown"]
    assert loops and loops[0].count == n // P2M_TEARDOWN_BATCH
    assert loops[0].check.general  # general_preempt_check()
    longest_free = max(w.pages_freed for w, _ in run.sections.runs if w.heap_pages_freed)
    assert longest_free <= P2M_TEARDOWN_BATCH + d.vcpus


def test_pre_2015_pool_teardown_is_one_loop() -> None:
    d = build(70 * GiB, R442, paging="shadow", log_dirty=True, dirty="all")
    shadows = d.shadow.pages if d.shadow else 0
    run = drive(paging_teardown(d, 0), Always())
    # the trie free is preemptible (4.4.2) but the pool loop before it is not
    assert run.rc == -ERESTART
    assert run.sections.runs[0][0].shadows_destroyed == shadows


def test_shadow_clean_blows_all_tables() -> None:
    d = build(8 * GiB, R450, paging="shadow", vcpus=2, log_dirty=True, dirty="all")
    sh = d.shadow
    assert sh is not None and sh.pages == d.pool.total_pages - 2  # pool full of shadows
    n = sh.pages
    comp, _ = shadow_op(d, ShadowOp.CLEAN, Always())
    hook = comp.calls[-1].sections.runs[-1][0]
    assert hook.shadows_destroyed == n - 2 and hook.shadows_unpinned == max(2, n // 256)
    assert hook.entries_read == 512 * n
    assert sh.pages == 2  # the two in-use tops survive


def test_shadow_write_faults_once_per_clean() -> None:
    d = build(1 * GiB, R450, paging="shadow", log_dirty=True)
    assert guest_write(d, 77).vm_exits == 1 and d.trie.fault_count == 1
    assert guest_write(d, 77).vm_exits == 0
    shadow_op(d)
    assert d.trie.fault_count == 0 and guest_write(d, 77).vm_exits == 1


def test_shadow_pool_shrink_evicts_trees() -> None:
    d = build(8 * GiB, R450, paging="shadow", vcpus=2)
    sc = ShadowControl(int(ShadowOp.SET_ALLOCATION), mb=d.pool.allocation_mb() // 2)
    comp = run_to_completion(lambda _r: paging_domctl(d, sc), Never())
    assert comp.rc == 0 and comp.total.shadows_destroyed > 0
    assert d.pool.allocation_mb() == sc.mb


def test_hap_vram_tracking() -> None:
    for prof in (R442, R450):
        d = build(1 * GiB, prof)
        req = VramRequest(VRAM, 2048)
        run = drive(track_dirty_vram(d, req))
        assert run.rc == 0 and req.bitmap.all() and d.log_dirty
        assert d.p2m.type_of(VRAM + 5) == 2  # ram_logdirty
        guest_write(d, VRAM + 5)
        guest_write(d, VRAM + 2047)
        run = drive(track_dirty_vram(d, req))
        bits = [i for i in range(2048) if req.bitmap[i >> 3] >> (i & 7) & 1]
        assert bits == [5, 2047]
        assert run.total.entries_read >= 4 * 2048  # O(nr) lookups every call
        assert d.trie.is_dirty(VRAM + 5)


def test_shadow_vram_brute_force() -> None:
    d = build(4 * GiB, R450, paging="shadow")
    req = VramRequest(VRAM, 2048)
    assert drive(track_dirty_vram(d, req)).rc == -ENODATA  # first call blows the tables
    assert d.shadow is not None
    d.shadow.fill(d.pool.free_pages)
    run = drive(track_dirty_vram(d, req))
    l1 = d.shadow.l1
    assert run.rc == 0 and run.total.entries_read >= 2048 * 512 * l1
    assert run.checks == 0
