"""The grant maptrack limit (XSA-380) per release: command line, xl.cfg, xl list -l."""

from __future__ import annotations

import json

import pytest

from xenvmmu.toolstack import GuestSpec, guest_from_xlcfg, guests_from_xl_list, host_from_flags
from xenvmmu.toolstack.cmdline import parse_cmdline
from xenvmmu.toolstack.grants import maptrack_limit
from xenvmmu.versions import profile_for


@pytest.mark.parametrize("version,cmdline,frames,entries", [
    # <=4.4: 8 x gnttab_max_nr_frames (default 32), 8-byte entries (grant_table.c @ 4.4.0)
    ("4.4.0", "", 256, 256 * 512),
    ("4.4.0", "gnttab_max_nr_frames=64", 512, 512 * 512),
    ("4.4.0", "gnttab_max_maptrack_frames=64", 256, 256 * 512),  # no such option yet
    # 4.5: the option exists, default 256, entries still 8 bytes
    ("4.5.0", "", 256, 256 * 512),
    ("4.5.0", "gnttab_max_maptrack_frames=64", 64, 64 * 512),
    ("4.5.0", "gnttab_max_maptrack_frames=0", 256, 256 * 512),  # 0: the default
    # 4.6: default 1024, 16-byte entries; gnttab_max_nr_frames still scales it through 4.9
    ("4.6.0", "", 1024, 1024 * 256),
    ("4.9.0", "gnttab_max_nr_frames=16", 128, 128 * 256),
    ("4.13.0", "gnttab_max_nr_frames=16", 1024, 1024 * 256),  # gone from 4.10
    ("4.13.0", "gnttab_max_maptrack_frames=256", 256, 256 * 256),
    ("4.13.0", "gnttab_max_maptrack_frames=256x", 1024, 1024 * 256),  # 4.13+: not stored
])
def test_host_limit(version: str, cmdline: str, frames: int, entries: int) -> None:
    lim = maptrack_limit(GuestSpec("g.cfg"), host_from_flags(version, cmdline=cmdline),
                         profile_for(version))
    assert (lim.frames, lim.entries, lim.creation_fails) == (frames, entries, False)


def test_junk_after_the_number_per_release() -> None:
    lenient = parse_cmdline("gnttab_max_maptrack_frames=256x", profile_for("4.9.0").cmdline)
    stored = parse_cmdline("gnttab_max_maptrack_frames=256x", profile_for("4.11.0").cmdline)
    checked = parse_cmdline("gnttab_max_maptrack_frames=256x", profile_for("4.13.0").cmdline)
    assert (lenient.maptrack_frames, lenient.errors) == (256, ())
    assert stored.maptrack_frames == 256 and stored.errors
    assert checked.maptrack_frames is None and checked.errors


def _cfg(text: str, version: str) -> GuestSpec:
    return guest_from_xlcfg(text.encode(), profile_for(version), source="g.cfg")


def test_guest_setting_from_410_only() -> None:
    text = 'name = "g"\nmax_maptrack_frames = 256\n'
    old, new = _cfg(text, "4.9.0"), _cfg(text, "4.13.0")
    assert old.max_maptrack_frames is None  # xl 4.9 does not read the key
    assert (new.max_maptrack_frames, new.max_maptrack_frames_line) == (256, 2)
    lim = maptrack_limit(new, host_from_flags("4.13.0"), profile_for("4.13.0"))
    assert (lim.frames, lim.line) == (256, 2)


def test_above_the_hypervisor_limit_the_domain_is_not_built() -> None:
    g = _cfg('name = "g"\nmax_maptrack_frames = 4096\n', "4.13.0")
    lim = maptrack_limit(g, host_from_flags("4.13.0"), profile_for("4.13.0"))
    assert lim.creation_fails and "refuses" in lim.reason
    # libxl 4.10-4.12 asks for 1024 frames by default: a lower hypervisor limit refuses it
    lim = maptrack_limit(GuestSpec("g.cfg"),
                         host_from_flags("4.11.0", cmdline="gnttab_max_maptrack_frames=256"),
                         profile_for("4.11.0"))
    assert lim.creation_fails and lim.frames == 1024


def test_pci_and_device_model_from_xlcfg() -> None:
    g = _cfg('name = "g"\npci = ["01:00.0", "02:00.0"]\ndevice_model_stubdomain_override = 1\n',
             "4.13.0")
    assert (g.pci_devices, g.pci_line, g.dm_deprivileged, g.dm_deprivileged_line) == (2, 2,
                                                                                      True, 3)
    assert _cfg('name = "g"\n', "4.13.0").dm_deprivileged is False


def test_xl_list_fields() -> None:
    doc = [{"domid": 3, "config": {
        "c_info": {"type": "hvm", "name": "g"},
        "b_info": {"max_memkb": 1048576, "target_memkb": 1048576, "max_vcpus": 1,
                   "event_channels": 4096, "max_maptrack_frames": 4294967295,
                   "dm_restrict": "True", "type.hvm": {}},
        "pcidevs": [{"func": 0}]}}]
    (g,) = guests_from_xl_list(json.dumps(doc)).guests
    assert g.max_event_channels == 4096
    assert g.max_maptrack_frames is None  # LIBXL_MAX_GRANT_DEFAULT: the hypervisor's limit
    assert g.pci_devices == 1 and g.dm_deprivileged is True
    doc[0]["config"]["b_info"].update(event_channels=0, max_maptrack_frames=256)  # type: ignore[index]
    (g,) = guests_from_xl_list(json.dumps(doc)).guests
    assert (g.max_event_channels, g.max_maptrack_frames) == (1023, 256)  # 0: libxl's 1023
