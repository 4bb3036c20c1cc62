"""Paging-model benchmark: big guests, one CLEAN each, time and peak memory.

Targets: one CLEAN of a fully dirty 8 TiB HAP guest, on the pre-fix (4.4.0) and the fixed
(4.4.2, 4.5.0) behaviour: <= 5 s wall and <= 1.5 GiB peak RSS each; a 16 TiB guest that touched
1 GiB: <= 50 MB.

Each case runs in a fresh subprocess; "peak RSS" is that process's ``ru_maxrss``
(``resource.getrusage``), i.e. the whole interpreter including Python and numpy, not just the
model; the "base" column is the same figure measured right after the imports, so peak - base
is what the model added. The CLEAN's wall time excludes building the guest (reported apart).
The 8 TiB CLEAN copies into a dense 256 MiB caller buffer, as the toolstack's would be; the
16 TiB case uses a sparse buffer (only non-zero 4 KiB chunks are kept).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GiB = 1 << 30
LIMITS = {"8tib": (5.0, 1536.0), "16tib": (None, 50.0)}

_CHILD = r"""
import json, resource, sys, time
from xenvmmu.model.build import DomainSpec, build_domain
from xenvmmu.model.constants import ShadowOp
from xenvmmu.model.domctl import ShadowControl, paging_domctl
from xenvmmu.model.guest import write_range
from xenvmmu.model.runner import Never, run_to_completion
from xenvmmu.model.sink import DenseBitmap, SparseBitmap
from xenvmmu.versions import Profile, XenVersion

def profile(release):
    try:
        from xenvmmu.versions import profile_for
        return profile_for(release)
    except Exception:  # the release table is not there: the behaviours, directly
        fixed, lazy = {"4.4.0": (False, False), "4.4.2": (True, False),
                       "4.5.0": (True, True)}[release]
        return Profile(XenVersion.parse(release), "4.3", fixed, "lazy" if lazy else "sweep",
                       False, False, "xl", False, False)

def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

case, release = sys.argv[1], sys.argv[2]
prof = profile(release)
base = rss()
t = time.perf_counter()
if case == "8tib":
    d = build_domain(DomainSpec(ram_bytes=8192 << 30, vcpus=4, log_dirty=True, dirty="all"), prof)
    sink = DenseBitmap(d.layout.p2m_size)
else:
    d = build_domain(DomainSpec(ram_bytes=16384 << 30, vcpus=4, log_dirty=True), prof)
    write_range(d, 1 << 20, (1 << 20) + (1 << 18))  # the guest touches 1 GiB above 4 GiB
    sink = SparseBitmap(d.layout.p2m_size)
build = time.perf_counter() - t
built = rss()
sc = ShadowControl(int(ShadowOp.CLEAN), pages=d.layout.p2m_size, dirty_bitmap=sink)
t = time.perf_counter()
comp = run_to_completion(lambda r: paging_domctl(d, sc, 0, r), Never())
clean = time.perf_counter() - t
w, top = comp.total, comp.longest()
print(json.dumps({
    "rc": comp.rc, "build_s": build, "clean_s": clean, "base_mib": base, "built_mib": built,
    "peak_mib": rss(), "sections": sum(n for _, n in comp.sections()),
    "dirty": sc.dirty_count, "leaves": d.trie.counts().leaves,
    "p2m_tables": d.p2m.counts().tables,
    "total": w.as_dict(), "longest": top.as_dict(),
}))
"""


def run_case(case: str, release: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, case, release],
        check=True, capture_output=True, text=True, cwd=REPO,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _fmt(x: object) -> str:
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def table() -> None:
    """Work of the longest non-preemptible section of one CLEAN of a fully dirty guest, by
    release and size (closed forms, checked against the generators by tests/model)."""
    from xenvmmu.model import analytic
    from xenvmmu.model.build import DomainSpec
    from xenvmmu.versions import profile_for

    cols = ("entries_read", "entries_written", "bytes_copied", "bytes_zeroed", "pages_mapped",
            "shadows_destroyed", "tlb_flushes")
    print("longest section of one CLEAN, fully dirty guest, default pool (1 vCPU):")
    print(" | ".join(("paging", "release", "RAM", "checks", *cols)))
    for paging in ("hap", "shadow"):
        for release in ("4.4.0", "4.4.2", "4.5.0"):
            prof = profile_for(release)
            for k in range(0, 15):
                ram = GiB << k
                spec = DomainSpec(ram_bytes=ram, paging=paging, log_dirty=True, dirty="all")
                est = analytic.clean(spec, prof)
                w = est.longest().as_dict()
                size = f"{ram >> 30} GiB" if k < 10 else f"{ram >> 40} TiB"
                print(" | ".join((paging, release, size, str(est.checks),
                                  *(str(w.get(c, 0)) for c in cols))))


def main() -> int:
    print(__doc__.strip().splitlines()[0])
    header = ("case", "release", "build s", "CLEAN s", "base MiB", "peak MiB", "sections",
              "verdict")
    print(" | ".join(header))
    failed = 0
    for case in ("8tib", "16tib"):
        for release in ("4.4.0", "4.4.2", "4.5.0"):
            r = run_case(case, release)
            t_lim, m_lim = LIMITS[case]
            ok = r["rc"] == 0 and float(r["peak_mib"]) <= m_lim  # type: ignore[arg-type]
            if t_lim is not None:
                ok = ok and float(r["clean_s"]) <= t_lim  # type: ignore[arg-type]
            failed += not ok
            label = "8 TiB fully dirty" if case == "8tib" else "16 TiB, 1 GiB touched"
            print(" | ".join(_fmt(x) for x in (
                label, release, r["build_s"], r["clean_s"], r["base_mib"], r["peak_mib"],
                r["sections"], "ok" if ok else "OVER LIMIT")))
            print(f"    longest section: {r['longest']}")
    return 1 if failed else 0


if __name__ == "__main__":
    if "--table" in sys.argv:
        table()
        sys.exit(0)
    sys.exit(main())
