"""``sfcframe bench goodput``: the paper's Fig. 4 on this machine (SFC goodput vs
MPLS label-stack depth per proxy), the kernel CPU time per packet of every row,
and a comparison of the proxy's ingress hooks (XDP native, XDP generic, TC).

Testbed: the demo's namespaces (sender - SFF stamping N MPLS labels - VNF host
with the proxy and a forwarding VNF - receiver checking every header), built
once per (row, hook) by :class:`sfcframe.demo.testbed.Testbed` and kept up for
all its runs; the stamper/checker is swapped per label depth. Runs are
interleaved: each round measures every cell once, in a seeded random order, so
slow drifts of the machine spread over all rows alike.

Rows:

- ``control``: no proxy. The SFF stamps nothing (this kernel has no MPLS
  forwarding: the forwarding VNF would drop labelled frames), the stamper and
  the checker are attached as in every row (they parse every packet and pass
  it unchanged), and the VNF host runs no-op programs where a proxy's would
  be: the ingress no-op at the hook (XDP native/generic, or TC clsact
  ingress) and a TC egress no-op on both VNF interfaces, merging offloads
  switched off as ``sfcframe up`` does.
- ``static``: the static proxy (core parameter ``mode=static``): ingress strips,
  egress pushes the configured header. Its header is constant, so the SFF
  stamps a constant stack per chain in this row (``demo_settings.constant``)
  and the checker expects exactly the configured header.
- ``tcpip`` / ``metadata``: the caching proxy with that key (the paper's user-
  and kernel-mode VNF proxies); per-packet stamps, exact check at the receiver.
- ``tcpip-assoc``: the tcpip proxy with the set-associative cache
  (``cache=assoc``) instead of the kernel's LRU hash map (not a default row).

Every proxy cell is also compared with the control at its hook *round by
round* (the two runs closest in time): the median of those paired ratios, for
goodput and for CPU per packet, is what the targets judge, beside the ratio of
the medians.

The pure summarising functions (:func:`summarize_cell`, :func:`analyse`) work
on the recorded samples, so they are testable without traffic.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Callable, Sequence

from sfcframe.bench import results as R
from sfcframe.errors import SfcError

#: every row the benchmark can measure, in table order
ROWS = ("control", "static", "tcpip", "tcpip-assoc", "metadata")
#: the rows measured unless --rows says otherwise (the paper's Fig. 4)
DEFAULT_ROWS = ("control", "static", "tcpip", "metadata")
#: per row: the key its testbed builds (the control builds none) and the core parameters
#: beside the build defaults
ROW_BUILDS: dict[str, tuple[str, dict[str, str]]] = {
    "control": ("tcpip", {}),
    "static": ("tcpip", {}),
    "tcpip": ("tcpip", {}),
    "tcpip-assoc": ("tcpip", {"cache": "assoc"}),
    "metadata": ("metadata", {}),
}
HOOKS = ("xdp-native", "xdp-generic", "tc")
DEFAULT_HOOK = "tc"  # the demo's default hook (the fastest measured here)
DEFAULT_LABELS = (0, 1, 2, 5, 10)
DEFAULT_RUNS = 3
DEFAULT_SECONDS = 5.0
STREAMS = 2
TARGET_RATIO = 0.95  # goodput: at least this share of the control's
CPU_TARGET_RATIO = 1.10  # CPU-seconds per million packets: at most this multiple of the control's
POP = 1  # the MPLS update rule every proxy row uses (the build default)
#: how long iperf3 may run past its time before a run counts as stalled (the demo: 15 s)
GRACE_S = 5.0

Say = Callable[[str], None]


def static_header(labels: int, pop: int = POP, chain: int = 1) -> str:
    """The static_header value for ``labels`` stamped labels: exactly what the checker
    expects after the proxy when stamps are constant (the stack the SFF stamps with
    DEMO_CONSTANT_H, less the ``pop`` topmost labels), as hex wire bytes ("" for none)."""
    words = [((1000 * chain + 100 + i) << 12) | 64 for i in range(labels - 1)]
    if labels:
        h = CONSTANT_H
        words.append(((h & 0xFFFFF) << 12) | (((h >> 20) & 0x7) << 9) | 0x100 | ((h >> 23) & 0xFF))
    kept = words[pop:]
    return "0x" + b"".join(w.to_bytes(4, "big") for w in kept).hex() if kept else ""


#: DEMO_CONSTANT_H in bpf_templates/_demo_common.j2
CONSTANT_H = 0x5FC0A11C


# ---- cells: one (row, hook, label depth) measured once per round -------------------------


def cell_id(row: str, hook: str, labels: int) -> str:
    return f"{row}@{hook}/L{labels}"


def _spread(values: Sequence[float | None], digits: int = 1) -> dict[str, Any] | None:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None
    return {"median": round(R.median(vals), digits), "min": round(min(vals), digits),
            "max": round(max(vals), digits), "runs": [round(v, digits) for v in vals]}


def summarize_cell(runs: list[dict]) -> dict[str, Any]:
    """Median and min–max over runs of what a cell's samples hold."""
    return {
        "goodput_mbps": _spread([r["goodput_mbps"] for r in runs]),
        "cpu_s_per_mpkt": _spread([r["cpu_s_per_mpkt"] for r in runs], 3),
        "retransmits": _spread([r["retransmits"] for r in runs], 0),
        "busy_fraction": _spread([r["busy_fraction"] for r in runs], 3),
        "packets": _spread([r["packets"] for r in runs], 0),
        "proxy_handled": _spread([r["proxy_handled"] for r in runs], 0),
        "mismatches": sum(r["mismatches"] for r in runs),
        "unencapsulated": sum(r.get("unencapsulated", 0) for r in runs),
        "egress_misses": sum(r["egress_misses"] for r in runs),
        "stream_errors": [e for r in runs for e in r.get("stream_errors", [])],
    }


