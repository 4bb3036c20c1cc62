"""The auditor as a library: :func:`iter_audit` is what ``xenvmmu audit`` runs.

``xenvmmu audit`` only parses its arguments, calls :func:`iter_audit`, writes the findings
in the chosen format as they come and chooses the exit status. :func:`run_audit` is the same
audit with every finding kept, as one :class:`~xenvmmu.audit.findings.AuditReport`::

    from xenvmmu.audit import audit_settings, run_audit
    from xenvmmu.toolstack import host_from_flags

    report = run_audit(["/etc/xen"], host_from_flags("4.4.1"), audit_settings())
    affected = [f.name for f in report.findings if f.verdict == "affected"]

A fleet of guests made from a few templates is assessed once per template: the assessment
of a guest shape (every fact of the guest but its file and name) is kept and given the next
guest's file and name (:class:`_Assessor`), which gives the same finding.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any, BinaryIO, cast

from .. import __version__, xlcfg
from ..costs import CostProfile, default_profile, load_profile
from ..toolstack import (
    GuestSpec,
    HostSpec,
    InputFileError,
    guest_from_xlcfg,
    guests_from_xl_list,
)
from ..toolstack.guest import XL_IGNORES
from ..toolstack.inputs import UTF8_BOM
from ..toolstack.xllist import SXP_MESSAGE, normalise_uuid
from ..versions import Profile
from .findings import (
    AdvisoryFinding,
    AuditReport,
    AuditStream,
    Finding,
    InputError,
    clean_text,
)
from .rules import assess
from .scan import STDIN_PATH, Input, InputData, file_ids, scan
from .settings import DEFAULT_BUDGET_MS, AuditSettings
from .suppress import Suppression, load_suppressions

__all__ = ["STDIN_PATH", "InputData", "audit_settings", "iter_audit", "run_audit"]

#: An input path, ``-`` (standard input), or an input already in memory.
AuditInput = str | os.PathLike[str] | InputData
#: A suppression file's path, or an entry already loaded (:mod:`xenvmmu.audit.suppress`).
SuppressionSource = str | os.PathLike[str] | Suppression


def run_audit(
    inputs: Sequence[AuditInput],
    host: HostSpec,
    settings: AuditSettings,
    *,
    patched: frozenset[str] = frozenset(),
    profile: Profile | None = None,
    exclude: Sequence[str | os.PathLike[str]] = (),
    configs: Sequence[str | os.PathLike[str]] = (),
    stdin: BinaryIO | None = None,
    note: Callable[[str], None] | None = None,
    suppress: Sequence[SuppressionSource] = (),
) -> AuditReport:
    """Assess every guest found under ``inputs`` on ``host``.

    ``inputs`` are xl.cfg files, ``xl list -l`` JSON files or directories of them (searched
    recursively, as ``xenvmmu audit`` does); ``-`` reads one input from ``stdin`` (default:
    standard input) and an :class:`~xenvmmu.audit.scan.InputData` is an input already in
    memory (``InputData("xl list -l", output)``), each told apart by content (JSON is ``xl
    list -l``, anything else xl.cfg). ``configs`` are more xl.cfg files or directories, of
    configured guests: a guest there is assessed only when no domain of the ``xl list -l``
    listings among ``inputs`` has its name or uuid (``uuid=``), so that a running guest is
    counted once, as it runs (``xenvmmu audit --live --configs /etc/xen``). ``note`` is
    called with each such skip and with what the listings' reader noted (dom0 skipped, a
    domain listed twice). ``host`` comes from
    :func:`xenvmmu.toolstack.load_host` (``xl info`` output) or
    :func:`xenvmmu.toolstack.host_from_flags`; ``settings`` from :func:`audit_settings` or
    :class:`~xenvmmu.audit.settings.AuditSettings`. ``patched`` names distribution patches
    the hypervisor carries on an unfixed release (``xenvmmu.versions.KNOWN_PATCHES``, e.g.
    ``"xsa97-hap"``); ``profile`` replaces the release profile derived from ``host`` and
    ``patched`` (give one or the other). ``suppress`` silences findings per guest
    (``xenvmmu audit --suppress``): suppression files (TOML, read at once; an expired entry
    is left out and named to ``note``, else warned about) or
    :class:`~xenvmmu.audit.suppress.Suppression` entries; each guest's affected or unknown
    verdicts that an entry selects are marked (``Finding.suppressed``,
    ``AdvisoryFinding.suppressed``: the reason and ``FILE:line``).

    Returns the :class:`~xenvmmu.audit.findings.AuditReport`: one
    :class:`~xenvmmu.audit.findings.Finding` per guest, in input order (a guest that cannot
    be assessed, such as an xm-era Python config, is a finding with verdict ``unknown``), and
    one :class:`~xenvmmu.audit.findings.InputError` per input that could not be read or
    understood (missing or unreadable path, invalid JSON, symbolic link loop...): bad inputs
    never raise. ``report.inputs_read`` counts the input files read.

    A file reached twice (a symbolic link, a path given twice) is read once, a domain
    listed twice (same ``uuid`` in ``xl list -l`` files, same ``domid`` in one file) is
    assessed once, and the files in ``exclude`` (e.g. the report being written) are not read.
    An xl.cfg that xl rejects and that is not plausibly a config (binary data, not UTF-8, or
    reached through a symbolic link leaving the scanned directory) is an ``InputError`` that
    names the file and the kind of problem only: none of its content is repeated.

    Raises ``VersionError`` for an unknown patch name, ``ValueError`` when both
    ``patched`` and ``profile`` are given and
    :class:`~xenvmmu.audit.suppress.SuppressionError` for a suppression file that cannot be
    used.
    """
    return iter_audit(inputs, host, settings, patched=patched, profile=profile,
                      exclude=exclude, configs=configs, stdin=stdin, note=note,
                      suppress=suppress).collect()


def iter_audit(
    inputs: Sequence[AuditInput],
    host: HostSpec,
    settings: AuditSettings,
    *,
    patched: frozenset[str] = frozenset(),
    profile: Profile | None = None,
    exclude: Sequence[str | os.PathLike[str]] = (),
    configs: Sequence[str | os.PathLike[str]] = (),
    stdin: BinaryIO | None = None,
    note: Callable[[str], None] | None = None,
    suppress: Sequence[SuppressionSource] = (),
) -> AuditStream:
    """The audit of :func:`run_audit`, guest by guest: iterating over the returned
    :class:`~xenvmmu.audit.findings.AuditStream` scans, reads and assesses, and yields each
    :class:`~xenvmmu.audit.findings.Finding` when it is made, so that a format can write it
    and forget it (every format's ``write``). The stream's ``host``, ``budget_ms`` and
    ``tool_version`` are known at once; its ``errors``, ``inputs_read`` and ``counts`` once
    the iteration has ended. Same arguments, order, deduplication and errors as
    :func:`run_audit` (which is ``iter_audit(...).collect()``); ``VersionError``,
    ``ValueError`` and ``SuppressionError`` are raised by this call, before any iteration.
    """
    if profile is None:
        profile = host.profile(patched=frozenset(patched))
    elif patched:
        raise ValueError("give patched or profile, not both (a profile carries its patches)")
    chosen: Profile = profile
    errors: list[InputError] = []
    files = [p for p in suppress if not isinstance(p, Suppression)]
    rules = (*(p for p in suppress if isinstance(p, Suppression)),
             *(load_suppressions(files, warn=note) if files else ()))
    mark: Callable[[Finding], Finding] = _Suppressor(rules) if rules else (lambda f: f)

    def findings() -> Iterator[Finding]:
        excluded = file_ids(exclude)
        paths = [p if isinstance(p, InputData) else os.fspath(p) for p in inputs]
        items, scan_errors = scan(paths, exclude=excluded, stdin=stdin)
        errors.extend(scan_errors)
        domains: dict[str, str] = {}  # uuid -> the listing it was first seen in
        running = _Running()
        tell = note or (lambda _: None)
        assessor = _Assessor(host, chosen, settings)
        for item in items:
            stream.inputs_read += 1
            for guest, uuid, hint in _guests(item, chosen, host, errors, domains, tell):
                if item.kind == "json":
                    running.add(guest.name, uuid)
                yield mark(assessor(guest, hint, uuid))
        if configs:
            on_disk = file_ids(item.path for item in items if item.root)  # read once only
            more, more_errors = scan([os.fspath(p) for p in configs],
                                     exclude=excluded | on_disk)
            errors.extend(more_errors)
            for item in more:
                stream.inputs_read += 1
                for guest, uuid, hint in _guests(item, chosen, host, errors, domains, tell):
                    why = running.match(guest, uuid, item)
                    if why is not None:
                        tell(f"{clean_text(item.path)}: {why}: assessed as it runs, from the "
                             "listing")
                        continue
                    yield mark(assessor(guest, hint, uuid))

    stream = AuditStream(findings(), errors=errors, host=_host_facts(host, chosen),
                         budget_ms=settings.budget_ms, tool_version=__version__,
                         advisories=_reported(settings))
    return stream


class _Suppressor:
    """Each guest's finding with the verdicts that suppressions select marked (after the
    assessment: guests of one shape share their template and advisory findings, which are
    never changed; a guest's marked advisories are new tuples, shared by the guests whose
    advisories and marks are the same)."""

    def __init__(self, rules: Sequence[Suppression]) -> None:
        self.rules = tuple(rules)
        self.marked: dict[tuple[int, tuple[str | None, ...]],
                          tuple[tuple[AdvisoryFinding, ...], tuple[AdvisoryFinding, ...]]] = {}

    def __call__(self, finding: Finding) -> Finding:
        chosen = [r for r in self.rules if r.selects(finding)]
        if not chosen:
            return finding

        def note(advisory_id: str, verdict: str) -> str | None:
            if verdict == "not_affected":  # nothing to silence
                return None
            return next((r.note for r in chosen if r.covers(advisory_id)), None)

        changes: dict[str, object] = {}
        own = note(_XSA97, finding.verdict)
        if own is not None:
            changes["suppressed"] = own
        advs = finding.advisories
        notes = tuple(note(a.id, a.verdict) for a in advs)
        if any(n is not None for n in notes):
            key = (id(advs), notes)
            hit = self.marked.get(key)
            if hit is None or hit[0] is not advs:
                if len(self.marked) >= SHAPE_CACHE_SIZE:
                    self.marked.clear()
                hit = self.marked[key] = (advs, tuple(
                    a if n is None else _evolve(a, {"suppressed": n})
                    for a, n in zip(advs, notes, strict=True)))
            changes["advisories"] = hit[1]
        return cast(Finding, _evolve(finding, changes)) if changes else finding


class _Running:
    """The names and uuids of the domains the listings hold (running, or being created)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.uuids: set[str] = set()

    def add(self, name: str | None, uuid: str | None) -> None:
        if name is not None:
            self.names.add(name)
        if uuid is not None:
            self.uuids.add(uuid)

    def match(self, guest: GuestSpec, uuid: str | None, item: Input) -> str | None:
        """Why a configured guest is one of the listed domains, or None."""
        if guest.name is not None and guest.name in self.names:
            return f"guest {clean_text(guest.name)!r} is running (same name)"
        if uuid is None and item.kind == "xlcfg" and self.uuids:
            uuid = _config_uuid(item.data, guest)
        if uuid is not None and uuid in self.uuids:
            return f"guest uuid {uuid} is running (same uuid)"
        return None


