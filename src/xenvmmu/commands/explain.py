"""`xenvmmu explain`: one guest, and everything the audit decided about it, with the lines why.

Assesses one guest exactly as `xenvmmu audit` does and prints: its configuration with line
numbers, the lines that decide the verdict marked in the gutter (`>`: the setting that
decides, `*`: a setting the assessment read, `!`: where xl rejects the file); every reason;
every operation of XSA-97's class that can be driven against it, with who starts it, who makes
it long, whether this release preempts it, its worst-case non-preemptible section and the
advisory or commits that cover its code; then the mitigations, cheapest first, each config
change shown as the exact edit (a unified diff of the file) and checked by assessing the
edited file again. An `xl list -l` (one domain, or `--guest NAME`) is explained the same way,
without lines.

Exit status: as `audit` for that one guest: 0 not affected; 1 affected; 2 usage error, an input
that cannot be read or holds no guest; 3 the guest could not be assessed.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
from dataclasses import dataclass
from typing import TextIO

from ..audit.api import STDIN_PATH, InputData, audit_settings, run_audit
from ..audit.findings import Finding, Mitigation, OpStall
from ..audit.format.base import format_ms_range, one_line, verdict_label
from ..audit.rules import assess
from ..audit.settings import DEFAULT_BUDGET_MS, AuditSettings
from ..costs import CostProfileError
from ..toolstack import GuestSpec, HostSpec, InputFileError, guest_from_xlcfg
from ..toolstack.inputs import read_input
from ..versions import Profile, VersionError
from ._host import add_host_arguments
from .audit import STDIN_SOURCE, read_host, read_stdin

EXIT_NONE, EXIT_AFFECTED, EXIT_USAGE, EXIT_UNASSESSED = 0, 1, 2, 3

#: Gutter marks: the setting that decides the verdict, a setting the assessment read, the
#: line where xl rejects the file.
DECIDES, READ, REJECTED = ">", "*", "!"


def configure(p: argparse.ArgumentParser) -> None:
    """Description and arguments of `xenvmmu explain` (``xenvmmu.cli`` calls it)."""
    doc = (__doc__ or "").split("\n\n")
    p.description = doc[1] if len(doc) > 1 else None
    p.epilog = doc[-1]
    p.add_argument("path", metavar="FILE",
                   help="one xl.cfg file or `xl list -l` JSON; - reads it from standard input")
    p.add_argument("--guest", metavar="NAME",
                   help="the domain to explain, when the `xl list -l` holds several")
    add_host_arguments(p, "host (flags override what --host says)")
    o = p.add_argument_group("assessment")
    o.add_argument("--budget-ms", type=float, default=DEFAULT_BUDGET_MS, metavar="N",
                   help="latency budget in ms (default: %(default)g)")
    o.add_argument("--costs", metavar="FILE", help="TOML cost profile overriding the defaults")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if args.path == STDIN_PATH and args.host == STDIN_PATH:
        print("xenvmmu explain: standard input holds one input: give - once (as FILE or as "
              "--host -)", file=err)
        return EXIT_USAGE
    try:
        if not (math.isfinite(args.budget_ms) and args.budget_ms > 0):
            raise ValueError(f"--budget-ms must be a finite number above 0, not "
                             f"{args.budget_ms}")
        settings = audit_settings(budget_ms=args.budget_ms, costs=args.costs or None)
        host = read_host(args)
        profile = host.profile(patched=frozenset(args.patched))
        source = STDIN_SOURCE if args.path == STDIN_PATH else args.path
        data = read_stdin() if args.path == STDIN_PATH else read_input(args.path)
    except (InputFileError, CostProfileError, VersionError, ValueError) as e:
        print(f"xenvmmu explain: {e}", file=err)
        return EXIT_USAGE
    report = run_audit([InputData(source, data)], host, settings, profile=profile)
    for problem in report.errors:
        where = problem.path if problem.line is None else f"{problem.path}:{problem.line}"
        print(f"xenvmmu explain: {one_line(where)}: {one_line(problem.message)}", file=err)
    findings = list(report.findings)
    if args.guest is not None:
        findings = [f for f in findings if f.name == args.guest]
    if len(findings) != 1:
        if report.findings or not report.errors:  # else the errors said it
            print(f"xenvmmu explain: {_choose(report.findings, args.guest, source)}", file=err)
        return EXIT_USAGE
    finding = findings[0]
    guest = None
    if report.findings and _is_config(data, finding, source):
        guest = guest_from_xlcfg(data, profile, source=source, arch=host.arch)
    text = data.decode("utf-8", "surrogateescape") if guest is not None else None
    explainer = _Explainer(finding, guest, text, host, profile, settings)
    out.write("\n".join(explainer.lines()) + "\n")
    if finding.verdict == "affected":
        return EXIT_AFFECTED
    return EXIT_UNASSESSED if finding.verdict == "unknown" else EXIT_NONE


def _choose(findings: tuple[Finding, ...], wanted: str | None, source: str) -> str:
    """Why no single guest was chosen."""
    names = ", ".join(repr(one_line(f.name or "?")) for f in findings[:20])
    if not findings:
        return f"{one_line(source)}: no guest to explain"
    if wanted is None:
        return (f"{one_line(source)} holds {len(findings)} guests ({names}): choose one with "
                "--guest NAME")
    count = sum(f.name == wanted for f in findings)
    named = f"no guest named {wanted!r}" if not count else f"{count} guests named {wanted!r}"
    return f"{one_line(source)}: {one_line(named)} among ({names})"


def _is_config(data: bytes, finding: Finding, source: str) -> bool:
    """True when the guest came from an xl.cfg (not an `xl list -l` listing)."""
    from ..audit.scan import content_kind

    return finding.source.path == source and content_kind(data) == "xlcfg"


# --- the explanation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edit:
    """A config change a mitigation asks for: the new file text, and what it says."""

    text: str
    summary: str


class _Explainer:
    def __init__(self, finding: Finding, guest: GuestSpec | None, text: str | None,
                 host: HostSpec, profile: Profile, settings: AuditSettings) -> None:
        self.f, self.guest, self.text = finding, guest, text
        self.host, self.profile, self.settings = host, profile, settings

    def lines(self) -> list[str]:
        out = self._head()
        if self.guest is not None and self.text is not None:
            out += ["", *self._listing(self.guest, self.text)]
        else:
            out += ["", f"Configuration: from `xl list -l` ({one_line(self.f.source.path)}); "
                        "no xl.cfg lines to show."]
        out += ["", "Why:"]
        out += [f"  - {one_line(r)}" for r in self.f.reasons] or ["  (no reasons recorded)"]
        out += ["", *self._operations()]
        out += ["", *self._mitigations()]
        if self.f.advisories:
            out += ["", *self._advisories()]
        return out

    def _advisories(self) -> list[str]:
        """Every registry advisory that concerns the guest: verdict, figure, where it is
        decided, why, and what helps (``xenvmmu advisories`` has the sources)."""
        out = ["Advisories (xenvmmu advisories NAME for the sources):"]
        for a in self.f.advisories:
            figure = ("unbounded" if a.unbounded else "no figure" if a.worst_case_ms is None
                      else f"{format_ms_range(a.worst_case_ms_low, a.worst_case_ms)} ms")
            fixed = {True: "fixed", False: "not fixed", None: "fix unknown"}[a.fixed]
            where = ""
            if a.decisive is not None and a.decisive.line is not None:
                where = f", decided by {a.decisive.key} (line {a.decisive.line})"
            out.append(f"  {a.id} ({', '.join(a.cves)}): {verdict_label(a.verdict)}"
                       f"{', ' + a.severity if a.verdict == 'affected' else ''}, {figure}, "
                       f"{a.impact}, {fixed} in this release{where}")
            out += [f"      - {one_line(r)}" for r in a.reasons]
            out += [f"      fix: {one_line(m)}" for m in a.mitigations]
        return out

    def _head(self) -> list[str]:
        f, h = self.f, self.host
        name = one_line(f.name) if f.name else "(no name)"
        vendor = f", {h.cpu_vendor}" if h.cpu_vendor else ""
        out = [f"{name} ({one_line(f.source.path)}) on Xen {h.xen_version} ({h.arch}{vendor}, "
               f"HAP {'available' if h.hap_available else 'not available'}, watchdog "
               f"{'on, ' + str(h.watchdog_timeout) + ' s' if h.watchdog else 'off'})"]
        verdict = verdict_label(f.verdict)
        if f.verdict == "affected":
            verdict += f", {f.severity}"
        if f.cve:
            verdict += f", {f.cve}"
        budget = f"budget {self.settings.budget_ms:g} ms"
        if f.worst_case_ms is not None:
            verdict += (f": worst case {format_ms_range(f.worst_case_ms_low, f.worst_case_ms)} "
                        f"ms without a preemption point ({budget})")
        out.append(f"Verdict: {verdict}")
        d = f.decisive
        if d is not None and d.path != f.source.path:
            where = d.path if d.line is None else f"{d.path}:{d.line}"
            out.append(f"Decided by the host: {one_line(where)}"
                       f"{' (' + d.key + ')' if d.key else ''}")
        return out

    # --- the config, with a gutter ---------------------------------------------------------

    def _marks(self, guest: GuestSpec) -> dict[int, str]:
        f = self.f
        marks: dict[int, str] = {}
        for line in (guest.type_line, guest.ignored_type_line, guest.memory_line,
                     guest.maxmem_line, guest.vcpus_line, guest.maxvcpus_line, guest.hap_line,
                     guest.shadow_memory_line):
            if line is not None:
                marks[line] = READ
        decisive = [f.decisive.line] if (f.decisive is not None and f.decisive.line is not None
                                         and f.decisive.path == f.source.path) else []
        if f.decisive is None and guest.status == "ok" and guest.type == "pv":
            decisive = [n for n in (guest.type_line, guest.ignored_type_line) if n is not None]
        for line in decisive:
            marks[line] = DECIDES
        if guest.status != "ok" and f.source.line is not None:
            marks[f.source.line] = REJECTED
        return marks

    def _listing(self, guest: GuestSpec, text: str) -> list[str]:
        lines = _split(text)
        marks = self._marks(guest)
        width = len(str(len(lines)))
        used = set(marks.values())
        legend = ", ".join(f"{mark} {meaning}" for mark, meaning in (
            (DECIDES, "decides the verdict"), (READ, "read by the assessment"),
            (REJECTED, "xl rejects the file here")) if mark in used)
        out = [f"Configuration {one_line(self.f.source.path)}"
               f"{' (' + legend + ')' if legend else ''}:"]
        for n, line in enumerate(lines, 1):
            out.append(f"  {marks.get(n, ' ')} {n:>{width}}  {one_line(line)}".rstrip())
        return out

    # --- operations --------------------------------------------------------------------------

    def _operations(self) -> list[str]:
        f = self.f
        if not f.ops:
            return ["Operations: none assessed (no HVM paging mode, or the guest could not be "
                    "assessed)."]
        worst = max((o for o in f.ops if not o.related), key=lambda o: o.worst_case_ms,
                    default=None)
        out = [f"Operations (the longest section each can hold a CPU without a preemption point, "
               f"on Xen {self.host.xen_version}):"]
        for op in f.ops:
            out += _operation(op, op is worst)
        return out

    # --- mitigations -------------------------------------------------------------------------

    def _mitigations(self) -> list[str]:
        f = self.f
        if not f.mitigations:
            why = ("not affected: nothing to do" if f.verdict == "not_affected"
                   else "none: the guest could not be assessed")
            return [f"Mitigations: {why}."]
        out = ["Mitigations, cheapest first:"]
        for i, m in enumerate(f.mitigations, 1):
            out.append(f"  {i}. {one_line(m.text)} [{m.action}]")
            edit = self._edit(m)
            if edit is None:
                continue
            assert self.text is not None
            source = one_line(f.source.path)
            diff = difflib.unified_diff(_split(self.text), _split(edit.text), fromfile=source,
                                        tofile=f"{source} ({edit.summary})", lineterm="", n=2)
            out += [f"       {one_line(line)}".rstrip() for line in diff]
            out.append(f"       {self._after(edit)}")
        return out

    def _edit(self, m: Mitigation) -> _Edit | None:
        """The config edit a mitigation asks for, checked by reading the edited file again;
        None when it is not a change of this file (an upgrade, the command line...)."""
        guest, text = self.guest, self.text
        if guest is None or text is None or guest.status != "ok":
            return None
        lines = _split(text)
        summary: str
        if m.action == "shrink":
            found = _number(m.text, r"at most ([\d,]+) MiB")
            if found is None:
                return None
            most: int = found
            changed = False
            for key, value, line in (("maxmem", guest.maxmem_mib, guest.maxmem_line),
                                     ("memory", guest.memory_mib, guest.memory_line)):
                if line is not None and value is not None and value > most:
                    changed |= _set_value(lines, line, key, str(most))
            if not changed:
                return None
            summary = f"maximum memory {most} MiB"

            def works(g: GuestSpec) -> bool:
                return (g.maxmem_mib or 0) <= most and (g.memory_mib or 0) <= most
        elif m.action == "shadow_memory":
            found = _number(m.text, r"shadow_memory = ([\d,]+)")
            if found is None:
                return None
            pool: int = found
            if guest.shadow_memory_line is not None:
                if not _set_value(lines, guest.shadow_memory_line, "shadow_memory", str(pool)):
                    return None
            else:
                lines.append(f"shadow_memory = {pool}")
            summary = f"shadow_memory {pool} MiB"

            def works(g: GuestSpec) -> bool:
                return g.shadow_memory_mib == pool
        elif m.action == "hap_on":
            if guest.hap is not False or guest.hap_line is None:
                return None  # hap=0 is on the command line: not this file
            if not _remove_setting(lines, guest.hap_line, "hap"):
                return None
            summary = "hap = 0 removed"

            def works(g: GuestSpec) -> bool:
                return g.hap is not False
        else:
            return None
        new_text = "\n".join(lines) + "\n"
        edited = guest_from_xlcfg(new_text.encode("utf-8", "surrogateescape"), self.profile,
                                  source=guest.source, arch=self.host.arch)
        if edited.status != "ok" or not works(edited):
            return None  # the edit would not say what the mitigation says: show none
        return _Edit(new_text, summary)

    def _after(self, edit: _Edit) -> str:
        """What the audit says of the edited file, on this host."""
        edited = guest_from_xlcfg(edit.text.encode("utf-8", "surrogateescape"), self.profile,
                                  source=self.f.source.path, arch=self.host.arch)
        again = assess(edited, self.host, self.profile, self.settings)
        worst = format_ms_range(again.worst_case_ms_low, again.worst_case_ms)
        return (f"after this edit, on Xen {self.host.xen_version}: "
                f"{verdict_label(again.verdict)}, worst case {worst} ms")


def _operation(op: OpStall, worst: bool) -> list[str]:
    how = "preemptible" if op.preemptible else "not preemptible"
    tags = []
    if worst:
        tags.append("the verdict's worst")
    if op.related:
        tags.append("related: outside the verdict")
    if op.residual:
        tags.append("residual: not the CVE's code")
    tag = f"  ({'; '.join(tags)})" if tags else ""
    figure = format_ms_range(op.worst_case_ms_low, op.worst_case_ms)
    out = [f"  {op.op}: {figure} ms, {how} in this release{tag}",
           f"      started by the {_who(op.started_by)}; made long by the {_who(op.sized_by)}"]
    if op.reference:
        out.append(f"      reference: {one_line(op.reference)}")
    return out


def _who(parties: tuple[str, ...]) -> str:
    names = [p.replace("_", " ") for p in parties] or ["?"]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


# --- editing config text ------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    """The file's lines as xl numbers them (split at newlines only; a final newline ends the
    last line rather than starting another)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _number(text: str, pattern: str) -> int | None:
    m = re.search(pattern, text)
    return int(m.group(1).replace(",", "")) if m else None


