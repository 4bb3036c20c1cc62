"""Special files and failing outputs: never hang, never clobber, never claim success.

FIFOs (``os.mkfifo``), a device node (``os.mknod``, as root), ``/dev/zero``, a file swapped
for a FIFO between ``stat`` and ``open``, a full disk (``/dev/full`` for stdout; a tiny tmpfs
for ``--output``, as root), a closed pipe. Every command runs under an alarm: a hang fails
the test instead of stalling the suite.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from xenvmmu import xlcfg
from xenvmmu.audit.scan import scan
from xenvmmu.cli import main

from .conftest import REPO
from .hostile.harness import Result, alarm, check_report, run

GUEST = 'name = "g"\nbuilder = "hvm"\nmemory = 4096\n'
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def guest(tmp_path: Path) -> Path:
    p = tmp_path / "g.cfg"
    p.write_text(GUEST)
    return p


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    p = tmp_path / "fifo"
    os.mkfifo(p)
    return p


def _python(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "xenvmmu.cli", *args],  # type: ignore[call-overload, no-any-return]
                          env=env, timeout=60, check=False, **kwargs)


# --- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "--host", "{fifo}", "{guest}"],
        ["audit", "--xen-version", "4.4.0", "--costs", "{fifo}", "{guest}"],
        ["audit", "--xen-version", "4.4.0", "{fifo}"],
        ["parse", "{fifo}"],
        ["simulate", "attack", "--memory", "1G", "--costs", "{fifo}"],
    ],
    ids=["host", "costs", "audit-input", "parse", "simulate-costs"],
)
def test_a_fifo_never_blocks(argv: list[str], fifo: Path, guest: Path) -> None:
    result = run([a.format(fifo=fifo, guest=guest) for a in argv], timeout=20)
    assert result.status == 2
    assert "not a regular file" in result.err and "FIFO" in result.err


def test_a_fifo_named_cfg_in_a_scanned_directory(tmp_path: Path, guest: Path) -> None:
    os.mkfifo(tmp_path / "evil.cfg")
    os.mkfifo(tmp_path / "other")  # not a config name: skipped silently
    result = run(["audit", "--xen-version", "4.4.0", "--format", "json", str(tmp_path)], 20)
    assert result.status == 1  # g.cfg is affected; the FIFO is an input error beside it
    assert '"message": "not a regular file (a FIFO)"' in result.out


@pytest.mark.parametrize(
    "argv",
    [
        ["parse", "/dev/zero"],
        ["audit", "--xen-version", "4.4.0", "/dev/zero"],
        ["audit", "--host", "/dev/zero", "{guest}"],
        ["audit", "--xen-version", "4.4.0", "--costs", "/dev/zero", "{guest}"],
    ],
    ids=["parse", "audit-input", "host", "costs"],
)
def test_dev_zero_is_refused_not_read(argv: list[str], guest: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    result = run([a.format(guest=guest) for a in argv], timeout=20)
    assert result.status == 2 and "character device" in result.err


def test_stdin_is_read_with_a_byte_budget() -> None:
    with open("/dev/zero", "rb") as zero:
        res = _python("parse", "-", stdin=zero)
    assert res.returncode == 2
    assert b"input too large (more than 8388608 bytes)" in res.stderr
    assert b"Traceback" not in res.stderr


def test_stdin_within_the_budget_parses() -> None:
    res = _python("parse", "-", input=b'name = "x"\n')
    assert res.returncode == 0 and res.stdout.startswith(b"-: ok")


def test_a_file_swapped_for_a_fifo_after_stat_is_caught_on_the_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scanner and the readers stat a path, then open it: if it became a FIFO in
    between, the non-blocking open returns and fstat of the descriptor refuses it."""
    regular = tmp_path / "regular"
    regular.write_text("x")
    swapped = tmp_path / "vm.cfg"
    os.mkfifo(swapped)
    real_stat = os.stat

    def stale_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if os.fspath(path) == str(swapped):  # type: ignore[call-overload]
            return real_stat(regular)  # what the path was when it was listed
        return real_stat(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "stat", stale_stat)
    with alarm(20):
        with pytest.raises(xlcfg.InputRejected, match="a FIFO"):
            xlcfg.read_bytes(swapped)
        items, errors = scan([str(tmp_path)])
    assert items == [] and [e.message for e in errors] == ["not a regular file (a FIFO)"]


@pytest.mark.skipif(not IS_ROOT, reason="os.mknod of a device node needs root")
def test_a_device_node_is_neither_read_nor_replaced(tmp_path: Path, guest: Path) -> None:
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError as e:  # a container without CAP_MKNOD
        pytest.skip(f"mknod refused: {e}")
    result = run(["audit", "--xen-version", "4.4.0", "--output", str(node), str(guest)], 20)
    assert result.status == 2 and "not a regular file (a character device)" in result.err
    assert stat.S_ISCHR(node.stat().st_mode)  # still the device, not a report
    result = run(["audit", "--xen-version", "4.4.0", str(node)], 20)
    assert result.status == 2 and "character device" in result.err
    result = run(["parse", str(node)], 20)
    assert result.status == 2 and "character device" in result.err


