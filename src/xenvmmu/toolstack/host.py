"""The host: Xen version, architecture, HAP, command line and watchdog.

A ``HostSpec`` comes from ``xl info`` output (``load_host``; the text is split into fields
by ``xenvmmu.toolstack.xlinfo``), from command-line flags (``host_from_flags``), or from
both: flags override what ``xl info`` says (``HostOverrides``, ``merge_host``). Every derived
fact keeps a reason string.

Before 4.13 ``virt_caps`` never says whether the CPU has EPT/NPT, so HAP is assumed present
unless told otherwise, and that assumption is recorded (formats/README.md §2.3).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from datetime import date, datetime

from ..versions import (
    Arch,
    Profile,
    Vendor,
    VersionError,
    XenVersion,
    profile_for,
)
from .cmdline import CmdlineOptions, parse_cmdline
from .inputs import InputFileError, read_input
from .xlinfo import XlInfo, parse_changeset, parse_xl_info

# InputFileError and the xl info parsers were defined here; they stay importable from here.
__all__ = [
    "HostOverrides",
    "HostSpec",
    "InputFileError",
    "XlInfo",
    "host_from_flags",
    "host_from_xl_info",
    "load_host",
    "merge_host",
    "parse_changeset",
    "parse_xl_info",
]


@dataclass(frozen=True)
class HostOverrides:
    """Facts given as flags; any field that is not None wins over ``xl info``."""

    xen_version: XenVersion | None = None
    arch: Arch | None = None
    cmdline: str | None = None
    cpu_hap: bool | None = None
    watchdog: bool | None = None
    watchdog_timeout: int | None = None
    changeset_date: datetime | date | None = None
    cpu_vendor: Vendor | None = None

    def merged(self, other: HostOverrides) -> HostOverrides:
        """These overrides with ``other``'s non-None fields on top."""
        values = {f.name: getattr(other, f.name) for f in fields(other)
                  if getattr(other, f.name) is not None}
        return HostOverrides(**{**{f.name: getattr(self, f.name) for f in fields(self)},
                                **values})


@dataclass(frozen=True)
class HostSpec:
    """One Xen host as far as XSA-97 is concerned.

    ``cpu_hap``: the CPU has EPT/NPT (None: cannot tell, or not x86); ``cpu_hap_assumed``:
    nobody said so, xenvmmu assumes it. ``hap_enabled``: the hypervisor's ``hap`` option
    after the command line. ``hap_available``: Xen offers HAP to HVM/PVH guests (both of the
    above; None on Arm). ``hap_reasons`` and ``watchdog_reason`` say how they were
    decided, in words for a report.
    """

    xen_version: XenVersion
    arch: Arch
    cpu_hap: bool | None
    cpu_hap_assumed: bool
    hap_enabled: bool
    hap_available: bool | None
    watchdog: bool
    watchdog_timeout: int
    cmdline: str
    options: CmdlineOptions
    changeset_date: datetime | date | None = None
    changeset: str | None = None
    virt_caps: tuple[str, ...] | None = None
    source: str | None = None
    hap_reasons: tuple[str, ...] = ()
    watchdog_reason: str = ""
    warnings: tuple[str, ...] = ()
    info: XlInfo | None = field(default=None, repr=False)
    overrides: HostOverrides = field(default=HostOverrides(), repr=False)
    #: "intel" (EPT) or "amd" (NPT); None when neither a flag nor ``xl info`` says
    cpu_vendor: Vendor | None = None
    cpu_vendor_reason: str = ""

    @property
    def reasons(self) -> tuple[str, ...]:
        return (*self.hap_reasons, self.watchdog_reason)

    def line_of(self, key: str) -> int | None:
        """The ``xl info`` line of a field (for SARIF locations), if it came from a file."""
        return self.info.line(key) if self.info is not None else None

    def profile(self, patched: frozenset[str] = frozenset()) -> Profile:
        """This host's release profile (development builds classified by changeset date)."""
        return profile_for(self.xen_version, patched=patched,
                           changeset_date=self.changeset_date)


def load_host(path: str | os.PathLike[str], overrides: HostOverrides = HostOverrides()) -> HostSpec:
    """Read an ``xl info`` file; raises ``InputFileError`` naming the file and line."""
    name = os.fspath(path)
    return host_from_xl_info(parse_xl_info(read_input(name), name), overrides)


def host_from_xl_info(info: XlInfo, overrides: HostOverrides = HostOverrides()) -> HostSpec:
    return _derive(info, overrides)