def _median(cell: dict | None, what: str = "goodput_mbps") -> float | None:
    s = (cell or {}).get("summary", {}).get(what)
    return s["median"] if s else None


def paired_ratios(cell: dict, control: dict | None, what: str) -> dict[str, Any] | None:
    """A cell's ``what`` over the control's at the same hook, round by round (the
    two runs of a round are the closest in time, so a drift of the machine moves
    both): median and min–max of the per-round ratios, or None without a pair."""
    if not control:
        return None
    base = {r["round"]: r[what] for r in control["runs"] if r.get(what)}
    ratios = [r[what] / base[r["round"]] for r in cell["runs"]
              if r.get(what) is not None and base.get(r["round"])]
    return _spread(ratios, 4)


def analyse(cells: list[dict], *, hook: str, compare_labels: int, hooks: Sequence[str]) -> dict:
    """Relative goodput to the control (ratio of medians, and paired round by
    round), the hook comparison, the best hook per row."""
    by = {(c["row"], c["hook"], c["labels"]): c for c in cells}

    def control(h: str) -> dict | None:
        return by.get(("control", h, 0))

    relative = {}
    for c in cells:
        if c["row"] == "control":
            continue
        base = _median(control(c["hook"]))
        mine = _median(c)
        c["relative_to_control"] = round(mine / base, 4) if base and mine is not None else None
        c["paired_to_control"] = {
            "goodput_mbps": paired_ratios(c, control(c["hook"]), "goodput_mbps"),
            "cpu_s_per_mpkt": paired_ratios(c, control(c["hook"]), "cpu_s_per_mpkt"),
        }
        if c["hook"] == hook:
            relative.setdefault(c["row"], {})[str(c["labels"])] = c["relative_to_control"]
    comparison: dict[str, Any] = {}
    for row in ROWS:
        per_hook = {}
        for h in hooks:
            cell = by.get((row, h, 0 if row == "control" else compare_labels))
            if cell:
                per_hook[h] = {"goodput_mbps": cell["summary"]["goodput_mbps"],
                               "cpu_s_per_mpkt": cell["summary"]["cpu_s_per_mpkt"],
                               "relative_to_control": cell.get("relative_to_control")}
        if not per_hook:
            continue
        best = max(per_hook, key=lambda h: (per_hook[h]["goodput_mbps"] or {}).get("median", -1))
        cheap = min(per_hook, key=lambda h: (per_hook[h]["cpu_s_per_mpkt"] or {}).get("median", 1e18))
        comparison[row] = {"hooks": per_hook, "best_goodput": best, "least_cpu": cheap}
    return {"relative_to_control": relative, "hook_comparison": comparison}


