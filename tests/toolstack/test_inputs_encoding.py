"""Inputs in the encodings operators really hand over: JSON and `xl info` with a UTF-8
byte-order mark (accepted), `xl list -l` in S-expression form (recognised and reported as
such, wherever it is), and xl.cfg files that xl rejects for CRLF line endings or a byte-order
mark (the report says why and how to convert them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xenvmmu.audit import audit_settings, run_audit
from xenvmmu.audit.scan import content_kind, scan
from xenvmmu.cli import main
from xenvmmu.toolstack import guests_from_xl_list, host_from_flags, load_host, load_xl_list
from xenvmmu.toolstack.inputs import UTF8_BOM, InputFileError, decode_text
from xenvmmu.toolstack.xlinfo import parse_xl_info
from xenvmmu.toolstack.xllist import SXP_MESSAGE, is_sxp_listing

from ..conftest import SHARED

FIXTURES = SHARED / "fixtures"
LISTING = FIXTURES / "guests" / "xl-list-l_4.4.0_hvm-64gib_hap-default.json"
XL_INFO = FIXTURES / "hosts" / "xl-info_4.4.0_x86-intel-ept.txt"
#: What xl with output_format="sxp" prints for `xl list -l` (xl_sxp.c), shortened.
SXP = (b"(domain\n\t(domid 7)\n\t(create_info)\n\t(hvm 1)\n\t(hap <default>)\n"
       b"\t(name web)\n\t(uuid 6a0e1f34-5ff8-4f64-8a5c-3d7f2b6c0e11)\n\t(build_info)\n"
       b"\t(max_vcpus 2)\n\t(max_memkb 2097152)\n)\n")
CONFIG = b'name = "web"\nbuilder = "hvm"\nmemory = 2048\nvcpus = 2\n'


def _audit(paths: list[str]) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """(guest names, (file name, message) of each error, the reasons of every guest)."""
    report = run_audit(paths, host_from_flags("4.4.0"), audit_settings())
    return ([f.name or "" for f in report.findings],
            [(Path(e.path).name, e.message) for e in report.errors],
            [r for f in report.findings for r in f.reasons])


# --- byte-order marks ----------------------------------------------------------------------


def test_decode_text_drops_a_leading_bom() -> None:
    assert decode_text(UTF8_BOM + b"xen_major : 4\n", "x", "text") == "xen_major : 4\n"
    assert decode_text("\ufeffabc", "x", "text") == "abc"
    with pytest.raises(InputFileError, match="empty file"):
        decode_text(UTF8_BOM + b" \n", "x", "text")


def test_xl_list_with_a_bom_is_read(tmp_path: Path) -> None:
    plain = guests_from_xl_list(LISTING.read_bytes(), source="l")
    bom = guests_from_xl_list(UTF8_BOM + LISTING.read_bytes(), source="l")
    assert bom == plain and [g.name for g in bom.guests] == ["db-64g"]
    path = tmp_path / "list.json"
    path.write_bytes(UTF8_BOM + LISTING.read_bytes())
    assert [g.name for g in load_xl_list(path).guests] == ["db-64g"]


def test_audit_reads_bom_json_named_and_in_a_directory(tmp_path: Path) -> None:
    named = tmp_path / "named.json"
    named.write_bytes(UTF8_BOM + LISTING.read_bytes())
    found = tmp_path / "dir"
    found.mkdir()
    doc = json.loads(LISTING.read_text())
    doc[0]["config"]["c_info"]["name"] = "other"
    doc[0]["config"]["c_info"]["uuid"] = "11111111-2222-3333-4444-555555555555"
    (found / "saved-from-windows.txt").write_bytes(UTF8_BOM + json.dumps(doc).encode())
    names, errors, _ = _audit([str(named), str(found)])
    assert names == ["db-64g", "other"] and errors == []


def test_xl_info_with_a_bom(tmp_path: Path) -> None:
    text = XL_INFO.read_bytes()
    assert parse_xl_info(UTF8_BOM + text, "x").fields == parse_xl_info(text, "x").fields
    assert parse_xl_info(UTF8_BOM + text, "x").get("host") == "hv-ubuntu-07"  # first line
    path = tmp_path / "xl-info.txt"
    path.write_bytes(UTF8_BOM + text)
    assert str(load_host(path).xen_version) == "4.4.0"


# --- S-expression `xl list -l` --------------------------------------------------------------


@pytest.mark.parametrize("data", [SXP, b"\n  " + SXP, UTF8_BOM + SXP,
                                  b"(domain (domid 1) (name x))", b"(domain\r\n(domid 1))"])
def test_sxp_is_recognised(data: bytes) -> None:
    assert is_sxp_listing(data)
    assert content_kind(data) == "sxp"


@pytest.mark.parametrize("data", [CONFIG, b"[]", b"(", b"(domains 1)", b"# (domain\n",
                                  b'name="(domain"\n'])
def test_other_content_is_not_sxp(data: bytes) -> None:
    assert not is_sxp_listing(data)


def test_xl_list_reader_names_the_sxp_form() -> None:
    with pytest.raises(InputFileError) as e:
        guests_from_xl_list(SXP, source="list.sxp")
    assert e.value.message == SXP_MESSAGE
    assert "S-expression" in SXP_MESSAGE and 'output_format="json"' in SXP_MESSAGE


@pytest.mark.parametrize("name", ["xl-list.txt", "guests.sxp", "web.cfg", "list.json"])
def test_sxp_file_is_reported_as_such(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(SXP)
    names, errors, reasons = _audit([str(path)])
    assert names == []  # not a guest "that looks like Python"
    assert errors == [(name, SXP_MESSAGE)]
    assert not any("Python" in r for r in reasons)


def test_sxp_in_a_scanned_directory_is_reported(tmp_path: Path) -> None:
    (tmp_path / "running.sxp").write_bytes(SXP)
    (tmp_path / "web.cfg").write_bytes(CONFIG)
    (tmp_path / "notes.txt").write_bytes(b"(not a listing)\n")  # skipped, as before
    names, errors, _ = _audit([str(tmp_path)])
    assert names == ["web"]
    assert errors == [("running.sxp", SXP_MESSAGE)]


def test_sxp_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(SXP)
    assert main(["audit", "--xen-version", "4.4.0", str(path)]) == 3
    out = capsys.readouterr().out
    assert "S-expression form" in out and "looks like Python" not in out


def test_scan_classifies_stdin_by_content() -> None:
    import io

    for data, kind in ((SXP, "sxp"), (LISTING.read_bytes(), "json"), (CONFIG, "xlcfg")):
        items, errors = scan(["-"], stdin=io.BytesIO(data))
        assert [(i.path, i.kind) for i in items] == [("<stdin>", kind)] and errors == []


# --- configs xl rejects for their encoding --------------------------------------------------


def test_crlf_config_gets_the_hint(tmp_path: Path) -> None:
    path = tmp_path / "win.cfg"
    path.write_bytes(CONFIG.replace(b"\n", b"\r\n"))
    names, errors, reasons = _audit([str(path)])
    assert errors == [] and names == [""]
    assert any("lexical error" in r for r in reasons)  # xl's own message stays
    hint = next(r for r in reasons if "CRLF" in r)
    assert "xl (libxlu) rejects" in hint and "sed -i 's/\\r$//'" in hint


def test_crlf_hint_in_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "win.cfg"
    path.write_bytes(CONFIG.replace(b"\n", b"\r\n"))
    assert main(["audit", "--xen-version", "4.4.0", str(path)]) == 3
    out = capsys.readouterr().out
    assert "sed -i 's/\\r$//' FILE" in out  # printed as written, not with doubled backslashes


def test_cr_only_and_bom_configs_get_hints(tmp_path: Path) -> None:
    (tmp_path / "mac.cfg").write_bytes(CONFIG.replace(b"\n", b"\r"))
    (tmp_path / "bom.cfg").write_bytes(UTF8_BOM + CONFIG)
    _, _, reasons = _audit([str(tmp_path / "mac.cfg")])
    assert any("carriage returns" in r and "tr '\\r' '\\n'" in r for r in reasons)
    _, _, reasons = _audit([str(tmp_path / "bom.cfg")])
    assert any("byte-order mark" in r and "sed -i" in r for r in reasons)


def test_no_hint_for_a_valid_config_or_other_errors(tmp_path: Path) -> None:
    (tmp_path / "ok.cfg").write_bytes(CONFIG)
    (tmp_path / "bad.cfg").write_bytes(b'name = "x"\nmemory = = 3\n')
    (tmp_path / "cr-in-string.cfg").write_bytes(b'name = "x\r"\nbuilder = "hvm"\n# a\r b\n')
    # a carriage return inside a comment or a string: libxlu accepts the file
    for name in ("ok.cfg", "bad.cfg", "cr-in-string.cfg"):
        _, _, reasons = _audit([str(tmp_path / name)])
        assert not any("carriage" in r or "CRLF" in r for r in reasons)
