"""Guests from ``xl list -l``: the JSON that xl prints for running (or ``xl create -n``) domains.

Any release's output is read: the ``b_info`` union under ``"u"`` up to 4.4, under
``"type.<kind>"`` from 4.5; dom0, listed from 4.5, is skipped with a note. Memory fields of
``-1`` (``LIBXL_MEMKB_DEFAULT``) mean "not set". ``shadow_memkb`` is kept as the pool xl
recorded. A leading UTF-8 byte-order mark is ignored. The S-expression form (xl with
``output_format="sxp"`` in ``xl.conf`` prints ``(domain (domid 1) (create_info ...))``) is
recognised (:func:`is_sxp_listing`) and refused with a message saying how to get JSON. Sources:
formats/README.md §1, research/xen-config.md §2.

Hostile files are bounded: nesting deeper than ``MAX_JSON_DEPTH``, an array longer than
``MAX_JSON_ARRAY`` or more than ``MAX_DOMAINS`` domains, or an element of the domain array
that is not an object, make the whole file an ``InputFileError`` (naming the JSON path), not a
list of guests. A field of the wrong type in one domain (``c_info.hap`` a list, a name that is
not valid Unicode) makes that one guest ``invalid``, with the file and JSON path in its
reason. A domain listed twice (same ``domid`` in one file, same ``uuid``) is kept once.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from .guest import DEFAULT_MEMORY_MIB, KIB_MAX, GuestSpec
from .inputs import UTF8_BOM, InputFileError, decode_text, read_input

LIBXL_MEMKB_DEFAULT = -1  # ~0ULL printed through yajl_gen_integer(long long)
#: Xen's domain ids stop below DOMID_FIRST_RESERVED (0x7FF0): no host lists more domains.
MAX_DOMAINS = 0x7FF0
#: libxl's uint32 fields
UINT32_MAX = 2**32 - 1
#: libxl's generated JSON nests about 6 deep (config.b_info.type.hvm.vnc...).
MAX_JSON_DEPTH = 64
#: The longest arrays xl prints are per-vCPU or per-device lists; Xen caps vCPUs far below.
MAX_JSON_ARRAY = 65536
INT_MAX = 2**31 - 1  # libxl's `int` fields (max_vcpus)
PAGE_KIB = 4  # a domain has at least one 4 KiB page
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NULL_UUID = "00000000-0000-0000-0000-000000000000"
#: How ``xl list -l`` starts in its S-expression form (xl_sxp.c: ``printf("(domain\n")``).
_SXP_RE = re.compile(rb"[ \t\r\n]*\(domain[ \t\r\n()]")
SXP_MESSAGE = ("`xl list -l` in S-expression form (output_format=\"sxp\" in /etc/xen/xl.conf), "
               "not JSON: xenvmmu reads only the JSON form; run `xl list -l` again with "
               "output_format=\"json\" (the default) in xl.conf")


def is_sxp_listing(data: bytes) -> bool:
    """True when ``data`` starts like ``xl list -l`` in its S-expression form: ``(domain``
    (after blanks or a byte-order mark)."""
    return _SXP_RE.match(data.removeprefix(UTF8_BOM)) is not None


def normalise_uuid(value: object) -> str | None:
    """A domain uuid in lower case (``c_info.uuid``, xl.cfg ``uuid=``); None when ``value``
    is not a uuid or is the null uuid (unset)."""
    return _uuid(value)


@dataclass(frozen=True)
class GuestList:
    """The domains of one ``xl list -l`` output (dom0 skipped, with a note).

    ``uuids`` has one entry per guest (``c_info.uuid`` normalised, None when absent), so a
    caller can recognise the same domain in another listing.
    """

    source: str
    guests: tuple[GuestSpec, ...]
    notes: tuple[str, ...] = ()
    uuids: tuple[str | None, ...] = ()


def load_xl_list(path: str | os.PathLike[str]) -> GuestList:
    """Read an ``xl list -l`` JSON file; ``InputFileError`` names the file for bad input."""
    name = os.fspath(path)
    return guests_from_xl_list(read_input(name), source=name)


def guests_from_xl_list(data: bytes | str, *, source: str = "<xl list -l>") -> GuestList:
    """Every domain of ``xl list -l`` output (an array; ``xl create -n`` prints one object)."""
    text = decode_text(data, source, "`xl list -l` JSON")
    if text.lstrip().startswith("("):
        raise InputFileError(source, None, SXP_MESSAGE)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputFileError(source, e.lineno, f"invalid JSON ({e.msg}, column {e.colno}); "
                                               "truncated output?") from None
    except RecursionError:
        raise InputFileError(source, None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels: "
                                           "not `xl list -l` output") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise InputFileError(source, None, f"unusable JSON: {str(e)[:100]}") from None
    _check_bounds(doc, source)
    if isinstance(doc, dict) and "config" in doc:
        doc = [doc]
    if not isinstance(doc, list):
        raise InputFileError(source, None, "expected a JSON array of {\"domid\", \"config\"} "
                                           f"objects (xl list -l), got a {type(doc).__name__}")
    if len(doc) > MAX_DOMAINS:
        raise InputFileError(source, None, f"{len(doc)} domains: more than Xen can run "
                                           f"({MAX_DOMAINS}); not `xl list -l` output")
    guests: list[GuestSpec] = []
    uuids: list[str | None] = []
    notes: list[str] = []
    domids: dict[int, int] = {}
    seen_uuids: dict[str, int] = {}
    for i, entry in enumerate(doc):
        if not isinstance(entry, dict):
            raise InputFileError(source, None, f"$[{i}] is {_kind(entry)}, not a domain "
                                               "object: not `xl list -l` output")
        domid = entry.get("domid")
        if type(domid) is int and domid == 0:
            name = _dig(entry, "config", "c_info", "name")
            shown = name if isinstance(name, str) and name.isprintable() else "dom0"
            notes.append(f"{source}: domain 0 ({shown[:64]}) skipped: dom0 is not an HVM "
                         "guest (xl lists it from Xen 4.5)")
            continue
        uuid = _uuid(_dig(entry, "config", "c_info", "uuid"))
        if type(domid) is int and domid in domids:
            notes.append(f"{source}: $[{i}] domid {domid} listed again (first at "
                         f"$[{domids[domid]}]): skipped")
            continue
        if uuid is not None and uuid in seen_uuids:
            notes.append(f"{source}: $[{i}] uuid {uuid} listed again (first at "
                         f"$[{seen_uuids[uuid]}]): skipped")
            continue
        if type(domid) is int:
            domids[domid] = i
        if uuid is not None:
            seen_uuids[uuid] = i
        guests.append(_domain(entry, i, source))
        uuids.append(uuid)
    if not doc:
        notes.append(f"{source}: no domains listed")
    return GuestList(source, tuple(guests), tuple(notes), tuple(uuids))


def _check_bounds(doc: object, source: str) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH and arrays longer than MAX_JSON_ARRAY
    (the top-level array of domains has its own limit), without recursion."""
    stack: list[tuple[object, str, int]] = [(doc, "$", 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InputFileError(source, None, f"{path}: JSON nested deeper than "
                                               f"{MAX_JSON_DEPTH} levels: not `xl list -l` output")
        if isinstance(value, dict):
            stack.extend((v, f"{path}.{_key(k)}", depth + 1) for k, v in value.items()
                         if isinstance(v, dict | list))
        elif isinstance(value, list):
            if depth > 1 and len(value) > MAX_JSON_ARRAY:
                raise InputFileError(source, None, f"{path}: array of {len(value)} elements "
                                                   f"(limit {MAX_JSON_ARRAY})")
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)
                         if isinstance(v, dict | list))


def _key(key: str) -> str:
    """An object key for a JSON path: as is when it is a plain word, else quoted."""
    if key.isidentifier() and key.isascii():
        return key
    return "[" + json.dumps(key[:40]) + "]"


def _kind(value: object) -> str:
    """What a JSON value is, for a message (never its content, beyond a short scalar)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _uuid(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    u = value.strip().lower()
    return u if _UUID_RE.fullmatch(u) and u != _NULL_UUID else None


def _dig(obj: object, *path: str) -> object:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _shown(value: object) -> str:
    """A field's value for a message: a short scalar as written, a container by its kind."""
    if isinstance(value, dict | list):
        return _kind(value)
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return text[:40] + ("..." if len(text) > 40 else "")


def _int(obj: dict[str, object], key: str, where: str, problems: list[str],
         limit: int = KIB_MAX, least: int = 0) -> int | None:
    """An integer field in least..limit; ``-1`` (LIBXL_MEMKB_DEFAULT) and absence are None."""
    v = obj.get(key)
    if v is None or (type(v) is int and v == LIBXL_MEMKB_DEFAULT):
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not least <= v <= limit:
        problems.append(f"{where}.{key} = {_shown(v)} is not an integer in range "
                        f"({least}..{limit})")
        return None
    return v


def _text(obj: dict[str, object], key: str, where: str, problems: list[str]) -> str | None:
    """A string field; another type, or text that is not valid Unicode (a lone surrogate
    from a ``\\ud800`` escape), is a problem naming the JSON path."""
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        problems.append(f"{where}.{key} is {_kind(v)}, not a string")
        return None
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        problems.append(f"{where}.{key} is not valid Unicode (a lone surrogate escape)")
        return None
    return v


_DEFBOOL = {"True": True, "False": False, "<default>": None}


def _defbool(c_info: dict[str, object], key: str, where: str, problems: list[str],
             warnings: list[str], label: str) -> bool | None:
    """A libxl_defbool field (``"True"``, ``"False"``, ``"<default>"``)."""
    v = _text(c_info, key, where, problems)
    if v is None:
        return None
    if v not in _DEFBOOL:
        warnings.append(f"{label}: {where}.{key} {_shown(v)} not understood")
        return None
    return _DEFBOOL[v]


def _domain(entry: dict[str, object], index: int, source: str) -> GuestSpec:
    label = f"{source}: domain #{index}"
    path = f"$[{index}]"
    config = entry.get("config")
    if not isinstance(config, dict):
        return GuestSpec(source, "xl list -l", status="invalid",
                         reason=f"{label}: not a {{\"domid\", \"config\"}} object "
                                f"({path}.config is {_kind(config)})")
    domid = entry.get("domid")
    problems: list[str] = []
    warnings: list[str] = []
    if domid is not None and (not isinstance(domid, int) or isinstance(domid, bool)
                              or not 0 <= domid < 2**16):
        problems.append(f"{path}.domid {_shown(domid)} is not a domain id")
        domid = None
    c_info, b_info = config.get("c_info"), config.get("b_info")
    if not isinstance(c_info, dict) or not isinstance(b_info, dict):
        return GuestSpec(source, "xl list -l", domid=domid, status="invalid",
                         reason=f"{label}: config has no c_info/b_info objects")
    c_path, b_path = f"{path}.config.c_info", f"{path}.config.b_info"
    name = _text(c_info, "name", c_path, problems)
    kind = _text(c_info, "type", c_path, problems)
    if kind is not None and kind not in ("hvm", "pv", "pvh"):
        problems.append(f"{c_path}.type {_shown(kind)} is not hvm, pv or pvh")
        kind = None
    elif kind is None and "type" not in c_info:
        problems.append(f"{c_path}.type is missing (hvm, pv or pvh)")
    hap = _defbool(c_info, "hap", c_path, problems, warnings, label)
    pvh = _defbool(c_info, "pvh", c_path, problems, warnings, label)
    union = [k for k in b_info if k == "u" or k.startswith("type.")]
    if kind and union and union[0] != "u" and union[0] != f"type.{kind}":
        warnings.append(f"{label}: b_info union {_shown(union[0])} does not match type "
                        f"{kind!r}")

    max_kib = _int(b_info, "max_memkb", b_path, problems, least=PAGE_KIB)
    target_kib = _int(b_info, "target_memkb", b_path, problems, least=PAGE_KIB)
    max_vcpus = _int(b_info, "max_vcpus", b_path, problems, INT_MAX) or None  # 0: not set
    avail = b_info.get("avail_vcpus")
    online = len(avail) if isinstance(avail, list) and avail else None
    pool = _int(b_info, "shadow_memkb", b_path, problems)
    on_reboot = _text(config, "on_reboot", f"{path}.config", problems)
    # libxl: event_channels 0 = the default 1023 (libxl_create.c @ RELEASE-4.4.0 l.215);
    # max_maptrack_frames 2^32-1 = LIBXL_MAX_GRANT_DEFAULT (the hypervisor's limit, 4.13+)
    evtchn = _int(b_info, "event_channels", b_path, problems, UINT32_MAX) or 1023
    maptrack = _int(b_info, "max_maptrack_frames", b_path, problems, UINT32_MAX)
    if maptrack == UINT32_MAX:
        maptrack = None
    pcidevs = config.get("pcidevs")
    pci_devices = len(pcidevs) if isinstance(pcidevs, list) else 0
    stubdom = _defbool(b_info, "device_model_stubdomain", b_path, problems, warnings, label)
    restrict = _defbool(b_info, "dm_restrict", b_path, problems, warnings, label)

    defaulted = {k for k, v in (("memory", target_kib), ("maxmem", max_kib),
                                ("vcpus", online), ("maxvcpus", max_vcpus)) if v is None}
    mem_kib = target_kib if target_kib is not None else max_kib
    maxmem_kib = max_kib if max_kib is not None else mem_kib
    if maxmem_kib is None:
        mem_kib = maxmem_kib = DEFAULT_MEMORY_MIB * 1024
    vcpus = online or max_vcpus or 1
    return GuestSpec(
        source, "xl list -l", name=name, domid=domid,
        type=kind,  # type: ignore[arg-type]  # checked against the three kinds above
        memory_mib=None if mem_kib is None else mem_kib // 1024,
        maxmem_mib=maxmem_kib // 1024, maxmem_kib=maxmem_kib,
        vcpus=vcpus, maxvcpus=max(max_vcpus or vcpus, vcpus), defaulted=frozenset(defaulted),
        hap=hap, recorded_pool_kib=pool, on_reboot=on_reboot, pvh=pvh,
        max_event_channels=evtchn, max_maptrack_frames=maptrack, pci_devices=pci_devices,
        dm_deprivileged=bool(stubdom or restrict),
        warnings=tuple(warnings), status="invalid" if problems else "ok",
        reason=f"{label}: " + "; ".join(problems) if problems else None,
    )
