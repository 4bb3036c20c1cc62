"""The four scenarios: migration, attack, vram, teardown - ``run_scenario`` runs one.

Every scenario puts, on pCPU 0, the vCPU that issues the operations (the toolstack's dom0
vCPU, or the device model's) and the victim vCPU; the other pCPUs only tick (they matter
for RCU). The operations act on one HVM guest ("guest") whose own vCPUs are not simulated:
its dirtying is a rate, and pausing it stops the clock of that rate.

* ``attack`` - XSA-97 as the advisory frames it: a domain controlling the guest (a
  compromised stub-domain device model) issues CLEAN/PEEK in a loop, against a guest in
  log-dirty mode that maximises their work: every page written (p2m shattered to 4 KiB,
  every trie leaf present) and rewritten between two calls, the shadow pool kept full.
* ``migration`` - pre-copy driven by a CLEAN each round: Xen migration v2's policy (at most
  5 rounds, stop-and-copy below 50 dirty pages; ``tools/libs/guest/xg_sr_save.c``) or the
  legacy ``xc_domain_save`` rule (29 iterations, < 50 pages, 3x the p2m size sent).
* ``vram`` - the device model tracks dirty VRAM every display refresh.
* ``teardown`` - the toolstack destroys a large guest: relinquish with -EAGAIN retries, then
  the final teardown in an RCU callback.

Operations come from the real model (:mod:`xenvmmu.sim.model_guest`) or from a replay of the
model's closed forms (:mod:`xenvmmu.sim.closed_form`, the description the auditor prices);
``ops="auto"`` builds the model up to ``MODEL_AUTO_MAX_BYTES`` (256 GiB) of guest RAM, where
building the attacker's state stays under a few seconds, and replays the closed forms above it
where they cover the scenario (attack, teardown, shadow VRAM tracking); a clean guest
(migration, HAP VRAM tracking) is built at any size. The two agree step for step (tests), so
nothing jumps at the limit. ``extra["ops"]`` in the metrics says which ran (``"model"`` or
``"closed-form"``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from simpy.events import Event

from xenvmmu.costs import CostProfile, default_profile, load_profile
from xenvmmu.model.attack import DEFAULT_ATTACK
from xenvmmu.model.build import BuildError
from xenvmmu.model.constants import PAGE_SHIFT, PAGE_SIZE
from xenvmmu.model.spec import DomainSpec
from xenvmmu.sim.closed_form import ClosedFormGuest
from xenvmmu.sim.domain import SimDomain
from xenvmmu.sim.guest_ops import GuestOps
from xenvmmu.sim.host import Host
from xenvmmu.sim.hypercall import Call
from xenvmmu.sim.metrics import Metrics
from xenvmmu.sim.model_guest import MODEL_AUTO_MAX_BYTES, ModelGuest
from xenvmmu.sim.params import MS, US, HostParams, S, WatchdogParams
from xenvmmu.sim.vcpu import VCpu
from xenvmmu.versions import (
    Paging,
    PagingBehaviour,
    Profile,
    Vendor,
    default_pool_kib,
    profile_for,
)

ScenarioName = Literal["migration", "attack", "vram", "teardown"]
SCENARIOS: tuple[ScenarioName, ...] = ("migration", "attack", "vram", "teardown")
#: ``progress(message, sim_time_ms)``
Progress = Callable[[str, float], None]
GiB = 1 << 30


@dataclass(frozen=True)
class AttackParams:
    """``duration_ms``: keep issuing calls until this much simulated time has passed (at
    least ``min_calls`` complete). ``ops``: the sub-ops cycled through. ``gap_us``: the
    attacker's user-space time between calls (ASSUMED 20 us)."""

    duration_ms: float = 50.0
    ops: tuple[Literal["clean", "peek"], ...] = ("clean", "peek")
    gap_us: float = 20.0
    min_calls: int = 1
    max_calls: int | None = None


