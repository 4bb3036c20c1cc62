"""Closed forms against the generators, section for section."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from xenvmmu.model import analytic
from xenvmmu.model.attack import VRAM_BEGIN_GFN as VRAM
from xenvmmu.model.build import DomainSpec, build_domain
from xenvmmu.model.constants import ENODATA, ShadowOp
from xenvmmu.model.guest import write_range
from xenvmmu.model.logdirty import log_dirty_disable, log_dirty_enable
from xenvmmu.model.runner import Always, Never, Sections, drive, run_to_completion
from xenvmmu.model.teardown import paging_final_teardown, paging_teardown
from xenvmmu.model.vram import VramRequest, track_dirty_vram
from xenvmmu.model.work import Work

from .helpers import R417, R440, R442, R450, R460, GiB, MiB, counter, shadow_op

PROFILES = {"4.4.0": R440, "4.4.2": R442, "4.5.0": R450, "4.6": R460, "xsa410": R417}
GUESTS = [
    (64 * MiB, "hap", "intel", "1g"),
    (3 * GiB + 7 * MiB, "hap", "amd", "2m"),
    (5 * GiB, "hap", "intel", "4k"),
    (70 * GiB, "hap", "intel", "1g"),
    (130 * GiB + 3 * MiB, "hap", "amd", "1g"),
    (5 * GiB, "shadow", "intel", "4k"),
    (70 * GiB, "shadow", "intel", "4k"),
]
STATES = [(True, "all"), (True, "none"), (False, "none")]


def _teardown_run(spec: DomainSpec, prof: object) -> tuple[Work, list[tuple[Work, int]]]:
    d = build_domain(spec, prof)  # type: ignore[arg-type]
    comp = run_to_completion(lambda _r: paging_teardown(d, 0), Never())
    fin = drive(paging_final_teardown(d))
    return comp.total + fin.total, comp.sections() + fin.sections.runs


def _same(runs: list[tuple[Work, int]], total: Work, est: analytic.Estimate) -> None:
    assert total == est.total
    assert counter(runs) == est.counter()


@pytest.mark.parametrize("state", STATES, ids=lambda s: f"{s[0]}-{s[1]}")
@pytest.mark.parametrize("release", list(PROFILES))
@pytest.mark.parametrize("guest", GUESTS, ids=lambda g: f"{g[0] >> 20}M-{g[1]}-{g[2]}-{g[3]}")
def test_estimates_equal_generators(
    guest: tuple[int, str, str, str], release: str, state: tuple[bool, str]
) -> None:
    ram, paging, vendor, sp = guest
    prof = PROFILES[release]
    log_dirty, dirty = state
    spec = DomainSpec(ram_bytes=ram, vcpus=2, paging=paging, vendor=vendor,  # type: ignore[arg-type]
                     superpages=sp, log_dirty=log_dirty, dirty=dirty)  # type: ignore[arg-type]
    if log_dirty:
        for peek in (False, True):
            d = build_domain(spec, prof)
            comp, _ = shadow_op(d, ShadowOp.PEEK if peek else ShadowOp.CLEAN, Never())
            _same(comp.sections(), comp.total, analytic.clean(spec, prof, peek=peek))
        d = build_domain(spec, prof)
        run = drive(log_dirty_disable(d))
        _same(run.sections.runs, run.total, analytic.disable(spec, prof))
    else:
        d = build_domain(spec, prof)
        run = drive(log_dirty_enable(d))
        _same(run.sections.runs, run.total, analytic.enable(spec, prof))
    total, runs = _teardown_run(spec, prof)
    _same(runs, total, analytic.teardown(spec, prof))


def test_set_allocation_estimate() -> None:
    spec = DomainSpec(ram_bytes=4 * GiB)
    d = build_domain(spec, R450)
    from xenvmmu.model.domctl import ShadowControl, paging_domctl

    sc = ShadowControl(int(ShadowOp.SET_ALLOCATION), mb=100)
    run = drive(paging_domctl(d, sc))
    est = analytic.set_allocation(spec, R450, 100)
    assert run.total == est.total and counter(run.sections.runs) == est.counter()


def test_research_numbers_1tib() -> None:
    # fully dirty 1 TiB: 8192 leaves -> 32 MiB of bitmap copied and zeroed by one CLEAN
    spec = DomainSpec(ram_bytes=1 << 40, log_dirty=True, dirty="all", mmio_hole_bytes=0)
    est = analytic.clean(spec, R440)
    assert est.total.bytes_copied == 32 << 20 and est.total.bytes_zeroed == 32 << 20
    assert len(est.sections) == 1  # pre-fix: one section
    # the 4.4 hook sweeps one entry per 4K page (all RAM was shattered by the writes)
    assert est.total.entries_written == ((1 << 40) >> 12) - 0x20  # minus the VGA hole
    fixed = analytic.clean(spec, R450)
    assert fixed.checks == 16 + 1 and fixed.longest().bytes_copied == 2 << 20


def test_ten_thousand_estimates_are_fast() -> None:
    specs = [DomainSpec(ram_bytes=(1 + i % 4096) * GiB, vcpus=1 + i % 8, log_dirty=True,
                       dirty="all", paging="hap" if i % 5 else "shadow") for i in range(10_000)]
    t = time.perf_counter()
    for i, spec in enumerate(specs):
        analytic.clean(spec, (R440, R442, R450)[i % 3])
    assert time.perf_counter() - t < 20  # typically ~2 s


def test_sections_helper_matches_runner() -> None:
    s = Sections()
    s.add(Work(entries_read=1))
    s.close(Work(entries_read=2), 3)
    s.finish()
    assert s.runs == [(Work(entries_read=1), 1), (Work(entries_read=2), 3), (Work(), 1)]


VRAM_GUESTS = [(1 * GiB, 1), (5 * GiB, 2), (70 * GiB, 3)]


@pytest.mark.parametrize("release", ["4.4.0", "4.5.0", "xsa410"])
@pytest.mark.parametrize(("ram", "vcpus"), VRAM_GUESTS)
@pytest.mark.parametrize("unknown", [None, 100])
def test_shadow_vram_estimate_equals_generator(
    ram: int, vcpus: int, release: str, unknown: int | None
) -> None:
    """Both calls of shadow dirty-VRAM tracking: the first blows the shadows, the guest
    refills its pool, the repeated call brute-forces the frames whose mapping is unknown."""
    prof = PROFILES[release]
    spec = DomainSpec(ram_bytes=ram, vcpus=vcpus, paging="shadow")
    est = analytic.track_vram(spec, prof, 768, VRAM, unknown_frames=unknown)
    d = build_domain(spec, prof)
    req = VramRequest(VRAM, 768, unknown)
    first = drive(track_dirty_vram(d, req))
    assert first.rc == -ENODATA
    _same(first.sections.runs, first.total, est.call(0))
    assert d.shadow is not None
    for _ in range(2):  # every repeated call is the same
        d.shadow.fill(d.pool.free_pages)
        run = drive(track_dirty_vram(d, VramRequest(VRAM, 768, unknown)))
        assert run.rc == 0
        _same(run.sections.runs, run.total, est.call(1))


@pytest.mark.parametrize("vendor", ["intel", "amd"])
@pytest.mark.parametrize("release", ["4.4.0", "4.5.0", "xsa410"])
@pytest.mark.parametrize("ram", [1 * GiB, 70 * GiB])
def test_hap_vram_repeated_call_equals_generator(ram: int, release: str, vendor: str) -> None:
    """HAP: once the range is tracked, a call after the guest wrote every frame (NPT: a lock
    round trip per entry; EPT before 4.7: a sync per entry)."""
    prof = PROFILES[release]
    spec = DomainSpec(ram_bytes=ram, vcpus=2, vendor=vendor)  # type: ignore[arg-type]
    est = analytic.track_vram(spec, prof, 4096, VRAM)
    d = build_domain(spec, prof)
    drive(track_dirty_vram(d, VramRequest(VRAM, 4096)))
    for _ in range(3):
        write_range(d, VRAM, VRAM + 4096)
        run = drive(track_dirty_vram(d, VramRequest(VRAM, 4096)))
    _same(run.sections.runs, run.total, est.call(1))
    if vendor == "amd":
        assert run.total.lock_round_trips == 4096
    else:
        assert run.total.tlb_flushes == (1 if prof.ept_flush_deferred else 4097)


def test_pool_too_small_is_found_before_building() -> None:
    spec = DomainSpec(ram_bytes=64 * GiB, pool_mb=1, log_dirty=True, dirty="all")
    need = analytic.min_pool_pages(spec)
    with pytest.raises(ValueError, match="too small"):
        analytic.clean(spec, R440)
    with pytest.raises(ValueError, match="too small"):
        analytic.clean(replace(spec, pool_mb=None, pool_kib=need * 4 - 4), R440)
    assert analytic.clean(replace(spec, pool_mb=None, pool_kib=need * 4), R440).total
    # shadow: Xen raises a small pool to its floor (128 pages per vCPU + 1 per MiB)
    shadow = replace(spec, paging="shadow")
    assert analytic.clean(shadow, R440).total.shadows_destroyed > 0


@pytest.mark.parametrize("ports", [1, 2, 63, 64, 65, 66, 128, 129, 1023, 4096, 131071])
@pytest.mark.parametrize("fixed", [False, True])
def test_evtchn_reset_estimate_equals_generator(ports: int, fixed: bool) -> None:
    from xenvmmu.model.evtchn import EvtchnReset
    from xenvmmu.versions import PagingBehaviour

    beh = PagingBehaviour(evtchn_reset_preemptible=fixed)
    run = drive(EvtchnReset(ports, beh).op(False))
    est = analytic.evtchn_reset(ports, beh)
    _same(run.sections.runs, run.total, est)
    assert run.total.evtchn_closes == (ports - 1 if fixed else ports)
    # preempted at every check, it resumes where it stopped and closes every port once
    comp = run_to_completion(EvtchnReset(ports, beh).op, Always())
    assert comp.total == run.total and comp.rc == 0


POD_CASES = [(0, 0), (1, 1), (16, 16), (17, 5), (1024, 1024), (1025, 1025), (1026, 1000),
             (1027, 1027), (1040, 1040), (1100, 17), (3000, 2500), (3000, 0), (2048, 16)]


@pytest.mark.parametrize("gfns_ram", POD_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
@pytest.mark.parametrize("vendor", ["intel", "amd"])
@pytest.mark.parametrize("fixed,deferred", [(False, False), (True, False), (True, True)])
def test_pod_sweep_estimate_equals_generator(gfns_ram: tuple[int, int], vendor: str,
                                             fixed: bool, deferred: bool) -> None:
    from xenvmmu.model.pod import POD_SWEEP_LIMIT, PodSweep
    from xenvmmu.versions import PagingBehaviour

    gfns, ram = gfns_ram
    beh = PagingBehaviour(pod_sweep_bounded=fixed, ept_flush_deferred=deferred)
    run = drive(PodSweep(gfns, ram, vendor, beh).op())  # type: ignore[arg-type]
    est = analytic.pod_sweep(gfns, ram, vendor, beh)  # type: ignore[arg-type]
    _same(run.sections.runs, run.total, est)
    assert run.total.bytes_scanned == (128 + 4096) * ram  # every RAM page read whole
    assert run.total.entries_written == 2 * ram  # taken out and put back
    longest = est.longest()
    if fixed and gfns > POD_SWEEP_LIMIT + 1:
        # the fixed sweep's longest section is its first: the limit and one gfn more
        assert longest.entries_read <= 4 * (POD_SWEEP_LIMIT + 2) + 4 * min(ram, 1026)
    else:
        assert longest == est.total  # one section: "a linear memcmp() from 0 to max_gfn"
    if ram and vendor == "intel":
        # EPT before 4.7 syncs once per removed entry, after it once per sweep
        assert est.total.tlb_flushes == (1 if deferred else ram)


def test_pod_sweep_stops_when_a_preemption_is_pending() -> None:
    from xenvmmu.model.pod import POD_SWEEP_LIMIT, PodSweep
    from xenvmmu.versions import PagingBehaviour

    beh = PagingBehaviour(pod_sweep_bounded=True)
    run = drive(PodSweep(5000, 5000, "intel", beh).op(), Always())
    # the first check fires: gfns 5000 .. limit-1 swept, then the partial batch checked
    assert run.total.entries_read == 4 * (POD_SWEEP_LIMIT + 2) + 4 * (POD_SWEEP_LIMIT + 2)
    assert run.rc == 0


@pytest.mark.parametrize("entries,per_page", [(0, 256), (256, 256), (512, 256), (1024, 256),
                                              (4096, 512), (256 * 1024, 256)])
@pytest.mark.parametrize("fixed", [False, True])
def test_maptrack_release_estimate_equals_generator(entries: int, per_page: int,
                                                   fixed: bool) -> None:
    from xenvmmu.model.maptrack import MaptrackRelease
    from xenvmmu.versions import PagingBehaviour

    beh = PagingBehaviour(maptrack_bounded=fixed)
    run = drive(MaptrackRelease(entries, per_page, beh).op(False))
    est = analytic.maptrack_release(entries, per_page, beh)
    _same(run.sections.runs, run.total, est)
    assert run.total.grant_releases == entries
    if fixed and entries:
        # one page per section: its handles and the page freed
        assert est.longest() == Work(entries_read=per_page, grant_releases=per_page,
                                     heap_pages_freed=1)
        assert run.total.heap_pages_freed == entries // per_page
    else:
        assert est.longest() == est.total
    # preempted at every check, it resumes from the shrunk limit and releases each once
    comp = run_to_completion(MaptrackRelease(entries, per_page, beh).op, Always())
    assert comp.total == run.total and comp.rc == 0
    assert len(comp.calls) == (max(entries // per_page, 1) if fixed else 1)


def test_mapkind_searches_the_table_until_the_fix() -> None:
    from xenvmmu.versions import PagingBehaviour

    old = analytic.mapkind(262144, PagingBehaviour(maptrack_bounded=False))
    new = analytic.mapkind(262144, PagingBehaviour(maptrack_bounded=True))
    assert old.total.entries_read == 2 * 262144 and old.checks == 0
    assert new.total.entries_read < 10
