"""Traffic benchmarks through the demo testbed: the paper's Table I (drop VNF),
Table II (delay VNF vs cache size, and the check of ``sfcframe size``) and the
tcpip key's collision drops under bulk TCP.

Every run is one ``sfcframe demo`` (:func:`sfcframe.demo.run.run_demo`, in
process): namespaces sender - SFF (stamps 10 MPLS labels) - VNF host with the
proxy - receiver (checks every packet), iperf3 for ``seconds``. The collision
runs may use the SRv6 kernel-peer testbed instead (``encap="srv6"``: the
kernel's H.Encaps at the SFF, the srv6 proxy, End.DX4 / End.DT6; inner IPv4 or
IPv6, the tcpip key with ``family=ipv6`` for IPv6; SRV6-TESTBED.md). The proxy's
counters are read through the runtime at the end of the traffic, before
teardown; the cache occupancy is also sampled once per second during the run
(``peak_entries`` = the largest of those samples, a lower bound of the true peak).

The summarising functions (:func:`run_record`, :func:`spread`, :func:`summarize_drop`,
:func:`summarize_delay`, :func:`summarize_collisions`) are pure Python on the
demo's ``Summary.as_dict()`` document, so they can be tested without traffic.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from typing import Any, Callable, Sequence

from sfcframe.bench import results as R

LABELS = 10
DEFAULT_SECONDS = 10.0
DEFAULT_RUNS = 3
DEFAULT_CACHE_SIZES = (1000, 2500, 5000, 10000, 100000)
DEFAULT_DELAY_MS = 5.0

Say = Callable[[str], None]


# ---- pure Python: a run's record and the summaries ----------------------------------------


def run_record(summary: dict[str, Any], peak_entries: int | None = None) -> dict[str, Any]:
    """The numbers a benchmark keeps of one demo run (``Summary.as_dict()``)."""
    proxy = summary.get("proxy", {})
    ingress = dict(proxy.get("ingress", {}))
    egress = dict(proxy.get("egress", {}))
    cache = proxy.get("cache", {}) or {}
    cfg = summary.get("config", {})
    cached = int(ingress.get("cached", 0))
    restored = int(egress.get("restored", 0))
    misses = int(egress.get("not_cached", 0))
    collision = int(ingress.get("collision", 0))
    handled = cached + int(ingress.get("plain", 0)) + collision
    seconds = float(cfg.get("seconds") or 0) or None
    return {
        "verdict": summary.get("verdict"),
        "reasons": summary.get("reasons", []),
        "seconds": seconds,
        "ingress": ingress,
        "egress": egress,
        "cached": cached,
        "restored": restored,
        "misses": misses,
        "restored_over_cached": round(restored / cached, 6) if cached else None,
        "miss_ratio": round(misses / (misses + restored), 8) if misses + restored else None,
        "collision": collision,
        "collisions_per_million": round(collision / handled * 1e6, 3) if handled else None,
        "stale_entries": cache.get("entries"),
        "cache_capacity": cache.get("capacity"),
        "peak_entries": peak_entries,
        "cached_pps": round(cached / seconds, 1) if seconds else None,
        # packets the SFF stamped and sent into the chain
        "transmitted": summary.get("packets", {}).get("stamped", 0),
        "checked_match": summary.get("packets", {}).get("checked_match", 0),
        "checked_mismatch": summary.get("packets", {}).get("checked_mismatch", 0),
        "goodput_mbps": summary.get("goodput_mbps", 0.0),
        "retransmits": summary.get("retransmits", 0),
        "vnf": summary.get("vnf", {}),
        "proxy_spec": cfg.get("proxy_spec"),
    }


def spread(values: Sequence[float | None], digits: int = 1) -> dict[str, Any] | None:
    """Median and min–max of one value per run (None values left out)."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None
    return {"median": round(R.median(vals), digits), "min": round(min(vals), digits),
            "max": round(max(vals), digits), "runs": [round(v, digits) for v in vals]}


def _counter_spreads(runs: list[dict], direction: str) -> dict[str, Any]:
    names: list[str] = []
    for r in runs:
        names += [n for n in r[direction] if n not in names]
    return {n: spread([r[direction].get(n, 0) for r in runs], 0) for n in names}


def summarize_drop(runs: list[dict]) -> dict[str, Any]:
    return {
        "ingress": _counter_spreads(runs, "ingress"),
        "egress": _counter_spreads(runs, "egress"),
        "restored_over_cached": spread([r["restored_over_cached"] for r in runs], 5),
        "stale_entries": spread([r["stale_entries"] for r in runs], 0),
        "vnf_dropped": spread([r["vnf"].get("dropped") for r in runs], 0),
        "goodput_mbps": spread([r["goodput_mbps"] for r in runs]),
        "mismatches": sum(r["checked_mismatch"] for r in runs),
    }