def make_targets(cells: list[dict], *, hook: str, compare_labels: int, rows: Sequence[str],
                 unavailable: dict[str, str]) -> list[dict]:
    """Per proxy row and per hook measured at ``compare_labels`` (the sweep hook
    first), two targets against the control at that hook: goodput at least
    TARGET_RATIO of it (the paired median and the ratio of medians both, with
    zero mismatches and zero egress misses) and CPU-seconds per million packets
    at most CPU_TARGET_RATIO of it (the paired median)."""
    by = {(c["row"], c["hook"], c["labels"]): c for c in cells}
    hooks = [hook] + sorted({c["hook"] for c in cells if c["hook"] != hook})
    out = []
    for row in rows:
        if row == "control":
            continue
        for h in hooks:
            base = by.get(("control", h, 0))
            cell = by.get((row, h, compare_labels))
            where = f"({row}, {h})"
            if h != hook and cell is None:
                continue  # a hook this row was not compared at
            names = (f"goodput with {compare_labels} labels vs control {where}",
                     f"CPU per packet with {compare_labels} labels vs control {where}")
            goals = (f">= {TARGET_RATIO:.0%} of the control row (paired median and ratio of "
                     "medians), with zero mismatches and zero egress misses",
                     f"<= {CPU_TARGET_RATIO:.0%} of the control row's CPU-seconds per million "
                     "packets (paired median)")
            if cell is None or base is None:
                why = (unavailable.get(row) or unavailable.get(f"{row}@{h}")
                       or ("no control row measured" if base is None else "not measured"))
                out += [R.target(n, g, None, None, why) for n, g in zip(names, goals)]
                continue
            s = cell["summary"]
            paired = cell.get("paired_to_control") or {}
            ratio = cell.get("relative_to_control")
            pg = paired.get("goodput_mbps")
            pc = paired.get("cpu_s_per_mpkt")
            clean = s["mismatches"] == 0 and s["egress_misses"] == 0
            note = "paired: per-round ratios to the control at the same hook" + (
                "; static proxy: no cache, so no egress misses" if row == "static" else "")
            out.append(R.target(names[0], goals[0], {
                "relative": ratio, "paired": pg, "goodput_mbps": s["goodput_mbps"],
                "control_mbps": base["summary"]["goodput_mbps"],
                "mismatches": s["mismatches"], "egress_misses": s["egress_misses"]},
                ratio is not None and pg is not None and ratio >= TARGET_RATIO
                and pg["median"] >= TARGET_RATIO and clean, note))
            out.append(R.target(names[1], goals[1], {
                "paired": pc, "cpu_s_per_mpkt": s["cpu_s_per_mpkt"],
                "control_cpu_s_per_mpkt": base["summary"]["cpu_s_per_mpkt"]},
                pc is not None and pc["median"] <= CPU_TARGET_RATIO, note))
    return out


# ---- running ---------------------------------------------------------------------------------


