"""GuestSpec from xl.cfg and from `xl list -l` JSON; paging mode and pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xenvmmu.toolstack.guest import GuestSpec, guest_from_xlcfg, load_guest_cfg
from xenvmmu.toolstack.host import InputFileError, host_from_flags
from xenvmmu.toolstack.paging import effective_paging, paging_pool
from xenvmmu.toolstack.xllist import guests_from_xl_list, load_xl_list
from xenvmmu.versions import profile_for

# --- xl list -l fixtures ----------------------------------------------------------------------

# file -> [(domid, name, type, max_memkb, vcpus, maxvcpus, hap, shadow_memkb printed)]
GUESTS = {
    "xl-list-l_4.2.5_hvm-1gib_compact.json":
        [(7, "web-small", "hvm", 1048576, 1, 1, None, 9216)],
    "xl-list-l_4.4.0_hvm-64gib_hap-default.json":
        [(12, "db-64g", "hvm", 67108864, 8, 8, None, 532480)],
    "xl-list-l_4.4.1_hvm-256gib_hap1.json":
        [(4, "analytics-256g", "hvm", 268435456, 16, 16, True, 2113536)],
    "xl-list-l_4.4.0_hvm-1gib_hap0_shadow4096.json":
        [(9, "legacy-shadow", "hvm", 1048576, 2, 2, False, 4194304)],
    "xl-list-l_4.4.0_pv-4gib.json":
        [(15, "mail-pv", "pv", 4194304, 2, 2, None, 34816)],
    "xl-list-l_4.5.0_list-dom0-hvm64gib-pv.json":
        [(3, "erp-64g", "hvm", 67108864, 8, 8, None, 532480),
         (5, "dns-pv", "pv", 524288, 1, 1, None, 5120)],
    "xl-list-l_4.10.0_pvh-8gib.json":
        [(21, "fw-pvh", "pvh", 8388608, 4, 4, None, 69632)],
    "xl-list-l_4.17.0_hvm-2tib.json":
        [(2, "sap-hana-2t", "hvm", 2147483648, 64, 64, None, None)],
    "xl-list-l_4.17.0_arm64-pvh-2gib.json":
        [(1, "edge-arm", "pvh", 2097152, 2, 2, None, None)],
}


@pytest.fixture(scope="module")
def guests_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures" / "guests"


def test_every_fixture_is_listed(guests_dir: Path) -> None:
    assert {p.name for p in guests_dir.glob("*.json")} == set(GUESTS)


@pytest.mark.parametrize("name", sorted(GUESTS))
def test_fixture_guests(guests_dir: Path, name: str) -> None:
    listing = load_xl_list(guests_dir / name)
    got = [(g.domid, g.name, g.type, g.maxmem_kib, g.vcpus, g.maxvcpus, g.hap,
            g.recorded_pool_kib) for g in listing.guests]
    assert got == GUESTS[name]
    for g in listing.guests:
        assert g.status == "ok" and g.reason is None and g.warnings == ()
        assert g.origin == "xl list -l" and g.source == str(guests_dir / name)
        assert g.pvh in (None, False) and not g.pvh_v1


def test_dom0_skipped_with_note(guests_dir: Path) -> None:
    listing = load_xl_list(guests_dir / "xl-list-l_4.5.0_list-dom0-hvm64gib-pv.json")
    assert [g.domid for g in listing.guests] == [3, 5]
    assert len(listing.notes) == 1 and "Domain-0" in listing.notes[0]


def test_compact_42_is_one_line(guests_dir: Path) -> None:
    raw = (guests_dir / "xl-list-l_4.2.5_hvm-1gib_compact.json").read_text()
    assert raw.strip().count("\n") == 0
    assert guests_from_xl_list(raw).guests[0].memory_mib == 1024


def _hvm_domain(**c_info: object) -> dict[str, object]:
    return {"domid": 4, "config": {
        "c_info": {"type": "hvm", "name": "g", **c_info},
        "b_info": {"max_memkb": 2097152, "target_memkb": 2097152, "max_vcpus": 2,
                   "avail_vcpus": [0, 1], "type.hvm": {}}}}


def test_single_object_from_xl_create_dry_run() -> None:
    doc = _hvm_domain()
    doc["domid"] = None
    listing = guests_from_xl_list(json.dumps(doc))
    assert len(listing.guests) == 1 and listing.guests[0].domid is None


def test_old_shape_defaults() -> None:
    # <=4.4: unset memory prints -1, unset vcpus prints 0, every field present
    doc = [{"domid": 8, "config": {
        "c_info": {"type": "hvm", "hap": "<default>", "pvh": "True", "name": "x"},
        "b_info": {"max_vcpus": 0, "avail_vcpus": [], "max_memkb": -1, "target_memkb": -1,
                   "shadow_memkb": -1, "u": {}}}}]
    g = guests_from_xl_list(json.dumps(doc)).guests[0]
    assert (g.maxmem_mib, g.vcpus, g.maxvcpus, g.recorded_pool_kib) == (32, 1, 1, None)
    assert g.defaulted == {"memory", "maxmem", "vcpus", "maxvcpus"}
    assert g.pvh is True and not g.pvh_v1  # pvh only counts on a PV guest


# --- hostile JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\x00\x01\x02\x03", "binary data"),
        (b"\x89PNG\r\n\x1a\n\xff\xd8", "invalid JSON"),
        (b'[\n    {\n        "domid": 12,\n        "config": {', "invalid JSON"),
        (b"42", "got a int"),
        (b'"hello"', "got a str"),
        (b'{"domid": 1}', "got a dict"),
        (b"null", "got a NoneType"),
        (b"(domain (domid 1) (name x))", "S-expression"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
        (b"[" + b"9" * 5000 + b"]", "unusable JSON"),
    ],
)
def test_hostile_xl_list(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "list.json"
    path.write_bytes(content)
    with pytest.raises(InputFileError) as e:
        load_xl_list(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_truncated_fixture(tmp_path: Path, guests_dir: Path) -> None:
    raw = (guests_dir / "xl-list-l_4.4.0_hvm-64gib_hap-default.json").read_bytes()
    path = tmp_path / "cut.json"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputFileError, match=r"cut\.json:\d+: invalid JSON"):
        load_xl_list(path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"domid": 3}, "not a {\"domid\", \"config\"} object"),
        ({"domid": 3, "config": {"c_info": []}}, "no c_info/b_info"),
        ({"domid": True, **{k: v for k, v in _hvm_domain().items() if k != "domid"}},
         "not a domain id"),
    ],
)
def test_bad_domains_are_invalid_specs(entry: object, message: str) -> None:
    listing = guests_from_xl_list(json.dumps([entry, _hvm_domain()]), source="l.json")
    bad, good = listing.guests
    assert bad.status == "invalid" and bad.reason is not None and message in bad.reason
    assert "l.json: domain #0" in bad.reason
    assert good.status == "ok"


def test_a_non_object_element_is_a_file_error_not_a_guest() -> None:
    with pytest.raises(InputFileError, match=r"l\.json: \$\[0\] is a number, not a domain"):
        guests_from_xl_list(json.dumps([1, _hvm_domain()]), source="l.json")


@pytest.mark.parametrize("value", [10**30, 1e400, -5, "1024", [1], True, 2**63])
def test_out_of_range_numbers(value: object) -> None:
    doc = _hvm_domain()
    b_info = doc["config"]["b_info"]  # type: ignore[index]
    b_info["max_memkb"] = value
    text = json.dumps([doc]).replace("Infinity", "1e400")
    g = guests_from_xl_list(text).guests[0]
    assert g.status == "invalid" and g.reason and "max_memkb" in g.reason


def test_unknown_type_and_hap() -> None:
    g = guests_from_xl_list(json.dumps([_hvm_domain(type="invalid", hap="maybe")])).guests[0]
    assert g.status == "invalid" and g.type is None
    assert any("c_info.hap" in w for w in g.warnings)


def test_empty_list() -> None:
    listing = guests_from_xl_list("[]")
    assert listing.guests == () and "no domains" in listing.notes[0]


# --- xl.cfg ----------------------------------------------------------------------------------


def cfg(text: str, version: str = "4.4.0", arch: str = "x86") -> GuestSpec:
    return guest_from_xlcfg(text.encode(), profile_for(version), source="g.cfg",
                            arch=arch)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version", "lines", "kind", "status", "warns"),
    [
        # 4.2-4.9: only builder=, prefix of "hvm" -> HVM, anything else silently PV
        ("4.4.0", 'builder="hvm"', "hvm", "ok", 0),
        ("4.4.0", 'builder="h"', "hvm", "ok", 0),
        ("4.4.0", 'builder=""', "hvm", "ok", 0),
        ("4.4.0", 'builder="HVM"', "pv", "ok", 1),
        ("4.4.0", 'builder="linux"', "pv", "ok", 1),
        ("4.4.0", 'builder="generic"', "pv", "ok", 0),
        ("4.4.0", 'type="hvm"', "pv", "ok", 1),  # type= is 4.10+
        ("4.4.0", "", "pv", "ok", 0),
        # >=4.10: type= with prefix matching; builder= deprecated, strict
        ("4.10.0", 'type="hvm"', "hvm", "ok", 0),
        ("4.10.0", 'type="h"', "hvm", "ok", 0),
        ("4.10.0", 'type=""', "hvm", "ok", 0),
        ("4.10.0", 'type="p"', "pv", "ok", 0),
        ("4.10.0", 'type="pvh"', "pvh", "ok", 0),
        ("4.10.0", 'type="HVM"', None, "invalid", 0),
        ("4.10.0", 'builder="hvm"', "hvm", "ok", 1),
        ("4.10.0", 'builder="gen"', "pv", "ok", 1),
        ("4.10.0", 'builder="linux"', None, "invalid", 0),
        ("4.10.0", 'type="pv"\nbuilder="hvm"', "pv", "invalid", 0),
        ("4.10.0", 'type="hvm"\nbuilder="hvm"', "hvm", "ok", 0),
        ("4.10.0", 'type=["hvm"]', "pv", "ok", 1),  # a list: warning, key ignored
        ("4.17.0", "", "pv", "ok", 0),
    ],
)
def test_type_rules(version: str, lines: str, kind: str | None, status: str,
                    warns: int) -> None:
    g = cfg(f'name="g"\n{lines}\n', version)
    assert (g.type, g.status, len(g.warnings)) == (kind, status, warns), g.warnings
    if lines and status == "ok" and g.type_key is not None:
        assert g.type_line == 2


def test_arm_default_type() -> None:
    assert cfg('name="a"\n', "4.12.0", "arm").type == "pvh"
    assert cfg('name="a"\n', "4.11.0", "arm").type == "pv"


@pytest.mark.parametrize(
    ("lines", "memory", "maxmem", "vcpus", "maxvcpus", "defaulted"),
    [
        ("", 32, 32, 1, 1, {"memory", "maxmem", "vcpus", "maxvcpus"}),
        ("memory=1024", 1024, 1024, 1, 1, {"maxmem", "vcpus", "maxvcpus"}),
        ("maxmem=2048", 2048, 2048, 1, 1, {"memory", "vcpus", "maxvcpus"}),
        ("memory=1024\nmaxmem=4096", 1024, 4096, 1, 1, {"vcpus", "maxvcpus"}),
        ('memory="0x400"\nvcpus=4', 1024, 1024, 4, 4, {"maxmem", "maxvcpus"}),
        ("memory=010\nvcpus=2\nmaxvcpus=8", 8, 8, 2, 8, {"maxmem"}),
        ('memory="08"', 32, 32, 1, 1, {"memory", "maxmem", "vcpus", "maxvcpus"}),
        ("memory=99999999999999999999", 32, 32, 1, 1, {"memory", "maxmem", "vcpus",
                                                      "maxvcpus"}),
    ],
)
def test_memory_and_vcpu_defaults(lines: str, memory: int, maxmem: int, vcpus: int,
                                  maxvcpus: int, defaulted: set[str]) -> None:
    g = cfg(f'name="g"\nbuilder="hvm"\n{lines}\n')
    assert (g.memory_mib, g.maxmem_mib, g.vcpus, g.maxvcpus) == (memory, maxmem, vcpus,
                                                                 maxvcpus)
    assert g.defaulted == defaulted
    assert g.maxmem_kib == maxmem * 1024


def test_lines_and_values() -> None:
    g = cfg('name="g"\nbuilder="hvm"\nmemory=2048\nhap=0\nshadow_memory=64\n'
            'on_reboot="destroy"\nmaxmem=4096\nvcpus=2\nmaxvcpus=4\n')
    assert (g.memory_line, g.hap_line, g.shadow_memory_line, g.maxmem_line) == (3, 4, 5, 7)
    assert (g.vcpus_line, g.maxvcpus_line, g.type_line, g.type_key) == (8, 9, 2, "builder")
    assert (g.hap, g.shadow_memory_mib, g.on_reboot, g.name) == (False, 64, "destroy", "g")
    assert g.dialect == "4.3" and g.status == "ok"
    assert cfg('name="g"\n').on_reboot == "restart"


def test_getter_warnings_name_file_and_line() -> None:
    g = cfg('name="g"\nhap="yes"\nmemory=[1]\n')
    assert g.hap is None and g.memory_mib == 32
    assert any(w.startswith("g.cfg:2:") and "not a valid number" in w for w in g.warnings)
    assert any(w.startswith("g.cfg:3:") and "is a list" in w for w in g.warnings)
    assert cfg('name="g"\nhap=2\n').hap is True  # !!l


def test_invalid_values() -> None:
    assert "negative" in (cfg('name="g"\nmemory="-1"\n').reason or "")
    big = cfg('name="g"\nmemory=9007199254740993\n')
    assert big.status == "invalid" and big.error_line == 2 and "overflows" in (big.reason or "")
    assert "name" in (cfg("memory=512\n").reason or "")
    assert cfg('name="g"\nmemory=512\nmaxmem=256\n').warnings
    assert cfg('name="g"\nvcpus=4\nmaxvcpus=2\n').warnings


def test_pvh_v1() -> None:
    g = cfg('name="g"\npvh=1\n', "4.4.0")
    assert g.pvh is True and g.pvh_v1
    later = cfg('name="g"\npvh=1\n', "4.9.0")
    assert later.pvh is None and later.warnings


def test_dialect_of_the_release() -> None:
    text = 'name="g"\nvif.default.script="x"\n'
    old = cfg(text, "4.2.5")  # '.' in keys is 4.3+; libxlu 4.2 calls it "Python"
    assert old.status == "not_evaluated" and "looks like Python" in (old.reason or "")
    assert cfg(text, "4.3.0").status == "ok"
    assert cfg('name="g"', "4.2.0").status == "invalid"  # final newline needed in 4.2.0
    assert cfg('name="g"', "4.2.1").status == "ok"
    nested = 'name="g"\nvnuma=[["a"],["b"]]\n'
    assert (cfg(nested, "4.5.0").status, cfg(nested, "4.6.0").status) == ("invalid", "ok")


def test_xm_python_never_executed(shared_dir: Path, tmp_path: Path) -> None:
    xm = shared_dir / ("conformance/xlcfg/cases/"
                       "lostzoumo__xen-4.2.2__tools_examples_xmexample2.cfg")
    g = load_guest_cfg(xm, profile_for("4.4.0"))
    assert g.status == "not_evaluated" and g.reason and "never executes" in g.reason
    marker = tmp_path / "executed"
    script = f'import os\nos.system("touch {marker}")\nname = "x"\n'
    h = guest_from_xlcfg(script.encode(), profile_for("4.17.0"))
    assert h.status == "not_evaluated" and not marker.exists()
    assert cfg("def f():\n    pass\n").status == "not_evaluated"
    assert cfg("name = \n").status == "invalid"  # not Python, just broken


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x01\x02", bytes(range(256)), b"\xff" * 1000, b"[" * 10000,
     b'name="x"\n"' + b"\n" * 100_000],
)
def test_hostile_cfg_never_raises(data: bytes) -> None:
    g = guest_from_xlcfg(data, profile_for("4.17.0"), source="bad.cfg")
    assert g.status in ("invalid", "not_evaluated") and g.reason


def test_huge_number_is_ignored_with_warning() -> None:
    g = cfg('name="g"\nmemory=' + "9" * 5000 + "\n")
    assert g.status == "ok" and g.memory_mib == 32
    assert "out of range" in g.warnings[0]


def test_unreadable_cfg(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot read"):
        load_guest_cfg(tmp_path / "missing.cfg", profile_for("4.4.0"))


# --- paging mode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "cpu", "cmdline", "hap_line", "mode", "fails"),
    [
        ("4.4.0", True, "", "", "hap", False),
        ("4.4.0", True, "", "hap=0", "shadow", False),
        ("4.4.0", True, "hap=0", "", "shadow", False),
        ("4.4.0", True, "hap=0", "hap=1", "shadow", False),  # silent fallback
        ("4.4.0", False, "", "hap=1", "shadow", False),
        ("4.12.0", False, "", "hap=1", "shadow", False),
        ("4.13.0", False, "", "hap=1", None, True),  # creation fails
        ("4.13.0", False, "", "", "shadow", False),  # default follows the host
        ("4.13.0", True, "hap=0", "hap=1", None, True),
        ("4.13.0", True, "", "hap=0", "shadow", False),
        ("4.17.0", True, "", "hap=1", "hap", False),
    ],
)
def test_effective_paging(version: str, cpu: bool, cmdline: str, hap_line: str,
                          mode: str | None, fails: bool) -> None:
    host = host_from_flags(version, cmdline=cmdline, cpu_hap=cpu)
    p = profile_for(version)
    g = cfg(f'name="g"\nbuilder="hvm"\nmemory=1024\n{hap_line}\n', version)
    d = effective_paging(g, host, p)
    assert (d.mode, d.creation_fails) == (mode, fails), d.reasons
    assert d.reasons[0].startswith("guest type hvm")
    if hap_line:
        assert any("g.cfg:4" in r for r in d.reasons)


def test_type_ignored_before_4_10_is_a_reason() -> None:
    # xl <=4.9 has no type=: a config saying type="hvm" (no builder=) is a PV guest there
    g = cfg('name="g"\nmemory=1024\ntype = "hvm"\n', "4.4.0")
    assert (g.type, g.type_key, g.status) == ("pv", None, "ok")
    assert (g.ignored_type, g.ignored_type_line) == ("hvm", 3)
    assert g.warnings == ('g.cfg:3: type = "hvm" is ignored by xl 4.4.0 (it reads builder=; '
                          "type= is 4.10+): guest type pv (xl's default, no builder=)",)
    d = effective_paging(g, host_from_flags("4.4.0"), profile_for("4.4.0"))
    assert d.mode is None and not d.creation_fails
    assert d.reasons[0] == ('type = "hvm" (g.cfg:3) is ignored by xl before 4.10 '
                            "(no builder=): guest type pv")
    assert "PV" in d.reasons[-1]


def test_type_ignored_beside_builder_is_named() -> None:
    g = cfg('name="g"\ntype="pv"\nbuilder="hvm"\n', "4.4.0")
    assert (g.type, g.type_key, g.type_line, g.ignored_type_line) == ("hvm", "builder", 3, 2)
    d = effective_paging(g, host_from_flags("4.4.0"), profile_for("4.4.0"))
    assert d.mode == "hap"
    assert d.reasons[0] == ('guest type hvm (builder=) (g.cfg:3); type = "pv" (g.cfg:2) is '
                            "ignored by xl before 4.10")


def test_type_honoured_from_4_10() -> None:
    g = cfg('name="g"\nmemory=1024\ntype = "hvm"\n', "4.10.0")
    assert (g.type, g.type_key, g.type_line, g.ignored_type) == ("hvm", "type", 3, None)
    assert g.warnings == ()
    d = effective_paging(g, host_from_flags("4.10.0"), profile_for("4.10.0"))
    assert d.mode == "hap"
    assert d.reasons[0] == "guest type hvm (type=) (g.cfg:3)"


def test_paging_not_applicable() -> None:
    p = profile_for("4.4.0")
    x86 = host_from_flags("4.4.0")
    pv = effective_paging(cfg('name="g"\n'), x86, p)
    assert pv.mode is None and not pv.creation_fails and "PV" in pv.reasons[-1]
    v1 = effective_paging(cfg('name="g"\npvh=1\n'), x86, p)
    assert v1.mode is None and "PVHv1" in v1.reasons[-1]
    arm = effective_paging(cfg('name="g"\nbuilder="hvm"\n'), host_from_flags("4.4.0",
                                                                              arch="arm"), p)
    assert arm.mode is None and "x86-only" in arm.reasons[0]
    xm = guest_from_xlcfg(b"import os\n", p)
    assert effective_paging(xm, x86, p).reasons[0].startswith("not evaluated")


def test_assumed_cpu_hap_is_a_reason() -> None:
    d = effective_paging(cfg('name="g"\nbuilder="hvm"\n'), host_from_flags("4.4.0"),
                         profile_for("4.4.0"))
    assert any("assumed" in r for r in d.reasons)


def test_no_shadow_paging_in_xen() -> None:
    from xenvmmu.toolstack.host import host_from_xl_info, parse_xl_info

    text = ("xen_major : 4\nxen_minor : 17\nxen_extra : .0\nmachine : x86_64\n"
            "virt_caps : pv hvm hap\nxen_commandline : \n")
    host = host_from_xl_info(parse_xl_info(text, "h.txt"))
    p = profile_for("4.17.0")
    g = cfg('name="g"\ntype="hvm"\nhap=0\n', "4.17.0")
    assert effective_paging(g, host, p) [:1] == (None,)
    assert effective_paging(g, host, p).creation_fails


# --- paging pool -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "lines", "kib", "how", "applied"),
    [
        ("4.4.0", "memory=1024\nvcpus=1", 9216, "default", 9216),
        # the pool is computed before libxl's vCPU default: 0 vCPUs, by xl up to 4.12 and
        # by libxl from 4.13 on (libxl_create.c @ RELEASE-4.13.0 l.1038 vs l.1052)
        ("4.4.0", "memory=1024", 8192, "default", 8192),
        ("4.13.0", "memory=1024", 8192, "default", 8192),
        ("4.17.0", "memory=1024", 4096, "default", 4096),  # HAP: 4 KiB per MiB
        # no memory=/maxmem=: the unset max_memkb sentinel, in every release
        ("4.4.0", "vcpus=1", None, "unknown", None),
        ("4.13.0", "", None, "unknown", None),
        ("4.17.0", "vcpus=1", None, "unknown", None),
        ("4.4.0", "memory=394\nmaxmem=579\nvcpus=1", 5656, "default", 6144),  # whole MiB
        ("4.17.0", "memory=394\nmaxmem=579\nvcpus=1", 3340, "default", 3340),
        ("4.17.0", "memory=394\nmaxmem=579\nvcpus=1\nhap=0", 5656, "default", 5656),
        ("4.4.0", "memory=1024\nshadow_memory=4", 4096, "explicit", 4096),
        ("4.17.0", "memory=1024\nshadow_memory=128", 131072, "explicit", 131072),
    ],
)
def test_pool(version: str, lines: str, kib: int | None, how: str,
              applied: int | None) -> None:
    g = cfg(f'name="g"\nbuilder="hvm"\n{lines}\n', version)
    pool = paging_pool(g, host_from_flags(version), profile_for(version))
    assert (pool.kib, pool.how, pool.applied_kib) == (kib, how, applied), pool.reason
    assert pool.reason


def test_pool_not_applicable() -> None:
    p = profile_for("4.4.0")
    assert paging_pool(cfg('name="g"\n'), host_from_flags("4.4.0"), p).how == "not_applicable"
    arm_old = paging_pool(cfg('name="g"\n', "4.16.0", "arm"),
                          host_from_flags("4.16.0", arch="arm"), profile_for("4.16.0"))
    assert arm_old.how == "not_applicable"


def test_invalid_guest_is_not_assessed() -> None:
    for version, arch in (("4.17.0", "x86"), ("4.17.0", "arm")):
        g = cfg('name="g"\ntype="bogus"\n', version, arch)
        host = host_from_flags(version, arch=arch)  # type: ignore[arg-type]
        d = effective_paging(g, host, profile_for(version))
        assert d.mode is None and "invalid" in d.reasons[0]
        assert paging_pool(g, host, profile_for(version)).how == "not_applicable"


# --- never a traceback -----------------------------------------------------------------------

_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["domid", "config", "c_info", "b_info", "type", "hap",
                                       "max_memkb", "max_vcpus", "avail_vcpus", "name",
                                       "shadow_memkb", "u", "type.hvm", "pvh"]),
                      inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=200)
@given(_JSONISH)
def test_xl_list_any_json(doc: object) -> None:
    try:
        listing = guests_from_xl_list(json.dumps(doc), source="f.json")
    except InputFileError as e:
        assert "f.json" in str(e)
        return
    for g in listing.guests:
        assert g.status in ("ok", "invalid")
        effective_paging(g, host_from_flags("4.4.0"), profile_for("4.4.0"))


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_xl_list_any_bytes(data: bytes) -> None:
    try:
        guests_from_xl_list(data, source="f.json")
    except InputFileError as e:
        assert "f.json" in str(e)


@settings(max_examples=200)
@given(st.binary(max_size=300), st.sampled_from(["4.2.0", "4.4.0", "4.10.0", "4.17.0"]))
def test_xlcfg_any_bytes(data: bytes, version: str) -> None:
    p = profile_for(version)
    g = guest_from_xlcfg(data, p, source="f.cfg")
    host = host_from_flags(version)
    paging_pool(g, host, p, effective_paging(g, host, p))