def _setting_re(key: str) -> re.Pattern[str]:
    """``key = value`` in an xl.cfg line: a quoted string or a bare atom."""
    return re.compile(rf"(?<![A-Za-z0-9_.]){re.escape(key)}(\s*=\s*)"
                      r"(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s;#,\[\]\"']+)")


def _set_value(lines: list[str], line: int, key: str, value: str) -> bool:
    """Set the last ``key = ...`` on a 1-based line to ``value``; False if there is none."""
    if not 1 <= line <= len(lines):
        return False
    matches = list(_setting_re(key).finditer(lines[line - 1]))
    if not matches:
        return False
    m = matches[-1]
    text = lines[line - 1]
    lines[line - 1] = text[:m.start(2)] + value + text[m.end(2):]
    return True


def _remove_setting(lines: list[str], line: int, key: str) -> bool:
    """Remove ``key = ...`` from a 1-based line: the whole line when it holds nothing else
    (a comment aside), else just the setting (and its ``;``)."""
    if not 1 <= line <= len(lines):
        return False
    text = lines[line - 1]
    matches = list(_setting_re(key).finditer(text))
    if not matches:
        return False
    m = matches[-1]
    rest = (text[:m.start()] + text[m.end():]).strip()
    if rest in ("", ";") or rest.lstrip(";").lstrip().startswith("#"):
        del lines[line - 1]
        return True
    end = m.end()
    tail = re.match(r"\s*;", text[end:])
    if tail:
        end += tail.end()
    lines[line - 1] = text[:m.start()] + text[end:].lstrip(" \t")
    return True

