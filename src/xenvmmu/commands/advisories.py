"""`xenvmmu advisories`: the advisory registry, with the sources of every fact.

Lists each advisory the audit knows (XSA-97 first): its CVEs, what it concerns, the
operations it is about, who starts them and who sizes them, the first fixed release per
branch (or the support-status change where there is no fix), the mitigations and the
sources. `--json` prints the same as JSON.

Exit status: 0; 2 for an unknown advisory name.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TextIO


def configure(p: argparse.ArgumentParser) -> None:
    """Description and arguments of `xenvmmu advisories` (``xenvmmu.cli`` calls it)."""
    doc = (__doc__ or "").split("\n\n")
    p.description = doc[1] if len(doc) > 1 else None
    p.epilog = doc[-1]
    p.add_argument("names", nargs="*", metavar="XSA-N", help="only these (default: all)")
    p.add_argument("--json", action="store_true", help="print the registry as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from ..advisories import RegistryError, advisory, registry

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        chosen = [advisory(n) for n in args.names] if args.names else list(registry())
    except RegistryError as e:
        print(f"xenvmmu advisories: {e}", file=err)
        return 2
    if args.json:
        out.write(json.dumps([dataclasses.asdict(a) for a in chosen], indent=2) + "\n")
        return 0
    for a in chosen:
        fixed = ", ".join(f"{b}: {r}" for b, r in a.first_fixed)
        lines = [f"{a.id} ({', '.join(a.cves)}), {a.public}: {a.title}",
                 f"  concerns      {', '.join(a.arch)} {'/'.join(a.guest_types)} guests, "
                 f"{' and '.join(a.paging)} paging",
                 f"  impact        {a.impact}"
                 + (" (no bound once triggered)" if a.unbounded else ""),
                 f"  operations    {', '.join(a.operations)} (assessed by: {a.assess})",
                 f"  started by    {', '.join(a.started_by)}; sized by {', '.join(a.sized_by)}",
                 f"  size knobs    {'; '.join(a.knobs)}"]
        if a.fixed_from == "none":
            change = ", ".join(r for _, r in a.support_change)
            lines.append(f"  fixed         no release; support statement changed in {change}")
        else:
            lines.append(f"  fixed         {fixed + '; ' if fixed else ''}every release from "
                         f"{a.fixed_from} (commits {', '.join(a.fix_commits)})")
        if a.mitigations:
            lines.append(f"  mitigations   {'; '.join(a.mitigations)}")
        lines += [f"  source        {s}" for s in a.sources]
        out.write("\n".join(lines) + "\n\n")
    return 0
