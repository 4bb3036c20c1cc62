"""Issue 6 (c): the simulated longest non-preemptible section of the attack agrees with the
auditor's closed-form estimate for the same guest and host, within 10 %."""

from __future__ import annotations

import pytest

from xenvmmu.audit.rules import assess
from xenvmmu.audit.settings import AuditSettings
from xenvmmu.costs import default_profile
from xenvmmu.sim.scenarios import run_scenario
from xenvmmu.toolstack import guest_from_xlcfg, host_from_flags

GiB = 1 << 30


@pytest.mark.parametrize(
    ("version", "gib", "paging"),
    [
        ("4.4.0", 16, "hap"),
        ("4.4.0", 64, "hap"),
        ("4.4.2", 64, "hap"),
        ("4.5.0", 64, "hap"),
        ("4.4.0", 16, "shadow"),
        ("4.5.0", 32, "shadow"),
    ],
)
def test_attack_section_matches_audit_estimate(version: str, gib: int, paging: str) -> None:
    host = host_from_flags(version)
    cfg = f'name = "g"\nbuilder = "hvm"\nmemory = {gib * 1024}\nvcpus = 4\n'
    if paging == "shadow":
        cfg += "hap = 0\n"
    guest = guest_from_xlcfg(cfg.encode(), host.profile(), source="g.cfg")
    finding = assess(guest, host, host.profile(), AuditSettings(default_profile()))
    assert finding.paging == paging
    estimate = next(o.worst_case_ms for o in finding.ops if o.op == "logdirty_clean")
    metrics = run_scenario("attack", xen_version=version, paging=paging,  # type: ignore[arg-type]
                           memory_bytes=gib * GiB, vcpus=4, seed=1)
    assert metrics.extra.get("ops") == "model"
    simulated = metrics.op("shadow_op.clean").max_nonpreemptible_ms
    assert simulated == pytest.approx(estimate, rel=0.10)
