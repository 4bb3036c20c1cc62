"""What the model is asked to build or compute: one guest's size, paging mode and state.

Light on purpose (no numpy): the auditor and the closed forms import it without the model's
data structures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from xenvmmu.model.layout import DEFAULT_MMIO_HOLE, Span, Superpages
from xenvmmu.versions import Paging, Vendor

DirtyPattern: TypeAlias = "Literal['none', 'all', 'per_region'] | tuple[str, float, int]"


def default_pool_mb(ram_bytes: int, vcpus: int) -> int:
    """xl/libxl's default (``libxl_get_required_shadow_memory`` @ RELEASE-4.4.0): 1 MiB per
    vCPU plus 8 KiB per MiB of RAM, rounded up to whole MiB."""
    kib = 1024 * vcpus + 8 * (ram_bytes >> 20)
    return -(-kib // 1024)


@dataclass(frozen=True)
class DomainSpec:
    """A request for one HVM guest's paging state: what :func:`~xenvmmu.model.build.build_domain`
    builds and what :mod:`~xenvmmu.model.analytic` computes in closed form. ``pool_mb=None``
    uses :func:`default_pool_mb`."""

    ram_bytes: int
    vcpus: int = 1
    paging: Paging = "hap"
    vendor: Vendor = "intel"
    superpages: Superpages = "1g"
    pool_mb: int | None = None
    #: The pool in KiB when it is not a whole number of MiB (libxl from 4.17); wins over pool_mb.
    pool_kib: int | None = None
    mmio_hole_bytes: int = DEFAULT_MMIO_HOLE
    mmio_direct: tuple[Span, ...] = ()
    log_dirty: bool = False
    dirty: DirtyPattern = "none"
    shadow_pages: int | None = None
    domid: int = 1

    @property
    def pool_pages(self) -> int:
        if self.pool_kib is not None:
            return self.pool_kib >> 2
        mb = default_pool_mb(self.ram_bytes, self.vcpus) if self.pool_mb is None else self.pool_mb
        return mb << 8