def _config_uuid(data: bytes, guest: GuestSpec) -> str | None:
    """An xl.cfg's ``uuid=`` (normalised), if it parses and has one."""
    if guest.status != "ok" or guest.dialect is None:
        return None
    found = xlcfg.get_string(xlcfg.parse(data, guest.dialect), "uuid")
    return normalise_uuid(found.value) if found.status == "ok" else None


def audit_settings(
    *,
    budget_ms: float = DEFAULT_BUDGET_MS,
    costs: CostProfile | str | os.PathLike[str] | None = None,
    advisories: Iterable[str] | None = None,
) -> AuditSettings:
    """:class:`~xenvmmu.audit.settings.AuditSettings` from plain values.

    ``budget_ms``: the latency budget (default one credit-scheduler timeslice, 30 ms); a
    guest whose worst-case stall reaches it is affected. ``costs``: a cost profile, the path
    of a TOML cost profile (as ``xenvmmu audit --costs``), or ``None`` for the shipped
    default. ``advisories``: report only these registry advisories per guest (``XSA-97``,
    ``XSA-410``...; default all). Raises ``ValueError`` for a budget that is not a finite
    positive number or an unknown advisory, ``CostProfileError`` for a bad cost file.
    """
    if not (isinstance(budget_ms, int | float) and math.isfinite(budget_ms) and budget_ms > 0):
        raise ValueError(f"the latency budget must be a finite positive number of ms, "
                         f"not {budget_ms!r}")
    if costs is None:
        costs = default_profile()
    elif not isinstance(costs, CostProfile):
        costs = load_profile(os.fspath(costs))
    chosen = None
    if advisories is not None:
        from ..advisories import advisory  # RegistryError is a ValueError

        chosen = frozenset(advisory(a).id for a in advisories)
    return AuditSettings(costs=costs, budget_ms=budget_ms, advisories=chosen)


