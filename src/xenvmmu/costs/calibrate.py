"""Calibration: this machine's nanoseconds per unit of work, measured with shape kernels.

``xenvmmu calibrate`` runs this on the dom0 of the host being audited. The shape kernels
(``shapes.c`` beside this module, compiled at run time with the system C compiler at -O2)
are small C loops with the memory-access and locking shape of the work Xen's paging code does
per unit counted by :class:`xenvmmu.model.work.Work`; they are not Xen code. Each kernel runs
once untimed, then ``repeat`` times; a unit's figure is the median over the repetitions:

=================  ==========================================================================
unit               kernel (per unit)
=================  ==========================================================================
entries_read       4-level sweep, 512 entries per table, leaf tables reached through
                   scrambled upper tables: load each 8-byte entry, compare its 6-bit type
                   (nothing matches)
entries_written    the same sweep rewriting the type of every entry, minus the read-only pass
                   (the model counts a rewriting sweep as both units per entry)
lock_round_trips   the rewrite with a spinlock round trip and a 4-word CPU-mask test around
                   each entry write, through a function pointer (4.4 NPT), minus the rewrite
bytes_copied       scattered 4 KiB bitmap pages copied to a contiguous buffer
bytes_zeroed       the scattered pages zeroed
bytes_scanned      the scattered pages read word by word up to their first non-zero word,
                   the last (the PoD zero check's loop)
hash_hops          records in 251 singly linked chains unlinked in scrambled order, each
                   deletion walking its chain to the predecessor: time / hops
refcount_drops     two compare-and-swap decrement loops per present entry of 512-entry pages,
                   on scattered 32-byte frame descriptors, minus entries_read
pages_allocated    pop from a doubly linked free list of scattered page descriptors
pages_freed        push onto that free list
=================  ==========================================================================

The other units (map_domain_page, the heap, dirty marks, shadow bookkeeping, TLB flushes and
their IPIs, VM exits) are not measurable from dom0: :func:`profile_toml` keeps their default
ranges and sources. Without a C compiler :func:`calibrate` raises :class:`NoCompilerError`,
unless ``use_compiler=False``: then only the sequential units (bytes copied and zeroed) are
measured, with numpy.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import tempfile
import textwrap
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..model.work import FIELDS
from .profile import SCHEMA, CostProfile, CostProfileError, default_profile

#: Called with a message and whether it is transient (a repetition done: a terminal may
#: overwrite it) or a line to keep.
Progress = Callable[[str, bool], None]

KERNEL_SOURCE = "shapes.c"
COMPILERS = ("cc", "gcc", "clang")
CFLAGS = ("-O2", "-std=c11")
DEFAULT_REPEAT = 5
QUICK_REPEAT = 3
MAX_REPEAT = 100
#: A difference of two passes that is not above the noise is recorded as this, not as 0.
FLOOR_NS = 0.01
MIB = 1 << 20
PAGE = 4096
ENTRY_BYTES = 8
SLOTS = 512
RECORD_BYTES = 32


class CalibrationError(RuntimeError):
    """Calibration cannot go on; the message says why and what to do."""


class NoCompilerError(CalibrationError):
    """No C compiler: the shape kernels cannot be built."""


@dataclass(frozen=True)
class Plan:
    """What each kernel works on. Full sizes are the model's worst cases where a working set
    decides the figure (a 2 GiB shadow pool, a 16 GiB guest's frames); ``quick`` keeps
    every kernel well under a second."""

    quick: bool
    repeat: int
    sweep_leaves: int  # leaf tables of 512 entries
    bitmap_pages: int
    hash_records: int
    hash_deletions: int
    ref_frames: int
    freelist_pages: int
    reduced: bool = False  # working sets cut to fit the memory available

    @property
    def sweep_bytes(self) -> int:
        return self.sweep_leaves * SLOTS * ENTRY_BYTES


def make_plan(quick: bool = False, repeat: int | None = None,
              mem_available: int | None = None, llc_bytes: int | None = None) -> Plan:
    """The kernels' sizes. The full sweep covers twice the last-level cache (256 MiB to
    1 GiB), as a large guest's p2m exceeds any cache; every working set is cut (halved) to
    fit a quarter of ``mem_available`` (a small dom0)."""
    reps = repeat if repeat is not None else (QUICK_REPEAT if quick else DEFAULT_REPEAT)
    if not 1 <= reps <= MAX_REPEAT:
        raise ValueError(f"--repeat must be in 1..{MAX_REPEAT}, not {reps}")
    if quick:
        sweep = 64 * MIB
        sizes = {"bitmap": 8192, "hash": 1 << 18, "refs": 1 << 21, "freelist": 1 << 18}
        deletions = 1024
    else:
        sweep = min(max(2 * (llc_bytes or 0), 256 * MIB), 1024 * MIB)
        sizes = {"bitmap": 32768, "hash": 1 << 19, "refs": 1 << 22, "freelist": 1 << 19}
        deletions = 8192
    cap = mem_available // 4 if mem_available else None
    reduced = False
    if cap is not None:
        while sweep > 16 * MIB and sweep * 1.01 > cap:
            sweep //= 2
            reduced = True
        # bytes per unit of each kernel's working set
        per = {"bitmap": 2 * PAGE + 4, "hash": 4 * (RECORD_BYTES + 4),
               "refs": RECORD_BYTES + 8 + 4, "freelist": 4 * (RECORD_BYTES + 4) + 4}
        for k in sizes:
            while sizes[k] > 1024 and sizes[k] * per[k] > cap:
                sizes[k] //= 2
                reduced = True
    return Plan(
        quick=quick, repeat=reps, sweep_leaves=sweep // (SLOTS * ENTRY_BYTES),
        bitmap_pages=sizes["bitmap"], hash_records=sizes["hash"],
        hash_deletions=min(deletions, sizes["hash"]), ref_frames=sizes["refs"],
        freelist_pages=sizes["freelist"], reduced=reduced,
    )


@dataclass(frozen=True)
class Machine:
    """Where the calibration ran."""

    hostname: str
    cpu: str
    environment: str  # "Xen dom0 (PV)", "not a Xen domain: a virtual machine", ...
    xen_dom0: bool
    date: str  # ISO 8601, UTC
    kernel: str
    llc_bytes: int | None
    mem_available: int | None


@dataclass(frozen=True)
class Measurement:
    """One unit's figure: ``ns`` per unit, the median of ``samples`` (one per repetition)."""

    unit: str
    ns: float
    samples: tuple[float, ...]
    kernel: str  # what was measured, for the source
    floored: bool = False  # a difference not above the noise, recorded as FLOOR_NS


