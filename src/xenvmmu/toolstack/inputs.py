"""Input files: reading what an operator collected, and refusing what cannot be used.

Every loader (``xl info``, xl.cfg, ``xl list -l``) reads its file with ``read_input`` and,
for text formats, checks it with ``decode_text``; both raise ``InputFileError``, whose
message names the file (and line) for a report. Nothing is executed; a file larger than
``MAX_INPUT_BYTES`` is not xl output and is refused before it is read in full.
"""

from __future__ import annotations

import os

MAX_INPUT_BYTES = 4 << 20  # far above any real `xl info` / `xl list -l` output


class InputFileError(ValueError):
    """An input file that cannot be used; the message names the file (and line)."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


def read_input(path: str | os.PathLike[str]) -> bytes:
    """Read an input file's bytes, turning OS errors and huge files into ``InputFileError``."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as e:
        raise InputFileError(name, None, f"cannot read: {e.strerror or e}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputFileError(name, None, f"larger than {MAX_INPUT_BYTES} bytes: not xl output")
    return data


def decode_text(data: bytes | str, source: str, what: str) -> str:
    """Text of an input; binary data (a NUL byte) or an empty file is an ``InputFileError``."""
    if isinstance(data, str):
        text = data
    else:
        if len(data) > MAX_INPUT_BYTES:
            raise InputFileError(source, None, f"larger than {MAX_INPUT_BYTES} bytes")
        text = data.decode("utf-8", "replace")
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise InputFileError(source, line, f"binary data (NUL byte): not {what}")
    if not text.strip():
        raise InputFileError(source, None, f"empty file: expected {what}")
    return text
