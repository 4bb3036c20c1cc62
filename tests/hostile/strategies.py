"""Hypothesis strategies, one per input surface, mixing near-valid input with garbage."""

from __future__ import annotations

import json
import math

from hypothesis import strategies as st

from xenvmmu.model.work import FIELDS

# --- numbers as text: what operators and attackers type -------------------------------------

SPECIAL_NUMBERS = [
    "0", "-0", "1", "-1", "30", "010", "0x10", "0x", "1e5", "1e308", "1e-308", "nan", "NaN",
    "inf", "-inf", "Infinity", "", " 5", "5 ", "4294967295", "4294967296",
    "2147483647", "2147483648", "9223372036854775807", "9223372036854775808",
    "99999999999999999999", "-99999999999999999999", "9" * 400, "1_000", "٣",
]
number_text = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(repr),
    st.text("0123456789abcdefx.-+e ", max_size=24),
)

# --- xl.cfg ---------------------------------------------------------------------------------

CFG_KEYS = ["name", "memory", "maxmem", "vcpus", "maxvcpus", "hap", "shadow_memory", "type",
            "builder", "pvh", "on_reboot", "disk", "vif", "x.y", "a"]


def _quoted(s: str) -> str:
    q = '"' if len(s) % 2 else "'"
    return q + s.replace("\\", "\\\\").replace(q, "\\" + q) + q


cfg_atom = st.one_of(
    number_text.map(lambda s: s if s[:1].isdigit() else "0" + s),
    st.text(max_size=16).map(_quoted),
    st.sampled_from(['"hvm"', '"pv"', '"pvh"', '"h"', '""', '"generic"', "'\\x41'", '"\\q"',
                     '"\\0"', "'unterminated", '"a\\']),
)
cfg_value = st.recursive(
    cfg_atom,
    lambda inner: st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    max_leaves=12,
)
cfg_statement = st.builds(
    lambda k, op, v, end: f"{k}{op}{v}{end}",
    st.sampled_from(CFG_KEYS),
    st.sampled_from(["=", " = ", "+=", " += ", "==", ""]),
    cfg_value,
    st.sampled_from(["", ";", " # c", "\r", ";;"]),
)
_numeric_statement = st.builds(
    lambda k, n: f"{k} = {n}",
    st.sampled_from(["memory", "maxmem", "vcpus", "maxvcpus", "shadow_memory", "hap", "pvh"]),
    st.one_of(number_text, st.integers(0, 2**40).map(str), st.sampled_from(["0", "1", "2"])),
)
cfg_line = st.one_of(
    cfg_statement,
    _numeric_statement,
    _numeric_statement,
    st.text(max_size=30),
    st.sampled_from(["import os", "def f():", "if x:", "# comment", "", "[", "]", "a=[[[",
                     "memory = 99999999999999999999", "vcpus = 9223372036854775807",
                     'name = "\\u0000"', "\x00", "\t\t", "= 5"]),
)
_GUEST_HEAD = ['name = "g"\nbuilder = "hvm"\ntype = "hvm"\n', 'name = "g"\ntype = "pvh"\n', ""]
cfg_text = st.tuples(st.sampled_from(_GUEST_HEAD), st.lists(cfg_line, max_size=12)).map(
    lambda t: t[0] + "\n".join(t[1]))


def _deep(n: int) -> str:
    return "v=" + "[" * n + '"x"' + "]" * n + "\n"


#: xl.cfg bytes: structured text, raw bytes, text with binary spliced in, deep lists.
cfg_bytes = st.one_of(
    cfg_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    cfg_text.map(lambda s: s.encode("utf-8", "surrogatepass") + b"\n"),
    st.binary(max_size=300),
    st.tuples(cfg_text, st.binary(max_size=40), cfg_text).map(
        lambda t: t[0].encode() + t[1] + t[2].encode()),
    st.integers(1, 6000).map(lambda n: _deep(n).encode()),
)

# --- xl list -l JSON ------------------------------------------------------------------------

json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(), st.text(max_size=12), st.just("\ud800"), st.just("<default>"),
)
json_value = st.recursive(
    json_scalar,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=15,
)


