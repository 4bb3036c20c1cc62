"""Per-domain state the simulator keeps around operations, and the global domctl lock.

``SimDomain`` is not the model's ``Domain`` (p2m, pool, trie): it holds what belongs to the
hypervisor's control path - the pause count and the unfinished-paging-op record that the
XSA-97 fix added (``d->arch.paging.preempt``) - so the simulator can apply Xen's rules
whatever operation it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from simpy import Environment
from simpy.events import Event

from xenvmmu.model.constants import EBUSY


class DomainVcpu(Protocol):
    """What pausing a domain does to each of its vCPUs (:class:`~xenvmmu.sim.vcpu.VCpu`)."""

    def on_domain_pause(self) -> None:
        """Taken off its pCPU and run queue (``vcpu_sleep_nosync``)."""

    def on_domain_unpause(self) -> None:
        """Runnable again if nothing else holds it (``vcpu_wake``)."""


@dataclass(frozen=True)
class PendingPagingOp:
    """``d->arch.paging.preempt``: who left which paging op unfinished (C:070493dfd2)."""

    issuer: str  # the issuing domain (the fix keys on the domain, not the vCPU)
    op: str


class SimDomain:
    """A domain's pause state and pending paging op."""

    def __init__(self, env: Environment, name: str) -> None:
        self.env = env
        self.name = name
        self.vcpus: list[DomainVcpu] = []
        self.pause_count = 0
        self.paused_ns = 0.0  # total time spent paused so far (closed intervals)
        self._paused_at: float | None = None
        self.preempt: PendingPagingOp | None = None

    def __repr__(self) -> str:
        return f"<SimDomain {self.name}>"

    @property
    def paused(self) -> bool:
        return self.pause_count > 0

    def pause(self) -> None:
        """``domain_pause``: its vCPUs stop running (taken as instantaneous: the wait for
        them to be descheduled, ``vcpu_sleep_sync``, is not modelled)."""
        self.pause_count += 1
        if self.pause_count == 1:
            self._paused_at = self.env.now
            for v in self.vcpus:
                v.on_domain_pause()

    def unpause(self) -> None:
        if self.pause_count <= 0:
            raise RuntimeError(f"{self.name}: unpause without pause")
        self.pause_count -= 1
        if self.pause_count == 0:
            assert self._paused_at is not None
            self.paused_ns += self.env.now - self._paused_at
            self._paused_at = None
            for v in self.vcpus:
                v.on_domain_unpause()

    def paused_total(self) -> float:
        """Time spent paused up to now, including a pause still in progress."""
        extra = 0.0 if self._paused_at is None else self.env.now - self._paused_at
        return self.paused_ns + extra

    def check_paging_op(self, issuer: str, op: str, resuming: bool) -> int:
        """The XSA-97 entry rule of ``paging_domctl()``: 0 or ``-EBUSY``.

        A fresh call while an op is pending gets -EBUSY (Xen exempts GET_ALLOCATION; give
        such calls no ``preempt_key``). A resumed call must come from the same domain for
        the same op.
        """
        p = self.preempt
        if p is None:
            return -EBUSY if resuming else 0
        if not resuming or p.issuer != issuer or p.op != op:
            return -EBUSY
        return 0


class DomctlLock:
    """The global domctl lock (xen/common/domctl.c @ RELEASE-4.4.0): taken with a trylock;
    when busy the caller gets a continuation and retries, instead of spinning in Xen."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.holder: str | None = None
        self._released: Event | None = None
        self.acquisitions = 0
        self.failed_tries = 0

    def try_acquire(self, who: str) -> bool:
        if self.holder is not None:
            self.failed_tries += 1
            return False
        self.holder = who
        self.acquisitions += 1
        return True

    def release(self) -> None:
        if self.holder is None:
            raise RuntimeError("domctl lock released while free")
        self.holder = None
        if self._released is not None:
            ev, self._released = self._released, None
            ev.succeed()

    def released(self) -> Event:
        """An event that succeeds at the next release (already succeeded if free)."""
        if self.holder is None:
            return self.env.event().succeed()
        if self._released is None:
            self._released = self.env.event()
        return self._released