@dataclass(eq=False)
class PageLog:
    """What a ``migration`` run on the real model recorded, when given as
    ``MigrationParams(record=PageLog())`` (off by default). Per gfn, simulated ns, NaN for
    never: ``last_write_ns`` - when the guest last wrote it (stamped when the scenario
    materialises the writes, just before the CLEAN that finds them: the latest time they can
    have happened); ``last_send_ns`` - when a round last started sending it (iteration 0 sends
    every gfn; a live round what the CLEAN before it reported; the stop-and-copy what the
    deciding and the final CLEAN reported). ``rounds``: ``(send start ns, gfns sent)``."""

    last_write_ns: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.empty(0, dtype=np.float64))
    last_send_ns: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.empty(0, dtype=np.float64))
    rounds: list[tuple[float, int]] = field(default_factory=list)


@dataclass(frozen=True)
class MigrationParams:
    """Pre-copy migration. Defaults marked ASSUMED describe a moderately busy guest.

    ``policy``: ``"v2"`` (<= 5 live iterations, stop below ``target_dirty`` = 50 pages) or
    ``"legacy"`` (29 iterations, < 50 pages, or ``legacy_max_factor`` x p2m size sent).
    ``link_gbit_s``: 10 (ASSUMED). ``dirty_pages_per_s``: 25000 (~100 MiB/s, ASSUMED).
    ``wws_fraction``: writable working set, 2 % of RAM (ASSUMED).
    ``simulate_transfer``: simulate the time spent sending pages (the toolstack sleeps); off
    by default - that time is then only added to the totals, since nothing happens in the
    hypervisor meanwhile and a TiB-sized guest would need hours of simulated ticks. Up to
    ``settle_ms`` of each send is still simulated, so the victim and RCU keep sampling the
    quiet host between two CLEANs.
    ``record``: a :class:`PageLog` to fill (needs the real model); ``None`` (default): off.
    """

    policy: Literal["v2", "legacy"] = "v2"
    link_gbit_s: float = 10.0
    dirty_pages_per_s: float = 25_000.0
    wws_fraction: float = 0.02
    max_iterations: int = 5
    target_dirty: int = 50
    legacy_max_iterations: int = 29
    legacy_max_factor: float = 3.0
    simulate_transfer: bool = False
    settle_ms: float = 5.0
    record: PageLog | None = None


@dataclass(frozen=True)
class VramParams:
    """``frames`` and ``unknown_fraction``: tracked VRAM and (shadow) the share of frames
    whose mapping the shadow code brute-forces - defaults from
    :class:`~xenvmmu.model.attack.AttackAssumptions`, the same as the auditor's.
    ``interval_ms``: the device model's refresh period (30 ms, qemu's GUI refresh) plus a
    seeded uniform jitter of up to ``jitter_ms`` (dom0 scheduling noise; it also keeps the
    refresh from phase-locking with the 1 ms victim). ``duration_ms``: how long to run, and
    at least ``min_calls`` calls (2: the call that starts tracking and one repeated call,
    whatever either costs)."""

    frames: int = DEFAULT_ATTACK.vram_frames
    interval_ms: float = 30.0
    jitter_ms: float = 1.0
    duration_ms: float = 200.0
    unknown_fraction: float = DEFAULT_ATTACK.vram_unknown_fraction
    min_calls: int = 2


@dataclass(frozen=True)
class TeardownParams:
    """``log_dirty``: the guest dies with a full log-dirty trie (e.g. a migration was
    cancelled), so relinquish also frees the trie."""

    log_dirty: bool = True


ScenarioParams = AttackParams | MigrationParams | VramParams | TeardownParams


@dataclass
class _Ctx:
    host: Host
    issuer: VCpu
    guest: SimDomain
    ops: GuestOps
    spec: DomainSpec
    progress: Progress | None
    extra: dict[str, Any] = field(default_factory=dict)

    def report(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message, self.host.env.now / MS)