def little_in_flight(cached_pps: float | None, delay_ms: float) -> float | None:
    return None if cached_pps is None else round(cached_pps * delay_ms / 1000.0, 1)


def summarize_delay(rows: list[dict], delay_ms: float) -> list[dict]:
    """One row per cache size: the median of its runs (min–max in the row)."""
    out = []
    for row in rows:
        runs = row["runs"]
        pps = spread([r["cached_pps"] for r in runs])
        out.append({
            "cache_size": row["cache_size"],
            "role": row.get("role", "sweep"),
            "misses": spread([r["misses"] for r in runs], 0),
            "restored": spread([r["restored"] for r in runs], 0),
            "transmitted": spread([r["transmitted"] for r in runs], 0),
            "goodput_mbps": spread([r["goodput_mbps"] for r in runs]),
            "cached_pps": pps,
            "little_in_flight": little_in_flight(pps["median"] if pps else None, delay_ms),
            "peak_entries": spread([r["peak_entries"] for r in runs], 0),
            "peak_in_flight": spread([(r.get("observation") or {}).get("peak_in_flight")
                                      for r in runs], 0),
            "miss_ratio": spread([r["miss_ratio"] for r in runs], 8),
            "zero_misses": all(r["misses"] == 0 for r in runs),
        })
    return out


def summarize_collisions(runs: list[dict]) -> dict[str, Any]:
    return {
        "collisions_per_million": spread([r["collisions_per_million"] for r in runs], 2),
        "collision": spread([r["collision"] for r in runs], 0),
        "handled": spread([r["cached"] + r["ingress"].get("plain", 0) + r["collision"]
                           for r in runs], 0),
        "goodput_mbps": spread([r["goodput_mbps"] for r in runs]),
    }


# ---- running demos ------------------------------------------------------------------------


def _sample_entries(proxy_name: str) -> int | None:
    from sfcframe.runtime import state, stats

    with contextlib.suppress(Exception):
        record = state.load(proxy_name)
        if record is not None:
            return stats.count_entries(record.maps[stats.CACHE_MAP])
    return None


def _observer(proxy_name: str, stop: threading.Event, out: list) -> None:
    """Sample the proxy's in-flight count every 10 ms while it is up (``size --observe``)."""
    from sfcframe.runtime.observe import observe, wait_up

    with contextlib.suppress(Exception):
        if wait_up(proxy_name, stop):
            out.append(observe(proxy_name, seconds=24 * 3600, interval=0.01, stop=stop))


def demo_run(say: Say, *, vnf: str, seconds: float, key: str = "tcpip",
             cache_size: int | None = None, delay_ms: float = 3.0,
             observe: bool = False, encap: str = "mpls", inner: str = "ipv4",
             ingress: str = "tc", traffic: str = "tcp",
             rate_pps: int | None = None) -> dict[str, Any]:
    """One demo run; its :func:`run_record` (with ``observation`` when ``observe``).
    ``encap="srv6"``: the SRv6 kernel-peer testbed with the srv6 proxy, ``inner``
    packets IPv4 or IPv6; ``ingress``: the proxy's ingress hook (the demo's default tc)."""
    from sfcframe.demo.run import DemoConfig, run_demo

    tag = secrets.token_hex(3)
    cfg = DemoConfig(encap=encap, labels=LABELS, vnf=vnf, key=key, seconds=seconds,
                     cache_size=cache_size, delay_ms=delay_ms, tag=tag, inner=inner,
                     sf="proxy" if encap == "srv6" else "auto", ingress=ingress,
                     traffic=traffic, rate_pps=rate_pps)
    peak = [0]
    proxy_name = f"sfcd-{tag}"

    def progress(snap: dict) -> None:
        n = _sample_entries(proxy_name)
        if n is not None:
            peak[0] = max(peak[0], n)

    stop, observed = threading.Event(), []
    watcher = None
    if observe:
        watcher = threading.Thread(target=_observer, args=(proxy_name, stop, observed),
                                   daemon=True)
        watcher.start()
    try:
        summary = run_demo(cfg, progress=progress)
    finally:
        stop.set()
        if watcher is not None:
            watcher.join(timeout=30)
    doc = summary.as_dict()
    end = (doc.get("proxy", {}).get("cache") or {}).get("entries")
    rec = run_record(doc, max(peak[0], end or 0))
    if observe:
        rec["observation"] = observed[0].as_dict() if observed else None
    say(f"{vnf} cache_size={cache_size or 'default'}: {rec['verdict']}, cached {rec['cached']}, "
        f"restored {rec['restored']}, misses {rec['misses']}, collision {rec['collision']}, "
        f"stale {rec['stale_entries']}, peak {rec['peak_entries']}, {rec['goodput_mbps']} Mb/s")
    return rec


