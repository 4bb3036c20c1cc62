"""Guests: ``GuestSpec``, and what xl/libxl make of an xl.cfg file.

``GuestSpec`` holds the facts XSA-97 needs (type, memory, vCPUs, ``hap``, ``shadow_memory``)
with the lines they came from. ``guest_from_xlcfg``/``load_guest_cfg`` build one from an
xl.cfg file: it is parsed by ``xenvmmu.xlcfg`` in the host release's dialect, then read with
xl's rules of that release (``Profile``): ``type=``/``builder=`` prefix matching,
``memory``/``maxmem``/``vcpus``/``maxvcpus`` defaults, ``shadow_memory`` replacing the
default pool. xm-era Python files are recognised and never executed.

The other source of guests is ``xl list -l`` JSON (``xenvmmu.toolstack.xllist``); their
paging mode and pool are in ``xenvmmu.toolstack.paging``. Sources: formats/README.md §1,
research/xen-config.md §1.3; xen-project/xen tools/libxl/xl_cmdimpl.c (``parse_config_data``)
@ RELEASE-4.2.0 and RELEASE-4.4.0, tools/xl/xl_parse.c @ master.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from .. import xlcfg
from ..versions import Arch, GuestType, Profile
from .inputs import read_input

GuestStatus = Literal["ok", "not_evaluated", "invalid"]
KIB_MAX = 2**63 - 1  # libxl MemKB is uint64; xl computes `l * 1024` in a C long
INT_MAX = 2**31 - 1  # xl keeps vcpus/maxvcpus in a C int (b_info->max_vcpus)
DEFAULT_MEMORY_MIB = 32  # libxl__domain_build_info_setdefault: max_memkb 32 MiB
#: Errors kept from a file xl rejects (the first decides; garbage has one per line).
MAX_PARSE_ERRORS = 20
#: The end of a guest warning that repeats one of xl's own (a number it cannot read...).
XL_IGNORES = "(xl ignores it)"


@dataclass(frozen=True)
class GuestSpec:
    """One guest as xl/libxl see it. ``status`` is ``"ok"``, ``"not_evaluated"`` (an xm-era
    Python file: ``reason`` says why) or ``"invalid"`` (xl would refuse it; ``reason``).

    ``memory_mib``/``maxmem_mib``/``vcpus``/``maxvcpus`` are the values in effect, defaults
    applied; ``defaulted`` names those that were not set. ``*_line`` are 1-based lines of
    the settings in an xl.cfg (None when absent or from JSON). ``recorded_pool_kib`` is
    ``shadow_memkb`` as ``xl list -l`` printed it (xl's value, explicit or default).
    ``ignored_type``/``ignored_type_line``: a ``type=`` setting that xl of the release
    ignores (before 4.10 it reads only ``builder=``).
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
    ignored_type: str | None = None
    ignored_type_line: int | None = None
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
    #: what the config says about the guest's OS, for mitigations: "linux" (a PV boot path:
    #: kernel= or bootloader=), "windows" (viridian, Hyper-V enlightenments), else None
    os_hint: Literal["linux", "windows"] | None = None
    os_hint_why: str | None = None
    #: ``max_event_channels`` (xl.cfg, default 1023: docs/man/xl.cfg.5.pod.in @ RELEASE-4.13.0
    #: l.1317-1325; ``b_info->event_channels``), and its line
    max_event_channels: int = 1023
    max_event_channels_line: int | None = None
    #: ``max_maptrack_frames`` (xl.cfg 4.10+, ``b_info->max_maptrack_frames``); None: not set
    #: (the toolstack's or hypervisor's default applies, ``toolstack.grants``)
    max_maptrack_frames: int | None = None
    max_maptrack_frames_line: int | None = None
    #: passthrough PCI devices (xl.cfg ``pci = [...]``, ``pcidevs``), and the line
    pci_devices: int = 0
    pci_line: int | None = None
    #: the device model runs deprivileged: in a stub domain
    #: (``device_model_stubdomain_override``) or restricted (``dm_restrict``); None: unknown
    dm_deprivileged: bool | None = False
    dm_deprivileged_line: int | None = None

    @property
    def pvh_v1(self) -> bool:
        """A PVHv1 guest (``pvh=1`` on a PV guest, Xen 4.4-4.8)."""
        return self.type == "pv" and self.pvh is True

    @property
    def ignored_type_setting(self) -> str | None:
        """The ignored ``type=`` setting as written, ``type = "hvm"`` (None if there is none)."""
        return setting_text("type", self.ignored_type) if self.ignored_type is not None else None


def setting_text(key: str, value: str) -> str:
    """A string setting for a message: ``type = "hvm"`` (quotes and controls escaped)."""
    return f"{key} = {json.dumps(value, ensure_ascii=False)}"


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
    cfg = xlcfg.parse(raw, profile.dialect, max_errors=MAX_PARSE_ERRORS)
    if not cfg.ok:
        messages = cfg.messages(source)
        # libxlu reports an error at a newline one line early: line 0 for the first line.
        line = cfg.errors[0].line if cfg.errors and cfg.errors[0].line >= 1 else None
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


_TypeFrom = tuple[GuestType | None, Literal["type", "builder"] | None, int | None]
"""A guest type, the key that set it (None: the default) and that key's line."""


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
        self.ignored_type: tuple[str, int | None] | None = None

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
            self.warnings.append(f"{self.source}:{r.line}: {r.message} {XL_IGNORES}")
        return r

    def _number(self, key: str, *, kib: bool = False, c_int: bool = False,
                least: int = 0) -> tuple[int | None, int | None]:
        r = self._get(xlcfg.get_long, key)
        if r.status != "ok":
            return None, None
        assert isinstance(r.value, int)
        if r.value < 0:
            self.invalid.append((f"{key}={r.value} is negative", r.line))
            return None, r.line
        if r.value < least:
            self.invalid.append((f"{key}={r.value}: a guest needs at least {least}", r.line))
            return None, r.line
        if kib and r.value * 1024 > KIB_MAX:
            self.invalid.append((f"{key}={r.value} MiB overflows xl's KiB arithmetic", r.line))
            return None, r.line
        if c_int and r.value > INT_MAX:
            # xl stores it in a C int: the value is silently cut to 32 bits, which no
            # domain can be built with; refused rather than guessed.
            cut = (r.value + 2**31) % 2**32 - 2**31
            self.invalid.append((f"{key}={r.value} does not fit xl's C int (xl would cut "
                                 f"it to {cut})", r.line))
            return None, r.line
        return r.value, r.line

    def _type(self) -> _TypeFrom:
        t = self._get(xlcfg.get_string, "type")
        b = self._get(xlcfg.get_string, "builder")
        default: GuestType = self.profile.arm_default_type if self.arch == "arm" else "pv"
        if not self.profile.xl_type_key:
            return self._builder_only(t, b, default)
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

    def _builder_only(self, t: xlcfg.Lookup, b: xlcfg.Lookup, default: GuestType) -> _TypeFrom:
        """xl 4.2-4.9: no ``type=``; a ``builder=`` that is a prefix of "hvm" makes the guest
        HVM, any other value PV; without ``builder=`` the guest gets the default type."""
        kind = default
        if b.status == "ok":
            assert isinstance(b.value, str)
            kind = "hvm" if _prefix_of(b.value, ("hvm",)) else "pv"
        if t.status == "ok":
            assert isinstance(t.value, str)
            self.ignored_type = (t.value, t.line)
            how = "builder=" if b.status == "ok" else "xl's default, no builder="
            self.warnings.append(f"{self.source}:{t.line}: {setting_text('type', t.value)} is "
                                 f"ignored by xl {self.profile.version} (it reads builder=; "
                                 f"type= is 4.10+): guest type {kind} ({how})")
        if b.status != "ok":
            return default, None, None
        assert isinstance(b.value, str)
        if kind == "pv" and b.value != "generic":
            self.warnings.append(f"{self.source}:{b.line}: builder={b.value!r} is not a "
                                 "prefix of 'hvm': xl silently makes the guest PV")
        return kind, "builder", b.line

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
        memory, memory_line = self._number("memory", kib=True, least=1)
        maxmem, maxmem_line = self._number("maxmem", kib=True, least=1)
        vcpus, vcpus_line = self._number("vcpus", c_int=True, least=1)
        maxvcpus, maxvcpus_line = self._number("maxvcpus", c_int=True, least=1)
        shadow, shadow_line = self._number("shadow_memory", kib=True)
        on_reboot = self._get(xlcfg.get_string, "on_reboot")
        os_hint, os_hint_why = self._os_hint()
        evtchn, evtchn_line = self._number("max_event_channels", c_int=True)
        maptrack, maptrack_line = self._maptrack()
        pci = self._get(xlcfg.get_list, "pci")
        pci_devices = len(pci.value) if pci.status == "ok" and isinstance(pci.value, tuple) else 0
        dm_priv, dm_line = self._dm_deprivileged()

        defaulted = {k for k, v in (("memory", memory), ("maxmem", maxmem), ("vcpus", vcpus),
                                    ("maxvcpus", maxvcpus)) if v is None}
        eff_memory = memory if memory is not None else (maxmem or DEFAULT_MEMORY_MIB)
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
            ignored_type=self.ignored_type[0] if self.ignored_type else None,
            ignored_type_line=self.ignored_type[1] if self.ignored_type else None,
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
            os_hint=os_hint, os_hint_why=os_hint_why,
            max_event_channels=evtchn if evtchn is not None else 1023,
            max_event_channels_line=evtchn_line,
            max_maptrack_frames=maptrack, max_maptrack_frames_line=maptrack_line,
            pci_devices=pci_devices, pci_line=pci.line if pci_devices else None,
            dm_deprivileged=dm_priv, dm_deprivileged_line=dm_line,
        )

    def _maptrack(self) -> tuple[int | None, int | None]:
        """``max_maptrack_frames``: xl reads it from 4.10 (``xlu_cfg_get_long``, C int);
        older xl ignores the key (quietly: it was never xl's)."""
        if not self.profile.xl_maptrack_key:
            return None, None
        return self._number("max_maptrack_frames", c_int=True)

    def _dm_deprivileged(self) -> tuple[bool | None, int | None]:
        """Whether the device model is deprivileged: a stub domain
        (``device_model_stubdomain_override = 1``) or ``dm_restrict = 1``; read quietly."""
        for key in ("device_model_stubdomain_override", "dm_restrict"):
            r = xlcfg.get_defbool(self.cfg, key)
            if r.status == "ok" and r.value is True:
                return True, r.line
        return False, None

    def _os_hint(self) -> tuple[Literal["linux", "windows"] | None, str | None]:
        """Windows if ``viridian`` is on (Hyper-V enlightenments are for Windows); Linux (or
        another PV-capable OS) if the config names a PV boot path (``kernel=``,
        ``bootloader=``); else unknown. Read quietly: these keys are not XSA-97's."""
        v = self.cfg.find("viridian")
        if v is not None:
            on = v.is_list or xlcfg.get_defbool(self.cfg, "viridian").value is True
            if on:
                return "windows", f"viridian (line {v.line}): a Windows guest"
        for key in ("kernel", "bootloader"):
            s = self.cfg.find(key)
            if s is not None and not s.is_list and s.value:
                return "linux", f"{key} = {s.value!r} (line {s.line}): a PV-capable OS"
        return None, None