def host_from_flags(
    xen_version: XenVersion | str,
    *,
    cmdline: str = "",
    arch: Arch = "x86",
    cpu_hap: bool | None = None,
    watchdog: bool | None = None,
    watchdog_timeout: int | None = None,
    changeset_date: datetime | date | None = None,
    cpu_vendor: Vendor | None = None,
) -> HostSpec:
    """A host described by flags only (no ``xl info``)."""
    v = XenVersion.parse(xen_version) if isinstance(xen_version, str) else xen_version
    return _derive(None, HostOverrides(v, arch, cmdline, cpu_hap, watchdog, watchdog_timeout,
                                       changeset_date, cpu_vendor))


def merge_host(host: HostSpec, overrides: HostOverrides) -> HostSpec:
    """``host`` with flags on top (re-derives everything that depends on them)."""
    return _derive(host.info, host.overrides.merged(overrides))


def _version(info: XlInfo, warnings: list[str]) -> XenVersion:
    major, minor, extra = info.get("xen_major"), info.get("xen_minor"), info.get("xen_extra")
    full = info.get("xen_version")
    try:
        if major is not None and minor is not None:
            v = XenVersion.from_xl_info(major, minor, extra or "")
            if full is not None and full != str(v):
                warnings.append(f"xen_version {full!r} differs from xen_major/xen_minor/"
                                f"xen_extra ({v}); using the latter")
            return v
        assert full is not None  # parse_xl_info checked
        return XenVersion.parse(full)
    except VersionError as e:
        line = info.line("xen_major") if major is not None else info.line("xen_version")
        raise InputFileError(info.source, line, str(e)) from None


def _arch(info: XlInfo) -> Arch:
    machine = info.get("machine") or ""
    caps = info.get("xen_caps") or ""
    if re.fullmatch(r"x86_64|amd64|i[3-6]86", machine) or "x86_" in caps:
        return "x86"
    if machine.startswith(("aarch64", "arm")) or re.search(r"aarch64|armv7", caps):
        return "arm"
    line = info.line("machine") or info.line("xen_caps")
    raise InputFileError(info.source, line, f"unknown architecture (machine {machine!r}, "
                                            f"xen_caps {caps!r}); xenvmmu knows x86 and Arm")


def _derive(info: XlInfo | None, o: HostOverrides) -> HostSpec:
    warnings: list[str] = []
    reasons: list[str] = []
    if o.xen_version is not None:
        version = o.xen_version
    elif info is not None:
        version = _version(info, warnings)
    else:
        raise ValueError("a host needs a Xen version (xl info or a flag)")
    arch: Arch = o.arch or (_arch(info) if info is not None else "x86")
    changeset = None
    when: datetime | date | None = o.changeset_date
    raw_changeset = info.get("xen_changeset") if info is not None else None
    if raw_changeset is not None and raw_changeset != "unavailable":
        parsed, changeset = parse_changeset(raw_changeset)
        if parsed is None:
            warnings.append(f"xen_changeset {raw_changeset!r}: no date could be read")
        when = when or parsed
    profile = profile_for(version, changeset_date=when)

    cmdline = o.cmdline
    if cmdline is None:
        cmdline = info.get("xen_commandline") if info is not None else None
        if cmdline is None:
            warnings.append("no xen_commandline: assuming an empty hypervisor command line")
            cmdline = ""
    options = parse_cmdline(cmdline, profile.cmdline)
    warnings.extend(f"hypervisor command line: {e}" for e in options.errors)
    caps_text = info.get("virt_caps") if info is not None else None
    virt_caps = tuple(caps_text.split()) if caps_text is not None else None

    cpu_hap, assumed, available = _hap(arch, profile, options, virt_caps, o.cpu_hap,
                                       reasons, warnings)

    watchdog, timeout = options.watchdog, options.watchdog_timeout
    if o.watchdog_timeout is not None:
        timeout, watchdog = o.watchdog_timeout, o.watchdog_timeout != 0
    if o.watchdog is not None:
        watchdog = o.watchdog
    state = f"watchdog {'on' if watchdog else 'off'}, timeout {timeout} s"
    if o.watchdog is not None or o.watchdog_timeout is not None:
        watchdog_reason = f"{state} (flags)"
    elif options.watchdog_token is not None:
        watchdog_reason = f"{state} (command line {options.watchdog_token!r})"
    else:
        watchdog_reason = "watchdog off (Xen's default: no watchdog option on the command line)"
    vendor, vendor_reason = _vendor(arch, profile, info, o.cpu_vendor)
    return HostSpec(
        cpu_vendor=vendor, cpu_vendor_reason=vendor_reason,
        xen_version=version, arch=arch, cpu_hap=cpu_hap, cpu_hap_assumed=assumed,
        hap_enabled=options.hap, hap_available=available, watchdog=watchdog,
        watchdog_timeout=timeout, cmdline=cmdline, options=options, changeset_date=when,
        changeset=changeset, virt_caps=virt_caps,
        source=info.source if info is not None else None, hap_reasons=tuple(reasons),
        watchdog_reason=watchdog_reason, warnings=tuple(warnings), info=info, overrides=o,
    )


