"""Find the guest inputs under the paths given to `xenvmmu audit`.

Files named on the command line are always read (xl.cfg, or ``xl list -l`` JSON recognised
by content). Directories are walked recursively, following symbolic links once each (a loop is
reported, not followed); in them ``*.cfg`` files are xl.cfg and any other file counts only if
its content is JSON (only its first bytes are read to tell), except xenvmmu's own JSON, SARIF
and OpenVEX reports left there by earlier runs. Hidden entries are skipped.

Only regular files are read: a FIFO, device or socket is reported, never opened, and a file
swapped for one between the directory listing and the ``open`` is caught on the opened
descriptor (``xenvmmu.toolstack.inputs``). Every file is read with the one size limit of all
inputs (``MAX_INPUT_BYTES``). The same file reached twice (a symbolic link such as
``/etc/xen/auto/vm.cfg``, a hard link, a path given twice) is read once: files are identified
by device and inode. Files in ``exclude`` (the report being written) are skipped. Unreadable
files, loops and oversized files become ``InputError``s and the scan goes on. Nothing read is
ever executed.

``-`` among the paths reads one input from standard input (at most ``MAX_INPUT_BYTES``), and
an :class:`InputData` is an input already in memory (a command's output, such as ``xl list
-l`` run by ``audit --live``); both are told apart by content: JSON is ``xl list -l``,
``(domain`` is ``xl list -l`` in its S-expression form (reported as such), anything else is
xl.cfg. An ``xl list -l`` in S-expression form is recognised wherever it is (a named file, a
``*.cfg``, a file in a scanned directory), so that it is reported as what it is rather than
as a config xl rejects.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from ..toolstack.inputs import (
    MAX_INPUT_BYTES,
    InputRejected,
    file_kind,
    read_stream,
)
from ..toolstack.xllist import is_sxp_listing
from ..xlcfg import open_regular
from .findings import InputError

MAX_FILE_BYTES = MAX_INPUT_BYTES  # the scanner's limit is every reader's limit
CONFIG_SUFFIXES = (".cfg",)
_HEAD_BYTES = 4096  # enough to tell whether a file in a scanned directory holds JSON

FileId = tuple[int, int]  # (st_dev, st_ino)
InputKind = Literal["xlcfg", "json", "sxp"]
#: The path that means standard input, and the name its input is reported under.
STDIN_PATH = "-"
STDIN_SOURCE = "<stdin>"


@dataclass(frozen=True)
class InputData:
    """An input already in memory: ``source`` names it in reports (``"xl list -l"``), ``data``
    is what it holds (xl.cfg or ``xl list -l`` output, told apart by content)."""

    source: str
    data: bytes


@dataclass(frozen=True)
class Input:
    """One input file and what it holds.

    ``root`` is the directory the file was found under (the directory argument, or the
    directory of a file argument): a file whose real path is outside it was reached through
    a symbolic link leaving the scanned tree (:meth:`leaves_tree`).
    """

    path: str
    kind: InputKind
    data: bytes
    root: str = field(default="", compare=False)

    def real_path(self) -> str:
        return os.path.realpath(self.path)

    def leaves_tree(self) -> bool:
        """True when the file's real path is outside the scanned tree (a symbolic link
        such as ``vm.cfg -> /etc/shadow``)."""
        if not self.root:
            return False
        top = os.path.realpath(self.root)
        real = self.real_path()
        return not (real == top or real.startswith(top.rstrip(os.sep) + os.sep))


# What xenvmmu's own JSON reports start with (audit JSON, SARIF, OpenVEX): a report left in a
# scanned directory by an earlier run is not an input.
_OWN_REPORT = re.compile(
    rb'\s*\{\s*"(?:schema"\s*:\s*"xenvmmu\.|\$schema"\s*:\s*"https://docs\.oasis-open\.org/sarif'
    rb'|@context"\s*:\s*"https://openvex\.dev)'
)


def is_own_report(head: bytes) -> bool:
    """True for the start of a JSON report xenvmmu wrote (``--format json/sarif/openvex``)."""
    return _OWN_REPORT.match(head) is not None


def looks_like_json(data: bytes) -> bool:
    """True when the first non-blank byte opens a JSON array or object."""
    head = data.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    return head in (b"[", b"{")


def content_kind(data: bytes) -> InputKind:
    """What an input holds, by content alone: ``json`` (``xl list -l``), ``sxp`` (``xl list
    -l`` in S-expression form) or ``xlcfg``."""
    if looks_like_json(data):
        return "json"
    if is_sxp_listing(data):
        return "sxp"
    return "xlcfg"


def file_ids(paths: Iterable[str | os.PathLike[str]]) -> frozenset[FileId]:
    """(device, inode) of those of ``paths`` that exist (symbolic links followed)."""
    ids: set[FileId] = set()
    for p in paths:
        try:
            st = os.stat(p)
        except (OSError, ValueError):
            continue
        ids.add((st.st_dev, st.st_ino))
    return frozenset(ids)


def scan(
    paths: Sequence[str | InputData], exclude: frozenset[FileId] = frozenset(),
    stdin: BinaryIO | None = None,
) -> tuple[list[Input], list[InputError]]:
    """Inputs and errors, in a stable order (arguments in order, directory entries sorted).

    Each file is read once however many ways it is reached; files whose (device, inode) is
    in ``exclude`` are skipped silently. ``-`` reads ``stdin`` (default: the process's
    standard input) once, as ``<stdin>``; an :class:`InputData` is taken as it is.
    """
    scanner = _Scanner(set(exclude))
    inputs: list[Input] = []
    stdin_read = False
    for path in paths:
        if isinstance(path, InputData):
            inputs.append(Input(path.source, content_kind(path.data), path.data))
        elif path == STDIN_PATH:
            if stdin_read:
                scanner.error(STDIN_SOURCE, "standard input given twice: it holds one input")
                continue
            stdin_read = True
            item = scanner.read_stdin(stdin if stdin is not None else sys.stdin.buffer)
            if item is not None:
                inputs.append(item)
        else:
            inputs.extend(scanner.expand(path))
    return inputs, scanner.errors


class _Scanner:
    def __init__(self, seen: set[FileId]) -> None:
        self.seen = seen  # files already read (or excluded)
        self.errors: list[InputError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(InputError(path, None, message))

    def expand(self, path: str) -> Iterator[Input]:
        try:
            st = os.stat(path)
        except (OSError, ValueError) as e:
            self.error(path, _why(e))
            return
        if stat.S_ISDIR(st.st_mode):
            yield from self.walk(path)
        elif stat.S_ISREG(st.st_mode):
            root = os.path.dirname(os.path.abspath(path))
            item = self.read(path, root, explicit=True)
            if item is not None:
                yield item
        else:
            self.error(path, f"not a regular file or directory ({file_kind(st.st_mode)})")

    def walk(self, top: str) -> Iterator[Input]:
        dirs_seen: set[FileId] = set()
        stack = [top]
        while stack:
            d = stack.pop()
            try:
                st = os.stat(d)
            except OSError as e:
                self.error(d, _why(e))
                continue
            key = (st.st_dev, st.st_ino)
            if key in dirs_seen:
                self.error(d, "symbolic link loop: directory already scanned")
                continue
            dirs_seen.add(key)
            try:
                with os.scandir(d) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as e:
                self.error(d, _why(e))
                continue
            subdirs: list[str] = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue  # hidden files and directories (editor swap files, .git)
                full = os.path.join(d, entry.name)
                try:
                    est = os.stat(full)
                except OSError as e:
                    self.error(full, _why(e))
                    continue
                if stat.S_ISDIR(est.st_mode):
                    subdirs.append(full)
                elif stat.S_ISREG(est.st_mode):
                    if (est.st_dev, est.st_ino) in self.seen:
                        continue  # read already (a link to it), or the report being written
                    item = self.read(full, top, explicit=False)
                    if item is not None:
                        yield item
                elif full.endswith(CONFIG_SUFFIXES):
                    self.error(full, f"not a regular file ({file_kind(est.st_mode)})")
            stack.extend(reversed(subdirs))  # depth first, in name order

    def read_stdin(self, stream: BinaryIO) -> Input | None:
        """Standard input as one input (``MAX_INPUT_BYTES`` at most), kind by content."""
        try:
            data = read_stream(stream, STDIN_SOURCE, MAX_INPUT_BYTES)
        except InputRejected as e:
            self.error(STDIN_SOURCE, e.strerror or "cannot read")
            return None
        except OSError as e:
            self.error(STDIN_SOURCE, _why(e))
            return None
        return Input(STDIN_SOURCE, content_kind(data), data)

    def read(self, path: str, root: str, *, explicit: bool) -> Input | None:
        is_cfg = path.endswith(CONFIG_SUFFIXES)
        try:
            with open_regular(path, MAX_INPUT_BYTES) as f:
                st = os.fstat(f.fileno())
                key = (st.st_dev, st.st_ino)
                if key in self.seen:
                    return None  # the same file reached another way, or the output file
                head = b""
                if not explicit and not is_cfg:
                    head = f.read(_HEAD_BYTES)
                    if is_sxp_listing(head):
                        pass  # an `xl list -l` in S-expression form: reported, not skipped
                    elif not looks_like_json(head) or is_own_report(head):
                        return None  # an unrelated file, or a report of an earlier run
                data = read_stream(f, path, MAX_INPUT_BYTES, head=head)
        except InputRejected as e:
            self.error(path, e.strerror or "cannot read")
            return None
        except OSError as e:
            self.error(path, _why(e))
            return None
        self.seen.add(key)
        if is_sxp_listing(data):
            return Input(path, "sxp", data, root)
        if not is_cfg and looks_like_json(data):
            return Input(path, "json", data, root)
        if is_cfg or explicit:
            return Input(path, "xlcfg", data, root)
        return None


def _why(e: OSError | ValueError) -> str:
    if isinstance(e, OSError):
        return f"cannot read: {e.strerror or e}"
    return f"cannot read: invalid path ({e})"
