"""``xl info`` text: its ``key : value`` fields with their line numbers, and the changeset.

``xl info`` lines are ``printf("%-23s: %s")``: split at the first ``:``, strip both sides,
ignore lines that are not ``key : value`` (formats/README.md §2.1). A field xenvmmu uses
that appears twice means two hosts pasted into one file, and is refused with both lines.
``xenvmmu.toolstack.host`` turns an ``XlInfo`` into a ``HostSpec``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from .inputs import InputFileError, decode_text

_KEY_RE = re.compile(r"[a-z][a-z0-9_ ]{0,40}")
_USED = ("xen_major", "xen_minor", "xen_extra", "xen_version", "machine", "xen_caps",
         "virt_caps", "xen_commandline", "xen_changeset")


@dataclass(frozen=True)
class XlInfo:
    """The ``key : value`` lines of one ``xl info`` output, with their line numbers."""

    source: str
    fields: tuple[tuple[str, str, int], ...]

    def get(self, key: str) -> str | None:
        for k, v, _ in self.fields:
            if k == key:
                return v
        return None

    def line(self, key: str) -> int | None:
        for k, _, n in self.fields:
            if k == key:
                return n
        return None


def parse_xl_info(data: bytes | str, source: str = "<xl info>") -> XlInfo:
    """Split ``xl info`` text into fields. Unknown lines are ignored; a field xenvmmu uses
    that appears twice (two hosts pasted together?) is an error naming both lines."""
    text = decode_text(data, source, "`xl info` output")
    out: list[tuple[str, str, int]] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.split("\n"), start=1):
        key, colon, value = line.rstrip("\r").partition(":")
        key = key.strip()
        if not colon or not _KEY_RE.fullmatch(key):
            continue
        if key in _USED:
            if key in seen:
                raise InputFileError(source, n, f"second `{key}` line (first at line "
                                                f"{seen[key]}): more than one host in the file?")
            seen[key] = n
        out.append((key, value.strip(), n))
    if not ({"xen_major", "xen_minor"} <= seen.keys() or "xen_version" in seen):
        raise InputFileError(source, None, "no xen_major/xen_minor or xen_version line: "
                                           "not `xl info` output")
    return XlInfo(source, tuple(out))


_CHANGESET_RE = re.compile(r"(.*?)\s*git:([0-9a-fA-F]{4,40})(-dirty)?\s*")


def parse_changeset(value: str) -> tuple[datetime | None, str | None]:
    """``xen_changeset`` (``Fri Sep 12 16:39:44 2014 +0530 git:4218cde``) -> (date, hash)."""
    m = _CHANGESET_RE.fullmatch(value)
    if m is None:
        return None, None
    when = " ".join(m.group(1).split())
    try:
        return datetime.strptime(when, "%a %b %d %H:%M:%S %Y %z"), m.group(2)
    except ValueError:
        return None, m.group(2)
