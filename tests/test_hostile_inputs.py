"""Hostile content: bounded work, validation at the edge, nothing echoed, one identity per guest.

Each case of the hostile-input issue as a test: amplification, limits of JSON and TOML,
numeric flags and fields out of range, deep lists and long ``+=`` chains without recursion or
quadratic work, secrets behind symbolic links, duplicate guests and Prometheus series, and
line numbers that are 1 or more, or null.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from xenvmmu import xlcfg
from xenvmmu.audit import audit_settings
from xenvmmu.audit.format.base import dump_json
from xenvmmu.commands.parse import dumps_json, render_value
from xenvmmu.toolstack import InputFileError, guests_from_xl_list
from xenvmmu.toolstack.xllist import MAX_DOMAINS, MAX_JSON_ARRAY, MAX_JSON_DEPTH

from .hostile.harness import check_report, loads_deep, run

FORMATS = ["json", "sarif", "openvex", "prometheus", "table", "markdown"]
GUEST = 'name = "g"\nbuilder = "hvm"\nmemory = 4096\n'


def _domain(domid: int, name: str | None = "vm", uuid: str | None = None,
            **c_info: object) -> dict[str, object]:
    info: dict[str, object] = {"type": "hvm", **c_info}
    if name is not None:
        info["name"] = name
    if uuid is not None:
        info["uuid"] = uuid
    return {"domid": domid, "config": {"c_info": info, "b_info": {"max_memkb": 4 << 20}}}


def _audit(*argv: str, fmt: str = "json", version: str = "4.4.0") -> tuple[int, str, str]:
    result = run(["audit", "--xen-version", version, "--format", fmt, *argv])
    if result.status != 2:
        check_report(fmt, result.out)
    return result.status, result.out, result.err


# --- amplification and JSON limits ----------------------------------------------------------


def test_an_array_of_zeros_is_one_input_error_not_a_hundred_thousand_guests(
    tmp_path: Path,
) -> None:
    p = tmp_path / "list.json"
    for n, message in ((100_000, "100000 domains: more than Xen can run (32752); not `xl "
                                 "list -l` output"),
                       (30_000, "$[0] is a number, not a domain object: not `xl list -l` "
                                "output")):
        p.write_text("[" + ",".join(["0"] * n) + "]")
        start = time.process_time()
        status, out, _ = _audit(str(p))
        assert time.process_time() - start < 10  # was 670 MB and 73 MB of output
        report = json.loads(out)
        assert status == 3 and report["guests"] == []
        assert [e["message"] for e in report["errors"]] == [message]
        assert len(out) < 5000


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([_domain(1), {"domid": 2, "config": {"deep": "{deep}"}}],
         f"nested deeper than {MAX_JSON_DEPTH} levels"),
        ([{**_domain(1), "big": list(range(MAX_JSON_ARRAY + 1))}], "array of 65537 elements"),
        ([{}] * (MAX_DOMAINS + 1), "more than Xen can run"),
    ],
    ids=["depth", "array", "domains"],
)
def test_json_limits(doc: list[object], message: str) -> None:
    text = json.dumps(doc).replace('"{deep}"', "[" * 70 + "]" * 70)
    with pytest.raises(InputFileError, match=message):
        guests_from_xl_list(text, source="l.json")


def test_deep_json_beyond_the_parser_is_an_error_not_a_crash() -> None:
    with pytest.raises(InputFileError, match="nested deeper"):
        guests_from_xl_list("[" * 100_000 + "]" * 100_000, source="l.json")


def test_bad_fields_are_per_guest_errors_with_the_json_path(tmp_path: Path) -> None:
    doc = [_domain(1, "ok-guest"), _domain(2, "listy", hap=["True"]),
           _domain(3, "\ud800"), _domain(4, "t", pvh={"a": 1})]
    (tmp_path / "list.json").write_text(json.dumps(doc))
    for fmt in FORMATS:
        # the good guest is assessed (and affected): the run goes on
        assert _audit(str(tmp_path / "list.json"), fmt=fmt)[0] == 1
    report = json.loads(_audit(str(tmp_path / "list.json"))[1])
    reasons = {g["name"]: g["reasons"][0] for g in report["guests"]}
    assert report["guests"][0]["verdict"] == "affected"
    assert "domain #1: $[1].config.c_info.hap is an array, not a string" in reasons["listy"]
    bad_name = next(g for g in report["guests"] if g["name"] is None)
    assert "$[2].config.c_info.name is not valid Unicode" in bad_name["reasons"][0]
    assert "$[3].config.c_info.pvh is an object" in reasons["t"]
    assert all(g["verdict"] == "unknown" for g in report["guests"][1:])


def test_zero_memory_and_vcpus_are_invalid_not_crashes(tmp_path: Path) -> None:
    doc = [{"domid": 1, "config": {"c_info": {"type": "hvm", "name": "z"},
                                   "b_info": {"max_memkb": -1, "target_memkb": 0}}}]
    (tmp_path / "list.json").write_text(json.dumps(doc))
    for key in ("memory", "maxmem", "vcpus", "maxvcpus"):
        (tmp_path / f"{key}.cfg").write_text(f'name="{key}"\nbuilder="hvm"\n{key} = 0\n')
    status, out, _ = _audit(str(tmp_path))
    assert status == 3
    reasons = " ".join(g["reasons"][0] for g in json.loads(out)["guests"])
    for key in ("memory=0", "maxmem=0", "vcpus=0", "maxvcpus=0", "target_memkb = 0"):
        assert key in reasons


# --- numbers at the edge --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--budget-ms", "nan"], "--budget-ms must be a finite number above 0, not nan"),
        (["--budget-ms", "inf"], "--budget-ms must be a finite number above 0, not inf"),
        (["--budget-ms", "-inf"], "--budget-ms"),
        (["--budget-ms", "0"], "--budget-ms"),
        (["--watchdog-timeout", "-1"], "--watchdog-timeout must be 1..4294967295"),
        (["--watchdog-timeout", "0"], "use --no-watchdog"),
        (["--watchdog-timeout", "4294967296"], "--watchdog-timeout"),
        (["--xen-version", "0.0.0"], "Xen 0.0.0 is not a Xen release"),
        (["--xen-version", "2.0.7"], "HVM guests exist from Xen 3.0"),
    ],
)
def test_flags_out_of_range_exit_2(argv: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "g.cfg").write_text(GUEST)
    result = run(["audit", "--xen-version", "4.4.0", *argv, str(tmp_path / "g.cfg")])
    assert result.status == 2 and message in result.err, result.err


def test_library_budget_must_be_finite() -> None:
    for bad in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(ValueError, match="finite positive"):
            audit_settings(budget_ms=bad)


def test_xl_info_with_version_0_exits_2(tmp_path: Path) -> None:
    host = tmp_path / "xl-info.txt"
    host.write_text("xen_major : 0\nxen_minor : 0\nxen_extra : .0\nmachine : x86_64\n")
    (tmp_path / "g.cfg").write_text(GUEST)
    result = run(["audit", "--host", str(host), str(tmp_path / "g.cfg")])
    assert result.status == 2 and "xen_major: Xen 0.0.0 is not a Xen release" in result.err


def test_accepted_edges(tmp_path: Path) -> None:
    (tmp_path / "g.cfg").write_text(GUEST)
    for argv in (["--xen-version", "3.4.4"], ["--watchdog-timeout", "4294967295"],
                 ["--budget-ms", "1e-9"]):
        result = run(["audit", "--xen-version", "4.4.0", *argv, str(tmp_path / "g.cfg")])
        assert result.status in (1, 3), result.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shadow-memory", "-1"], "--shadow-memory must be in 1..16777216"),
        (["--shadow-memory", "0"], "--shadow-memory"),
        (["--vcpus", "0"], "--vcpus must be in 1..128"),
        (["--vcpus", "129"], "--vcpus"),
        (["--pcpus", "99999999999999999999999999"], "--pcpus must be in 1..256"),
        (["--seed", "-1"], "--seed"),
        (["--memory", "99999T"], "size too large"),
        (["--memory", "16.0001T"], "size too large"),
        (["--memory", "1" * 40 + "T"], "not a size"),
        (["--memory", "1" * 5000], "not a size"),
        (["--memory", "nan"], "not a size"),
    ],
)
def test_simulate_refuses_out_of_range(argv: list[str], message: str) -> None:
    result = run(["simulate", "vram", "--memory", "1G", *argv])
    assert result.status == 2 and message in result.err, result.err


def test_simulate_accepts_16_tib() -> None:
    result = run(["simulate", "teardown", "--xen", "4.17.0", "--memory", "16T", "--json"])
    assert result.status == 0, result.err


def test_huge_vcpus_is_a_per_guest_error_and_overflowed_memory_a_warning(tmp_path: Path) -> None:
    (tmp_path / "v.cfg").write_text(
        'name = "v"\nbuilder = "hvm"\nvcpus = 9223372036854775807\n')
    (tmp_path / "m.cfg").write_text(
        'name = "m"\nbuilder = "hvm"\nmemory = 99999999999999999999\n')
    report = json.loads(_audit(str(tmp_path))[1])
    by = {g["name"]: g for g in report["guests"]}
    assert by["v"]["verdict"] == "unknown"
    assert ("vcpus=9223372036854775807 does not fit xl's C int (xl would cut it to -1)"
            in by["v"]["reasons"][0])
    assert by["m"]["memory_mib"] == 32  # xl ignores the setting: libxl's default
    assert any(r.startswith("xl warns: ") and "parameter `memory' could not be parsed as a "
               "number: Numerical result out of range" in r for r in by["m"]["reasons"])


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("a = " + "[" * 3000 + "]" * 3000, "nested deeper than 16 levels"),
        ("[units]\nentries_written = 1e308", "0 to 1e+06"),
        ("[units]\nentries_written = " + "9" * 400, "0 to 1e+06"),
        ("[units]\nentries_written = nan", "0 to 1e+06"),
        ("[units]\nentries_written = true", "must be a number"),
        ("[units]\nentries_written = {ns = 5, source = [1]}", "source must be a string"),
        ('name = [1]\n[units]\nentries_written = 5', "name must be a string"),
        ("\udcff", "not UTF-8"),
    ],
)
def test_cost_files(toml: str, message: str, tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_bytes(toml.encode("utf-8", "surrogateescape"))
    (tmp_path / "g.cfg").write_text(GUEST)
    for argv in (["audit", "--xen-version", "4.4.0", "--costs", str(p), str(tmp_path / "g.cfg")],
                 ["simulate", "attack", "--memory", "1G", "--costs", str(p)]):
        result = run(argv)
        assert result.status == 2 and message in result.err, result.err


# --- depth and length without recursion or quadratic work ----------------------------------


def test_lists_as_deep_as_libxlu_accepts_parse_print_and_audit(tmp_path: Path) -> None:
    n = 4990
    cfg = tmp_path / "deep.cfg"
    cfg.write_bytes(GUEST.encode() + b"disk = " + b"[" * n + b'"x"' + b"]" * n + b"\n")
    human = run(["parse", str(cfg)])
    assert human.status == 0 and "[" * n + '"x"' + "]" * n in human.out
    lines = run(["parse", "--json", str(cfg)])
    assert lines.status == 0
    value = loads_deep(lines.out)["settings"][-1]["value"]
    for _ in range(n - 1):
        value = value[0]
    assert value == ["x"]
    assert _audit(str(cfg), version="4.17.0")[0] in (0, 1)


def test_printers_and_json_writers_do_not_recurse() -> None:
    deep: object = "x"
    for _ in range(20_000):
        deep = (deep,)
    assert render_value(deep) == "[" * 20_000 + '"x"' + "]" * 20_000  # type: ignore[arg-type]
    assert dumps_json({"v": deep}) == '{"v": ' + "[" * 20_000 + '"x"' + "]" * 20_000 + "}"
    for _ in range(20_000 - 3000):  # indented output grows with the square of the depth
        assert isinstance(deep, tuple)
        deep = deep[0]
    text = dump_json({"v": deep})
    assert text.count("[") == 3000 and text.endswith("\n}\n")


def _plus_equals(n: int) -> bytes:
    return b"".join(b'x += ["a%d", "b"]\n' % i for i in range(n))


def test_plus_equals_is_linear() -> None:
    r = xlcfg.parse(_plus_equals(80_000))
    assert r.ok and len(r.settings) == 80_000
    assert len(r.settings[-1].value) == 160_000 and r.settings[0].value == ()
    small, large = (_plus_equals(n) for n in (10_000, 40_000))
    t0 = time.process_time()
    xlcfg.parse(small)
    t1 = time.process_time()
    xlcfg.parse(large)
    t2 = time.process_time()
    # 4x the lines: about 4x the time when linear, 16x when quadratic
    assert (t2 - t1) < 9 * (t1 - t0) + 0.05


def test_string_plus_equals_is_bounded_like_a_failed_allocation() -> None:
    r = xlcfg.parse(b'x += "aaaa"\n' * 20_000)  # ~800 Mi characters without the budget
    assert not r.ok and r.failure == "Cannot allocate memory"
    assert r.messages("f")[-1] == "Failed to parse config: Cannot allocate memory"
    assert xlcfg.to_json(r)["failure"] == "Cannot allocate memory"


def test_garbage_is_cut_at_the_first_errors(tmp_path: Path) -> None:
    p = tmp_path / "garbage.cfg"
    p.write_bytes(b"!\n" * 1_000_000)
    start = time.process_time()
    result = run(["parse", str(p)])
    assert result.status == 1
    assert result.out.count("lexical error") == 1000
    assert result.out.endswith("stopped after the first 1000 errors (xl would print more)\n")
    status, _, _ = _audit(str(p))
    assert status == 3
    assert time.process_time() - start < 20


# --- nothing echoed ------------------------------------------------------------------------

SECRET = "root:$6$S3CR3TSALT$HASHHASHHASH:19000:0:99999:7:::"


@pytest.mark.parametrize("kind", ["symlink-out", "binary", "not-utf8"])
def test_content_of_implausible_files_is_never_echoed(kind: str, tmp_path: Path) -> None:
    scanned = tmp_path / "xen"
    scanned.mkdir()
    (scanned / "good.cfg").write_text(GUEST)
    if kind == "symlink-out":
        shadow = tmp_path / "shadow"
        shadow.write_text(SECRET + "\n")
        os.symlink(shadow, scanned / "vm.cfg")
        why = f"a symbolic link to {shadow}, outside the scanned directory"
    elif kind == "binary":
        (scanned / "vm.cfg").write_bytes(b"\x00\x01" + SECRET.encode() + b"\n")
        why = "binary data: a NUL byte"
    else:
        (scanned / "vm.cfg").write_bytes(SECRET.encode() + b"\xff\xfe\n")
        why = "not UTF-8 text"
    for fmt in FORMATS:
        status, out, err = _audit(str(scanned), fmt=fmt)
        assert status == 1
        assert "S3CR3T" not in out and "S3CR3T" not in err and "HASH" not in out
    report = json.loads(_audit(str(scanned))[1])
    assert [e["message"] for e in report["errors"]] == [
        f"not an xl.cfg file ({why}): xl rejects it; its content is not shown"]
    assert [Path(e["source"]).name for e in report["errors"]] == ["vm.cfg"]


def test_a_config_behind_a_symlink_out_of_the_tree_is_still_read(tmp_path: Path) -> None:
    (tmp_path / "vm.cfg").write_text(GUEST)
    auto = tmp_path / "auto"
    auto.mkdir()
    os.symlink("../vm.cfg", auto / "vm.cfg")
    status, out, _ = _audit(str(auto))
    assert status == 1 and [g["name"] for g in json.loads(out)["guests"]] == ["g"]


# --- identity ------------------------------------------------------------------------------


def test_etc_xen_auto_symlinks_are_read_once(tmp_path: Path) -> None:
    (tmp_path / "vm.cfg").write_text(GUEST)
    (tmp_path / "auto").mkdir()
    os.symlink("../vm.cfg", tmp_path / "auto" / "vm.cfg")
    os.link(tmp_path / "vm.cfg", tmp_path / "hardlink.cfg")
    result = run(["audit", "--xen-version", "4.4.0", str(tmp_path), str(tmp_path / "vm.cfg")])
    assert result.status == 1
    assert "1 input file(s), 1 guest(s), 0 input error(s)" in result.err


def test_domains_listed_twice_are_assessed_once(tmp_path: Path) -> None:
    uuid = "6b1e3f0a-2c4d-4e8f-9a10-3b5c7d9e1f20"
    (tmp_path / "a.json").write_text(json.dumps([_domain(1, "a", uuid), _domain(2, "b"),
                                                 _domain(2, "b-again")]))
    (tmp_path / "b.json").write_text(json.dumps([_domain(7, "a-elsewhere", uuid.upper())]))
    report = json.loads(_audit(str(tmp_path))[1])
    assert [g["name"] for g in report["guests"]] == ["a", "b"]


def test_prometheus_series_are_unique(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "vm.cfg").write_text(GUEST)
    (tmp_path / "two" / "vm.cfg").write_text(GUEST)  # same guest name, another file
    (tmp_path / "l.json").write_text(json.dumps(
        [_domain(1, "same"), _domain(2, "same"), _domain(3, None), _domain(4, None)]))
    status, out, _ = _audit(str(tmp_path), fmt="prometheus")  # check_report: unique series
    assert status == 1
    affected = [line for line in out.splitlines() if line.startswith("xenvmmu_guest_affected{")]
    assert len(affected) == 6
    assert sum('occurrence="2"' in line for line in affected) == 2


def test_line_numbers_are_1_or_more_or_null(tmp_path: Path) -> None:
    (tmp_path / "two.cfg").write_bytes(b"a\n")  # libxlu: "two.cfg:0: ... near <newline>"
    status, out, _ = _audit(str(tmp_path))  # check_report validates against the schema
    guest = json.loads(out)["guests"][0]
    assert status == 3 and guest["line"] is None and guest["decisive"] is None
    sarif = _audit(str(tmp_path), fmt="sarif")[1]
    assert '"startLine": 0' not in sarif
