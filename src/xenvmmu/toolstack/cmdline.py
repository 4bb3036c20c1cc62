"""The Xen hypervisor command line, read the way the hypervisor reads it.

Only the options that matter to the audit are interpreted: ``hap`` (off = every HVM/PVH
guest uses shadow paging), ``hap_1gb``/``hap_2mb`` (superpage sizes only), ``watchdog`` and
``watchdog_timeout`` (a stuck CPU becomes a host crash), ``gnttab_max_maptrack_frames`` and
``gnttab_max_nr_frames`` (the grant maptrack limit, XSA-380). Everything else, including
GRUB2's ``placeholder`` first word, is ignored, as Xen ignores unknown options.

Rules (formats/README.md §3; xen-project/xen xen/common/kernel.c @ RELEASE-4.4.0 l.52-165
and @ master l.70-300; xen/arch/x86/nmi.c @ RELEASE-4.4.0 and @ master):

* options are separated by the space character only (not tab); everything after `` -- ``
  belongs to dom0; names are compared exactly (case-sensitive), ``key=value`` splits at the
  first ``=``; options are applied left to right, so the last occurrence wins;
* a ``no-`` prefix inverts a boolean (``no-hap=no`` is true); bare ``hap`` or ``hap=`` is
  true; false words ``no off false disable 0``, true words ``yes on true enable 1``;
* an unrecognised value (``hap=of``): ``lenient`` releases (before 4.10) count it as true,
  ``strict`` ones (4.10 and later) report an error and leave the option at its previous value;
* ``hap`` exists from 4.3.0 only: 4.0-4.2 ignore it as an unknown option;
* ``watchdog``: a boolean until the custom option with ``force`` (4.4.2, 4.5.0). Before 4.10 a
  custom option ignores a ``no-`` prefix (``no-watchdog`` turns it *on*) and an unknown value
  (``watchdog=bogus`` changes nothing) - xen/common/kernel.c @ RELEASE-4.5.0 l.100-150,
  xen/arch/x86/nmi.c @ RELEASE-4.5.0 l.50-71;
* ``watchdog_timeout=N``: N seconds; non-zero also turns the watchdog on, 0 turns it off.
  Lenient releases ignore trailing junk (``simple_strtoull``) and a ``no-`` prefix; from
  4.10 the number is stored *then* the junk reported (``10s`` sets 10; nmi.c @ RELEASE-4.10.0
  l.79-86), a bare ``no-watchdog_timeout`` passes ``"no"`` (0: off, reported) and
  ``no-watchdog_timeout=N`` is rejected.

Which rules apply is a property of the release: ``Profile.cmdline`` (``CmdlineRules``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..versions import CmdlineRules

_FALSE = frozenset({"no", "off", "false", "disable", "0"})
_TRUE = frozenset({"yes", "on", "true", "enable", "1"})
DEFAULT_WATCHDOG_TIMEOUT = 5  # seconds (xen/arch/x86/nmi.c: opt_watchdog_timeout)


@dataclass(frozen=True)
class CmdlineOptions:
    """What the hypervisor made of its command line (defaults where an option is absent).

    ``*_token`` is the option text that decided the value (None = default). ``errors``
    are the options a strict release would report as invalid (the value was kept).
    """

    raw: str
    hap: bool = True
    hap_token: str | None = None
    hap_1gb: bool = True
    hap_2mb: bool = True
    watchdog: bool = False
    watchdog_force: bool = False
    watchdog_token: str | None = None
    watchdog_timeout: int = DEFAULT_WATCHDOG_TIMEOUT
    watchdog_timeout_token: str | None = None
    dom0_part: str = ""
    errors: tuple[str, ...] = ()
    hap_ignored: str | None = None  # a `hap` option the release does not have (4.0-4.2)
    #: ``gnttab_max_maptrack_frames=`` as stored (4.5+), ``gnttab_max_nr_frames=`` (its 8 x
    #: sets the maptrack limit up to 4.9), and the tokens that set them; None = not given
    maptrack_frames: int | None = None
    maptrack_token: str | None = None
    nr_frames: int | None = None
    nr_frames_token: str | None = None


def _bool_word(value: str | None) -> bool | None:
    """Xen's ``parse_bool``: True/False for the known words, None otherwise."""
    if value is None or value == "":
        return True  # bare `hap` and `hap=` both mean true
    if value in _FALSE:
        return False
    if value in _TRUE:
        return True
    return None


def _boolean(negated: bool, value: str | None, rules: CmdlineRules) -> bool | None:
    """The new value of a boolean option, or None when a strict release rejects it."""
    word = _bool_word(value)
    if word is None:
        if rules.bool_values == "strict":
            return None
        word = True  # 4.4: only an explicit false word inverts; anything else asserts
    return word != negated


