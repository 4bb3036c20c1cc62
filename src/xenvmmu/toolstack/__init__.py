"""The toolstack layer: Xen hosts and guests as ``xl``/libxl see them, per Xen release.

Inputs are what an operator can collect on a host, read with the rules of that host's
release (``xenvmmu.versions.Profile``); nothing is executed and every derived fact keeps its
reason.

* ``cmdline``: the hypervisor command line (``hap``, ``watchdog``, ``watchdog_timeout``),
  parsed as the release's hypervisor parses it: ``parse_cmdline`` -> ``CmdlineOptions``.
* ``inputs``: reading input files; ``InputFileError`` names the file (and line) of any
  unusable input.
* ``xlinfo``: ``xl info`` text -> ``XlInfo`` fields with their lines (``parse_xl_info``).
* ``host``: ``xl info`` output and/or flags -> ``HostSpec`` (version, architecture, HAP,
  watchdog): ``load_host``, ``host_from_flags``, ``merge_host`` with ``HostOverrides``.
* ``guest``: an xl.cfg file -> ``GuestSpec``: ``load_guest_cfg``, ``guest_from_xlcfg``.
* ``xllist``: ``xl list -l`` JSON -> ``GuestList`` of ``GuestSpec``: ``load_xl_list``,
  ``guests_from_xl_list``.
* ``paging``: a guest's paging mode (``effective_paging`` -> ``PagingDecision``) and its
  paging pool (``paging_pool`` -> ``PoolSize``).
"""

from .cmdline import CmdlineOptions, parse_cmdline
from .guest import GuestSpec, guest_from_xlcfg, load_guest_cfg
from .host import HostOverrides, HostSpec, host_from_flags, load_host, merge_host
from .inputs import InputFileError
from .paging import PagingDecision, PoolSize, effective_paging, paging_pool
from .xllist import GuestList, guests_from_xl_list, load_xl_list

__all__ = [
    "CmdlineOptions",
    "GuestList",
    "GuestSpec",
    "HostOverrides",
    "HostSpec",
    "InputFileError",
    "PagingDecision",
    "PoolSize",
    "effective_paging",
    "guest_from_xlcfg",
    "guests_from_xl_list",
    "host_from_flags",
    "load_guest_cfg",
    "load_host",
    "load_xl_list",
    "merge_host",
    "paging_pool",
    "parse_cmdline",
]
