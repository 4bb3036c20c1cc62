"""The scenarios' guest as the model's closed forms, for guests too large to build.

:class:`ClosedFormGuest` replays the step programs of :mod:`xenvmmu.model.analytic` - the same
description the auditor prices - through the step protocol, with a cursor kept across
continuations as Xen keeps its progress in the domain. A check that fires ends the call with
``-ERESTART`` and the next call resumes at the step after it (inside a ``Loop``, after the
iterations done). Never preempted, a replay yields exactly the closed form's sections; the
closed form equals the model's generators (tests), so above the build limit the simulator
measures the same operations as below it.

What the closed forms cover, and so what this guest supports: the attacker's state (log-dirty
on, every page written and rewritten between two calls, the shadow pool refilled), a clean
guest's ENABLE, dirty-VRAM tracking under shadow paging, and teardown. Partly written states
(a migrating guest's working set) and HAP VRAM tracking's first call are not in closed form:
the scenarios run those on the model, which builds a clean guest cheaply at any size.
Re-entry work on a continuation (re-mapping the trie's top nodes) is not counted: it is the
same few pages per continuation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from xenvmmu.model import analytic
from xenvmmu.model.analytic import Estimate
from xenvmmu.model.attack import VRAM_BEGIN_GFN
from xenvmmu.model.constants import ERESTART
from xenvmmu.model.spec import DomainSpec
from xenvmmu.model.work import Loop, Op, PreemptCheck, Step, WorkStep
from xenvmmu.sim.guest_ops import OpFactory
from xenvmmu.versions import PagingBehaviour


class Replay:
    """One call's step program, replayed across continuations."""

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.steps = steps
        self.index = 0  # next step
        self.done = 0  # iterations already done of the Loop at ``index``

    def op(self, resuming: bool) -> Op:
        """The operation for one entry: from the start, or (``resuming``) from the cursor."""
        if not resuming:
            self.index = self.done = 0
        while self.index < len(self.steps):
            st = self.steps[self.index]
            if isinstance(st, WorkStep):
                yield st
                self.index += 1
            elif isinstance(st, PreemptCheck):
                self.index += 1
                if (yield st):
                    return -ERESTART
            else:
                k = yield Loop(st.work, st.count - self.done, st.check, st.what, st.lock)
                if k is None:
                    self.index, self.done = self.index + 1, 0
                    continue
                self.done += int(k)
                if self.done >= st.count:
                    self.index, self.done = self.index + 1, 0
                return -ERESTART
        self.index = self.done = 0
        return 0


class ClosedFormGuest:
    """One guest in the attacker's state, its operations replayed from closed forms.

    ``spec`` describes the guest with log-dirty on and every page written (the attack), or
    with log-dirty off (``log_dirty=False``: ENABLE, VRAM tracking, a teardown without a
    bitmap). The guest keeps that state between calls (the attacker rewrites everything).
    """

    def __init__(self, spec: DomainSpec, behaviour: PagingBehaviour, *,
                 vram_unknown_fraction: float = 1.0) -> None:
        self.spec = spec
        self.behaviour = behaviour
        self.vram_unknown_fraction = vram_unknown_fraction
        self._vram_calls = 0
        self._teardown: Estimate | None = None

    def guest_runs(self, dirty_pages: int | None) -> None:
        """``None`` (rewrite everything) and ``0`` keep the state; other partial writes are
        not in closed form."""
        if dirty_pages:
            raise ValueError("a partly written guest is not in closed form: use the model")

    def _replay(self, est: Estimate, call: int = 0) -> OpFactory:
        return Replay(est.calls[call]).op

    def log_dirty(self, sub_op: Literal["clean", "peek"]) -> OpFactory:
        return self._replay(analytic.clean(self.spec, self.behaviour, peek=sub_op == "peek"))

    def enable(self) -> OpFactory:
        return self._replay(analytic.enable(self.spec, self.behaviour))

    def off(self) -> OpFactory:
        return self._replay(analytic.disable(self.spec, self.behaviour))

    def track_vram(self, frames: int) -> OpFactory:
        """The first call starts tracking (shadow: blows the shadows); later calls are the
        repeated call on a guest that wrote every frame."""
        if self.spec.paging == "hap":
            raise ValueError("HAP VRAM tracking's first call is not in closed form: use the model")
        est = analytic.track_vram(self.spec, self.behaviour, frames, VRAM_BEGIN_GFN,
                                  unknown_frames=round(frames * self.vram_unknown_fraction))
        first, steady = Replay(est.calls[0]), Replay(est.calls[1])

        def make(resuming: bool) -> Op:
            if not resuming:
                self._vram_calls += 1
            return (first if self._vram_calls == 1 else steady).op(resuming)

        return make

    def _teardown_estimate(self) -> Estimate:
        if self._teardown is None:
            self._teardown = analytic.teardown(self.spec, self.behaviour)
        return self._teardown

    def relinquish(self) -> OpFactory:
        return self._replay(self._teardown_estimate(), 0)

    def final_teardown(self) -> Callable[[], Op]:
        replay = Replay(self._teardown_estimate().calls[1])
        return lambda: replay.op(False)
