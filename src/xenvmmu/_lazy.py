"""Lazy package exports (PEP 562), so that importing a package stays cheap.

A package ``__init__`` names its public API in ``__all__``, imports it for type checkers only
(under ``TYPE_CHECKING``) and defines::

    _EXPORTS = {"submodule": ("Name", "other_name"), ...}

    def __getattr__(name: str) -> object:
        return load_export(__name__, _EXPORTS, name, globals())

    def __dir__() -> list[str]:
        return export_dir(_EXPORTS, globals())

``from package import Name`` then imports ``package.submodule`` on first access only (and
caches the value in the package namespace); importing ``package.submodule`` directly runs
the package ``__init__`` without importing its other submodules.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

Exports = Mapping[str, tuple[str, ...]]


def load_export(package: str, exports: Exports, name: str, namespace: dict[str, Any]) -> Any:
    """The value of ``package.name``, imported from the submodule that ``exports`` names."""
    for module, names in exports.items():
        if name in names:
            value = getattr(importlib.import_module(f"{package}.{module}"), name)
            namespace[name] = value  # later look-ups no longer reach __getattr__
            return value
    # Also how ``from package import submodule`` finds out that it must import the submodule.
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


def export_dir(exports: Exports, namespace: dict[str, Any]) -> list[str]:
    """``dir(package)``: what is loaded already and every lazy export."""
    return sorted({*namespace, *(name for names in exports.values() for name in names)})
