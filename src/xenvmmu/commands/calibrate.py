"""`xenvmmu calibrate`: measure this host's nanoseconds per unit of work; write a cost profile.

Run it on the dom0 of the host being audited. Small C loops with the memory-access and
locking shape of Xen's paging code (a 4-level table sweep rewriting a type field, the same
with a lock round trip per entry, bitmap copy and zero, hash-chain unlinks, atomic reference
drops, free-list pops and pushes) are compiled with the system C compiler ($CC, cc, gcc or
clang) and run several times; each unit gets the median. Units dom0 cannot measure (TLB
flushes and their IPIs, VM exits, the hypervisor's heap, ...) keep the default ranges and
sources. The profile (TOML, schema xenvmmu.costs/1) goes to stdout or --output; use it with
`xenvmmu audit --costs FILE` (and simulate, sweep, report). Progress goes to stderr.

Exit status: 0 profile written, 2 usage error, no C compiler (see --no-compiler), a kernel
that failed, or an output that cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..audit.format import output_target, write_atomic
from ..costs.calibrate import (
    MAX_REPEAT,
    CalibrationError,
    NoCompilerError,
    calibrate,
    profile_toml,
)


def configure(p: argparse.ArgumentParser) -> None:
    """Description and arguments of `xenvmmu calibrate` (``xenvmmu.cli`` calls it)."""
    doc = (__doc__ or "").split("\n\n")
    p.description = "\n\n".join(doc[1:])
    p.add_argument("--output", metavar="FILE",
                   help="write the cost profile to FILE (default: standard output)")
    p.add_argument("--repeat", type=int, metavar="N",
                   help=f"timed repetitions per kernel, median taken (1..{MAX_REPEAT}; "
                   "default 5, 3 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="small working sets, a few seconds: indicative figures only")
    p.add_argument("--no-compiler", action="store_true",
                   help="without a C compiler: measure only bytes copied and zeroed (numpy); "
                   "every other unit keeps its default range")
    p.set_defaults(func=run)


class _Progress:
    """Progress lines on stderr; repetitions overwrite each other on a terminal only."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.pending = False

    def __call__(self, message: str, transient: bool) -> None:
        if transient and not self.tty:
            return
        text = f"xenvmmu calibrate: {message}"
        if self.pending:
            self.stream.write("\r\033[K")
        self.stream.write(text if transient else text + "\n")
        self.pending = transient
        self.stream.flush()

    def done(self) -> None:
        if self.pending:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.pending = False


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if args.repeat is not None and not 1 <= args.repeat <= MAX_REPEAT:
        print(f"xenvmmu calibrate: --repeat must be in 1..{MAX_REPEAT}, not {args.repeat}",
              file=err)
        return 2
    if args.output:
        try:
            output_target(args.output)  # refuse a device or directory before the work
        except OSError as e:
            print(f"xenvmmu calibrate: cannot write {args.output}: {e.strerror or e}", file=err)
            return 2
    progress = _Progress(err)
    try:
        cal = calibrate(quick=args.quick, repeat=args.repeat,
                        use_compiler=not args.no_compiler, progress=progress)
    except NoCompilerError as e:
        progress.done()
        print(f"xenvmmu calibrate: {e}.\n  Install one (e.g. `apt-get install gcc`, "
              "`dnf install gcc`) or point $CC at it, or run on a machine with the same CPU "
              "and memory; `--no-compiler` measures only the sequential units (bytes copied "
              "and zeroed) with numpy.", file=err)
        return 2
    except CalibrationError as e:
        progress.done()
        print(f"xenvmmu calibrate: {e}", file=err)
        return 2
    progress.done()
    try:
        text = profile_toml(cal)
    except CalibrationError as e:
        print(f"xenvmmu calibrate: {e}", file=err)
        return 2
    machine = cal.machine
    if not machine.xen_dom0:
        print(f"xenvmmu calibrate: note: {machine.environment}; the profile describes this "
              "machine, and fits a Xen host only with the same CPU and memory", file=err)
    if args.output:
        try:
            write_atomic(args.output, text)
        except OSError as e:
            print(f"xenvmmu calibrate: cannot write {args.output}: {e.strerror or e}", file=err)
            return 2
        print(f"xenvmmu calibrate: done in {cal.seconds:.1f} s; wrote {args.output} (use it "
              f"with `xenvmmu audit --costs {args.output}`)", file=err)
    else:
        out.write(text)
        print(f"xenvmmu calibrate: done in {cal.seconds:.1f} s", file=err)
    return 0