def test_input_above_the_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.cfg"
    with big.open("wb") as f:
        f.truncate(xlcfg.MAX_INPUT_BYTES + 1)
    result = run(["parse", str(big)])
    assert result.status == 2 and "file too large" in result.err
    result = run(["audit", "--xen-version", "4.4.0", str(big)])
    assert result.status == 2 and "file too large" in result.err


# --- --output --------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["fifo", "directory", "dev-null"])
def test_output_refuses_what_is_not_a_regular_file(
    what: str, tmp_path: Path, fifo: Path, guest: Path
) -> None:
    target = {"fifo": fifo, "directory": tmp_path, "dev-null": Path("/dev/null")}[what]
    before = os.stat(target)
    result = run(["audit", "--xen-version", "4.4.0", "--output", str(target), str(guest)], 20)
    assert result.status == 2
    assert f"cannot write {target}: not a regular file" in result.err
    after = os.stat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (
        before.st_mode, before.st_ino, before.st_rdev)


def test_output_follows_a_symlink_and_takes_the_umask_mode(tmp_path: Path, guest: Path) -> None:
    real = tmp_path / "reports" / "xsa97.json"
    real.parent.mkdir()
    real.write_text("old\n")
    os.chmod(real, 0o666)  # a world-writable file must not make a world-writable report
    link = tmp_path / "latest.json"
    os.symlink(real, link)
    old = os.umask(0o027)
    try:
        result = run(["audit", "--xen-version", "4.4.0", "--format", "json", "--output",
                      str(link), str(guest)])
    finally:
        os.umask(old)
    assert result.status == 1 and result.out == ""
    assert link.is_symlink() and os.readlink(link) == str(real)
    check_report("json", real.read_text())
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["xsa97.json"]


def test_the_output_file_is_not_read_back(tmp_path: Path, guest: Path) -> None:
    out = tmp_path / "report.json"
    argv = ["audit", "--xen-version", "4.4.0", "--format", "json", "--output", str(out),
            str(tmp_path)]
    assert run(argv).status == 1
    second = run(argv)
    assert second.status == 1 and "1 input file(s), 1 guest(s), 0 input error(s)" in second.err
    # a report of an earlier run left in the directory under another name is not an input
    for fmt in ("json", "sarif", "openvex"):
        assert run([*argv[:4], fmt, "--output", str(tmp_path / f"r.{fmt}"),
                    str(tmp_path)]).status == 1
    third = run(["audit", "--xen-version", "4.4.0", str(tmp_path)])
    assert "1 input file(s), 1 guest(s), 0 input error(s)" in third.err


def test_stdout_on_a_full_disk_exits_2_with_a_message(guest: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    for argv in (["audit", "--xen-version", "4.4.0", str(guest)], ["parse", str(guest)]):
        with open("/dev/full", "wb") as full:
            res = _python(*argv, stdout=full)
        assert res.returncode == 2, res.stderr
        assert b"cannot write the report to standard output: No space left on device" in (
            res.stderr)
        assert b"Traceback" not in res.stderr and b"Exception ignored" not in res.stderr


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    if not IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)],
                         capture_output=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {res.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_output_on_a_full_disk_exits_2_and_keeps_the_old_report(
    tiny_tmpfs: Path, tmp_path: Path
) -> None:
    guests = tmp_path / "guests"
    guests.mkdir()
    for i in range(40):
        (guests / f"g{i}.cfg").write_text(GUEST.replace('"g"', f'"g{i}"'))
    out = tiny_tmpfs / "report.json"
    out.write_text("old\n")
    result = run(["audit", "--xen-version", "4.4.0", "--format", "json", "--output", str(out),
                  str(guests)])
    assert result.status == 2 and "No space left on device" in result.err
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tiny_tmpfs.iterdir()) == ["report.json"]


class _FailingStdout:
    def __init__(self, error: OSError) -> None:
        self.error = error

    def write(self, text: str) -> int:
        raise self.error

    def flush(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [(BrokenPipeError(errno.EPIPE, "Broken pipe"), 0), (OSError(errno.EIO, "I/O error"), 2),
     (OSError(errno.ENOSPC, "No space left on device"), 2)],
    ids=["EPIPE", "EIO", "ENOSPC"],
)
def test_a_failing_stdout(error: OSError, status: int, guest: Path,
                          monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdout", _FailingStdout(error))
    for argv in (["audit", "--xen-version", "4.4.0", str(guest)], ["parse", str(guest)]):
        assert main(argv) == status
        err = capsys.readouterr().err
        if status:
            assert f"cannot write the report to standard output: {error.strerror}" in err


def test_results_are_never_reported_after_a_failed_write(guest: Path) -> None:
    """Exit 1 means "some guest affected": a write failure must not look like it."""
    result: Result = run(["audit", "--xen-version", "4.4.0", "--output",
                          str(guest.parent / "missing" / "r.txt"), str(guest)])
    assert result.status == 2 and "No such file or directory" in result.err
