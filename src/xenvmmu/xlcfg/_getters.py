"""xl's typed look-ups (``xlu_cfg_get_long``, ``_defbool``, ``_string``, ``_list``).

Each looks only at the most recent setting of a key and, on a wrong shape or a bad number,
prints one warning and makes xl ignore the key (xl then uses its default). Messages are
libxlu's (``tools/libs/util/libxlu_cfg.c``).
"""

from __future__ import annotations

from ._types import Lookup, ParseResult

LONG_MAX = 2**63 - 1  # x86-64 `long`
LONG_MIN = -(2**63)
_C_SPACE = " \t\n\v\f\r"
_ERANGE_TEXT = "Numerical result out of range"  # glibc strerror(ERANGE)


def strtol(s: str) -> tuple[int, int, bool]:
    """C ``strtol(s, &end, 0)``: (value, characters consumed, overflowed).

    Leading C white space and a sign are accepted; ``0x``/``0X`` followed by a hex digit
    selects base 16, a leading ``0`` base 8, else base 10. Consumed is 0 when no digit was
    converted. On overflow the value is clamped to LONG_MIN/LONG_MAX, as glibc does.
    """
    n = len(s)
    i = 0
    while i < n and s[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and s[i] in "+-":
        negative = s[i] == "-"
        i += 1
    base = 10
    if s.startswith(("0x", "0X"), i) and i + 2 < n and s[i + 2] in _HEX:
        base = 16
        i += 2
    elif i < n and s[i] == "0":
        base = 8
    digits = _HEX if base == 16 else _HEX[:base]
    start = i
    while i < n and s[i] in digits:
        i += 1
    if i == start:
        return 0, 0, False
    significant = s[start:i].lstrip("0")
    if len(significant) > _MAX_DIGITS[base]:  # surely out of range; int() would refuse
        return (LONG_MIN if negative else LONG_MAX), i, True  # 4300+ digit strings
    magnitude = int(significant or "0", base)
    value = -magnitude if negative else magnitude
    if value > LONG_MAX:
        return LONG_MAX, i, True
    if value < LONG_MIN:
        return LONG_MIN, i, True
    return value, i, False


_HEX = "0123456789abcdefABCDEF"
_MAX_DIGITS = {8: 22, 10: 20, 16: 17}  # more significant digits than this cannot fit 64 bits


def get_long(cfg: ParseResult, key: str) -> Lookup:
    """``xlu_cfg_get_long``: an integer; refuses lists, ``+=`` and anything strtol rejects."""
    s = cfg.find(key)
    if s is None:
        return Lookup(key, "absent")
    if isinstance(s.value, tuple):
        return _list_error(key, s.line)
    if s.op == "+=":
        return Lookup(
            key,
            "error",
            errno="EINVAL",
            line=s.line,
            message=f"warning: can't use += with numbers for parameter `{key}'",
        )
    value, used, overflow = strtol(s.value)
    if overflow:
        return Lookup(
            key,
            "error",
            errno="ERANGE",
            line=s.line,
            message=f"warning: parameter `{key}' could not be parsed as a number: {_ERANGE_TEXT}",
        )
    if used == 0 or used != len(s.value):
        return Lookup(
            key,
            "error",
            errno="EINVAL",
            line=s.line,
            message=f"warning: parameter `{key}' is not a valid number",
        )
    return Lookup(key, "ok", value=value, line=s.line)


def get_defbool(cfg: ParseResult, key: str) -> Lookup:
    """``xlu_cfg_get_defbool``: ``get_long`` then ``!!``."""
    r = get_long(cfg, key)
    if r.status != "ok":
        return r
    return Lookup(key, "ok", value=bool(r.value), line=r.line)


def get_string(cfg: ParseResult, key: str) -> Lookup:
    """``xlu_cfg_get_string``: the atom's text; a list is refused."""
    s = cfg.find(key)
    if s is None:
        return Lookup(key, "absent")
    if isinstance(s.value, tuple):
        return _list_error(key, s.line)
    return Lookup(key, "ok", value=s.value, line=s.line)


def get_list(cfg: ParseResult, key: str) -> Lookup:
    """``xlu_cfg_get_list``: the list; a single value is refused."""
    s = cfg.find(key)
    if s is None:
        return Lookup(key, "absent")
    if not isinstance(s.value, tuple):
        return Lookup(
            key,
            "error",
            errno="EINVAL",
            line=s.line,
            message=f"warning: parameter `{key}' is a single value but should be a list",
        )
    return Lookup(key, "ok", value=s.value, line=s.line)


def _list_error(key: str, line: int) -> Lookup:
    return Lookup(
        key,
        "error",
        errno="EINVAL",
        line=line,
        message=f"warning: parameter `{key}' is a list but should be a single value",
    )