def run_scenario(
    name: ScenarioName,
    *,
    xen_version: str | None = None,
    profile: Profile | None = None,
    paging: Paging = "hap",
    vendor: Vendor = "intel",
    memory_bytes: int = 16 * GiB,
    vcpus: int = 4,
    pcpus: int = 2,
    shadow_memory_mib: int | None = None,
    watchdog: bool | WatchdogParams = False,
    costs: CostProfile | str | Path | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    params: ScenarioParams | None = None,
    host_params: HostParams | None = None,
    victim_period_ms: float = 1.0,
    ops: Literal["auto", "model", "closed-form"] = "auto",
    guest_ops: Callable[[DomainSpec, PagingBehaviour], GuestOps] | None = None,
) -> Metrics:
    """Run one scenario and return its metrics.

    The release is ``profile`` or ``profile_for(xen_version)`` (default ``"4.4.0"``, the
    last release before the fix); ``vendor`` the host CPU's (``"intel"``: EPT, ``"amd"``: NPT
    paging). The paging pool is ``shadow_memory_mib`` if given, else
    the release's default formula. ``watchdog=True`` turns on Xen's watchdog with its 5 s
    default. ``host_params``, if given, replaces ``pcpus`` and ``watchdog``. ``params`` are
    the scenario's own (:class:`AttackParams`, :class:`MigrationParams`, ...; a mismatch is a
    ``TypeError``). ``ops`` chooses the real model or the closed forms (see the module
    docstring); ``guest_ops``, if given, builds the operations instead.
    ``progress(message, sim_time_ms)`` is called after each operation or round.
    """
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if memory_bytes < PAGE_SIZE or vcpus < 1:
        raise ValueError("a guest needs at least one page and one vCPU")
    prof = profile or profile_for(xen_version or "4.4.0")
    beh = prof.paging
    cost = _cost_profile(costs)
    wd = WatchdogParams() if watchdog is True else (watchdog or None)
    hp = host_params or HostParams(pcpus=pcpus, watchdog=wd)
    host = Host(hp, cost=cost, seed=seed)
    mib = memory_bytes >> 20
    if shadow_memory_mib is not None:
        pool_pages = shadow_memory_mib << 8
    else:
        pool_pages = default_pool_kib(mib, vcpus, guest_type="hvm", paging=paging,
                                      formula=prof.pool_formula) >> 2
    p = params or _default_params(name)
    attacked = name == "attack" or (isinstance(p, TeardownParams) and p.log_dirty)
    spec = DomainSpec(ram_bytes=memory_bytes, vcpus=vcpus, paging=paging, vendor=vendor,
                      pool_kib=pool_pages * 4, log_dirty=attacked,
                      dirty="all" if attacked else "none")
    issuer_dom = "dom0" if name in ("migration", "teardown") else "dm"
    if ops not in ("auto", "model", "closed-form"):
        raise ValueError(f"ops must be 'auto', 'model' or 'closed-form', not {ops!r}")
    covered = name in ("attack", "teardown") or (name == "vram" and paging == "shadow")
    if ops == "closed-form" and not covered:
        raise ValueError(f"the closed forms do not cover the {name} scenario with {paging} "
                         "paging: use ops='model'")
    use_model = ops == "model" or (
        ops == "auto" and (memory_bytes <= MODEL_AUTO_MAX_BYTES or not covered))
    unknown = p.unknown_fraction if isinstance(p, VramParams) else 1.0
    guest_ops_obj: GuestOps
    if guest_ops is not None:
        guest_ops_obj, used = guest_ops(spec, beh), "custom"
    elif use_model:
        try:
            guest_ops_obj = ModelGuest(beh, spec, caller=0 if issuer_dom == "dom0" else 2,
                                       vram_unknown_fraction=unknown)
        except (BuildError, ValueError) as e:  # e.g. shadow_memory too small for the p2m
            raise ValueError(f"cannot build this guest on the model: {e} "
                             f"({pool_pages} pool pages)") from e
        used = "model"
    else:
        guest_ops_obj = ClosedFormGuest(spec, beh, vram_unknown_fraction=unknown)
        used = "closed-form"
    guest = host.domain("guest")
    host.victim(0, period_ms=victim_period_ms)
    issuer = host.vcpu(f"{issuer_dom}.0", domain=issuer_dom, pcpu=0)
    ctx = _Ctx(host, issuer, guest, guest_ops_obj, spec, progress)
    issuer.start(_driver(name, ctx, p))
    extra: dict[str, Any] = {
        "xen_version": str(prof.version), "paging": paging, "memory_bytes": memory_bytes,
        "vcpus": vcpus, "pool_pages": pool_pages, "vendor": vendor,
        "logdirty_preemptible": beh.logdirty_preemptible, "hap_retype": beh.hap_retype,
        "pool_teardown_preemptible": beh.pool_teardown_preemptible,
        "p2m_free_preemptible": beh.p2m_free_preemptible,
        "ops": used,
        "cost_profile": cost.name,
    }
    host.run()
    return host.metrics(scenario=name, extra={**extra, **ctx.extra})