#: (word, bit) of VMX and SVM in ``xl info``'s hw_caps, per word order (see _branches.py):
#: before 4.7 boot_cpu_data's legacy order, from 4.7 the featureset order.
_VENDOR_BITS = {False: ((4, 5), (6, 2)), True: ((1, 5), (3, 2))}


def _vendor(arch: Arch, profile: Profile, info: XlInfo | None,
            flag: Vendor | None) -> tuple[Vendor | None, str]:
    """The CPU vendor: the flag, else VMX / SVM in ``xl info``'s hw_caps, else unknown."""
    if arch != "x86":
        return None, ""
    if flag is not None:
        return flag, f"CPU vendor {flag} (flag)"
    caps = info.get("hw_caps") if info is not None else None
    if caps is None:
        return None, "CPU vendor unknown (no `xl info` hw_caps; pass --cpu-vendor)"
    try:
        words = [int(w, 16) for w in caps.split(":")]
    except ValueError:
        return None, f"CPU vendor unknown: hw_caps {caps!r} is not 8 hex words"
    (vw, vb), (sw, sb) = _VENDOR_BITS[profile.hw_caps_featureset]
    vmx = len(words) > vw and words[vw] >> vb & 1
    svm = len(words) > sw and words[sw] >> sb & 1
    if vmx and not svm:
        return "intel", "CPU vendor intel: hw_caps has VMX (EPT paging)"
    if svm and not vmx:
        return "amd", "CPU vendor amd: hw_caps has SVM (NPT paging)"
    return None, "CPU vendor unknown: hw_caps shows neither VMX nor SVM alone; pass --cpu-vendor"


def _hap(arch: Arch, profile: Profile, options: CmdlineOptions,
         virt_caps: tuple[str, ...] | None, flag: bool | None, reasons: list[str],
         warnings: list[str]) -> tuple[bool | None, bool, bool | None]:
    """(cpu_hap, assumed, hap_available), appending the reasons."""
    if arch != "x86":
        reasons.append("Arm host: stage-2 translation, not x86 HAP (XSA-97 is x86-only)")
        return None, False, None
    if options.hap_ignored:
        reasons.append(
            f"hypervisor option {options.hap_ignored!r} ignored: Xen {profile.version.major}."
            f"{profile.version.minor} has no `hap` option (removed by 302b8a7c00 in 2008, back "
            "in 4.3.0 with bf56007693); HAP stays on where the CPU has it")
    if options.hap_token is not None:
        state = "enabled" if options.hap else "disabled"
        reasons.append(f"hypervisor option hap {state} by {options.hap_token!r}"
                       f"{'' if options.hap else ': HVM/PVH guests use shadow paging'}")
    reports = profile.virt_caps_reports_hap and virt_caps is not None
    if flag is not None:
        reasons.append(f"CPU HAP (EPT/NPT) {'present' if flag else 'absent'} (flag)")
        if reports and virt_caps is not None and options.hap and (("hap" in virt_caps) != flag):
            warnings.append(f"the cpu_hap flag ({flag}) contradicts virt_caps "
                            f"({' '.join(virt_caps)}); using the flag")
        cpu: bool | None = flag
        assumed = False
    elif reports and virt_caps is not None:
        if "hap" in virt_caps:
            cpu, assumed = True, False
            reasons.append("virt_caps lists hap: the CPU has EPT/NPT (Xen >=4.13 reports it)")
        elif options.hap:
            cpu, assumed = False, False
            reasons.append("virt_caps has no hap although the command line does not disable "
                           "it: the CPU has no EPT/NPT")
        else:
            cpu, assumed = None, False
            reasons.append("virt_caps has no hap because the command line disables it; the "
                           "CPU's EPT/NPT support cannot be seen")
            return cpu, assumed, False
    else:
        cpu, assumed = True, True
        why = ("before Xen 4.13 `xl info` does not say" if not profile.virt_caps_reports_hap
               else "no `xl info` virt_caps was given")
        reasons.append(f"CPU HAP (EPT/NPT) assumed present: {why}; pass --no-cpu-hap "
                       "if the CPU lacks EPT/NPT")
    return cpu, assumed, bool(cpu) and options.hap
