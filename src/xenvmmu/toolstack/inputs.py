"""Input files: reading what an operator collected, and refusing what cannot be used.

Every loader (``xl info``, xl.cfg, ``xl list -l``) reads its file with ``read_input`` and,
for text formats, checks it with ``decode_text``; both raise ``InputFileError``, whose
message names the file (and line) for a report. Nothing is executed. Only regular files are
read (a FIFO, device, socket or directory is refused without blocking, even one swapped in
after the path was checked), and a file larger than ``MAX_INPUT_BYTES`` — the one limit of
every reader and of the ``audit`` scanner — is refused before it is read in full
(``xenvmmu.xlcfg.read_bytes``).
"""

from __future__ import annotations

import os

from ..xlcfg import MAX_INPUT_BYTES, InputRejected, file_kind, read_bytes, read_stream

#: A UTF-8 byte-order mark, as Windows editors and PowerShell's ``Out-File`` write it.
UTF8_BOM = b"\xef\xbb\xbf"

__all__ = [
    "MAX_INPUT_BYTES",
    "UTF8_BOM",
    "InputFileError",
    "InputRejected",
    "decode_text",
    "file_kind",
    "read_input",
    "read_stream",
]


class InputFileError(ValueError):
    """An input file that cannot be used; the message names the file (and line)."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


def read_input(path: str | os.PathLike[str]) -> bytes:
    """Read an input file's bytes; OS errors, files that are not regular (FIFO, device...)
    and files above ``MAX_INPUT_BYTES`` are an ``InputFileError``."""
    name = os.fspath(path)
    try:
        return read_bytes(name)
    except InputRejected as e:
        raise InputFileError(name, None, f"cannot read: {e.strerror}") from None
    except OSError as e:
        raise InputFileError(name, None, f"cannot read: {e.strerror or e}") from None


def decode_text(data: bytes | str, source: str, what: str) -> str:
    """Text of an input; binary data (a NUL byte) or an empty file is an ``InputFileError``.
    A leading UTF-8 byte-order mark is dropped (JSON and ``xl info`` saved by a Windows
    editor carry one; it is not part of the content)."""
    if isinstance(data, str):
        text = data
    else:
        if len(data) > MAX_INPUT_BYTES:
            raise InputFileError(source, None, f"larger than {MAX_INPUT_BYTES} bytes")
        text = data.decode("utf-8", "replace")
    text = text.removeprefix("\ufeff")
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise InputFileError(source, line, f"binary data (NUL byte): not {what}")
    if not text.strip():
        raise InputFileError(source, None, f"empty file: expected {what}")
    return text