METHOD = {
    "summary": (
        "The demo's namespace testbed: sender - SFF - VNF host - receiver, veth pairs (MTU 1600, "
        "route MTU 1500), 2 iperf3 TCP streams (pinned to CPU 0 and 1) per run, forwarding VNF "
        "(ip_forward). The SFF stamps N MPLS labels at TC egress (the upper N-1 per-chain "
        "SIDs, the bottom one from a per-packet hash), the receiver's XDP checker recomputes "
        "the expected stack after the proxy's update rule (pop=1) for every packet, counts "
        "mismatches and strips it; an XDP program on the SFF's interface toward the VNF "
        "strips any MPLS stack off frames coming back (the static proxy pushes its header in "
        "both directions; attached in every row, a pass for plain frames). One testbed per (row, hook) is built once and kept for all "
        "its runs; label depths swap the stamper/checker. Every round measures every cell "
        "(row, hook, depth) once, in a seeded random order."
    ),
    "rows": {
        "control": (
            "no proxy: the SFF's stamper is attached but stamps nothing (labels=0 data path: "
            "this kernel has no MPLS forwarding, so the VNF cannot forward labelled "
            "frames: with 10 labels stamped and the no-op programs, iperf3 could not even "
            "connect, 0 Mb/s); the receiver's checker is attached and checks the plain packets; on "
            "both VNF interfaces no-op programs at the hooks a proxy uses (ingress no-op at "
            "the row's hook: XDP native, XDP generic or TC clsact ingress; TC clsact egress "
            "no-op), GRO/LRO switched off as `sfcframe up` does. Independent of the label "
            "depth, so measured once per round and drawn as a horizontal line."
        ),
        "static": (
            "static proxy (mode=static): ingress strips the stack, egress pushes a "
            "configured header (static_header), no cache. The SFF stamps a constant stack "
            "(bottom label from a constant instead of the packet hash) and static_header is "
            "that stack less the popped label (hex), so the checker still checks every packet "
            "exactly. Egress pushes the header onto the ACKs going back as well; the SFF "
            "strips them. One testbed per depth (the header is a build parameter). Egress "
            "misses do not exist without a cache (counted as 0)."
        ),
        "tcpip": "caching proxy, key tcpip (the paper's proxy for user-mode VNFs)",
        "tcpip-assoc": "caching proxy, key tcpip, cache=assoc (the set-associative table "
                       "instead of the kernel's LRU hash map)",
        "metadata": "caching proxy, key metadata (the paper's proxy for kernel-mode VNFs)",
    },
    "goodput": "sum over the 2 streams of iperf3's receiver-side bits per second",
    "cpu_per_packet": (
        "system + softirq CPU-seconds of all CPUs from /proc/stat between the iperf3 clients' "
        "start and their end, divided by the packets received on the VNF host's ingress veth "
        "(in0 rx_packets, interface statistics, the same denominator for every row) in "
        "millions: CPU-seconds per million packets. It includes the whole machine (senders', "
        "receivers' and forwarding work alike); differences between rows are the proxy's. "
        "proxy_handled = the proxy's own ingress counters (both interfaces, ACKs included)."
    ),
    "hooks": (
        "the ingress hook of the proxy and of the control's no-op: xdp-native / xdp-generic "
        "(runtime xdp_mode), tc (core parameter ingress=tc); the label sweep runs at the "
        "sweep hook, the hook comparison at compare_labels for every row at every hook."
    ),
    "statistics": "per cell: median and min-max over runs (rounds); per proxy cell also the "
                  "paired ratios to the control at its hook, one per round (median, min-max)",
    "proxy_build": "max_labels = max(10, deepest stamped stack), cache_size 10000, pop 1, "
                   "strict=false (the proxy's entry size is not re-adapted per depth)",
}


def plan_cells(rows: Sequence[str], labels: Sequence[int], hook: str, hooks: Sequence[str],
               compare_labels: int) -> list[tuple[str, str, int]]:
    """Every (row, hook, depth) to measure: the sweep at ``hook``, the comparison at the others."""
    cells: list[tuple[str, str, int]] = []
    for row in rows:
        depths = [0] if row == "control" else sorted({*labels, compare_labels})
        cells += [(row, hook, d) for d in depths]
    for h in hooks:
        if h == hook:
            continue
        for row in rows:
            cells.append((row, h, 0 if row == "control" else compare_labels))
    return cells


