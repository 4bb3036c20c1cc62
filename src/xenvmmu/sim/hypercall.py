"""Hypercalls as processes: a vCPU's call into Xen, followed continuation by continuation.

The operation itself runs on the pCPU through :class:`~xenvmmu.sim.xenwork.XenWork` (work
charged at its cost, preemption checks answered, ``Loop`` handled analytically). Around it,
:class:`Hypervisor` applies Xen's control-path rules: every entry costs
``hypercall_entry_ns``; the global domctl lock is taken with a trylock (busy: continuation,
retried while the vCPU spins preemptibly); the target is paused for the whole call; the
XSA-97 ``-EBUSY`` rule for a conflicting paging op. On ``-ERESTART`` the call goes out
through the exit path (softirqs run, the scheduler may switch) and, once the vCPU runs
again, issues the continuation (``make(resuming=True)``) as the guest re-executing the
hypercall would.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from simpy import Environment
from simpy.events import Event

from xenvmmu.model.constants import ERESTART
from xenvmmu.model.work import Op
from xenvmmu.sim.domain import DomctlLock, PendingPagingOp, SimDomain
from xenvmmu.sim.kernel import ProcessGenerator
from xenvmmu.sim.metrics import Recorder
from xenvmmu.sim.pcpu import PCpu, RunningVcpu
from xenvmmu.sim.xenwork import XenWork


class Caller(RunningVcpu, Protocol):
    """The vCPU issuing a hypercall (:class:`~xenvmmu.sim.vcpu.VCpu`)."""

    @property
    def domain(self) -> SimDomain: ...

    @property
    def pcpu(self) -> PCpu: ...

    def spin_until(self, event: Event) -> ProcessGenerator:
        """Burn CPU in guest mode until ``event`` is processed, then be running."""
        ...


@dataclass(frozen=True)
class Call:
    """One hypercall a vCPU issues, and what the hypervisor does around its operation.

    ``make(resuming)`` builds the operation for one entry: ``False`` for the first, ``True``
    for every later one (continuation, or re-issue after ``-EAGAIN``).
    ``domctl``: runs under the global domctl lock. ``pause_target``: the target is paused
    from the first entry until the final return (PEEK/CLEAN after XSA-97 stay paused across
    continuations). ``preempt_key``: the sub-op name recorded in the target's pending-op
    state (the XSA-97 ``-EBUSY`` rule); None for ops that do not use it.
    ``on_restart``: ``"continuation"`` (``hypercall_create_continuation``) or ``"eagain"``
    (``domain_kill`` turns -ERESTART into -EAGAIN and the toolstack calls again).
    """

    name: str
    make: Callable[[bool], Op]
    target: SimDomain | None = None
    domctl: bool = True
    pause_target: bool = False
    preempt_key: str | None = None
    on_restart: Literal["continuation", "eagain"] = "continuation"


@dataclass(frozen=True)
class CallResult:
    """The outcome of one :class:`Call` (times in ns)."""

    name: str
    rc: int
    issued_ns: float
    returned_ns: float
    entries: int
    continuations: int
    lock_busy: int
    max_section_ns: float

    @property
    def elapsed_ns(self) -> float:
        return self.returned_ns - self.issued_ns


class Hypervisor:
    """Runs vCPUs' hypercalls: entries, continuations, the domctl lock, pause, -EBUSY."""

    def __init__(self, env: Environment, recorder: Recorder, xen: XenWork, *,
                 entry_ns: float) -> None:
        self.env = env
        self.recorder = recorder
        self.xen = xen
        self.lock = DomctlLock(env)
        self.entry_ns = entry_ns

    # -- hypercalls --------------------------------------------------------------------------
    def call(self, vcpu: Caller, call: Call) -> Generator[Event, Any, CallResult]:
        """Issue ``call`` from ``vcpu`` and follow it to its final return code."""
        env, pcpu, rec, xen = self.env, vcpu.pcpu, self.recorder, self.xen
        acc = rec.op(call.name, pcpu.index)
        issued = env.now
        resuming = paused = False
        entries = conts = busy = 0
        max_sec = 0.0
        target = call.target
        while True:
            yield from pcpu.wait_running(vcpu)
            pcpu.enter_xen(call.name)
            sec = xen.section(acc, pcpu)
            entries += 1
            acc.entries += 1
            if self.entry_ns > 0:
                yield env.timeout(self.entry_ns)
            # do_domctl / paging_domctl_continuation: trylock, else a continuation. The
            # spinning vCPU retries at once when the lock is released (its retry loop is
            # already running), while the releaser needs a whole entry to come back.
            while call.domctl and not self.lock.try_acquire(f"{vcpu.name}:{call.name}"):
                busy += 1
                conts += 1
                acc.lock_busy += 1
                acc.continuations += 1
                max_sec = max(max_sec, sec.max)
                sec.close()
                pcpu.exit_to_guest(vcpu)
                t = env.now
                yield from vcpu.spin_until(self.lock.released())
                yield from pcpu.wait_running(vcpu)
                rec.lock_wait(env.now - t)
                pcpu.enter_xen(call.name)
                sec = xen.section(acc, pcpu)
                entries += 1
                acc.entries += 1
            rc = 0
            if call.preempt_key is not None and target is not None:
                rc = target.check_paging_op(vcpu.domain.name, call.preempt_key, resuming)
            if rc == 0:
                if call.pause_target and target is not None and not paused:
                    target.pause()
                    paused = True
                rc = yield from xen.run(pcpu, vcpu, call.make(resuming), sec, True)
                if call.preempt_key is not None and target is not None:
                    target.preempt = (PendingPagingOp(vcpu.domain.name, call.preempt_key)
                                      if rc == -ERESTART else None)
            if rc != -ERESTART and paused and target is not None:
                target.unpause()
                paused = False
            if call.domctl:
                self.lock.release()
            sec.close()
            max_sec = max(max_sec, sec.max)
            pcpu.exit_to_guest(vcpu)
            if rc != -ERESTART:
                rec.finished(acc, rc, env.now - issued)
                return CallResult(call.name, rc, issued, env.now, entries, conts, busy, max_sec)
            conts += 1
            acc.continuations += 1
            resuming = True