def _machine() -> dict:
    from sfcframe.bench import machine

    return machine.describe()


def _require_root() -> None:
    from sfcframe.loader import require_root

    require_root()


def run_drop(seconds: float = DEFAULT_SECONDS, runs: int = DEFAULT_RUNS,
             progress: Say | None = None) -> dict:
    _require_root()
    say = progress or (lambda _m: None)
    raw = [demo_run(say, vnf="drop", seconds=seconds) for _ in range(runs)]
    method = {
        "summary": "sfcframe demo --vnf drop (iptables statistic drops 1% of the packets from "
                   "the SFF at random, after the proxy's XDP ingress cached them), 10 MPLS "
                   "labels, tcpip key, 2 iperf3 streams; proxy counters read at the end of the "
                   "traffic; stale entries = cache entries left at the end (entries of dropped "
                   "packets that egress never consumed).",
        "statistics": "median and min-max over runs",
    }
    params = {"seconds": seconds, "runs": runs, "labels": LABELS, "key": "tcpip",
              "vnf": "drop", "drop_probability": 0.01}
    return R.document("drop", params, method, {"runs": raw, "summary": summarize_drop(raw)},
                      [], _machine())


def run_delay(cache_sizes: Sequence[int] = DEFAULT_CACHE_SIZES, delay_ms: float = DEFAULT_DELAY_MS,
              seconds: float = DEFAULT_SECONDS, runs: int = 1, progress: Say | None = None) -> dict:
    from sfcframe.runtime.sizing import size, size_observed

    _require_root()
    say = progress or (lambda _m: None)
    rows = []
    for cs in cache_sizes:
        rows.append({"cache_size": cs, "role": "sweep",
                     "runs": [demo_run(say, vnf="delay", seconds=seconds, cache_size=cs,
                                       delay_ms=delay_ms, observe=True) for _ in range(runs)]})
    rates = [r["cached_pps"] for row in rows for r in row["runs"] if r["cached_pps"]]
    rate = max(rates) if rates else 1.0
    params = {"max_labels": str(LABELS)}
    checks = []

    # 1. what `sfcframe size --rate R --delay D` says with the VNF's nominal delay
    nominal = size(f"{rate:.1f}pps", f"{delay_ms:g}ms", encap="mpls", key="tcpip",
                   params=params)
    say(f"sfcframe size --rate {rate:.0f}pps --delay {delay_ms:g}ms -> "
        f"cache_size {nominal.cache_size}")
    # 2. what `sfcframe size --observe` says, sampled during the sweep's largest cache
    #    (no misses there, so every packet in flight was counted)
    biggest = max(rows, key=lambda row: row["cache_size"])
    observations = [r["observation"] for r in biggest["runs"] if r.get("observation")]
    observed = None
    if observations:
        worst = max(observations, key=lambda o: o["peak_in_flight"])
        observed = size_observed(worst, "mpls", "tcpip", params)
        say(f"sfcframe size --observe (peak {worst['peak_in_flight']} in flight) -> "
            f"cache_size {observed.cache_size}")
    for role, sizing in (("size-nominal", nominal), ("size-observed", observed)):
        if sizing is None:
            continue
        check_runs = [demo_run(say, vnf="delay", seconds=seconds,
                               cache_size=sizing.cache_size, delay_ms=delay_ms)]
        rows.append({"cache_size": sizing.cache_size, "role": role, "runs": check_runs})
        checks.append({
            "role": role,
            "command": ("sfcframe size --rate R --delay D (nominal VNF delay)"
                        if role == "size-nominal" else
                        "sfcframe size --observe NAME (peak in flight sampled at 100 Hz on "
                        f"the cache_size {biggest['cache_size']} run)"),
            "sizing": sizing.as_dict(),
            "recommended_cache_size": sizing.cache_size,
            "misses": [r["misses"] for r in check_runs],
            "zero_misses": all(r["misses"] == 0 for r in check_runs),
        })
    table = summarize_delay(rows, delay_ms)
    check = {
        "rate_pps": round(rate, 1),
        "rate_source": "the largest cached-packet rate (ingress cached / seconds) of the sweep",
        "delay_ms": delay_ms,
        "checks": checks,
    }
    method = {
        "summary": "sfcframe demo --vnf delay (a user-space TUN program holds every packet "
                   "from the SFF for delay_ms), 10 MPLS labels, tcpip key, 2 iperf3 streams, "
                   "one demo per cache_size; misses = egress not_cached, transmitted = "
                   "packets the SFF stamped and sent into the chain; in flight by "
                   "Little's law = ingress cached per second x delay; peak_entries = largest "
                   "1 Hz sample of the cache's entry count (a lower bound of the peak); "
                   "peak in flight (counters) = largest 100 Hz sample of entries made - "
                   "entries consumed (sfcframe.runtime.observe, what `sfcframe size "
                   "--observe` samples); miss ratio = not_cached / (not_cached + restored).",
        "size_check": "two recommendations, each followed by one more demo at the recommended "
                      "cache_size: `sfcframe size` from the sweep's largest cached rate and the "
                      "VNF's nominal delay, and `sfcframe size --observe` from the peak "
                      "sampled on the largest cache_size",
    }
    params_doc = {"cache_sizes": list(cache_sizes), "delay_ms": delay_ms, "seconds": seconds,
                  "runs": runs, "labels": LABELS, "key": "tcpip", "vnf": "delay"}
    targets = [
        R.target(f"sfcframe size recommendation gives zero misses ({c['role']})",
                 "0 egress misses at the recommended cache_size",
                 {"cache_size": c["recommended_cache_size"], "misses": c["misses"]},
                 c["zero_misses"])
        for c in checks
    ]
    return R.document("delay", params_doc, method,
                      {"rows": rows, "table": table, "size_check": check}, targets, _machine())


