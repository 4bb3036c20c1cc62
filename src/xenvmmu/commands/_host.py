"""The host flags `audit` and `report` share: one definition, so both read a host alike.

``add_host_arguments`` adds them to a parser; ``host_from_args`` turns the parsed values
(with ``--host`` as the base, flags winning) into a :class:`~xenvmmu.toolstack.HostSpec`,
raising ``ValueError``/``InputFileError``/``VersionError`` with a message for the user.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime

from ..toolstack import HostOverrides, HostSpec, host_from_flags, load_host
from ..toolstack.host import host_from_xl_info
from ..toolstack.xlinfo import parse_xl_info
from ..versions import KNOWN_PATCHES, Arch, XenVersion

#: Xen keeps watchdog_timeout in an unsigned int (xen/arch/x86/nmi.c, opt_watchdog_timeout).
MAX_WATCHDOG_TIMEOUT_S = 2**32 - 1
#: HVM guests, and so XSA-97's operations, exist from Xen 3.0; the release table starts at
#: 4.0 and treats older 3.x releases like 4.0. A major version below 3 is no Xen release.
FIRST_XEN_MAJOR = 3
#: What operators write, and what `xl info` prints as `machine` (uname -m), per architecture.
ARCH_SPELLINGS: dict[str, Arch] = {
    "x86": "x86", "x86_64": "x86", "amd64": "x86",
    "arm": "arm", "arm32": "arm", "armv7l": "arm", "arm64": "arm", "aarch64": "arm",
}


def changeset_date(text: str) -> datetime | date:
    """``--changeset``: a date (``2014-09-12``) or ``xl info``'s ``xen_changeset`` line
    (``Fri Sep 12 16:39:44 2014 +0530 git:4218cde``): what dates a development build."""
    from ..toolstack.xlinfo import parse_changeset

    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        pass
    when, _ = parse_changeset(text.strip())
    if when is None:
        raise argparse.ArgumentTypeError(
            f"not a changeset date: {text!r} (give 2014-09-12, or xl info's xen_changeset)")
    return when


def _arch(text: str) -> Arch:
    try:
        return ARCH_SPELLINGS[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"unknown architecture {text!r}; one of {', '.join(ARCH_SPELLINGS)}") from None


def add_host_arguments(p: argparse.ArgumentParser, title: str) -> None:
    """The host group: ``--host`` and the flags that override it."""
    h = p.add_argument_group(title)
    h.add_argument("--host", metavar="XL_INFO_FILE", help="`xl info` output of the host")
    h.add_argument("--xen-version", metavar="V", help="Xen version, e.g. 4.4.1 or 4.5-unstable")
    h.add_argument("--cmdline", metavar="TEXT", help="the hypervisor command line")
    h.add_argument("--arch", type=_arch, metavar="ARCH",
                   help="host architecture: x86 (x86_64, amd64) or arm (arm32, armv7l, arm64, "
                   "aarch64), as `xl info` prints it")
    h.add_argument("--cpu-hap", dest="cpu_hap", action="store_true", default=None,
                   help="the CPU has EPT/NPT (default: assumed unless xl info says otherwise)")
    h.add_argument("--no-cpu-hap", dest="cpu_hap", action="store_false",
                   help="the CPU has no EPT/NPT")
    h.add_argument("--cpu-vendor", choices=["intel", "amd"],
                   help="the CPU vendor: intel (EPT) or amd (NPT) paging (default: from xl "
                   "info's hw_caps; unknown: both evaluated, the worse reported)")
    h.add_argument("--watchdog", dest="watchdog", action="store_true", default=None,
                   help="Xen's NMI watchdog is on")
    h.add_argument("--no-watchdog", dest="watchdog", action="store_false")
    h.add_argument("--watchdog-timeout", type=int, metavar="S",
                   help=f"watchdog timeout (s), 1..{MAX_WATCHDOG_TIMEOUT_S}")
    h.add_argument("--changeset", type=changeset_date, metavar="DATE",
                   help="the build's changeset date (2014-09-12, or xl info's xen_changeset "
                   "line): classifies -unstable/-rc/-pre builds")
    h.add_argument("--patched", action="append", default=[], choices=sorted(KNOWN_PATCHES),
                   help="the hypervisor carries this patch on an unfixed version (repeatable)")


def host_from_args(args: argparse.Namespace,
                   xl_info: tuple[bytes, str] | None = None) -> HostSpec:
    """The host the flags describe: ``xl_info`` (text and its source, e.g. from stdin or a
    live ``xl info``), else ``--host``, else the flags alone; the flags win."""
    timeout = args.watchdog_timeout
    if timeout is not None and not 1 <= timeout <= MAX_WATCHDOG_TIMEOUT_S:
        raise ValueError(f"--watchdog-timeout must be 1..{MAX_WATCHDOG_TIMEOUT_S} seconds, "
                         f"not {timeout} (use --no-watchdog for no watchdog)")
    overrides = HostOverrides(
        xen_version=XenVersion.parse(args.xen_version) if args.xen_version else None,
        arch=args.arch, cmdline=args.cmdline, cpu_hap=args.cpu_hap, watchdog=args.watchdog,
        watchdog_timeout=timeout, cpu_vendor=args.cpu_vendor, changeset_date=args.changeset,
    )
    source = args.host
    if xl_info is not None:
        data, source = xl_info
        host = host_from_xl_info(parse_xl_info(data, source), overrides)
    elif args.host:
        host = load_host(args.host, overrides)
    elif overrides.xen_version is not None:
        host = host_from_flags(
            overrides.xen_version, cmdline=args.cmdline or "", arch=args.arch or "x86",
            cpu_hap=args.cpu_hap, watchdog=args.watchdog, watchdog_timeout=timeout,
            cpu_vendor=args.cpu_vendor, changeset_date=args.changeset,
        )
    else:
        raise ValueError("describe the host: give --host XL_INFO_FILE or --xen-version V")
    if host.xen_version.major < FIRST_XEN_MAJOR:
        where = "--xen-version" if args.xen_version else f"{source}: xen_major"
        raise ValueError(f"{where}: Xen {host.xen_version} is not a Xen release (HVM guests "
                         f"exist from Xen {FIRST_XEN_MAJOR}.0)")
    return host
