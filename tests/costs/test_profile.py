"""Cost profiles: the packaged default, overrides from TOML, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenvmmu.costs import CostProfileError, default_profile, load_profile
from xenvmmu.model.work import FIELDS, Work


def test_default_covers_every_unit_with_a_source() -> None:
    p = default_profile()
    assert set(p.ns_per_unit) == set(FIELDS)
    for unit in FIELDS:
        assert p.sources[unit].startswith(("assumed", "derived")), unit


def test_one_tib_of_ept_rewrites_matches_published_order_of_magnitude() -> None:
    # anchors-kvm-papers.md 1.6: whole-guest 4 KiB-granular walks cost ~10-20 s per TiB.
    seconds = default_profile().ms(Work(entries_written=2**28)) / 1000
    assert 10 <= seconds <= 20


def test_override_keeps_other_units(tmp_path: Path) -> None:
    f = tmp_path / "fast.toml"
    f.write_text('[units]\nentries_written = 10\npages_freed = { ns = 5, source = "lab" }\n')
    p = load_profile(f)
    assert p.ns_per_unit["entries_written"] == 10.0
    assert p.sources["pages_freed"] == "lab"
    assert p.ns_per_unit["tlb_flushes"] == default_profile().ns_per_unit["tlb_flushes"]
    assert p.ns(Work(entries_written=3, pages_freed=2)) == 40.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[units]\nbogus = 1\n", "unknown unit(s) bogus"),
        ("[units]\nentries_written = -1\n", "units.entries_written must be a finite number >= 0"),
        ("[units]\nentries_written = 'x'\n", "units.entries_written must be a number"),
        ('schema = "other/2"\n', "schema is 'other/2'"),
        ("[units\n", "line 1"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(CostProfileError) as e:
        load_profile(f)
    assert str(e.value).startswith(f"{f}: ")
    assert message in str(e.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CostProfileError, match="cannot read cost file"):
        load_profile(tmp_path / "missing.toml")