def _reported(settings: AuditSettings) -> tuple[str, ...]:
    """The advisories a run narrowed to (``--advisory``), in registry order; () for all."""
    if settings.advisories is None:
        return ()
    from ..advisories import registry

    return tuple(a.id for a in registry() if a.id in settings.advisories)


def _host_facts(host: HostSpec, profile: Profile) -> dict[str, object]:
    """What a report shows about the host (``AuditReport.host``)."""
    return {
        "source": host.source,
        "xen_version": str(host.xen_version),
        "arch": host.arch,
        "cpu_hap": host.cpu_hap,
        "cpu_hap_assumed": host.cpu_hap_assumed,
        "hap_enabled": host.hap_enabled,
        "watchdog": host.watchdog,
        "watchdog_timeout_s": host.watchdog_timeout,
        "xsa97_fixed": profile.logdirty_preemptible,
        "hap_retype": profile.hap_retype,
        "patched": sorted(profile.patched),
    }


_XSA97 = "XSA-97"  # the advisory of the findings' own fields
#: Stand-ins for a guest's file and name in the shape an assessment is kept under: ASCII
#: that no path component, name or message holds.
_SOURCE_MARK = "\x00xenvmmu-source\x00"
_NAME_MARK = "\x00xenvmmu-name\x00"
_MISSING = object()
#: guest shapes kept per run (a fleet of templates has a few; the cache is emptied when full)
SHAPE_CACHE_SIZE = 1024
#: the fields of a Finding that are built from the guest's file or name in another way than
#: text (set by the assessor)
_IDENTITY_FIELDS = frozenset({"source", "name", "decisive", "uuid"})
#: the fields of a GuestSpec that are not its shape (the warnings are, with the file marked)
_SHAPELESS = frozenset({"source", "name", "warnings"})