@dataclass(frozen=True)
class Calibration:
    machine: Machine
    plan: Plan
    measured: Mapping[str, Measurement]
    compiler: str | None  # "/usr/bin/cc (gcc (Debian 12.2.0-14) 12.2.0)"; None: numpy only
    seconds: float

    def source(self, unit: str) -> str:
        m = self.measured[unit]
        mode = ", --quick: small working sets, indicative" if self.plan.quick else ""
        floored = (f"; the difference was not above the noise and is recorded as "
                   f"{FLOOR_NS} ns" if m.floored else "")
        return (f"measured by xenvmmu calibrate on {self.machine.hostname} "
                f"({self.machine.environment}; shape kernel: {m.kernel}), median of "
                f"{len(m.samples)}{mode}{floored}")


# ----------------------------------------------------------------------- the machine


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""


def _cpuinfo_field(text: str, *names: str) -> str:
    for name in names:
        m = re.search(rf"(?im)^{re.escape(name)}\s*:\s*(.+?)\s*$", text)
        if m:
            return m.group(1)
    return ""


def _size(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)\s*", text)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def _last_level_cache() -> int | None:
    best: tuple[int, int] | None = None
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    try:
        entries = sorted(base.glob("index*"))
    except OSError:
        return None
    for d in entries:
        level, size = _read(str(d / "level")).strip(), _size(_read(str(d / "size")))
        if level.isdigit() and size and (best is None or int(level) >= best[0]):
            best = (int(level), size)
    return best[1] if best else None


def _mem_available() -> int | None:
    m = re.search(r"(?m)^MemAvailable:\s+(\d+)\s+kB", _read("/proc/meminfo"))
    return int(m.group(1)) * 1024 if m else None


def _environment(cpuinfo: str) -> tuple[str, bool]:
    """(a description, whether this is a Xen dom0)."""
    if _read("/sys/hypervisor/type").strip() == "xen":
        guest = _read("/sys/hypervisor/guest_type").strip()
        kind = f" ({guest})" if guest else ""
        caps = _read("/proc/xen/capabilities")
        if "control_d" in caps:
            return f"Xen dom0{kind}", True
        if caps:
            return f"a Xen domU{kind}, not dom0", False
        return f"a Xen domain{kind}, dom0 or not unknown (xenfs not mounted)", False
    flags = _cpuinfo_field(cpuinfo, "flags")
    if "hypervisor" in flags.split():
        return "not a Xen domain: a virtual machine on another hypervisor", False
    return "not a Xen domain: no hypervisor detected", False


