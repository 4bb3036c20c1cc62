"""Cost profiles: the packaged default, overrides from TOML, and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xenvmmu.costs import CostProfileError, default_profile, load_profile
from xenvmmu.model.work import FIELDS, Work

KINDS = ("assumed", "derived", "shape measurement", "estimate")


def test_default_covers_every_unit_with_both_bounds_and_their_sources() -> None:
    p = default_profile()
    assert set(p.ns_per_unit) == set(p.low_ns) == set(FIELDS)
    assert p.low_sources is not None
    for unit in FIELDS:
        assert p.sources[unit].startswith(KINDS), unit
        assert p.low_sources[unit].startswith(KINDS), unit
        assert 0 < p.low_ns[unit] <= p.ns_per_unit[unit], unit
    low = p.low()
    assert low.ns_per_unit == p.low_ns and p.bound("high") is p
    with pytest.raises(ValueError):
        p.bound("middle")


def test_per_entry_rewrites_stay_under_kvm_per_spte_figures() -> None:
    # anchors-kvm-papers.md 1.6: KVM's CLEAR_DIRTY_LOG costs 47-79 ns per SPTE, heavier work
    # than a plain EPT type rewrite: an upper sanity bound for one entry write (+ NPT lock).
    p = default_profile()
    assert p.ns_per_unit["entries_written"] <= 47
    assert p.ns_per_unit["entries_written"] + p.ns_per_unit["lock_round_trips"] <= 79
    # and a 1 TiB EPT sweep at the high bound is in the review's 1.5-4 s per TiB (E)
    seconds = p.ms(Work(entries_written=2**28)) / 1000
    assert 1.3 <= seconds <= 4.5


def test_ranges_from_toml(tmp_path: Path) -> None:
    f = tmp_path / "r.toml"
    f.write_text('[units.entries_written]\nlow = 3\nhigh = 9\nsource_low = "lab a"\n'
                 'source_high = "lab b"\n[units.tlb_flushes]\nns = 100\n')
    p = load_profile(f)
    assert (p.low_ns["entries_written"], p.ns_per_unit["entries_written"]) == (3.0, 9.0)
    assert p.low_sources is not None and p.low_sources["entries_written"] == "lab a"
    assert p.sources["entries_written"] == "lab b"
    assert p.low_ns["tlb_flushes"] == p.ns_per_unit["tlb_flushes"] == 100.0
    bad = tmp_path / "b.toml"
    bad.write_text("[units.entries_written]\nlow = 9\nhigh = 3\n")
    with pytest.raises(CostProfileError, match=re.escape("low (9) is above high (3)")):
        load_profile(bad)


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
        ("[units]\nentries_written = -1\n", "units.entries_written must be a finite number"),
        ("[units]\nentries_written = 1e300\n", "units.entries_written must be a finite number"),
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


def test_xsa410_anchor_is_reproduced() -> None:
    """XSA-410: freeing the p2m pages of an 80 GB guest takes more than 1 ms, of 8 TB more
    than 100 ms (extrapolated); the model's pre-XSA-410 final teardown at the low cost bound
    is above each, and at the high bound within 10x of 1 ms for 80 GB."""
    from xenvmmu.model import analytic
    from xenvmmu.model.spec import DomainSpec
    from xenvmmu.versions import profile_for

    p = default_profile()
    beh = profile_for("4.4.0").paging
    for size, floor_ms in ((80 << 30, 1.0), (8 << 40, 100.0)):
        spec = DomainSpec(ram_bytes=size, log_dirty=True, dirty="all")
        final = analytic.teardown(spec, beh).call(1)
        low, high = final.longest_ns(p.low_ns) / 1e6, final.longest_ns(p.ns_per_unit) / 1e6
        assert floor_ms < low <= high
        if floor_ms == 1.0:
            assert high <= 10 * floor_ms
