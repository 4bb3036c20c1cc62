"""What a scenario needs from the guest it acts on: its operations, and a way to let it run.

Two implementations: :class:`~xenvmmu.sim.model_guest.ModelGuest` builds the real model's
state and runs its generators; :class:`~xenvmmu.sim.closed_form.ClosedFormGuest` replays the
model's closed forms for guests too large to build. Both yield the step protocol of
:mod:`xenvmmu.model.work`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

from xenvmmu.model.work import Op

#: ``make(resuming)``: the operation for one entry into the hypervisor.
OpFactory = Callable[[bool], Op]


class GuestOps(Protocol):
    """The operations a scenario issues against its guest."""

    def guest_runs(self, dirty_pages: int | None) -> None:
        """Between operations: the guest writes ``dirty_pages`` pages of its working set
        (``None``: all of them, the attacker re-dirtying) and rebuilds its shadows."""

    def log_dirty(self, sub_op: Literal["clean", "peek"]) -> OpFactory: ...

    def enable(self) -> OpFactory: ...

    def off(self) -> OpFactory: ...

    def track_vram(self, frames: int) -> OpFactory: ...

    def relinquish(self) -> OpFactory: ...

    def final_teardown(self) -> Callable[[], Op]: ...