def _default_params(name: ScenarioName) -> ScenarioParams:
    if name == "attack":
        return AttackParams()
    if name == "migration":
        return MigrationParams()
    if name == "vram":
        return VramParams()
    return TeardownParams()


def _driver(name: ScenarioName, ctx: _Ctx, p: ScenarioParams) -> DriverGen:
    if name == "attack" and isinstance(p, AttackParams):
        return _attack(ctx, p)
    if name == "migration" and isinstance(p, MigrationParams):
        return _migration(ctx, p)
    if name == "vram" and isinstance(p, VramParams):
        return _vram(ctx, p)
    if name == "teardown" and isinstance(p, TeardownParams):
        return _teardown(ctx, p)
    raise TypeError(f"scenario {name!r} does not take {type(p).__name__}")


def _cost_profile(costs: CostProfile | str | Path | None) -> CostProfile:
    if costs is None:
        return default_profile()
    if isinstance(costs, CostProfile):
        return costs
    return load_profile(costs)


DriverGen = Generator[Event, Any, None]


def _shadow_op(ctx: _Ctx, sub: Literal["clean", "peek"]) -> Call:
    return Call(f"shadow_op.{sub}", ctx.ops.log_dirty(sub), target=ctx.guest,
                pause_target=True, preempt_key=sub)


def _attack(ctx: _Ctx, p: AttackParams) -> DriverGen:
    v, env = ctx.issuer, ctx.host.env
    calls = 0  # log-dirty mode is already on: the guest was built in the attacker's state
    while True:
        sub = p.ops[calls % len(p.ops)]
        ctx.ops.guest_runs(None)  # the guest rewrites its memory between two calls
        r = yield from v.call(_shadow_op(ctx, sub))
        calls += 1
        ctx.report(f"{sub} #{calls}: rc {r.rc}, {r.elapsed_ns / MS:.3f} ms, "
                   f"{r.continuations} continuations")
        if calls >= p.min_calls and env.now >= p.duration_ms * MS:
            break
        if p.max_calls is not None and calls >= p.max_calls:
            break
        yield from v.compute(p.gap_us * US)
    ctx.extra["attack_calls"] = calls
    ctx.host.finish()


def _vram(ctx: _Ctx, p: VramParams) -> DriverGen:
    v, env = ctx.issuer, ctx.host.env
    calls = 0
    call = Call("hvmop.track_dirty_vram", ctx.ops.track_vram(p.frames), target=ctx.guest,
                domctl=False, pause_target=ctx.spec.paging == "hap")
    while True:
        start = env.now
        ctx.ops.guest_runs(0)  # the guest draws into its VRAM
        r = yield from v.call(call)
        calls += 1
        ctx.report(f"track_dirty_vram #{calls}: {r.elapsed_ns / MS:.3f} ms")
        if calls >= p.min_calls and env.now >= p.duration_ms * MS:
            break
        jitter = ctx.host.rng.random() * p.jitter_ms * MS
        yield from v.sleep_until(start + p.interval_ms * MS + jitter)
    ctx.extra["vram_calls"] = calls
    ctx.host.finish()


def _teardown(ctx: _Ctx, _p: TeardownParams) -> DriverGen:
    v, host = ctx.issuer, ctx.host
    r = yield from v.call(Call("domctl.destroydomain", ctx.ops.relinquish(), target=ctx.guest,
                               on_restart="eagain"))
    ctx.report(f"relinquish done (rc {r.rc}, {r.continuations} retries)")
    # domain_destroy -> call_rcu(complete_domain_destroy) on this pCPU
    done = host.rcu.call_rcu(v.pcpu.index, op=ctx.ops.final_teardown(),
                             name="rcu.paging_final_teardown")
    yield from v.wait_for(done)
    ctx.report("final teardown done")
    ctx.extra["teardown_ms"] = round(host.env.now / MS, 6)
    host.finish()


