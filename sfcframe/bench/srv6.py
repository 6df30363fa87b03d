"""``sfcframe bench srv6``: goodput and kernel CPU per packet through the SRv6
kernel-peer testbed (SRV6-TESTBED.md), with sfcframe's End.AD proxy on the VNF
host against the no-proxy control.

Every cell is one ``sfcframe demo --encap srv6`` run (the kernel's H.Encaps at
the SFF, End.DX4 / End.DT6 before the receiver, every SRv6 packet checked on
the way): a fresh testbed per run, 2 iperf3 streams. Rounds interleave the
cells in a seeded random order, so slow drifts of the machine hit all alike.

Rows, per inner family (``ipv4`` through End.DX4, ``ipv6`` through End.DT6):

- ``control``: no proxy and no function: the VNF host serves SID_PROXY with
  the kernel's own ``seg6local End`` (the SRv6 packet is forwarded as it is,
  no BPF program on its interfaces). What an SRv6-aware function host costs.
- ``tcpip`` / ``metadata``: sfcframe's proxy (TC ingress, the demo's hook) with
  that key around a forwarding VNF: strip, cache, IP forwarding, restore.

Per run: goodput (iperf3), retransmits, packets checked at the decapsulating
node (and mismatches, egress misses: must be 0), kernel CPU-seconds (system +
softirq, all CPUs, /proc/stat over the traffic) per million checked packets.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from sfcframe.bench import results as R

ROWS = ("control", "tcpip", "metadata")
INNERS = ("ipv4", "ipv6")
DEFAULT_RUNS = 3
DEFAULT_SECONDS = 5.0
STREAMS = 2

Say = Callable[[str], None]


def cell_id(row: str, inner: str) -> str:
    return f"{row}/{inner}"


def plan_cells(rows: Sequence[str], inners: Sequence[str]) -> list[tuple[str, str]]:
    return [(row, inner) for inner in inners for row in rows]


def run_record(summary) -> dict[str, Any]:
    """What one run contributes (from the demo's Srv6Summary)."""
    return {
        "goodput_mbps": summary.goodput_mbps,
        "retransmits": summary.retransmits,
        "checked": summary.checked,
        "mismatches": summary.checker.get("mismatch", 0) + summary.checker.get("malformed", 0),
        "egress_misses": summary.misses,
        "cached": summary.cached,
        "restored": summary.restored,
        "decapsulated": summary.decapsulated,
        "kernel_errors": summary.kernel_errors,
        "cpu_s": summary.cpu,
        "cpu_s_per_mpkt": summary.cpu_s_per_mpkt,
        "passed": summary.passed,
        "proxy_spec": summary.config.get("proxy_spec"),
        "proxy_ingress": {k: v for k, v in summary.ingress.items() if v},
        "proxy_egress": {k: v for k, v in summary.egress.items() if v},
    }


def _spread(values: Sequence[float | None], digits: int = 1) -> dict[str, Any] | None:
    kept = [v for v in values if v is not None]
    if not kept:
        return None
    s = R.across_rounds(kept)
    return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in s.items()}


def summarize_cell(runs: list[dict]) -> dict[str, Any]:
    return {
        "goodput_mbps": _spread([r["goodput_mbps"] for r in runs]),
        "cpu_s_per_mpkt": _spread([r["cpu_s_per_mpkt"] for r in runs], 3),
        "retransmits": _spread([r["retransmits"] for r in runs], 0),
        "checked": sum(r["checked"] for r in runs),
        "mismatches": sum(r["mismatches"] for r in runs),
        "egress_misses": sum(r["egress_misses"] for r in runs),
        "runs_passed": sum(1 for r in runs if r["passed"]),
        "runs": len(runs),
    }