class _Assessor:
    """:func:`~xenvmmu.audit.rules.assess` for each guest of a run, with the xl warnings, the
    encoding hint and the uuid added; kept per guest shape.

    A guest's shape is the guest with its file and name replaced by stand-ins (in its
    warnings too): everything the assessment reads but where the guest was found and what it
    is called. The finding of a shape is assessed once; another guest of that shape gets it
    with its own file (in the source and decisive locations and wherever a reason or
    mitigation names the file) and name. A shape whose finding names the guest in a text, or
    mentions the stand-ins in any other way, is not kept: its guests are assessed one by one.
    """

    def __init__(self, host: HostSpec, profile: Profile, settings: AuditSettings) -> None:
        self.host, self.profile, self.settings = host, profile, settings
        self.shapes: dict[tuple[object, ...], tuple[Finding, frozenset[str]] | None] = {}

    def __call__(self, guest: GuestSpec, hint: str | None, uuid: str | None) -> Finding:
        finding = _with_xl_warnings(self._assess(guest), guest)
        if hint:
            finding = replace(finding, reasons=(*finding.reasons, hint))
        return replace(finding, uuid=uuid) if uuid is not None else finding

    def _assess(self, guest: GuestSpec) -> Finding:
        if SHAPE_CACHE_SIZE <= 0 or guest.status != "ok" or _marked(guest):
            return assess(guest, self.host, self.profile, self.settings)
        facts = vars(guest)
        warnings = tuple(w.replace(guest.source, _SOURCE_MARK) for w in guest.warnings)
        key = (guest.name is None, warnings,
               *(v for k, v in facts.items() if k not in _SHAPELESS))
        kept = self.shapes.get(key, _MISSING)
        if kept is _MISSING:
            kept = self._keep(replace(
                guest, source=_SOURCE_MARK, name=None if guest.name is None else _NAME_MARK,
                warnings=warnings))
            if len(self.shapes) >= SHAPE_CACHE_SIZE:
                self.shapes.clear()
            self.shapes[key] = kept
        if kept is None:
            return assess(guest, self.host, self.profile, self.settings)
        assert isinstance(kept, tuple)
        return _instance(kept[0], kept[1], clean_text(guest.source),
                         clean_text(guest.name) if guest.name is not None else None)

    def _keep(self, shape: GuestSpec) -> tuple[Finding, frozenset[str]] | None:
        """The shape's finding and the fields whose text names its file, or None when it
        cannot serve other guests."""
        template = assess(shape, self.host, self.profile, self.settings)
        marked = set()
        for f in fields(template):
            value = getattr(template, f.name)
            if f.name in _IDENTITY_FIELDS:
                continue
            if _holds(value, _NAME_MARK):
                return None
            if _holds(value, _SOURCE_MARK):
                marked.add(f.name)
        if template.source.path != _SOURCE_MARK:
            return None
        if template.name not in (None, _NAME_MARK):
            return None
        d = template.decisive
        if d is not None and d.path != _SOURCE_MARK and _holds(d, _SOURCE_MARK):
            return None
        probe = _instance(template, frozenset(marked), "probe.cfg", "probe")
        if _holds(probe, _SOURCE_MARK) or _holds(probe, _NAME_MARK):
            return None  # a stand-in somewhere _instance does not reach
        return template, frozenset(marked)


