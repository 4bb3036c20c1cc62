"""What an attacker (or a busy guest) is assumed to arrange: one set of named parameters.

The auditor's worst case and the simulator's scenarios read the same defaults from here, so
``xenvmmu audit`` and ``xenvmmu simulate`` describe the same guest. Facts about Xen are not
here (they are in :mod:`xenvmmu.versions` and the model); these are choices about the
workload that no source pins down, each with its default and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenvmmu.model.constants import VRAM_MAX_FRAMES


@dataclass(frozen=True)
class AttackAssumptions:
    """The attack shape, beyond "every page written and every log-dirty leaf present".

    ``vram_frames``
        Frames the device model tracks with dirty-VRAM tracking on every display refresh.
        Default 4096 (16 MiB): ASSUMED - the stdvga video RAM that qemu-xen gives a guest by
        default (xl.cfg ``videoram``, research note xen-config.md); what qemu actually tracks
        depends on its version and the display mode. A compromised device model may ask for
        up to 262144 (1 GiB of frames, ``xen/arch/x86/hvm/hvm.c @ RELEASE-4.4.0``).
    ``vram_unknown_fraction``
        Shadow paging only: the share of tracked frames with a single mapping whose shadow
        entry Xen does not remember, so each call searches every L1 shadow for it
        (``sh_remove_all_mappings`` by brute force). Default 1.0: ASSUMED worst case, a guest
        that keeps remapping its framebuffer; an assumption-driven extreme, not a measurement.
    """

    vram_frames: int = 4096
    vram_unknown_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.vram_frames <= VRAM_MAX_FRAMES:
            raise ValueError(f"vram_frames must be 0..{VRAM_MAX_FRAMES} (Xen's 1 GiB cap)")
        if not 0.0 <= self.vram_unknown_fraction <= 1.0:
            raise ValueError("vram_unknown_fraction must be between 0 and 1")

    @property
    def vram_unknown_frames(self) -> int:
        """Tracked frames searched by brute force on each call (shadow paging)."""
        return round(self.vram_frames * self.vram_unknown_fraction)


DEFAULT_ATTACK = AttackAssumptions()

#: First gfn of the tracked VRAM: 16 MiB, RAM in every guest the model builds. A modelling
#: choice (qemu places the framebuffer elsewhere): the work depends on how many frames are
#: tracked and that they are RAM, not on where they are.
VRAM_BEGIN_GFN = (16 << 20) >> 12