def analyse(cells: list[dict]) -> list[dict]:
    """Each proxy row against the control of its inner family: goodput ratio and
    CPU per packet ratio (medians)."""
    by = {(c["row"], c["inner"]): c["summary"] for c in cells}
    out = []
    for c in cells:
        if c["row"] == "control":
            continue
        base = by.get(("control", c["inner"]))
        if not base:
            continue
        mine = c["summary"]

        def ratio(what: str) -> float | None:
            a, b = (mine.get(what) or {}).get("median"), (base.get(what) or {}).get("median")
            return round(a / b, 3) if a and b else None

        out.append({"row": c["row"], "inner": c["inner"], "goodput_ratio": ratio("goodput_mbps"),
                    "cpu_ratio": ratio("cpu_s_per_mpkt")})
    return out


def run_srv6(*, rows: Sequence[str] = ROWS, inners: Sequence[str] = INNERS,
             runs: int = DEFAULT_RUNS, seconds: float = DEFAULT_SECONDS, seed: int = 1,
             say: Say = lambda line: None) -> dict[str, Any]:
    """Measure every (row, inner) cell ``runs`` times; returns the result document."""
    from sfcframe.bench import machine
    from sfcframe.demo.run import DemoConfig, run_demo
    from sfcframe.demo.srv6_run import covers_inner

    def config(row: str, inner: str) -> DemoConfig:
        return DemoConfig(encap="srv6", inner=inner, seconds=seconds, streams=STREAMS,
                          sf="end" if row == "control" else "proxy",
                          key="auto" if row == "control" else row)

    unavailable = {cell_id(row, inner): f"key {row} does not cover inner {inner} packets"
                   for row, inner in plan_cells(rows, inners)
                   if row != "control" and not covers_inner(config(row, inner), row)}
    cells = [c for c in plan_cells(rows, inners) if cell_id(*c) not in unavailable]
    records: dict[tuple[str, str], list[dict]] = {cell: [] for cell in cells}
    rng = random.Random(seed)
    for r in range(runs):
        order = list(cells)
        rng.shuffle(order)
        for row, inner in order:
            say(f"round {r + 1}/{runs}: {cell_id(row, inner)}")
            summary = run_demo(config(row, inner))
            record = run_record(summary)
            records[(row, inner)].append(record)
            say(f"  {record['goodput_mbps']:.0f} Mb/s, {record['checked']} checked, "
                f"{record['mismatches']} mismatches, cpu {record['cpu_s_per_mpkt']} s/Mpkt")
    out_cells = [{"row": row, "inner": inner, "id": cell_id(row, inner),
                  "runs": records[(row, inner)], "summary": summarize_cell(records[(row, inner)])}
                 for row, inner in cells]
    comparison = analyse(out_cells)
    targets = [
        {"name": f"{c['row']} ({c['inner']}): 0 mismatches, 0 egress misses",
         "target": "0 / 0", "measured": f"{s['mismatches']} / {s['egress_misses']}",
         "met": s["mismatches"] == 0 and s["egress_misses"] == 0,
         "note": f"{s['checked']} packets checked in {s['runs']} runs"}
        for c in out_cells for s in [c["summary"]]
    ]
    return R.document(
        "srv6",
        machine=machine.describe(),
        parameters={"rows": list(rows), "inners": list(inners), "runs": runs,
                    "seconds": seconds, "streams": STREAMS, "seed": seed},
        method={
            "testbed": "SRV6-TESTBED.md: kernel H.Encaps at the SFF, kernel End.DX4/End.DT6 "
                       "before the receiver, a fresh testbed per run, every SRv6 packet checked",
            "control": "no proxy: the VNF host serves SID_PROXY with the kernel's seg6local "
                       "End, no BPF program on its interfaces, no function",
            "proxy": "sfcframe srv6 (End.AD) at TC ingress/egress, forwarding VNF",
            "cpu_per_packet": "system + softirq CPU-seconds of all CPUs from /proc/stat over "
                              "the iperf3 run, per million packets checked at the "
                              "decapsulating node",
            "statistics": "per cell: median and min-max over runs (rounds interleaved in a "
                          "seeded random order)",
        },
        results={"cells": out_cells, "comparison": comparison, "unavailable": unavailable},
        targets=targets,
    )