#: the testbeds of the collision benchmarks: (encap, inner family)
COLLISION_TESTBEDS = (("mpls", "ipv4"), ("srv6", "ipv4"), ("srv6", "ipv6"))
COLLISION_HOOKS = ("tc", "xdp")


def collisions_name(encap: str, inner: str, ingress: str = "tc") -> str:
    """Result name of a collision benchmark (bench-results/<name>.json, BENCHMARKS.md
    section bench:<name>): ``collisions`` for the demo's MPLS testbed with its TC ingress."""
    name = "collisions" if (encap, inner) == ("mpls", "ipv4") else f"collisions-{encap}-{inner}"
    return name if ingress == "tc" else f"{name}-{ingress}"


#: (encap, inner, ingress hook) -> result name
COLLISION_RUNS = {(e, i, h): collisions_name(e, i, h)
                  for e, i in COLLISION_TESTBEDS for h in COLLISION_HOOKS}


#: --traffic of the flow keys' collision runs: the key each runs, its result name and
#: what it sends (the demo's senders, sfcframe.demo.flowtraffic)
FLOW_COLLISIONS = {
    "rtp": ("rtp", "50 RTP streams, 400 packets/s each (20,000/s; 8x the 50/s of 20-ms audio)",
            20000),
    "udp": ("udp", "iperf3 -u -b 0 (UDP as fast as the sender goes)", None),
    "esp": ("esp", "bulk ESP (AES-GCM), as fast as the sender goes, raw and in UDP", None),
    "icmp": ("icmp", "ping -f (ICMP echo flood), replies back plain", None),
    "udpsame": ("udp", "one 200-byte datagram sent unchanged from an unconnected socket, "
                "as fast as the sender goes: every copy has the same key (the udp key's "
                "worst case)", None),
    "mixed": ("auto", "all of the above plus iperf3 TCP at once", None),
}
#: the VNFs they run behind: forward (the kernel forwards each packet to completion,
#: as in the TCP rows) and delay (a user-space function holding every packet 3 ms:
#: hundreds in flight, what tells keys apart)
FLOW_COLLISION_VNFS = ("forward", "delay")
#: (traffic, vnf) -> result name
FLOW_COLLISION_RUNS = {(t, v): f"collisions-{t}" + ("" if v == "forward" else f"-{v}")
                       for t in FLOW_COLLISIONS for v in FLOW_COLLISION_VNFS}


