"""Find the guest inputs under the paths given to `xenvmmu audit`.

Files named on the command line are always read (xl.cfg, or ``xl list -l`` JSON recognised
by content). Directories are walked recursively, following symbolic links once each (a loop is
reported, not followed); in them ``*.cfg`` files are xl.cfg and any other file counts only if
its content is JSON. Unreadable files, loops and oversized files become ``InputError``s and the
scan goes on. Nothing read is ever executed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from .findings import InputError

MAX_FILE_BYTES = 64 * 1024 * 1024  # an input larger than this is refused, not read
CONFIG_SUFFIXES = (".cfg",)


@dataclass(frozen=True)
class Input:
    """One input file and what it holds."""

    path: str
    kind: Literal["xlcfg", "json"]
    data: bytes


def looks_like_json(data: bytes) -> bool:
    """True when the first non-blank byte opens a JSON array or object."""
    head = data.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    return head in (b"[", b"{")


def scan(paths: Sequence[str]) -> tuple[list[Input], list[InputError]]:
    """Inputs and errors, in a stable order (arguments in order, directory entries sorted)."""
    inputs: list[Input] = []
    errors: list[InputError] = []
    for path in paths:
        for item in _expand(path, errors):
            inputs.append(item)
    return inputs, errors


def _expand(path: str, errors: list[InputError]) -> Iterator[Input]:
    try:
        st = os.stat(path)
    except OSError as e:
        errors.append(InputError(path, None, _why(e)))
        return
    if stat.S_ISDIR(st.st_mode):
        yield from _walk(path, errors)
    elif stat.S_ISREG(st.st_mode):
        item = _read(path, st.st_size, errors, explicit=True)
        if item is not None:
            yield item
    else:
        errors.append(InputError(path, None, "not a regular file or directory"))


def _walk(top: str, errors: list[InputError]) -> Iterator[Input]:
    seen: set[tuple[int, int]] = set()
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
        except OSError as e:
            errors.append(InputError(d, None, _why(e)))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            errors.append(InputError(d, None, "symbolic link loop: directory already scanned"))
            continue
        seen.add(key)
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            errors.append(InputError(d, None, _why(e)))
            continue
        subdirs: list[str] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files and directories (editor swap files, .git)
            full = os.path.join(d, entry.name)
            try:
                est = os.stat(full)
            except OSError as e:
                errors.append(InputError(full, None, _why(e)))
                continue
            if stat.S_ISDIR(est.st_mode):
                subdirs.append(full)
            elif stat.S_ISREG(est.st_mode):
                item = _read(full, est.st_size, errors, explicit=False)
                if item is not None:
                    yield item
        stack.extend(reversed(subdirs))  # depth first, in name order


def _read(path: str, size: int, errors: list[InputError], *, explicit: bool) -> Input | None:
    is_cfg = path.endswith(CONFIG_SUFFIXES)
    if not explicit and not is_cfg and not path.endswith(".json") and size > 4 * 1024 * 1024:
        return None  # a large unrelated file in a scanned directory
    if size > MAX_FILE_BYTES:
        errors.append(
            InputError(path, None, f"file too large ({size} bytes; limit {MAX_FILE_BYTES})")
        )
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        errors.append(InputError(path, None, _why(e)))
        return None
    if len(data) > MAX_FILE_BYTES:
        errors.append(InputError(path, None, f"file too large (limit {MAX_FILE_BYTES} bytes)"))
        return None
    if not is_cfg and looks_like_json(data):
        return Input(path, "json", data)
    if is_cfg or explicit:
        return Input(path, "xlcfg", data)
    return None


def _why(e: OSError) -> str:
    return f"cannot read: {e.strerror or e}"
