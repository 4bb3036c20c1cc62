"""The live dom0 reader: run ``xl info`` and ``xl list -l`` and keep what they print.

``xenvmmu audit --live`` audits the host it runs on: :func:`read_live` runs the ``xl`` on
``PATH`` (or the one given) twice, as an argument list (never through a shell), with standard
input closed and a timeout per command, and returns both outputs as bytes, which are read
exactly as the same outputs saved to files would be (``parse_xl_info``/``host_from_xl_info``,
``guests_from_xl_list``). Each output is bounded like every input (``MAX_INPUT_BYTES``: the
command is stopped past it), and what ``xl`` prints on stderr is kept (the last
``MAX_STDERR_BYTES``) to be shown: libxl logs there. No ``xl``, an ``xl`` that cannot be run,
fails (non-zero exit status, killed by a signal), prints too much or does not finish in time
is a :class:`LiveError` whose message says which and carries xl's stderr.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .inputs import MAX_INPUT_BYTES

__all__ = ["MAX_STDERR_BYTES", "XL_TIMEOUT_S", "LiveError", "LiveOutputs", "find_xl",
           "read_live", "run_xl"]

#: Seconds each ``xl`` command may take. ``xl list -l`` reads every domain's saved
#: configuration from xenstore: about a millisecond each, so a full host takes well under
#: this; a hung xenstored must not hang the audit.
XL_TIMEOUT_S = 60.0
#: How much of ``xl``'s stderr is kept to be shown (its end: the error is usually last).
MAX_STDERR_BYTES = 64 << 10
_READ = 1 << 16


class LiveError(Exception):
    """``xl`` could not be found or run, or it failed; the message says which, with the
    command and what ``xl`` printed on stderr."""


@dataclass(frozen=True)
class LiveOutputs:
    """What ``xl info`` and ``xl list -l`` printed, and what they said on stderr."""

    xl: str
    info: bytes
    listing: bytes
    info_stderr: str = ""
    listing_stderr: str = ""


def find_xl(xl: str | None = None) -> str:
    """The ``xl`` to run: ``xl`` as given (a path, or a name looked up on ``PATH``), else
    ``xl`` on ``PATH``; :class:`LiveError` when there is none."""
    name = xl or "xl"
    if os.sep in name or (os.altsep and os.altsep in name):
        return name  # a path: run as given (errors are reported when it is run)
    found = shutil.which(name)
    if found is None:
        where = os.environ.get("PATH", os.defpath)
        raise LiveError(f"no `{name}` on PATH ({where}): run this in dom0 as root, or give "
                        "the xl to run with --xl PATH")
    return found


def run_xl(xl: str, args: Sequence[str], timeout: float = XL_TIMEOUT_S,
           limit: int = MAX_INPUT_BYTES) -> tuple[bytes, str]:
    """Run ``xl ARGS``; its stdout (at most ``limit`` bytes) and the end of its stderr.

    The command gets no standard input and runs without a shell. :class:`LiveError` when it
    cannot be started, exits non-zero or by a signal, prints more than ``limit`` bytes, or
    has not finished after ``timeout`` seconds (it is then killed).
    """
    command = " ".join([xl, *args])
    try:
        # a session of its own: a wrapper script's children are stopped with it
        proc = subprocess.Popen(
            [xl, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, close_fds=True, start_new_session=True,
        )
    except OSError as e:
        raise LiveError(f"cannot run {xl}: {e.strerror or e}") from None
    try:
        out, err, problem = _collect(proc, timeout, limit)
    except BaseException:  # Ctrl-C: do not leave xl behind
        _kill(proc)
        raise
    stderr = _text(err)
    if problem is not None:
        raise LiveError(f"`{command}` {problem}{_said(stderr)}")
    status = proc.returncode
    if status != 0:
        how = (f"was killed by signal {-status}" if status < 0
               else f"failed (exit status {status})")
        raise LiveError(f"`{command}` {how}{_said(stderr)}")
    return out, stderr


def read_live(xl: str | None = None, timeout: float = XL_TIMEOUT_S) -> LiveOutputs:
    """Run ``xl info`` and ``xl list -l`` (the ``xl`` of :func:`find_xl`)."""
    path = find_xl(xl)
    info, info_err = run_xl(path, ["info"], timeout)
    listing, listing_err = run_xl(path, ["list", "-l"], timeout)
    return LiveOutputs(path, info, listing, info_err, listing_err)


def _collect(proc: subprocess.Popen[bytes], timeout: float,
             limit: int) -> tuple[bytes, bytes, str | None]:
    """Read the process's stdout and stderr to their end (stdout at most ``limit`` bytes,
    the last ``MAX_STDERR_BYTES`` of stderr) within ``timeout`` seconds, and reap it.
    Returns (stdout, stderr, what went wrong or None); on a problem the process is killed."""
    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout
    out: list[bytes] = []
    size = 0
    err = bytearray()
    problem: str | None = None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, "out")
        sel.register(proc.stderr, selectors.EVENT_READ, "err")
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                problem = f"did not finish within {timeout:g} s"
                break
            for key, _ in sel.select(left):
                fd = key.fileobj
                assert not isinstance(fd, int)
                chunk = os.read(fd.fileno(), _READ)
                if not chunk:
                    sel.unregister(fd)
                elif key.data == "out":
                    out.append(chunk)
                    size += len(chunk)
                else:
                    err += chunk
                    del err[:-MAX_STDERR_BYTES]
            if size > limit:
                problem = f"printed more than {limit} bytes (the limit of every input)"
                break
    if problem is not None:
        _kill(proc)
    try:
        proc.wait(max(deadline - time.monotonic(), 1.0) if problem is None else None)
    except subprocess.TimeoutExpired:  # closed its output but does not exit
        _kill(proc)
        problem = f"did not finish within {timeout:g} s"
    proc.stdout.close()
    proc.stderr.close()
    return b"".join(out), bytes(err), problem


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Stop the command and whatever it started (its process group), and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:  # gone already, or not allowed: the process itself at least
        proc.kill()
    proc.wait()


def _text(data: bytes) -> str:
    """stderr as text for a message: undecodable bytes and control characters other than
    newlines and tabs escaped (nothing xl prints can drive the terminal), trailing blank
    lines cut."""
    text = data.decode("utf-8", "backslashreplace").rstrip()
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else
                   c.encode("unicode_escape").decode("ascii") for c in text)


def _said(stderr: str) -> str:
    return f"; it said:\n{stderr}" if stderr else " (nothing on stderr)"