def _instance(template: Finding, marked: frozenset[str], source: str,
              name: str | None) -> Finding:
    """The finding of a guest of ``template``'s shape, in file ``source``, called
    ``name``."""
    changes: dict[str, object] = {field: _unmark(getattr(template, field), source)
                                  for field in marked}
    changes["source"] = replace(template.source, path=source)
    if template.name is not None:
        changes["name"] = name
    d = template.decisive
    if d is not None and d.path == _SOURCE_MARK:
        changes["decisive"] = _evolve(d, {"path": source})
    return cast(Finding, _evolve(template, changes))


def _marked(guest: GuestSpec) -> bool:
    """Whether a text of the guest holds a stand-in already (then it is assessed alone)."""
    for value in vars(guest).values():
        if isinstance(value, str) and (_SOURCE_MARK in value or _NAME_MARK in value):
            return True
    return any(_SOURCE_MARK in w or _NAME_MARK in w for w in guest.warnings)


def _holds(value: object, mark: str) -> bool:
    """Whether ``mark`` is in any text of ``value`` (strings, tuples, dataclasses)."""
    if isinstance(value, str):
        return mark in value
    if value is None or type(value) in _PLAIN:
        return False
    if isinstance(value, tuple | list | frozenset | set):
        return any(_holds(v, mark) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return any(_holds(getattr(value, name), mark) for name in _field_names(type(value)))
    if isinstance(value, dict):
        return any(_holds(k, mark) or _holds(v, mark) for k, v in value.items())
    return False


def _unmark(value: object, source: str) -> object:
    """``value`` with the file stand-in replaced by ``source`` in every text; the very same
    object where there is nothing to replace (one walk, no copies of unchanged parts)."""
    if isinstance(value, str):
        return value.replace(_SOURCE_MARK, source) if _SOURCE_MARK in value else value
    if isinstance(value, tuple):
        if all(type(v) is str for v in value):  # reasons: the usual case, made fast
            if not any(_SOURCE_MARK in v for v in value):
                return value
            return tuple(v.replace(_SOURCE_MARK, source) for v in value)
        items = [_unmark(v, source) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else tuple(items)
    if is_dataclass(value) and not isinstance(value, type):
        changed = {}
        for name in _field_names(type(value)):
            old = getattr(value, name)
            if old is None or type(old) in _PLAIN:
                continue
            new = _unmark(old, source)
            if new is not old:
                changed[name] = new
        return _evolve(value, changed) if changed else value
    return value


#: Values that hold no text: nothing to replace in them.
_PLAIN = frozenset({int, float, bool})


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's init fields (the findings have no others; cached: ``fields()`` is
    slow in a loop over a fleet)."""
    return tuple(f.name for f in fields(cls) if f.init)


def _evolve(value: Any, changes: dict[str, object]) -> Any:
    """``dataclasses.replace`` for the findings' plain frozen dataclasses (no
    ``__post_init__``, no slots), without re-running ``__init__``: a copy of the instance
    dictionary with ``changes`` written in (a fleet makes one per guest and field)."""
    if getattr(value, "__post_init__", None) is not None or not hasattr(value, "__dict__"):
        return replace(value, **changes)
    new = object.__new__(type(value))
    new.__dict__.update(value.__dict__)
    new.__dict__.update(changes)
    return new


def _guests(item: Input, profile: Profile, host: HostSpec, errors: list[InputError],
            domains: dict[str, str], note: Callable[[str], None],
            ) -> Iterator[tuple[GuestSpec, str | None, str | None]]:
    """The guests of one input with their uuids (None: unknown) and a hint for a config xl
    rejects for its encoding alone (a reason of its own); an unusable input is an error
    appended to ``errors``."""
    if item.kind == "sxp":
        errors.append(InputError(item.path, None, SXP_MESSAGE))
        return
    if item.kind == "xlcfg":
        guest = guest_from_xlcfg(item.data, profile, source=item.path, arch=host.arch)
        if guest.status != "ok":
            failed = not xlcfg.parse(item.data, profile.dialect, max_errors=1).ok
            why = _not_a_config(item)
            if why is not None and failed:
                errors.append(InputError(item.path, None, f"not an xl.cfg file ({why}): xl "
                                         "rejects it; its content is not shown"))
                return
            yield guest, None, _encoding_hint(item.data) if failed else None
            return
        yield guest, None, None
        return
    try:
        listing = guests_from_xl_list(item.data, source=item.path)
    except InputFileError as e:
        errors.append(InputError(e.path, e.line, e.message))
        return
    for text in listing.notes:
        note(clean_text(text))
    for guest, uuid in zip(listing.guests, listing.uuids, strict=True):
        if uuid is not None:
            if uuid in domains:
                continue  # the same domain in another listing: assessed already
            domains[uuid] = item.path
        yield guest, uuid, None


def _encoding_hint(data: bytes) -> str | None:
    """Why xl rejects a file that is a config in all but its encoding: CR line endings (a
    file saved on Windows) or a byte-order mark. libxlu's scanner has no rule for either
    byte, so xl fails with "lexical error"."""
    if b"\r" in data:
        if b"\r\n" in data:
            return ("the file has CRLF (Windows) line endings, which xl (libxlu) rejects: "
                    "its scanner accepts no carriage return; convert it with "
                    "`sed -i 's/\\r$//' FILE` (or dos2unix)")
        return ("the file has carriage returns (CR line endings), which xl (libxlu) rejects; "
                "convert them with `tr '\\r' '\\n'`")
    if data.startswith(UTF8_BOM):
        return ("the file starts with a UTF-8 byte-order mark, which xl (libxlu) rejects; "
                "remove it with `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`")
    return None


def _not_a_config(item: Input) -> str | None:
    """Why a file is not plausibly an xl.cfg (so its content must not be repeated), if so."""
    if b"\0" in item.data:
        return "binary data: a NUL byte"
    try:
        item.data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if item.leaves_tree():
        return f"a symbolic link to {clean_text(item.real_path())}, outside the scanned directory"
    return None


def _with_xl_warnings(finding: Finding, guest: GuestSpec) -> Finding:
    """The finding with the warnings xl prints for this guest (a number out of range, a
    list where a number belongs...) added to its reasons: xl ignores those settings, and so
    does the assessment, so the report says why."""
    said = tuple(f"xl warns: {clean_text(w)}" for w in guest.warnings
                 if w.endswith(XL_IGNORES))
    return replace(finding, reasons=finding.reasons + said) if said else finding
