"""Guests: what xl/libxl make of an xl.cfg file or of an ``xl list -l`` domain.

``GuestSpec`` holds the facts XSA-97 needs (type, memory, vCPUs, ``hap``, ``shadow_memory``)
with the lines they came from. Two sources:

* ``guest_from_xlcfg``: the file is parsed by ``xenvmmu.xlcfg`` in the host release's
  dialect, then read with xl's rules of that release (``Profile``): ``type=``/``builder=``
  prefix matching, ``memory``/``maxmem``/``vcpus``/``maxvcpus`` defaults, ``shadow_memory``
  replacing the default pool. xm-era Python files are recognised and never executed.
* ``guests_from_xl_list``: ``xl list -l`` JSON of any version (union under ``"u"`` up to
  4.4, ``"type.<kind>"`` from 4.5; dom0 listed from 4.5 and skipped here).

``effective_paging`` gives the guest's x86 paging mode with its chain of reasons, and
``paging_pool`` its paging (shadow/HAP) pool. Sources: formats/README.md §1,
research/xen-config.md §1.3, §2, §3; xen-project/xen tools/libxl/xl_cmdimpl.c
(``parse_config_data``) @ RELEASE-4.2.0 and RELEASE-4.4.0, tools/xl/xl_parse.c @ master.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple, cast

from .. import xlcfg
from ..versions import Arch, GuestType, Paging, Profile, default_pool_kib
from .host import HostSpec, InputFileError, decode_text, read_input

GuestStatus = Literal["ok", "not_evaluated", "invalid"]
LIBXL_MEMKB_DEFAULT = -1  # ~0ULL printed through yajl_gen_integer(long long)
_KIB_MAX = 2**63 - 1  # libxl MemKB is uint64; xl computes `l * 1024` in a C long
_DEFAULT_MEMORY_MIB = 32  # libxl__domain_build_info_setdefault: max_memkb 32 MiB


@dataclass(frozen=True)
class GuestSpec:
    """One guest as xl/libxl see it. ``status`` is ``"ok"``, ``"not_evaluated"`` (an xm-era
    Python file: ``reason`` says why) or ``"invalid"`` (xl would refuse it; ``reason``).

    ``memory_mib``/``maxmem_mib``/``vcpus``/``maxvcpus`` are the values in effect, defaults
    applied; ``defaulted`` names those that were not set. ``*_line`` are 1-based lines of
    the settings in an xl.cfg (None when absent or from JSON). ``recorded_pool_kib`` is
    ``shadow_memkb`` as ``xl list -l`` printed it (xl's value, explicit or default).
    """

    source: str
    origin: Literal["xl.cfg", "xl list -l"] = "xl.cfg"
    name: str | None = None
    domid: int | None = None
    type: GuestType | None = None
    type_key: Literal["type", "builder"] | None = None
    memory_mib: int | None = None
    maxmem_mib: int | None = None
    maxmem_kib: int | None = None
    vcpus: int | None = None
    maxvcpus: int | None = None
    defaulted: frozenset[str] = frozenset()
    hap: bool | None = None
    shadow_memory_mib: int | None = None
    recorded_pool_kib: int | None = None
    on_reboot: str | None = None
    pvh: bool | None = None  # PVHv1 flag (xl.cfg `pvh=`, c_info.pvh; Xen 4.4-4.8)
    type_line: int | None = None
    memory_line: int | None = None
    maxmem_line: int | None = None
    vcpus_line: int | None = None
    maxvcpus_line: int | None = None
    hap_line: int | None = None
    shadow_memory_line: int | None = None
    dialect: str | None = None
    warnings: tuple[str, ...] = ()
    status: GuestStatus = "ok"
    reason: str | None = None
    error_line: int | None = None

    @property
    def pvh_v1(self) -> bool:
        """A PVHv1 guest (``pvh=1`` on a PV guest, Xen 4.4-4.8)."""
        return self.type == "pv" and self.pvh is True


# --------------------------------------------------------------------------------------------
# xl.cfg

_PYTHON_RE = re.compile(
    rb"^[ \t]*(import[ \t]+\w|from[ \t]+[\w.]+[ \t]+import[ \t]|def[ \t]+\w+[ \t]*\(|"
    rb"class[ \t]+\w+|(if|for|while|elif|else|try|except)\b[^\n]*:[ \t]*(#[^\n]*)?$)",
    re.MULTILINE,
)


def looks_like_python(data: bytes) -> bool:
    """Obvious Python statements (``import``, ``def``, ``if …:``) at the start of a line."""
    return _PYTHON_RE.search(data) is not None


def load_guest_cfg(path: str | os.PathLike[str], profile: Profile,
                   arch: Arch = "x86") -> GuestSpec:
    """Read and evaluate an xl.cfg file (``InputFileError`` only if it cannot be read)."""
    name = os.fspath(path)
    return guest_from_xlcfg(read_input(name), profile, source=name, arch=arch)


def guest_from_xlcfg(data: bytes | str, profile: Profile, *, source: str = "<xl.cfg>",
                     arch: Arch = "x86") -> GuestSpec:
    """What xl of ``profile``'s release makes of an xl.cfg file. Never raises for content."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    cfg = xlcfg.parse(raw, profile.dialect)
    if not cfg.ok:
        messages = cfg.messages(source)
        line = cfg.errors[0].line if cfg.errors else None
        first = messages[0] if messages else f"{source}: unreadable"
        if looks_like_python(raw):
            return GuestSpec(source, status="not_evaluated", dialect=profile.dialect,
                             error_line=line, warnings=tuple(messages),
                             reason="xm-era Python configuration: xl rejects it and xenvmmu "
                                    "never executes it (convert it to xl.cfg syntax)")
        if cfg.python_warning:
            return GuestSpec(source, status="not_evaluated", dialect=profile.dialect,
                             error_line=line, warnings=tuple(messages),
                             reason=f"xl {profile.version} rejects the file and says it looks "
                                    f"like Python (xm syntax?): {first}; xenvmmu never "
                                    "executes configs")
        return GuestSpec(source, status="invalid", dialect=profile.dialect, error_line=line,
                         warnings=tuple(messages),
                         reason=f"xl {profile.version} cannot parse the file: {first}")
    return _Reader(cfg, profile, source, arch).guest()


def _prefix_of(value: str, words: tuple[str, ...]) -> str | None:
    """xl's ``!strncmp(buf, word, strlen(buf))``: the first word ``value`` is a prefix of."""
    return next((w for w in words if w.startswith(value)), None)


class _Reader:
    """One pass over a parsed xl.cfg with xl's getters and rules; collects warnings."""

    def __init__(self, cfg: xlcfg.ParseResult, profile: Profile, source: str,
                 arch: Arch) -> None:
        self.cfg, self.profile, self.source, self.arch = cfg, profile, source, arch
        self.warnings: list[str] = []
        self.invalid: list[tuple[str, int | None]] = []

    def _get(self, getter: Callable[[xlcfg.ParseResult, str], xlcfg.Lookup],
             key: str) -> xlcfg.Lookup:
        try:
            r = getter(self.cfg, key)
        except ValueError:  # xlcfg.strtol hits Python's 4300-digit int() limit
            s = self.cfg.find(key)
            r = xlcfg.Lookup(key, "error", errno="ERANGE", line=s.line if s else None,
                             message=f"warning: parameter `{key}' could not be parsed as a "
                                     "number: Numerical result out of range")
        if r.status == "error":
            self.warnings.append(f"{self.source}:{r.line}: {r.message} (xl ignores it)")
        return r

    def _number(self, key: str, *, kib: bool = False) -> tuple[int | None, int | None]:
        r = self._get(xlcfg.get_long, key)
        if r.status != "ok":
            return None, None
        assert isinstance(r.value, int)
        if r.value < 0:
            self.invalid.append((f"{key}={r.value} is negative", r.line))
            return None, r.line
        if kib and r.value * 1024 > _KIB_MAX:
            self.invalid.append((f"{key}={r.value} MiB overflows xl's KiB arithmetic", r.line))
            return None, r.line
        return r.value, r.line

    def _type(self) -> tuple[GuestType | None, Literal["type", "builder"] | None, int | None]:
        t = self._get(xlcfg.get_string, "type")
        b = self._get(xlcfg.get_string, "builder")
        default: GuestType = self.profile.arm_default_type if self.arch == "arm" else "pv"
        if not self.profile.xl_type_key:
            if t.status == "ok":
                self.warnings.append(f"{self.source}:{t.line}: type= is ignored by xl "
                                     f"{self.profile.version} (it reads builder=; type= is 4.10+)")
            if b.status != "ok":
                return default, None, None
            assert isinstance(b.value, str)
            if _prefix_of(b.value, ("hvm",)):
                return "hvm", "builder", b.line
            if b.value != "generic":
                self.warnings.append(f"{self.source}:{b.line}: builder={b.value!r} is not a "
                                     "prefix of 'hvm': xl silently makes the guest PV")
            return "pv", "builder", b.line
        kind: GuestType | None = None
        key: Literal["type", "builder"] | None = None
        line: int | None = None
        if t.status == "ok":
            assert isinstance(t.value, str)
            word = _prefix_of(t.value, ("hvm", "pv", "pvh"))
            if word is None:
                self.invalid.append((f"type={t.value!r}: xl exits 'Invalid domain type'", t.line))
                return None, "type", t.line
            kind, key, line = cast(GuestType, word), "type", t.line
        if b.status == "ok":
            assert isinstance(b.value, str)
            word = _prefix_of(b.value, ("hvm", "generic"))
            if word is None:
                self.invalid.append((f"builder={b.value!r}: xl exits 'Invalid domain type'",
                                     b.line))
                return kind, key, line
            from_builder: GuestType = "hvm" if word == "hvm" else "pv"
            if kind is not None and kind != from_builder:
                self.invalid.append(("builder= contradicts type=: xl exits", b.line))
                return kind, key, line
            if kind is None:
                kind, key, line = from_builder, "builder", b.line
                self.warnings.append(f"{self.source}:{b.line}: builder= is deprecated since "
                                     "Xen 4.10; use type=")
        if kind is None:
            return default, None, None
        return kind, key, line

    def guest(self) -> GuestSpec:
        p = self.profile
        kind, type_key, type_line = self._type()
        name = self._get(xlcfg.get_string, "name")
        if name.status != "ok":
            self.invalid.append(("no name=: xl exits 'Domain name must be specified.'", None))
        hap = self._get(xlcfg.get_defbool, "hap")
        pvh = self._get(xlcfg.get_defbool, "pvh")
        if pvh.status == "ok" and not p.pvh_v1:
            self.warnings.append(f"{self.source}:{pvh.line}: pvh= is ignored by xl "
                                 f"{p.version} (PVHv1 existed in Xen 4.4-4.8)")
        memory, memory_line = self._number("memory", kib=True)
        maxmem, maxmem_line = self._number("maxmem", kib=True)
        vcpus, vcpus_line = self._number("vcpus")
        maxvcpus, maxvcpus_line = self._number("maxvcpus")
        shadow, shadow_line = self._number("shadow_memory", kib=True)
        on_reboot = self._get(xlcfg.get_string, "on_reboot")

        defaulted = {k for k, v in (("memory", memory), ("maxmem", maxmem), ("vcpus", vcpus),
                                    ("maxvcpus", maxvcpus)) if v is None}
        eff_memory = memory if memory is not None else (maxmem or _DEFAULT_MEMORY_MIB)
        eff_maxmem = maxmem if maxmem is not None else eff_memory
        if memory is not None and maxmem is not None and maxmem < memory:
            self.warnings.append(f"{self.source}:{maxmem_line}: maxmem ({maxmem}) < memory "
                                 f"({memory}): libxl refuses a target above the maximum")
        eff_vcpus = vcpus if vcpus is not None else 1
        eff_max = maxvcpus if maxvcpus is not None else eff_vcpus
        if maxvcpus is not None and vcpus is not None and maxvcpus < vcpus:
            self.warnings.append(f"{self.source}:{maxvcpus_line}: maxvcpus < vcpus "
                                 "(xl on master exits 'maxvcpus < vcpus')")
        status: GuestStatus = "invalid" if self.invalid else "ok"
        reason = "; ".join(r for r, _ in self.invalid) if self.invalid else None
        return GuestSpec(
            self.source, "xl.cfg",
            name=name.value if isinstance(name.value, str) else None,
            type=kind, type_key=type_key, type_line=type_line,
            memory_mib=eff_memory, maxmem_mib=eff_maxmem, maxmem_kib=eff_maxmem * 1024,
            vcpus=eff_vcpus, maxvcpus=eff_max, defaulted=frozenset(defaulted),
            hap=hap.value if isinstance(hap.value, bool) else None, hap_line=hap.line,
            shadow_memory_mib=shadow, shadow_memory_line=shadow_line,
            on_reboot=on_reboot.value if isinstance(on_reboot.value, str) else "restart",
            pvh=pvh.value if p.pvh_v1 and isinstance(pvh.value, bool) else None,
            memory_line=memory_line, maxmem_line=maxmem_line, vcpus_line=vcpus_line,
            maxvcpus_line=maxvcpus_line, dialect=p.dialect, warnings=tuple(self.warnings),
            status=status, reason=reason,
            error_line=next((n for _, n in self.invalid if n is not None), None),
        )


# --------------------------------------------------------------------------------------------
# xl list -l JSON


@dataclass(frozen=True)
class GuestList:
    """The domains of one ``xl list -l`` output (dom0 skipped, with a note)."""

    source: str
    guests: tuple[GuestSpec, ...]
    notes: tuple[str, ...] = ()


def load_xl_list(path: str | os.PathLike[str]) -> GuestList:
    """Read an ``xl list -l`` JSON file; ``InputFileError`` names the file for bad input."""
    name = os.fspath(path)
    return guests_from_xl_list(read_input(name), source=name)


def guests_from_xl_list(data: bytes | str, *, source: str = "<xl list -l>") -> GuestList:
    """Every domain of ``xl list -l`` output (an array; ``xl create -n`` prints one object)."""
    text = decode_text(data, source, "`xl list -l` JSON")
    if text.lstrip().startswith("("):
        raise InputFileError(source, None, "S-expression output (output_format=\"sxp\" in "
                                           "xl.conf); xenvmmu reads only the JSON form")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputFileError(source, e.lineno, f"invalid JSON ({e.msg}, column {e.colno}); "
                                               "truncated output?") from None
    except (ValueError, RecursionError) as e:
        raise InputFileError(source, None, f"unusable JSON: {e}") from None
    if isinstance(doc, dict) and "config" in doc:
        doc = [doc]
    if not isinstance(doc, list):
        raise InputFileError(source, None, "expected a JSON array of {\"domid\", \"config\"} "
                                           f"objects (xl list -l), got a {type(doc).__name__}")
    guests: list[GuestSpec] = []
    notes: list[str] = []
    for i, entry in enumerate(doc):
        if isinstance(entry, dict) and type(entry.get("domid")) is int and entry["domid"] == 0:
            name = _dig(entry, "config", "c_info", "name")
            notes.append(f"{source}: domain 0 ({name or 'dom0'}) skipped: dom0 is not an HVM "
                         "guest (xl lists it from Xen 4.5)")
            continue
        guests.append(_domain(entry, i, source))
    if not doc:
        notes.append(f"{source}: no domains listed")
    return GuestList(source, tuple(guests), tuple(notes))


def _dig(obj: object, *path: str) -> object:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _int(obj: dict[str, object], key: str, where: str, problems: list[str]) -> int | None:
    """An integer field; ``-1`` (LIBXL_MEMKB_DEFAULT) and absence are None."""
    v = obj.get(key)
    if v is None or (type(v) is int and v == LIBXL_MEMKB_DEFAULT):
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _KIB_MAX:
        problems.append(f"{where}.{key} = {str(v)[:40]!r} is not an integer in range")
        return None
    return v


_DEFBOOL = {"True": True, "False": False, "<default>": None}


def _domain(entry: object, index: int, source: str) -> GuestSpec:
    where = f"{source}: domain #{index}"
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        return GuestSpec(source, "xl list -l", status="invalid",
                         reason=f"{where}: not a {{\"domid\", \"config\"}} object")
    domid = entry.get("domid")
    problems: list[str] = []
    warnings: list[str] = []
    if domid is not None and (not isinstance(domid, int) or isinstance(domid, bool)
                              or not 0 <= domid < 2**16):
        problems.append(f"domid {str(domid)[:20]!r} is not a domain id")
        domid = None
    config = entry["config"]
    c_info, b_info = config.get("c_info"), config.get("b_info")
    if not isinstance(c_info, dict) or not isinstance(b_info, dict):
        return GuestSpec(source, "xl list -l", domid=domid, status="invalid",
                         reason=f"{where}: config has no c_info/b_info objects")
    name = c_info.get("name") if isinstance(c_info.get("name"), str) else None
    kind = c_info.get("type")
    if kind not in ("hvm", "pv", "pvh"):
        problems.append(f"c_info.type {str(kind)[:20]!r} is not hvm, pv or pvh")
        kind = None
    hap = _DEFBOOL.get(c_info["hap"]) if isinstance(c_info.get("hap"), str) else None
    if "hap" in c_info and c_info["hap"] not in _DEFBOOL:
        warnings.append(f"{where}: c_info.hap {str(c_info['hap'])[:20]!r} not understood")
    pvh = _DEFBOOL.get(c_info["pvh"]) if isinstance(c_info.get("pvh"), str) else None
    union = [k for k in b_info if k == "u" or k.startswith("type.")]
    if kind and union and union[0] != "u" and union[0] != f"type.{kind}":
        warnings.append(f"{where}: b_info union {union[0]!r} does not match type {kind!r}")

    max_kib = _int(b_info, "max_memkb", "b_info", problems)
    target_kib = _int(b_info, "target_memkb", "b_info", problems)
    max_vcpus = _int(b_info, "max_vcpus", "b_info", problems) or None  # 0 = not set (<=4.4)
    avail = b_info.get("avail_vcpus")
    online = len(avail) if isinstance(avail, list) and avail else None
    pool = _int(b_info, "shadow_memkb", "b_info", problems)
    on_reboot = config.get("on_reboot") if isinstance(config.get("on_reboot"), str) else None

    defaulted = {k for k, v in (("memory", target_kib), ("maxmem", max_kib),
                                ("vcpus", online), ("maxvcpus", max_vcpus)) if v is None}
    mem_kib = target_kib if target_kib is not None else max_kib
    maxmem_kib = max_kib if max_kib is not None else mem_kib
    if maxmem_kib is None:
        mem_kib = maxmem_kib = _DEFAULT_MEMORY_MIB * 1024
    vcpus = online or max_vcpus or 1
    return GuestSpec(
        source, "xl list -l", name=name, domid=domid, type=kind,
        memory_mib=None if mem_kib is None else mem_kib // 1024,
        maxmem_mib=maxmem_kib // 1024, maxmem_kib=maxmem_kib,
        vcpus=vcpus, maxvcpus=max(max_vcpus or vcpus, vcpus), defaulted=frozenset(defaulted),
        hap=hap, recorded_pool_kib=pool, on_reboot=on_reboot, pvh=pvh,
        warnings=tuple(warnings), status="invalid" if problems else "ok",
        reason=f"{where}: " + "; ".join(problems) if problems else None,
    )


# --------------------------------------------------------------------------------------------
# Paging mode and pool


class PagingDecision(NamedTuple):
    """The guest's x86 paging mode (None: not x86 HVM/PVH, or it cannot be created)."""

    mode: Paging | None
    reasons: tuple[str, ...]
    creation_fails: bool


def _at(guest: GuestSpec, line: int | None) -> str:
    return f" ({guest.source}:{line})" if line is not None else ""


def effective_paging(guest: GuestSpec, host: HostSpec, profile: Profile) -> PagingDecision:
    """HAP or shadow for an x86 HVM/PVH guest, and why: config ``hap``, the hypervisor's
    ``hap`` option, the CPU, and the release's rules (xen-config.md §3):

    * <=4.12: HAP iff the CPU has EPT/NPT, the command line leaves ``hap`` on and the config
      does not say ``hap=0``; otherwise shadow, silently (xen/arch/x86/domain.c @ 4.4.0);
    * >=4.13: the config default follows the host; an explicit ``hap=1`` on a host without
      HAP makes domain creation fail (xen/arch/x86/domain.c @ RELEASE-4.13.0).
    """
    if guest.status == "not_evaluated":
        return PagingDecision(None, (f"not evaluated: {guest.reason}",), False)
    if guest.status == "invalid":
        return PagingDecision(None, (f"not assessed, invalid input: {guest.reason}",), False)
    if host.arch != "x86":
        return PagingDecision(None, ("Arm host: stage-2 paging; XSA-97 is x86-only",), False)
    if guest.type is None:
        return PagingDecision(None, ("guest type unknown",), False)
    if guest.origin == "xl list -l":
        kind = f"guest type {guest.type} (c_info.type)"
    elif guest.type_key:
        kind = f"guest type {guest.type} ({guest.type_key}=){_at(guest, guest.type_line)}"
    else:
        kind = f"guest type {guest.type} (xl's default: no type=/builder=)"
    if guest.pvh_v1:
        return PagingDecision(None, (kind, "PVHv1 (pvh=1, Xen 4.4-4.8): an experimental PV "
                                           "guest in an HAP container; not assessed"), False)
    if guest.type == "pv":
        return PagingDecision(None, (kind, "PV guests have no HVM paging mode (not affected)"),
                              False)
    reasons = [kind]
    setting = "c_info.hap" if guest.origin == "xl list -l" else "config hap"
    if guest.hap is None:
        reasons.append(f"{setting} not set (default)")
    else:
        reasons.append(f"{setting} = {str(guest.hap).lower()}{_at(guest, guest.hap_line)}")
    reasons.extend(host.hap_reasons)
    available = bool(host.hap_available)
    if guest.hap is False:
        mode: Paging = "shadow"
        reasons.append("the guest refuses HAP (hap=0): shadow paging")
    elif available:
        mode = "hap"
        reasons.append("HAP available and not refused: HAP")
    elif profile.hap_default_follows_host and guest.hap is True:
        reasons.append(f"Xen {profile.version}: hap=1 requested but the host offers no HAP: "
                       "domain creation fails ('HAP requested but not supported')")
        return PagingDecision(None, tuple(reasons), True)
    elif profile.hap_default_follows_host:
        mode = "shadow"
        reasons.append(f"Xen {profile.version}: the hap default follows the host, which "
                       "offers no HAP: shadow paging")
    else:
        mode = "shadow"
        reasons.append(f"Xen {profile.version}: no HAP on the host, silent fallback to shadow")
    caps = host.virt_caps
    if mode == "shadow" and profile.virt_caps_reports_hap and caps is not None \
            and "shadow" not in caps:
        reasons.append("virt_caps has no shadow (Xen built without shadow paging): domain "
                       "creation fails")
        return PagingDecision(None, tuple(reasons), True)
    return PagingDecision(mode, tuple(reasons), False)


class PoolSize(NamedTuple):
    """The guest's paging pool. ``how``: explicit (``shadow_memory=``), recorded (printed by
    ``xl list -l``), default (computed), not_applicable, unknown. ``applied_kib``: what Xen
    gets (whole MiB, rounded up, before 4.17). ``default_kib``: the default for comparison."""

    kib: int | None
    how: Literal["explicit", "recorded", "default", "not_applicable", "unknown"]
    reason: str
    applied_kib: int | None = None
    default_kib: int | None = None


def paging_pool(guest: GuestSpec, host: HostSpec, profile: Profile,
                decision: PagingDecision | None = None) -> PoolSize:
    """The paging (shadow/HAP) pool of an HVM/PVH guest (xen-config.md §2)."""
    if decision is None:
        decision = effective_paging(guest, host, profile)
    if guest.status != "ok" or guest.type is None:
        return PoolSize(None, "not_applicable", decision.reasons[0])
    arm = host.arch == "arm"
    if arm and profile.pool_formula != "libxl-4.17":
        return PoolSize(None, "not_applicable", "Arm before 4.17: no per-domain P2M pool")
    if not arm and decision.mode is None:
        return PoolSize(None, "not_applicable", "no HVM paging pool: " + decision.reasons[-1])
    default, why = _default_pool(guest, host, profile, decision.mode)
    mib_granular = profile.pool_formula != "libxl-4.17"  # SET_ALLOCATION takes MiB (<=4.16)

    def applied(kib: int) -> int:
        return -(-kib // 1024) * 1024 if mib_granular else kib

    if guest.shadow_memory_mib is not None:
        kib = guest.shadow_memory_mib * 1024
        return PoolSize(kib, "explicit", f"shadow_memory={guest.shadow_memory_mib} replaces the "
                        f"default{_at(guest, guest.shadow_memory_line)}", applied(kib), default)
    if guest.recorded_pool_kib is not None:
        kib = guest.recorded_pool_kib
        return PoolSize(kib, "recorded", "shadow_memkb as recorded by xl", applied(kib), default)
    if default is None:
        return PoolSize(None, "unknown", why)
    return PoolSize(default, "default", why, applied(default), default)


def _default_pool(guest: GuestSpec, host: HostSpec, profile: Profile,
                  mode: Paging | None) -> tuple[int | None, str]:
    assert guest.type is not None and guest.maxmem_kib is not None and guest.maxvcpus
    vcpus, maxmem = guest.maxvcpus, guest.maxmem_kib // 1024
    note = ""
    if profile.pool_by == "xl":
        # xl <=4.12 computes the default in parse_config_data() from b_info as xl set it,
        # before libxl's defaults: max_vcpus is 0 without vcpus=/maxvcpus=, and without
        # memory=/maxmem= max_memkb is the ~0 sentinel (xen-config.md §2 quirk).
        if {"memory", "maxmem"} <= guest.defaulted:
            return None, ("xl <=4.12 computes the default from the unset max_memkb sentinel "
                          "and Xen gets 0 MiB; runtime effect untested (xen-config.md §2)")
        if {"vcpus", "maxvcpus"} <= guest.defaulted and guest.origin == "xl.cfg":
            vcpus, note = 0, "; no vcpus=/maxvcpus=, so xl counts 0 vCPUs"
    kib = default_pool_kib(maxmem, vcpus, guest_type=guest.type, paging=mode, arch=host.arch,
                           formula=profile.pool_formula)
    return kib, (f"default pool ({profile.pool_formula} formula, computed by "
                 f"{profile.pool_by}): {vcpus} vCPUs, {maxmem} MiB{note}")