def _today() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    when = (_dt.datetime.fromtimestamp(int(epoch), _dt.UTC) if epoch.isdigit()
            else _dt.datetime.now(_dt.UTC))
    return when.strftime("%Y-%m-%dT%H:%MZ")


def describe_machine() -> Machine:
    cpuinfo = _read("/proc/cpuinfo")
    cpu = (_cpuinfo_field(cpuinfo, "model name", "Processor", "cpu model", "Hardware")
           or platform.processor() or platform.machine() or "unknown CPU")
    env, dom0 = _environment(cpuinfo)
    return Machine(
        hostname=socket.gethostname() or "unknown host", cpu=" ".join(cpu.split()),
        environment=env, xen_dom0=dom0, date=_today(),
        kernel=f"{platform.system()} {platform.release()} {platform.machine()}".strip(),
        llc_bytes=_last_level_cache(), mem_available=_mem_available(),
    )


# ----------------------------------------------------------------- compiler, kernels


def find_compiler(env: Mapping[str, str] | None = None) -> list[str] | None:
    """``$CC`` (split as a shell would), else the first of cc, gcc, clang on PATH."""
    env = os.environ if env is None else env
    cc = env.get("CC", "").strip()
    if cc:
        try:
            words = shlex.split(cc)
        except ValueError:
            words = [cc]
        path = shutil.which(words[0], path=env.get("PATH")) if words else None
        return [path, *words[1:]] if path else None
    for name in COMPILERS:
        path = shutil.which(name, path=env.get("PATH"))
        if path:
            return [path]
    return None