def _migration(ctx: _Ctx, p: MigrationParams) -> DriverGen:
    v, host, guest, env = ctx.issuer, ctx.host, ctx.guest, ctx.host.env
    ops = ctx.ops
    pages = ctx.spec.ram_bytes >> PAGE_SHIFT
    wws = max(1, int(pages * p.wws_fraction))
    page_ns = PAGE_SIZE * 8 / (p.link_gbit_s * 1e9) * S  # ns to send one page
    offline = 0.0  # transfer time not simulated (added to the totals)
    log = p.record
    if log is not None and not isinstance(ops, ModelGuest):
        raise ValueError("MigrationParams.record needs the real model (ops='model')")
    if log is not None and isinstance(ops, ModelGuest):
        ops.record_pages()
        nfn = ops.domain.layout.p2m_size
        log.last_write_ns = np.full(nfn, np.nan)
        log.last_send_ns = np.full(nfn, np.nan)
        log.rounds = []
    pending: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)  # reported, not yet sent
    since = [env.now, guest.paused_total(), 0.0]  # dirty clock: start, paused, offline

    def dirtied() -> int:
        running = (env.now - since[0]) - (guest.paused_total() - since[1]) + since[2]
        return min(wws, int(p.dirty_pages_per_s * running / S))

    def send(n: int) -> Generator[Event, Any, None]:
        nonlocal offline, pending
        if log is not None:
            log.last_send_ns[pending] = env.now
            log.rounds.append((env.now, len(pending)))
            pending = np.empty(0, dtype=np.int64)
        simulated = n * page_ns if p.simulate_transfer else min(n * page_ns, p.settle_ms * MS)
        offline += n * page_ns - simulated
        since[2] += n * page_ns - simulated
        if simulated > 0:
            yield from v.sleep(simulated)

    def clean(final: bool) -> Generator[Event, Any, int]:
        nonlocal pending
        d = dirtied()
        ops.guest_runs(d)
        if log is not None and isinstance(ops, ModelGuest):
            for s, e in ops.take_record()[0]:
                log.last_write_ns[s:e] = env.now
        yield from v.call(_shadow_op(ctx, "clean"))
        if log is not None and isinstance(ops, ModelGuest):
            pending = np.union1d(pending, ops.take_record()[1])
        since[:] = [env.now, guest.paused_total(), 0.0]
        ctx.report(f"{'final ' if final else ''}CLEAN: {d} dirty pages")
        return d

    yield from v.call(Call("shadow_op.enable", ops.enable(), target=guest, pause_target=True))
    since[:] = [env.now, guest.paused_total(), 0.0]
    sent = pages
    if log is not None:
        pending = np.arange(len(log.last_send_ns), dtype=np.int64)
    yield from send(pages)  # iteration 0: every page
    iteration = 1
    rounds_sent = [pages]
    while True:
        d = yield from clean(False)
        if p.policy == "v2":
            stop = d < p.target_dirty or iteration >= p.max_iterations
        else:
            stop = (d < p.target_dirty or iteration >= p.legacy_max_iterations
                    or sent > p.legacy_max_factor * pages)
        if stop:
            break
        yield from send(d)
        sent += d
        rounds_sent.append(d)
        iteration += 1
    # stop-and-copy: suspend, a last CLEAN, send what it and the deciding CLEAN found
    guest.pause()
    down_start, down_offline = env.now, offline
    d += yield from clean(True)
    yield from send(d)
    sent += d
    downtime = env.now - down_start + offline - down_offline
    yield from v.call(Call("shadow_op.off", ops.off(), target=guest, pause_target=True,
                           preempt_key="off"))
    guest.unpause()
    ctx.extra.update({
        "migration_policy": p.policy,
        "migration_iterations": iteration,
        "migration_pages_sent": sent,
        "migration_rounds_pages": ",".join(str(x) for x in [*rounds_sent, d]),
        "migration_downtime_ms": round(downtime / MS, 6),
        "migration_total_ms": round((env.now + offline) / MS, 6),
        "migration_offline_transfer_ms": round(offline / MS, 6),
    })
    host.finish()