def _maybe(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(strategy, strategy, json_value)


_uuid = st.one_of(st.uuids().map(str), st.just("00000000-0000-0000-0000-000000000000"),
                  st.just("6b1e3f0a-2c4d-4e8f-9a10-3b5c7d9e1f20"))
_memkb = st.one_of(st.just(-1), st.integers(0, 2**45), st.integers(-(2**66), 2**66))

domain = st.fixed_dictionaries({
    "domid": _maybe(st.integers(-2, 70000)),
    "config": _maybe(st.fixed_dictionaries({
        "c_info": _maybe(st.fixed_dictionaries({
            "type": _maybe(st.sampled_from(["hvm", "pv", "pvh", "HVM"])),
            "name": _maybe(st.text(max_size=12)),
            "hap": _maybe(st.sampled_from(["True", "False", "<default>", "maybe"])),
            "pvh": _maybe(st.sampled_from(["True", "False", "<default>"])),
            "uuid": _maybe(_uuid),
        })),
        "b_info": _maybe(st.fixed_dictionaries({
            "max_memkb": _maybe(_memkb),
            "target_memkb": _maybe(_memkb),
            "max_vcpus": _maybe(st.integers(-1, 2**40)),
            "avail_vcpus": _maybe(st.lists(st.integers(0, 300), max_size=8)),
            "shadow_memkb": _maybe(_memkb),
            "type.hvm": _maybe(st.fixed_dictionaries({})),
        })),
        "on_reboot": _maybe(st.sampled_from(["restart", "destroy"])),
    })),
})
xl_list_doc = st.one_of(
    st.lists(st.one_of(domain, domain, json_value), max_size=5),
    domain,
    json_value,
)


def _dump(doc: object) -> bytes:
    return json.dumps(doc, indent=4).encode("utf-8", "surrogatepass")


#: ``xl list -l`` bytes: documents (valid JSON, NaN and lone surrogates included), cut ones,
#: deep nesting, S-expressions and raw bytes.
xl_list_bytes = st.one_of(
    xl_list_doc.map(_dump),
    xl_list_doc.map(_dump),
    st.tuples(xl_list_doc.map(_dump), st.floats(0, 1)).map(
        lambda t: t[0][: math.floor(len(t[0]) * t[1])] or b"["),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(0, 2000).map(lambda n: b"[" + b",".join([b"0"] * n) + b"]"),
    st.just(b"(domain (domid 1))"),
    st.binary(max_size=200).map(lambda b: b"[" + b),
)

# --- xl info --------------------------------------------------------------------------------

XL_INFO_KEYS = ["xen_major", "xen_minor", "xen_extra", "xen_version", "machine", "xen_caps",
                "virt_caps", "xen_commandline", "xen_changeset", "hw_caps", "nr_cpus", "host"]
_info_value = st.one_of(
    st.sampled_from(["4", "4", "17", "2", "0", ".0", ".3-pre", ".1", "-unstable", "x86_64",
                     "aarch64", "armv7l", "xen-3.0-x86_64 hvm-3.0-x86_64", "hvm hap shadow",
                     "hvm", "hap=0 watchdog", "watchdog_timeout=0", "unavailable",
                     "Fri Sep 12 16:39:44 2014 +0530 git:4218cde",
                     "bfebfbff:2c100800:00000000:00007f00:77fafbff:00000000:00000121:029c6fbf"]),
    number_text,
    st.text(max_size=30),
)
_info_line = st.one_of(
    st.tuples(st.sampled_from(XL_INFO_KEYS), _info_value).map(lambda t: f"{t[0]:<23}: {t[1]}"),
    st.text(max_size=40),
)
_VALID_HEAD = "".join(f"{k:<23}: {v}\n" for k, v in
                      (("xen_major", "4"), ("xen_minor", "4"), ("xen_extra", ".0")))

#: ``xl info`` text: key : value lines from the real keys, garbage lines, optionally a
#: valid version header first (so that the rest of the file is exercised too).
xl_info_text = st.tuples(st.booleans(), st.lists(_info_line, max_size=14)).map(
    lambda t: (_VALID_HEAD if t[0] else "") + "\n".join(t[1]))

# --- hypervisor command line ----------------------------------------------------------------

_CMDLINE_TOKENS = [
    "hap", "hap=0", "hap=1", "no-hap", "hap=false", "hap=on", "hap=maybe", "watchdog",
    "no-watchdog", "watchdog=force", "watchdog=0", "watchdog_timeout=", "watchdog_timeout=10",
    "watchdog_timeout=0", "watchdog_timeout=0x10", "watchdog_timeout=10s",
    "no-watchdog_timeout", "no-watchdog_timeout=5", "watchdog_timeout=" + "9" * 30,
    "watchdog_timeout=" + "9" * 5000, "console=vga", "dom0_mem=4G", "--", "=", "hap==0",
]
cmdline_text = st.one_of(
    st.lists(st.one_of(st.sampled_from(_CMDLINE_TOKENS), st.text(max_size=12)), max_size=8)
    .map(" ".join),
    st.text(max_size=60),
)

# --- version strings ------------------------------------------------------------------------

version_text = st.one_of(
    st.from_regex(r"\A[0-9]{1,5}\.[0-9]{1,5}(\.[0-9]{1,5})?([-.+~_][a-z0-9.-]{0,10})?\Z"),
    st.sampled_from(["0.0.0", "2.0", "3.0", "3.4.4", "4.0.0", "4.4.0", "4.5-unstable",
                     "4.17.3-pre", "4.5-rc1", "4.19.0", "4.99.0", "5.0", "9999.9999.9999",
                     "4.4", "4.4.1 ", " 4.4.1", "4..4", "v4.4.0", "4.4.0\n", "4.2.5-33.el6"]),
    st.text(max_size=20),
)

# --- cost TOML ------------------------------------------------------------------------------


def _toml_number(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


_cost_number = st.one_of(
    st.floats().map(_toml_number),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0", "5", "1e6", "1000001", "1e308", "true", '"5"', "[1, 2]", "{}",
                     "-0.0", "0x10", "1_000", "+inf"]),
)
_cost_entry = st.one_of(
    _cost_number,
    st.builds(lambda n, s: f"{{ns = {n}, source = {s}}}", _cost_number,
              st.sampled_from(['"x"', "5", "[1]", '"\\u0041"'])),
    st.builds(lambda lo, hi: f"{{low = {lo}, high = {hi}}}", _cost_number, _cost_number),
    st.integers(1, 400).map(lambda n: "[" * n + "1" + "]" * n),
    st.integers(1, 400).map(lambda n: "{a = " * n + "1" + "}" * n),
)
_cost_line = st.one_of(
    st.builds(lambda u, e: f"{u} = {e}", st.sampled_from([*FIELDS, "bogus"]), _cost_entry),
    st.sampled_from(["[units]", "[units.entries_written]", "ns = 5", 'schema = "xenvmmu.costs/1"',
                     'schema = "other"', 'name = "mine"', "name = 5", "units = 5", "[[units]]"]),
    st.text(max_size=30),
)

#: Cost TOML text: a [units] table of entries (numbers of every kind, inline tables, deep
#: nesting), other keys and garbage lines.
cost_toml = st.lists(_cost_line, max_size=10).map(lambda lines: "[units]\n" + "\n".join(lines))