def _strtoull(value: str) -> tuple[int, bool]:
    """``simple_strtoull(value, &end, 0)``: the number and whether characters follow it."""
    m = re.match(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", value)
    if m is None:
        return 0, bool(value)
    junk = m.end() != len(value)
    text = m.group(1)
    if text[:2] in ("0x", "0X"):
        n = int(text[2:], 16)
    elif text.startswith("0"):
        n = int(text, 8)
    else:
        n = int(text)
    return min(n, 2**64 - 1), junk


def parse_cmdline(text: str, rules: CmdlineRules) -> CmdlineOptions:
    """Read a ``xen_commandline`` with one release's rules (``Profile.cmdline``)."""
    xen_part, sep, dom0 = text.partition(" -- ")
    opts = CmdlineOptions(raw=text, dom0_part=dom0 if sep else "")
    errors: list[str] = []
    for token in xen_part.split(" "):
        if not token:
            continue
        opt = token[: rules.token_max]
        key, eq, raw_value = opt.partition("=")
        value = raw_value if eq else None
        negated = key.startswith("no-")
        name = key[3:] if negated else key
        if name in ("hap", "hap_1gb", "hap_2mb"):
            if name == "hap" and not rules.hap_option:
                opts = replace(opts, hap_ignored=token)
                continue
            new = _boolean(negated, value, rules)
            if new is None:
                errors.append(f"{token}: invalid boolean value; {name} keeps its previous value")
            elif name == "hap":
                opts = replace(opts, hap=new, hap_token=token)
            elif name == "hap_1gb":
                opts = replace(opts, hap_1gb=new)
            else:
                opts = replace(opts, hap_2mb=new)
        elif name == "watchdog":
            opts = _watchdog(opts, errors, token, negated, value, rules)
        elif name == "watchdog_timeout":
            opts = _watchdog_timeout(opts, errors, token, negated, value, rules)
        elif name == "gnttab_max_maptrack_frames" and rules.maptrack_option:
            n = _gnttab_limit(errors, token, value, rules)
            if n is not None:
                opts = replace(opts, maptrack_frames=n, maptrack_token=token)
        elif name == "gnttab_max_nr_frames" and rules.nr_frames_ratio:
            n = _gnttab_limit(errors, token, value, rules)
            if n is not None:
                opts = replace(opts, nr_frames=n, nr_frames_token=token)
    return replace(opts, errors=tuple(errors))


#: Largest value ``parse_gnttab_limit`` stores (INT_MAX, 4.13+).
_INT_MAX = 2**31 - 1


def _gnttab_limit(errors: list[str], token: str, value: str | None,
                  rules: CmdlineRules) -> int | None:
    """A grant-table limit: ``simple_strtoul(value, &end, 0)`` (a ``no-`` prefix changes
    nothing). Before 4.10 trailing junk is ignored; 4.10-4.12 store the number and report
    the junk (``OPT_UINT``, xen/common/kernel.c @ RELEASE-4.10.0); from 4.13
    ``parse_gnttab_limit`` rejects junk and values above INT_MAX without storing them
    (xen/common/grant_table.c @ RELEASE-4.13.0 l.87-103). Before 4.10, 0 means the default
    (``gnttab_usage_init`` @ RELEASE-4.5.0): None then, as if not given."""
    n, junk = _strtoull(value or "")
    if rules.gnttab_limit_checked and (junk or n > _INT_MAX):
        errors.append(f"{token}: not a number Xen accepts; the limit keeps its default")
        return None
    if junk and rules.bool_values == "strict":
        errors.append(f"{token}: trailing characters after the number; Xen keeps the value "
                      f"it read ({n}) and reports the error")
    n &= 2**32 - 1  # an unsigned int
    if n == 0 and rules.bool_values == "lenient":
        return None
    return n


def _watchdog(opts: CmdlineOptions, errors: list[str], token: str, negated: bool,
              value: str | None, rules: CmdlineRules) -> CmdlineOptions:
    """``watchdog``: a boolean, or (``rules.watchdog_custom``) ``force | <boolean>``."""
    if not rules.watchdog_custom:
        new = _boolean(negated, value, rules)
        if new is None:
            errors.append(f"{token}: invalid boolean value; watchdog keeps its previous value")
            return opts
        return replace(opts, watchdog=new, watchdog_token=token)
    strict = rules.bool_values == "strict"
    if negated and strict:
        if value is not None:
            errors.append(f"{token}: invalid (no- with a value on a custom option)")
            return opts
        value = "no"  # parse_params passes "no" to the custom handler
    # before 4.10 a custom option never sees its no- prefix: no-watchdog is watchdog
    if value == "force":
        return replace(opts, watchdog=True, watchdog_force=True, watchdog_token=token)
    word = _bool_word(value)
    if word is None:
        if strict:
            errors.append(f"{token}: invalid value; watchdog unchanged")
        return opts  # lenient: parse_watchdog ignores it silently
    return replace(opts, watchdog=word, watchdog_force=opts.watchdog_force and word,
                   watchdog_token=token)


def _watchdog_timeout(opts: CmdlineOptions, errors: list[str], token: str, negated: bool,
                      value: str | None, rules: CmdlineRules) -> CmdlineOptions:
    """``watchdog_timeout=N``: sets the timeout; non-zero enables the watchdog, 0 disables."""
    strict = rules.bool_values == "strict"
    if negated and strict:
        if value is not None:
            errors.append(f"{token}: invalid (no- with a value on a custom option); "
                          "watchdog_timeout unchanged")
            return opts
        value = "no"  # parse_params passes "no": simple_strtoull gives 0, then -EINVAL
    text = value or ""  # before 4.10 a no- prefix on a custom option is ignored
    secs, junk = _strtoull(text)
    if junk and strict:
        errors.append(f"{token}: trailing characters after the number; Xen 4.10+ keeps "
                      f"the value it read ({secs}) and reports the error")
    return replace(opts, watchdog_timeout=secs, watchdog=secs != 0,
                   watchdog_force=opts.watchdog_force and secs != 0,
                   watchdog_token=token, watchdog_timeout_token=token)
