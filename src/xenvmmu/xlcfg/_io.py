"""Reading input files without hanging, without exhausting memory, without opening devices.

Every input xenvmmu reads — xl.cfg, ``xl list -l`` JSON, ``xl info`` text, cost TOML — goes
through :func:`read_bytes` (a path) or :func:`read_stream` (standard input), with ONE size
limit, :data:`MAX_INPUT_BYTES`. A path is accepted only if it is a regular file: it is
``stat``-ed first (a FIFO, device, socket or directory is never opened), then opened with
``O_NONBLOCK`` (so a file swapped for a FIFO in between cannot block the ``open``), and the
*opened descriptor* is checked again with ``fstat`` before a single byte is read; reads stop
one byte past the limit. The module lives in the lowest layer so that ``xenvmmu parse`` can
use it without loading anything else.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

#: The size limit of every input file, in bytes. Real inputs are far smaller: an xl.cfg is a
#: few KiB, ``xl info`` about 2 KiB, ``xl list -l`` about 6 KiB per domain (8 MiB is ~1,400
#: domains), a cost profile a few KiB. A larger file is refused, not read.
MAX_INPUT_BYTES = 8 << 20

_CHUNK = 1 << 20
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class InputRejected(OSError):
    """A path that is not read: not a regular file, or larger than the limit.

    ``strerror`` says why in words (``not a regular file (a FIFO)``), ``filename`` is the path.
    """


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, for a message: ``a FIFO``, ``a character device``..."""
    for test, kind in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def check_regular(st: os.stat_result, name: str, limit: int = MAX_INPUT_BYTES) -> None:
    """Raise :class:`InputRejected` unless ``st`` is a regular file of at most ``limit``
    bytes."""
    if not stat.S_ISREG(st.st_mode):
        raise InputRejected(errno.EINVAL, f"not a regular file ({file_kind(st.st_mode)})", name)
    if st.st_size > limit:
        raise InputRejected(
            errno.EFBIG, f"file too large ({st.st_size} bytes; limit {limit})", name
        )


def open_regular(path: str | os.PathLike[str], limit: int = MAX_INPUT_BYTES) -> BinaryIO:
    """Open a regular file for reading, or raise ``OSError`` (:class:`InputRejected` for a
    file that is not regular or too large) without blocking and without opening anything
    else. The caller reads it with :func:`read_stream` and closes it."""
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except ValueError as e:  # a NUL byte in the path
        raise InputRejected(errno.EINVAL, f"invalid path ({e})", name) from None
    check_regular(st, name, limit)  # never open a device, FIFO or socket
    fd = os.open(name, _OPEN_FLAGS)
    try:
        check_regular(os.fstat(fd), name, limit)  # what was opened, not what was stat-ed
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_stream(stream: BinaryIO, name: str, limit: int = MAX_INPUT_BYTES,
                head: bytes = b"") -> bytes:
    """Read ``stream`` to its end, refusing more than ``limit`` bytes in all (``head``,
    bytes already read from it, counts): :class:`InputRejected` after reading one byte past
    the limit, never more."""
    chunks = [head]
    total = len(head)
    while total <= limit:
        chunk = stream.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise InputRejected(errno.EFBIG, f"input too large (more than {limit} bytes)", name)
    return b"".join(chunks)


def read_bytes(path: str | os.PathLike[str], limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``OSError`` otherwise
    (:class:`InputRejected` for a FIFO, device, socket, directory or oversized file)."""
    name = os.fspath(path)
    with open_regular(name, limit) as f:
        return read_stream(f, name, limit)
