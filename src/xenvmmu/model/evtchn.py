"""Event-channel reset (XSA-344): ``evtchn_reset()`` closes every valid port of a domain.

Before the fix it is one loop with no preemption point (xen/common/event_channel.c @
RELEASE-4.13.0 l.1008-1030); with it (2785b2a9e0, first in 4.15.0; 4.12.4, 4.13.2, 4.14.1)
the loop starts at port 1, checks ``hypercall_preempt_check()`` after every port whose number
is a multiple of 64, and resumes from the saved port (``d->next_evtchn``). A guest resets its
own channels (EVTCHNOP_reset), or the toolstack does it for a paused domain; how many ports
there are is the guest's choice up to ``max_event_channels`` (xl.cfg; FIFO ABI: up to
131,071). The release's behaviour is ``PagingBehaviour.evtchn_reset_preemptible``.
"""

from __future__ import annotations

from xenvmmu.model.constants import ERESTART
from xenvmmu.model.work import Op, PreemptCheck, Work, WorkStep
from xenvmmu.versions import PagingBehaviour

#: The fixed loop checks after each port that is a multiple of this.
EVTCHN_CHECK_EVERY = 64
_CHECK = PreemptCheck("evtchn_reset")


class EvtchnReset:
    """The reset of a domain with ``ports`` valid ports (port 0 included), resumable."""

    def __init__(self, ports: int, behaviour: PagingBehaviour) -> None:
        if ports < 1:
            raise ValueError("a domain has at least port 0")
        self.ports = ports
        self.behaviour = behaviour
        self.next = 0  # d->next_evtchn: 0 = no reset in progress

    def op(self, resuming: bool) -> Op:
        """One entry: the whole loop before the fix; from the saved port with it."""
        if not self.behaviour.evtchn_reset_preemptible:
            yield WorkStep(Work(evtchn_closes=self.ports), "evtchn_reset")
            return 0
        i = self.next if resuming else 1
        while i < self.ports:
            # ports i .. up to the next multiple of 64 (closed, then the check after it)
            stop = min(self.ports - 1, (i // EVTCHN_CHECK_EVERY + 1) * EVTCHN_CHECK_EVERY)
            if stop % EVTCHN_CHECK_EVERY:  # the last ports: no check after them
                yield WorkStep(Work(evtchn_closes=stop - i + 1), "evtchn_reset")
                i = stop + 1
                continue
            yield WorkStep(Work(evtchn_closes=stop - i + 1), "evtchn_reset")
            i = stop + 1
            if (yield _CHECK):
                self.next = i
                return -ERESTART
        self.next = 0
        return 0
