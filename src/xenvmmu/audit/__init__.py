"""The auditor: per-guest XSA-97 exposure on a host, as a library.

:func:`run_audit` scans input paths (xl.cfg files, ``xl list -l`` JSON, directories of them),
assesses every guest on the host and returns an :class:`AuditReport`: one :class:`Finding`
per guest, one :class:`InputError` per unusable input. :func:`audit_settings` builds the
:class:`AuditSettings` (cost profile, latency budget) from plain values. The formatters of
every output format are in :mod:`xenvmmu.audit.format`, the rules in :mod:`xenvmmu.audit.rules`.

Importing this package imports none of its submodules: each name below is loaded on first
access (the formatters do not need the rules and the cost model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenvmmu._lazy import export_dir, load_export

if TYPE_CHECKING:
    from xenvmmu.audit.api import audit_settings, run_audit
    from xenvmmu.audit.findings import AuditReport, Finding, InputError
    from xenvmmu.audit.settings import AuditSettings

__all__ = [
    "AuditReport",
    "AuditSettings",
    "Finding",
    "InputError",
    "audit_settings",
    "run_audit",
]

_EXPORTS = {
    "api": ("audit_settings", "run_audit"),
    "findings": ("AuditReport", "Finding", "InputError"),
    "settings": ("AuditSettings",),
}


def __getattr__(name: str) -> object:
    return load_export(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return export_dir(_EXPORTS, globals())