def _testbed_key(row: str, hook: str, labels: int) -> tuple:
    # a static proxy's header is a build parameter: one testbed per depth
    return (row, hook, labels if row == "static" else None)


def _proxy_params(row: str, labels: int, max_labels: int) -> dict[str, str]:
    params = {"max_labels": str(max_labels), **ROW_BUILDS[row][1]}
    if row == "static":
        params.update(mode="static", static_header=static_header(labels))
    return params


def run_goodput(*, labels: Sequence[int] = DEFAULT_LABELS, runs: int = DEFAULT_RUNS,
                seconds: float = DEFAULT_SECONDS, rows: Sequence[str] = DEFAULT_ROWS,
                hook: str = DEFAULT_HOOK, hooks: Sequence[str] = HOOKS,
                compare_labels: int | None = None, seed: int = 1,
                progress: Say | None = None) -> dict:
    from sfcframe.bench import machine
    from sfcframe.demo.testbed import Stamps, Testbed
    from sfcframe.demo.topology import leftover_namespaces
    from sfcframe.loader import require_root

    require_root()
    say = progress or (lambda _m: None)
    labels = sorted(set(labels))
    compare_labels = compare_labels if compare_labels is not None else (
        10 if 10 in labels else max(labels))
    #: cells that could not be measured (a testbed that failed to build, a stalled run)
    unavailable: dict[str, str] = {}
    live_rows, live_hooks = list(rows), list(hooks)
    max_labels = max(10, *labels, compare_labels)
    planned = plan_cells(live_rows, labels, hook, live_hooks, compare_labels)
    started = time.monotonic()
    owner = os.getpid()
    stamps = Stamps("mpls")
    beds: dict[tuple, Any] = {}
    samples: dict[tuple, list[dict]] = {c: [] for c in planned}
    testbeds: list[dict] = []
    teardown: list[dict] = []
    try:
        for depth in sorted({d for _, _, d in planned}):
            stamps.get(depth, POP)
        say(f"stamper/checker compiled for depths {sorted({d for _, _, d in planned})}")
        for row, h, d in planned:
            key = _testbed_key(row, h, d)
            if key in beds:
                continue
            kind = "control" if row == "control" else "proxy"
            tb = Testbed(kind=kind, key=ROW_BUILDS[row][0], hook=h,
                         params=_proxy_params(row, d, max_labels), streams=STREAMS)
            beds[key] = tb  # torn down in `finally` whatever happens from here on
            try:
                tb.start()
            except Exception as exc:  # noqa: BLE001 - one row failing must not end the bench
                tb.close()
                unavailable[f"{row}@{h}" + (f"/L{d}" if row == "static" else "")] = str(exc)
                say(f"{row} at {h}{f' L{d}' if row == 'static' else ''}: cannot start: {exc}")
                beds[key] = None
                continue
            beds[key] = tb
            testbeds.append({"row": row, **({"labels": d} if row == "static" else {}),
                             **tb.describe()})
        cells = [c for c in planned if beds.get(_testbed_key(*c)) is not None]
        say(f"{len(beds)} testbeds up in {time.monotonic() - started:.0f} s; "
            f"{len(cells)} cells x {runs} runs x {seconds:g} s")
        dead: dict[tuple, str] = {}  # cells whose traffic stalled: not run again
        for rnd in range(runs):
            order = list(cells)
            random.Random(seed * 1000 + rnd).shuffle(order)
            for row, h, d in order:
                if (row, h, d) in dead:
                    continue
                tb = beds[_testbed_key(row, h, d)]
                tb.use(stamps.get(d, POP))
                kw = dict(after_proxy=row != "control", constant=row == "static", grace=GRACE_S)
                try:
                    sample = tb.measure(seconds, **kw)
                except SfcError as exc:  # e.g. an iperf3 server that did not start: once more
                    say(f"{cell_id(row, h, d)}: {exc}; again")
                    sample = tb.measure(seconds, **kw)
                    sample["retried"] = str(exc)
                if sample["goodput_mbps"] <= 0 and sample["stream_errors"]:
                    dead[(row, h, d)] = sample["stream_errors"][0]
                    unavailable[cell_id(row, h, d)] = (
                        f"no goodput in round {rnd + 1} ({sample['stream_errors'][0]}; proxy "
                        f"{sample['proxy']}): not run again")
                sample["round"] = rnd
                samples[(row, h, d)].append(sample)
                say(f"round {rnd + 1}/{runs} {cell_id(row, h, d)}: {sample['goodput_mbps']} Mb/s, "
                    f"{sample['cpu_s_per_mpkt']} CPU-s/Mpkt, {sample['retransmits']} retr, "
                    f"mismatch {sample['mismatches']}, miss {sample['egress_misses']}")
    finally:
        if os.getpid() != owner:
            os._exit(1)
        for tb in beds.values():
            if tb is not None:
                teardown.append(tb.close())
        stamps.close()
    # our testbeds' namespaces (each teardown also looked for its own)
    left = [n for tb in beds.values() if tb is not None for n in leftover_namespaces(tb.tag)]
    cell_docs = []
    for (row, h, d), runs_ in samples.items():
        if not runs_:
            continue
        cell_docs.append({"id": cell_id(row, h, d), "row": row, "hook": h, "labels": d,
                          "phase": "sweep" if h == hook else "hooks",
                          "runs": runs_, "summary": summarize_cell(runs_)})
    analysis = analyse(cell_docs, hook=hook, compare_labels=compare_labels,
                       hooks=[hook, *[h for h in live_hooks if h != hook]])
    params = {"labels": labels, "runs": runs, "seconds": seconds, "rows": list(rows),
              "hook": hook, "hooks": list(hooks), "compare_labels": compare_labels,
              "streams": STREAMS, "seed": seed, "encap": "mpls", "pop": POP,
              "max_labels": max_labels, "vnf": "forward"}
    results = {
        "cells": cell_docs,
        **analysis,
        "unavailable": unavailable,
        "testbeds": testbeds,
        "teardown": {"clean": all(t.get("clean") for t in teardown) and not left,
                     "problems": [p for t in teardown for p in t.get("problems", [])]
                     + ([f"namespaces left: {', '.join(left)}"] if left else [])},
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    targets = make_targets(cell_docs, hook=hook, compare_labels=compare_labels, rows=rows,
                           unavailable=unavailable)
    doc = R.document("goodput", params, METHOD, results, targets, machine.describe())
    validate_results(doc["results"])
    return doc


def validate_results(results: dict) -> None:
    """The parts of results.* that the report, the plot and the tests rely on."""
    for field in ("cells", "relative_to_control", "hook_comparison", "unavailable", "teardown"):
        if field not in results:
            raise R.SchemaError(f"results: missing {field}")
    for i, c in enumerate(results["cells"]):
        for field in ("id", "row", "hook", "labels", "phase", "runs", "summary"):
            if field not in c:
                raise R.SchemaError(f"results.cells[{i}]: missing {field}")
        for j, r in enumerate(c["runs"]):
            for field in ("goodput_mbps", "retransmits", "cpu_s_per_mpkt", "packets", "mismatches",
                          "egress_misses", "proxy", "cpu_s", "round"):
                if field not in r:
                    raise R.SchemaError(f"results.cells[{i}].runs[{j}]: missing {field}")
        for field in ("goodput_mbps", "cpu_s_per_mpkt", "mismatches", "egress_misses"):
            if field not in c["summary"]:
                raise R.SchemaError(f"results.cells[{i}].summary: missing {field}")