def _compiler_version(compiler: Sequence[str]) -> str:
    try:
        done = subprocess.run([*compiler, "--version"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if lines else ""


def compile_kernels(compiler: Sequence[str], workdir: Path) -> Path:
    """Build ``shapes.c`` in ``workdir``; the executable's path."""
    source = resources.files(__package__).joinpath(KERNEL_SOURCE).read_text(encoding="utf-8")
    src, exe = workdir / KERNEL_SOURCE, workdir / "shapes"
    src.write_text(source, encoding="utf-8")
    cmd = [*compiler, *CFLAGS, "-o", str(exe), str(src)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        raise CalibrationError(f"cannot run the C compiler {compiler[0]}: {e}") from None
    if done.returncode != 0 or not exe.is_file():
        detail = (done.stderr or done.stdout).strip()[-2000:]
        raise CalibrationError(
            f"the C compiler failed on the shape kernels ({shlex.join(cmd)}, exit "
            f"{done.returncode}){': ' + detail if detail else ''}")
    return exe


def _run_kernel(exe: Path, kernel: str, reps: int, seed: int, sizes: Sequence[int],
                progress: Progress, label: str) -> list[dict[str, int]]:
    """Run one kernel; one ``{key: value}`` per timed repetition."""
    cmd = [str(exe), kernel, str(reps), str(seed), *map(str, sizes)]
    rows: list[dict[str, int]] = []
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise CalibrationError(
            f"cannot run the compiled shape kernels in {exe.parent}: {e.strerror or e} "
            "(a file system mounted noexec? set TMPDIR to a directory where programs may "
            "run)") from None
    with proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            for line in proc.stdout:
                words = line.split()
                if not words or words[0] != kernel:
                    continue
                rows.append({k: int(v) for k, _, v in (w.partition("=") for w in words[1:])})
                progress(f"{label}: repetition {len(rows)}/{reps}", True)
            err = proc.stderr.read().strip()
            status = proc.wait()
        except BaseException:
            proc.kill()
            raise
    if status != 0 or len(rows) != reps:
        why = "out of memory" if status == 3 else f"exit status {status}"
        raise CalibrationError(f"shape kernel {kernel} failed ({why})"
                               + (f": {err}" if err else ""))
    return rows


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _difference(unit: str, values: Sequence[float], kernel: str) -> Measurement:
    """A difference of two passes: at least FLOOR_NS (noise can make it 0 or negative)."""
    ns = _median(values)
    floored = not ns >= FLOOR_NS
    return Measurement(unit, FLOOR_NS if floored else ns, tuple(values), kernel, floored)


def _plain(unit: str, values: Sequence[float], kernel: str) -> Measurement:
    ns = _median(values)
    if not ns > 0:  # below the clock's resolution: cannot happen at these sizes
        raise CalibrationError(f"{unit}: the shape kernel took no measurable time")
    return Measurement(unit, ns, tuple(values), kernel)


def _mib(n: int) -> str:
    return f"{n / MIB:,.0f} MiB" if n >= MIB else f"{n / 1024:,.0f} KiB"


def _measure_compiled(exe: Path, plan: Plan, progress: Progress) -> dict[str, Measurement]:
    out: dict[str, Measurement] = {}
    reps = plan.repeat

    def start(i: int, what: str) -> str:
        label = f"[{i}/5] {what}"
        progress(f"{label}, {reps} repetition(s)", False)
        return label

    # (a), (b) the type sweep
    leaves = plan.sweep_leaves
    label = start(1, f"type sweep: {leaves:,} leaf tables of 512 entries "
                     f"({_mib(plan.sweep_bytes)}) under 4 levels")
    rows = _run_kernel(exe, "sweep", reps, 1, [leaves], progress, label)
    read = [r["read_ns"] / r["entries"] for r in rows]
    write = [r["write_ns"] / r["entries"] for r in rows]
    locked = [r["locked_ns"] / r["entries"] for r in rows]
    tables = (f"4-level sweep of {leaves:,} leaf tables of 512 8-byte entries "
              f"({_mib(plan.sweep_bytes)}) reached through scrambled upper-level tables")
    out["entries_read"] = _plain(
        "entries_read", read, f"{tables}; per entry a load and a 6-bit type compare, no match")
    out["entries_written"] = _difference(
        "entries_written", [w - r for w, r in zip(write, read, strict=True)],
        f"{tables}; the pass rewriting the type field of every entry minus the read-only pass")
    out["lock_round_trips"] = _difference(
        "lock_round_trips", [lk - w for lk, w in zip(locked, write, strict=True)],
        f"{tables}; each rewrite through a function pointer inside a spinlock round trip "
        "with a 4-word CPU-mask test (the 4.4 NPT shape), minus the plain rewrite")
    _report(out, ("entries_read", "entries_written", "lock_round_trips"), progress)

    # (c) bitmap copy and zero
    pages = plan.bitmap_pages
    label = start(2, f"bitmap copy and zero: {pages:,} scattered 4 KiB pages")
    rows = _run_kernel(exe, "bitmap", reps, 2, [pages], progress, label)
    bitmap = f"{pages:,} 4 KiB pages ({_mib(pages * PAGE)}) reached in scrambled order"
    out["bytes_copied"] = _plain(
        "bytes_copied", [r["copy_ns"] / r["bytes"] for r in rows],
        f"memcpy of {bitmap} to a contiguous buffer")
    out["bytes_zeroed"] = _plain(
        "bytes_zeroed", [r["zero_ns"] / r["bytes"] for r in rows], f"memset to 0 of {bitmap}")
    out["bytes_scanned"] = _plain(
        "bytes_scanned", [r["scan_ns"] / r["bytes"] for r in rows],
        f"{bitmap} read word by word up to the first non-zero word, the last of each page")
    _report(out, ("bytes_copied", "bytes_zeroed", "bytes_scanned"), progress)

    # (d) hash-chain unlinks
    n, m = plan.hash_records, plan.hash_deletions
    label = start(3, f"hash-chain unlinks: {m:,} of {n:,} records in 251 chains")
    rows = _run_kernel(exe, "hash", reps, 3, [n, m], progress, label)
    if any(r["hops"] <= 0 for r in rows):
        raise CalibrationError("shape kernel hash made no hops")
    out["hash_hops"] = _plain(
        "hash_hops", [r["ns"] / r["hops"] for r in rows],
        f"{m:,} of {n:,} 32-byte records scattered over a table of {4 * n:,} and hashed "
        "into 251 singly linked chains, unlinked in scrambled order, each walking its chain "
        "to the predecessor; time per hop")
    _report(out, ("hash_hops",), progress)

    # (e) reference drops
    frames = plan.ref_frames
    label = start(4, f"reference drops: {frames:,} frames visited scattered")
    rows = _run_kernel(exe, "refs", reps, 4, [frames], progress, label)
    scan = out["entries_read"].ns
    out["refcount_drops"] = _difference(
        "refcount_drops", [r["ns"] / r["entries"] - scan for r in rows],
        f"per present entry of 512-entry pages two compare-and-swap decrement loops on the "
        f"32-byte descriptor of its frame, {frames:,} frames ({_mib(frames * RECORD_BYTES)} "
        "of descriptors) visited in scrambled order; minus entries_read")
    _report(out, ("refcount_drops",), progress)

    # (f) free-list pop and push
    n = plan.freelist_pages
    label = start(5, f"free list: {n:,} page descriptors popped and pushed back")
    rows = _run_kernel(exe, "freelist", reps, 5, [n], progress, label)
    free = (f"a doubly linked free list of {n:,} 32-byte page descriptors scattered over a "
            f"table of {4 * n:,}, in scrambled order")
    out["pages_allocated"] = _plain(
        "pages_allocated", [r["pop_ns"] / r["pages"] for r in rows], f"pop from {free}")
    out["pages_freed"] = _plain(
        "pages_freed", [r["push_ns"] / r["pages"] for r in rows], f"push onto {free}")
    _report(out, ("pages_allocated", "pages_freed"), progress)
    return out


def measure_bitmap_numpy(pages: int, reps: int, progress: Progress) -> dict[str, Measurement]:
    """bytes_copied and bytes_zeroed with numpy (no C compiler): scattered 4 KiB pages
    gathered into a contiguous array, then zeroed."""
    import numpy as np

    progress(f"[1/1] bitmap copy and zero (numpy): {pages:,} scattered 4 KiB pages, "
             f"{reps} repetition(s)", False)
    rng = np.random.default_rng(2)
    leaves = np.zeros((pages, PAGE), dtype=np.uint8)
    out = np.zeros_like(leaves)
    order = rng.permutation(pages)
    copy: list[float] = []
    zero: list[float] = []
    for rep in range(reps + 1):
        leaves.fill(0x5A)
        t0 = time.perf_counter_ns()
        np.take(leaves, order, axis=0, out=out)
        t1 = time.perf_counter_ns()
        leaves[order] = 0
        t2 = time.perf_counter_ns()
        if rep:
            copy.append((t1 - t0) / leaves.nbytes)
            zero.append((t2 - t1) / leaves.nbytes)
            progress(f"bitmap (numpy): repetition {rep}/{reps}", True)
    bitmap = f"{pages:,} 4 KiB pages ({_mib(pages * PAGE)}) reached in scrambled order"
    measured = {
        "bytes_copied": _plain("bytes_copied", copy,
                               f"numpy gather (take) of {bitmap} into a contiguous array"),
        "bytes_zeroed": _plain("bytes_zeroed", zero,
                               f"numpy zeroing of {bitmap} (fancy-index assignment)"),
    }
    _report(measured, ("bytes_copied", "bytes_zeroed"), progress)
    return measured


def _report(measured: Mapping[str, Measurement], units: Sequence[str],
            progress: Progress) -> None:
    parts = []
    for u in units:
        m = measured[u]
        parts.append(f"{u} {m.ns:.3g} ns" + (" (floored: within noise)" if m.floored else ""))
    progress("      " + ", ".join(parts), False)


def _silent(message: str, transient: bool) -> None:
    pass


def calibrate(*, quick: bool = False, repeat: int | None = None, use_compiler: bool = True,
              progress: Progress | None = None, machine: Machine | None = None,
              env: Mapping[str, str] | None = None) -> Calibration:
    """Measure this machine. ``use_compiler=False``: numpy only (bytes copied and zeroed).

    Raises :class:`NoCompilerError` when no C compiler is found (and ``use_compiler``),
    :class:`CalibrationError` when compiling or a kernel fails, ``ValueError`` for a
    ``repeat`` out of range."""
    progress = progress or _silent
    started = time.monotonic()
    machine = machine or describe_machine()
    plan = make_plan(quick, repeat, machine.mem_available, machine.llc_bytes)
    if not use_compiler:
        measured = measure_bitmap_numpy(plan.bitmap_pages, plan.repeat, progress)
        return Calibration(machine, plan, measured, None, time.monotonic() - started)
    compiler = find_compiler(env)
    if compiler is None:
        raise NoCompilerError(
            "no C compiler found ($CC, or cc, gcc or clang on PATH): the shape kernels are "
            "C, compiled on this machine")
    version = _compiler_version(compiler)
    described = shlex.join(compiler) + (f" ({version})" if version else "")
    progress(f"compiling the shape kernels with {described} {' '.join(CFLAGS)}", False)
    with tempfile.TemporaryDirectory(prefix="xenvmmu-calibrate-") as tmp:
        exe = compile_kernels(compiler, Path(tmp))
        measured = _measure_compiled(exe, plan, progress)
    return Calibration(machine, plan, measured, described, time.monotonic() - started)


# ------------------------------------------------------------------------ the profile


def _toml_string(text: str) -> str:
    text = text.encode("utf-8", "replace").decode("utf-8")
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_number(value: float) -> str:
    return repr(float(f"{value:.4g}"))


def _comment(text: str) -> str:
    clean = "".join(ch if ch.isprintable() else " " for ch in text)
    return clean.encode("utf-8", "replace").decode("utf-8")


def profile_name(cal: Calibration) -> str:
    m = cal.machine
    return f"{m.hostname} ({m.cpu}), calibrated {m.date}"


def profile_toml(cal: Calibration, base: CostProfile | None = None) -> str:
    """The cost profile TOML (schema ``xenvmmu.costs/1``): the measured units with their
    figure as both bounds, every other unit with ``base``'s range and sources (default: the
    packaged default profile). :class:`CalibrationError` if it would not load."""
    base = base or default_profile()
    low_sources = base.low_sources or base.sources
    m, plan = cal.machine, cal.plan
    measured = [u for u in FIELDS if u in cal.measured]
    kept = [u for u in FIELDS if u not in cal.measured]
    header = [
        "xenvmmu cost profile measured by `xenvmmu calibrate`: nanoseconds per unit of work",
        "counted by xenvmmu.model.work.Work. Use it with `xenvmmu audit --costs FILE`.",
        "",
        f"host: {m.hostname}",
        f"CPU: {m.cpu}",
        f"environment: {m.environment}",
        f"kernel: {m.kernel}",
        f"last-level cache: {_mib(m.llc_bytes) if m.llc_bytes else 'unknown'}; "
        f"memory available: {_mib(m.mem_available) if m.mem_available else 'unknown'}",
        f"date: {m.date}",
        f"compiler: {cal.compiler or 'none (--no-compiler: numpy only)'}",
        f"repetitions: {plan.repeat} per kernel after one untimed run, median"
        + (" (--quick: small" if plan.quick else ""),
        *(["working sets, indicative only)"] if plan.quick else []),
        f"run time: {cal.seconds:.1f} s"
        + ("; working sets reduced to fit the memory available" if plan.reduced else ""),
        "",
        *textwrap.wrap("Measured (low = high): " + ", ".join(measured) + ".", 90),
        *textwrap.wrap("Kept from the default profile (not measurable from dom0, or no shape "
                       "kernel): " + ", ".join(kept) + ".", 90),
        "The shape kernels copy the memory-access and locking shape of Xen's code, not its",
        "code: they run in dom0 as plain instructions on dom0's own CPUs. Inter-processor",
        "interrupts and TLB flushes across physical CPUs, VM exits and the hypervisor's heap",
        "cannot be measured from there.",
    ]
    if not m.xen_dom0:
        header += ["", "NOTE: not measured on a Xen dom0; these are this machine's figures."]
    lines = [f"# {_comment(h)}".rstrip() for h in header]
    lines += ["", f"schema = {_toml_string(SCHEMA)}", f"name = {_toml_string(profile_name(cal))}"]
    for unit in FIELDS:
        if unit in cal.measured:
            lo = hi = cal.measured[unit].ns
            src_lo = src_hi = cal.source(unit)
        else:
            lo, hi = base.low_ns[unit], base.ns_per_unit[unit]
            src_lo, src_hi = low_sources[unit], base.sources[unit]
        lines += [
            "",
            f"[units.{unit}]",
            f"low = {_toml_number(lo)}",
            f"high = {_toml_number(hi)}",
            f"source_low = {_toml_string(src_lo)}",
            f"source_high = {_toml_string(src_hi)}",
        ]
    text = "\n".join(lines) + "\n"
    # what we write must load: the same check as --costs FILE
    try:
        base.overridden(tomllib.loads(text), "xenvmmu calibrate")
    except CostProfileError as e:  # a figure out of range (a machine stalled for ms...)
        raise CalibrationError(f"the measured profile is not usable: {e}") from None
    return text
