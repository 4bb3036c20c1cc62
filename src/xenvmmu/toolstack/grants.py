"""A guest's grant maptrack limit (XSA-380): how many mapping handles it can make.

The hypervisor's limit is ``gnttab_max_maptrack_frames=`` (from 4.5; before, 8 x
``gnttab_max_nr_frames``, which keeps scaling an unset maptrack limit up to 4.9), else its
default: 256 frames up to 4.5, 1024 from 4.6 (``Profile.maptrack_default_frames``). From 4.10 a
guest may have its own, ``max_maptrack_frames`` in xl.cfg, which may not exceed the hypervisor's
(``grant_table_set_limits`` / ``grant_table_init`` return -EINVAL: the domain is not built,
xen/common/grant_table.c @ RELEASE-4.10.0 l.3712-3722, @ RELEASE-4.13.0 l.1917-1935). Without
it, libxl 4.10-4.12 asks for 1024 frames (``LIBXL_MAX_MAPTRACK_FRAMES_DEFAULT``,
tools/libxl/libxl.h @ RELEASE-4.10.0 l.332) and libxl 4.13+ for the hypervisor's limit
(``LIBXL_MAX_GRANT_DEFAULT``, tools/libxl/libxl_types.idl @ RELEASE-4.13.0 l.515). xl.conf's
``max_maptrack_frames`` (a host-wide xl default) is not read: give it in the guest's config.
Entries per frame: 4096 / ``Profile.maptrack_entry_bytes`` (512 before 4.6, 256 from 4.6).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..versions import Profile
from .guest import GuestSpec
from .host import HostSpec

#: ``gnttab_max_nr_frames`` -> maptrack frames (MAX_MAPTRACK_TO_GRANTS_RATIO, 256 / 32).
NR_FRAMES_RATIO = 8


@dataclass(frozen=True)
class MaptrackLimit:
    """The guest's maptrack limit: frames, handles (``entries``), handles per frame, why, and
    where it was set (the guest's line, or the host's command line); ``creation_fails`` when
    the hypervisor refuses the guest's request."""

    frames: int
    entries: int
    per_frame: int
    reason: str
    line: int | None = None  # the guest's max_maptrack_frames line
    from_host: bool = False  # set by the hypervisor command line
    creation_fails: bool = False


def host_maptrack_frames(host: HostSpec, profile: Profile) -> tuple[int, str]:
    """The hypervisor's maptrack limit in frames, and why."""
    o = host.options
    if o.maptrack_frames is not None:
        return o.maptrack_frames, f"{o.maptrack_token} on the Xen command line"
    if o.nr_frames is not None:
        return (NR_FRAMES_RATIO * o.nr_frames,
                f"{o.nr_frames_token} on the Xen command line (maptrack limit 8 x that)")
    return (profile.maptrack_default_frames,
            f"the hypervisor's default for Xen {profile.version}")


def maptrack_limit(guest: GuestSpec, host: HostSpec, profile: Profile) -> MaptrackLimit:
    """The maptrack limit this guest runs with (see the module docstring)."""
    per_frame = 4096 // profile.maptrack_entry_bytes
    hv, hv_why = host_maptrack_frames(host, profile)
    from_host = host.options.maptrack_frames is not None or host.options.nr_frames is not None
    if profile.xl_maptrack_key and guest.max_maptrack_frames is not None:
        frames, line = guest.max_maptrack_frames, guest.max_maptrack_frames_line
        where = f" (line {line})" if line is not None else ""
        why = f"max_maptrack_frames = {frames}{where}"
        if frames > hv:
            return MaptrackLimit(frames, frames * per_frame, per_frame,
                                 f"{why} exceeds the hypervisor's {hv} ({hv_why}): Xen refuses "
                                 "to build the domain", line, creation_fails=True)
        return MaptrackLimit(frames, frames * per_frame, per_frame, why, line)
    if profile.libxl_maptrack_frames is not None:  # libxl 4.10-4.12 asks for its own
        frames = profile.libxl_maptrack_frames
        if frames > hv:
            return MaptrackLimit(frames, frames * per_frame, per_frame,
                                 f"libxl's default request of {frames} frames exceeds the "
                                 f"hypervisor's {hv} ({hv_why}): Xen refuses to build the "
                                 "domain", from_host=from_host, creation_fails=True)
        return MaptrackLimit(frames, frames * per_frame, per_frame,
                             f"libxl {profile.version}'s default of {frames} frames",
                             from_host=from_host)
    return MaptrackLimit(hv, hv * per_frame, per_frame, hv_why, from_host=from_host)
