"""Xen version strings: ``XenVersion`` parses what ``xl info`` and operators write and orders it.

Accepted: ``4.4.1``, ``4.5-unstable``, ``4.17.3-pre``, ``4.5-rc1``, ``4.2.5-33.el6``,
``4.1.6.1``. ``VersionError`` (a ``ValueError``) names the text that is not a version.
Public through ``xenvmmu.versions``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class VersionError(ValueError):
    """A string that is not a Xen version."""


_VERSION_RE = re.compile(r"(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?(.*)", re.DOTALL)
# xen_extra after the micro number: a separator, then printable ASCII without spaces.
_EXTRA_RE = re.compile(r"[-+~._][!-~]{0,63}")
_DEV_RE = re.compile(r"-(unstable|pre|rc(\d{0,4}))(?=$|[-+~._])")
_STAGE_RANK = {"unstable": 0, "rc": 1, "pre": 2, None: 3}


@dataclass(frozen=True)
class XenVersion:
    """A parsed Xen version string such as ``4.4.1``, ``4.5-unstable``, ``4.17.3-pre``.

    ``extra`` is ``xen_extra`` without the micro part: ``""``, ``"-pre"``, ``"-rc2"``,
    ``"-unstable"``, or a packager's suffix (``"-33.el6"``). ``str()`` gives the version
    back and ``parse(str(v)) == v``. Ordering is by release:
    ``4.5-unstable < 4.5-rc1 < 4.5.0 < 4.5.1-pre < 4.5.1``.
    """

    major: int
    minor: int
    micro: int | None = None  # None for "4.5-unstable" style strings
    extra: str = ""

    def __post_init__(self) -> None:
        for name in ("major", "minor", "micro"):
            n = getattr(self, name)
            if n is None and name == "micro":
                continue
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 9999:
                raise VersionError(f"Xen version {name} must be an integer 0..9999, not {n!r}")
        if not isinstance(self.extra, str) or (self.extra and not _EXTRA_RE.fullmatch(self.extra)):
            raise VersionError(f"bad Xen version suffix {self.extra!r}")
        if self.micro is None and self.extra and not self.extra.startswith("-"):
            raise VersionError(f"Xen version without a micro number takes only a '-' suffix "
                               f"(4.5-unstable), not {self.extra!r}")

    @classmethod
    def parse(cls, text: str) -> XenVersion:
        """Parse ``major.minor[.micro][extra]``; raises ``VersionError`` with the text."""
        s = text.strip() if isinstance(text, str) else ""
        m = _VERSION_RE.fullmatch(s) if len(s) <= 80 else None
        if m is None or (m.group(4) and not _EXTRA_RE.fullmatch(m.group(4))) or (
                m.group(3) is None and m.group(4) and not m.group(4).startswith("-")):
            shown = repr(text)[:60]
            raise VersionError(
                f"not a Xen version: {shown} (expected e.g. 4.4.1, 4.5-unstable, 4.17.3-pre)"
            )
        micro = int(m.group(3)) if m.group(3) is not None else None
        return cls(int(m.group(1)), int(m.group(2)), micro, m.group(4))

    @classmethod
    def from_xl_info(cls, major: str, minor: str, extra: str) -> XenVersion:
        """Compose ``xen_major``/``xen_minor``/``xen_extra`` (``4``, ``4``, ``.1``)."""
        if not (major.strip().isdigit() and minor.strip().isdigit()):
            raise VersionError(f"xen_major/xen_minor must be numbers, not {major!r}/{minor!r}")
        return cls.parse(f"{major.strip()}.{minor.strip()}{extra.strip()}")

    def __str__(self) -> str:
        micro = "" if self.micro is None else f".{self.micro}"
        return f"{self.major}.{self.minor}{micro}{self.extra}"

    @property
    def branch(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def dev_tag(self) -> str | None:
        """``"unstable"``, ``"pre"``, ``"rcN"`` for development builds, else None."""
        m = _DEV_RE.match(self.extra)
        return m.group(1) if m else None

    @property
    def is_development(self) -> bool:
        """True for ``-pre``, ``-rcN`` and ``-unstable`` builds (between releases)."""
        return self.dev_tag is not None

    @property
    def vendor(self) -> str:
        """What a packager appended (``XEN_VENDORVERSION``), e.g. ``-33.el6``."""
        m = _DEV_RE.match(self.extra)
        return self.extra[m.end() :] if m else self.extra

    def _key(self) -> tuple[int, int, int, int, int, bool, str, str]:
        m = _DEV_RE.match(self.extra)
        stage = None if m is None else ("rc" if m.group(1).startswith("rc") else m.group(1))
        rc = int(m.group(2)) if m is not None and m.group(2) else 0
        micro = 0 if self.micro is None else self.micro
        return (self.major, self.minor, micro, _STAGE_RANK[stage], rc, self.micro is not None,
                self.vendor, self.extra)

    def __lt__(self, other: XenVersion) -> bool:
        return self._key() < other._key()

    def __le__(self, other: XenVersion) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: XenVersion) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: XenVersion) -> bool:
        return self._key() >= other._key()