def collisions_testbed(encap: str, inner: str, ingress: str = "tc", vnf: str = "forward") -> str:
    """The testbed of a collision benchmark, in words."""
    hook = {"tc": "TC", "xdp": "XDP"}[ingress]
    if vnf != "forward":
        return (f"{vnf} VNF (user space, every packet held 3 ms), {LABELS} MPLS labels"
                + (f", {hook} ingress" if ingress != "tc" else ""))
    if encap == "srv6":
        decap = "End.DX4" if inner == "ipv4" else "End.DT6"
        return (f"SRv6 kernel-peer testbed (the kernel's H.Encaps at the SFF, the srv6 proxy "
                f"with {hook} ingress around a forwarding VNF, the kernel's {decap}), inner {inner}")
    return f"forwarding VNF, {LABELS} MPLS labels" + (f", {hook} ingress" if ingress != "tc" else "")


def run_collisions(seconds: float = DEFAULT_SECONDS, runs: int = DEFAULT_RUNS,
                   progress: Say | None = None, encap: str = "mpls",
                   inner: str = "ipv4", ingress: str = "tc", traffic: str = "tcp",
                   vnf: str = "forward") -> dict:
    if traffic != "tcp":
        return run_flow_collisions(seconds, runs, progress, traffic, ingress, vnf)
    if (encap, inner, ingress) not in COLLISION_RUNS:
        from sfcframe.errors import UsageError

        raise UsageError(f"bench collisions: no testbed for --encap {encap} --inner {inner} "
                         f"(known: {', '.join(f'{e}/{i}' for e, i in COLLISION_TESTBEDS)})")
    _require_root()
    say = progress or (lambda _m: None)
    raw = [demo_run(say, vnf="forward", seconds=seconds, encap=encap, inner=inner,
                    ingress=ingress) for _ in range(runs)]
    summary = summarize_collisions(raw)
    per_m = summary["collisions_per_million"]
    key = "tcpip(family=ipv6)" if inner == "ipv6" else "tcpip"
    method = {
        "summary": f"sfcframe demo ({collisions_testbed(encap, inner, ingress)}, key {key}, 2 "
                   "bulk iperf3 streams); collision drops per million = ingress collision / "
                   "(cached + plain + collision) x 1e6, per run; median and min-max over runs.",
    }
    params = {"seconds": seconds, "runs": runs, "labels": LABELS if encap == "mpls" else None,
              "key": key, "vnf": "forward", "encap": encap, "inner": inner, "ingress": ingress}
    targets = [R.target(f"collision drops under bulk TCP ({key} key)", "<= 20 per million",
                        per_m, per_m["median"] <= 20 if per_m else None)]
    return R.document(COLLISION_RUNS[(encap, inner, ingress)], params, method,
                      {"runs": raw, "summary": summary}, targets, _machine())


def run_flow_collisions(seconds: float, runs: int, progress: Say | None, traffic: str,
                        ingress: str = "tc", vnf: str = "forward") -> dict:
    """A flow key's collisions under its traffic on the demo's MPLS testbed."""
    if (traffic, vnf) not in FLOW_COLLISION_RUNS:
        from sfcframe.errors import UsageError

        raise UsageError(f"bench collisions: unknown --traffic {traffic} "
                         f"(known: tcp, {', '.join(FLOW_COLLISIONS)}) or --vnf {vnf} "
                         f"(known: {', '.join(FLOW_COLLISION_VNFS)})")
    _require_root()
    say = progress or (lambda _m: None)
    key, what, rate = FLOW_COLLISIONS[traffic]
    raw = [demo_run(say, vnf=vnf, seconds=seconds, key=key, ingress=ingress,
                    traffic=traffic, rate_pps=rate) for _ in range(runs)]
    summary = summarize_collisions(raw)
    per_m = summary["collisions_per_million"]
    testbed = collisions_testbed('mpls', 'ipv4', ingress, vnf)
    method = {"summary": f"sfcframe demo --traffic {traffic} --vnf {vnf} ({testbed}, "
                         f"key {key}; {what}); every packet stamped and checked at the receiver; "
                         "collision drops per million = ingress collision / (cached + plain + "
                         "collision) x 1e6, per run; median and min-max over runs."}
    params = {"seconds": seconds, "runs": runs, "labels": LABELS, "key": key, "vnf": vnf,
              "encap": "mpls", "inner": "ipv4", "ingress": ingress, "traffic": traffic}
    if traffic == "udpsame":  # what the key cannot tell apart: measured, no goal
        targets = [R.target("collision drops of identical datagrams (udp key)", "measured only",
                            per_m, None, "identical datagrams have identical keys by design")]
    else:
        targets = [R.target(f"collision drops under {traffic} traffic ({key} key)",
                            "<= 20 per million", per_m, per_m["median"] <= 20 if per_m else None)]
    return R.document(FLOW_COLLISION_RUNS[(traffic, vnf)], params, method,
                      {"runs": raw, "summary": summary}, targets, _machine())
