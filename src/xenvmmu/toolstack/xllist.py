"""Guests from ``xl list -l``: the JSON that xl prints for running (or ``xl create -n``) domains.

Any release's output is read: the ``b_info`` union under ``"u"`` up to 4.4, under
``"type.<kind>"`` from 4.5; dom0, listed from 4.5, is skipped with a note. Memory fields of
``-1`` (``LIBXL_MEMKB_DEFAULT``) mean "not set". ``shadow_memkb`` is kept as the pool xl
recorded. The S-expression form (``output_format="sxp"``) is refused. Sources:
formats/README.md §1, research/xen-config.md §2.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .guest import DEFAULT_MEMORY_MIB, KIB_MAX, GuestSpec
from .inputs import InputFileError, decode_text, read_input

LIBXL_MEMKB_DEFAULT = -1  # ~0ULL printed through yajl_gen_integer(long long)


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
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= KIB_MAX:
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
        mem_kib = maxmem_kib = DEFAULT_MEMORY_MIB * 1024
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

