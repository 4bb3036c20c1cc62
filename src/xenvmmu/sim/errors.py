"""Exceptions and interrupt causes of the simulator.

A failure inside a simulated operation is never swallowed: the SimPy process fails, and
``Environment.step()`` re-raises it, so a run either finishes or stops loudly - it never
produces a latency figure from a half-executed operation.
"""

from __future__ import annotations

from dataclasses import dataclass


class SimulationError(RuntimeError):
    """The simulation was driven against its rules (bad step, protocol violation)."""


class ProtocolError(SimulationError):
    """An operation broke the step protocol of :mod:`xenvmmu.model.work`."""


@dataclass(frozen=True)
class Descheduled:
    """Interrupt cause: the vCPU lost its pCPU while running guest code.

    ``by`` names what took the pCPU (the next vCPU, ``"idle"`` or the hypervisor work that
    runs in softirq context); ``at`` is the simulated time in ns.
    """

    by: str
    at: float
