"""The demo's summary: numbers, verdict, text and JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sfcframe.demo.ioam_stage import dwell_lines

#: VNFs after which no packet may miss the cache (drop leaves stale entries but
#: no misses either; delay may miss when the cache is smaller than the occupancy)
NO_MISS_VNFS = ("forward", "nat")


@dataclass
class Summary:
    config: dict[str, Any]
    sff: dict[str, int] = field(default_factory=dict)
    checker: dict[str, int] = field(default_factory=dict)
    checker_per_cpu: dict[str, list[int]] = field(default_factory=dict)
    checkers: list[dict[str, int]] = field(default_factory=list)
    mismatch_samples: list[dict] = field(default_factory=list)
    ingress: dict[str, int] = field(default_factory=dict)
    egress: dict[str, int] = field(default_factory=dict)
    proxy_raw: dict[str, Any] = field(default_factory=dict)
    goodput_mbps: float = 0.0
    retransmits: int = 0
    stream_errors: list[str] = field(default_factory=list)
    vnf: dict[str, Any] = field(default_factory=dict)
    teardown: dict[str, Any] = field(default_factory=dict)
    filled: bool = False
    #: frames the links after the proxy dropped (receiver backlog full): restored, never checked
    dropped_toward_receivers: int = 0
    #: with the proxy's ioam stage (sfcframe.demo.ioam_stage.dwell_view): the function's
    #: dwell time as the checker read it in the proxy's node data and as the proxy counted it
    dwell: dict[str, Any] = field(default_factory=dict)
    #: header words the checker checked by range (DemoPrograms.range_stats): name ->
    #: count, out (of range), sum, min, max, mean
    ranges: dict[str, Any] = field(default_factory=dict)
    #: with ranged words: a header that matched (DemoPrograms.last_match, hex)
    last_match: dict[str, Any] = field(default_factory=dict)

    def fill(self, *, sff, checkers, unchained, mismatch_samples, proxy, streams, vnf, vnf_kind) -> None:
        self.sff = dict(sff)
        self.checkers = [{k: sum(v) for k, v in c.items()} for c in checkers]
        # frames of no chain: unparsable ones count as malformed, the rest (ARP...) as other
        self.checker = {k: sum(c[k] for c in self.checkers) + unchained.get(k, 0)
                        for k in self.checkers[0]}
        ncpu = max(len(v) for c in checkers for v in c.values())
        self.checker_per_cpu = {
            k: [sum(c[k][i] for c in checkers if i < len(c[k])) for i in range(ncpu)]
            for k in checkers[0]
        }
        self.mismatch_samples = mismatch_samples
        self.ingress, self.egress, self.proxy_raw = proxy.ingress, proxy.egress, proxy.raw
        self.goodput_mbps = round(sum(s.bits_per_second for s in streams) / 1e6, 1)
        self.retransmits = sum(s.retransmits for s in streams)
        self.stream_errors = [f"{s.sender}->{s.receiver}:{s.port}: {s.error}" for s in streams if s.error]
        self.vnf = dict(vnf)
        self.filled = True

    # ---- derived ---------------------------------------------------------
    @property
    def stamped(self) -> int:
        return self.sff.get("stamped", 0)

    @property
    def cached(self) -> int:
        return self.ingress.get("cached", 0)

    @property
    def restored(self) -> int:
        return self.egress.get("restored", 0)

    @property
    def misses(self) -> int:
        return self.egress.get("not_cached", 0)

    @property
    def mismatches(self) -> int:
        return self.checker.get("mismatch", 0) + self.checker.get("malformed", 0)

    def reasons(self) -> list[str]:
        """Why the run fails; empty means PASS."""
        if not self.filled:
            return ["the run did not complete"]
        out = []
        if self.checker.get("mismatch", 0):
            out.append(f"{self.checker['mismatch']} packets carried a different header than stamped")
        if self.checker.get("malformed", 0):
            out.append(f"{self.checker['malformed']} packets carried an unparsable header")
        if self.config.get("vnf") in NO_MISS_VNFS and self.misses:
            out.append(f"{self.misses} egress misses (not_cached) behind a {self.config['vnf']} VNF")
        arrived = sum(self.checker.get(k, 0) for k in ("match", "mismatch", "unencapsulated"))
        if self.goodput_mbps <= 0 or not arrived:
            out.append("no traffic reached the receiver")
        elif self.checker.get("match", 0) == 0:
            out.append("no packet reached the receiver with the header expected")
        out += self.stream_errors
        if self.teardown and not self.teardown.get("clean", True):
            out += self.teardown.get("problems", [])
        return out

    @property
    def passed(self) -> bool:
        return not self.reasons()

    # ---- output ----------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": "PASS" if self.passed else "FAIL",
            "reasons": self.reasons(),
            "config": self.config,
            "packets": {
                "stamped": self.stamped,
                "cached": self.cached,
                "restored": self.restored,
                "dropped_toward_receivers": self.dropped_toward_receivers,
                "egress_misses": self.misses,
                "checked_match": self.checker.get("match", 0),
                "checked_mismatch": self.checker.get("mismatch", 0),
                "unencapsulated": self.checker.get("unencapsulated", 0),
            },
            "goodput_mbps": self.goodput_mbps,
            "retransmits": self.retransmits,
            "sff": self.sff,
            "checker": self.checker,
            "checker_per_cpu": self.checker_per_cpu,
            "checker_per_chain": self.checkers,
            "mismatch_samples": self.mismatch_samples,
            "proxy": {"ingress": self.ingress, "egress": self.egress,
                      "cache": self.proxy_raw.get("cache", {}),
                      "interfaces": self.proxy_raw.get("interfaces", [])},
            "vnf": self.vnf,
            "dwell": self.dwell,
            "ranges": self.ranges,
            "last_match": self.last_match,
            "teardown": self.teardown,
        }

    def text(self) -> str:
        c = self.config
        what = (
            f"{c['labels']} MPLS labels" if c.get("labels") is not None
            else f"NSH MD type {c['md_type']}" if c.get("md_type") is not None
            else c["encap"]
        )
        lines = [
            f"sfcframe demo: {what}, key {c['key']}, VNF {c['vnf']}, {c['seconds']:g} s, "
            f"{c['streams']} TCP streams, {c['chains']} chain(s)",
            f"  proxy        {c['proxy_spec']}" if c.get("vnf") != "none" else
            "  proxy        none (self-test: no VNF, no proxy; the checker expects the stack as stamped)",
        ]
        if self.filled:
            ch = self.checker
            per_cpu = " / ".join(str(x) for x in self.checker_per_cpu.get("match", []))
            lines += [
                f"  stamped      {self.stamped:>10}   packets the SFF stamped",
                f"  cached       {self.cached:>10}   stripped and cached by the proxy "
                f"({'TC' if c.get('ingress_hook') == 'tc' else 'XDP'} ingress)",
                f"  restored     {self.restored:>10}   restored by the proxy (TC egress)",
                f"  egress miss  {self.misses:>10}   not_cached at egress",
                f"  checked OK   {ch.get('match', 0):>10}   exact expected header at the receiver"
                f" (per CPU: {per_cpu})",
                f"  mismatch     {ch.get('mismatch', 0):>10}   wrong header at the receiver",
                f"  unencap      {ch.get('unencapsulated', 0):>10}   arrived without the expected header",
                f"  goodput      {self.goodput_mbps:>10.1f}   Mb/s ({self.retransmits} retransmits)",
                "  proxy in     " + _counters(self.ingress),
                "  proxy out    " + _counters(self.egress),
            ]
            cache = self.proxy_raw.get("cache")
            if cache:
                lines.append(
                    f"  proxy cache  {cache['entries']} of {cache['capacity']} entries in use at the end "
                    f"({cache['bytes_per_entry']} B/entry, {cache['memlock_bytes']} B)"
                )
                if cache.get("kind") == "assoc":
                    from sfcframe.runtime.stats import assoc_text

                    lines.append(f"  proxy cache  {assoc_text(cache)}")
            if self.vnf:
                lines.append("  vnf          " + _counters(self.vnf))
            if c.get("ioam"):
                lines.append(f"  ioam         {c['ioam']}")
            if self.ranges:
                lines.append("  by range     " + "; ".join(
                    f"{name} {r['count']} checked, {r['out']} out of range"
                    for name, r in self.ranges.items()))
            lines += dwell_lines(self.dwell)
            for s in self.mismatch_samples[:1]:
                out = f" (out of range: {', '.join(s['out_of_range'])})" if s.get("out_of_range") else ""
                lines.append(f"  last mismatch: got {s['got']} expected {s['expected']}{out}")
        return "\n".join(lines + self.closing_lines())

    def closing_lines(self) -> list[str]:
        """The teardown line and the verdict."""
        teardown = "clean" if self.teardown.get("clean", False) else "; ".join(
            self.teardown.get("problems", ["not done"]))
        reasons = self.reasons()
        return [f"  teardown     {teardown}",
                "verdict: PASS" if not reasons else "verdict: FAIL: " + "; ".join(reasons)]


def _counters(d: dict[str, Any]) -> str:
    shown = {k: v for k, v in d.items() if v}
    return " ".join(f"{k}={v}" for k, v in shown.items()) or "(all zero)"


def progress_line(snap: dict[str, Any]) -> str:
    parts = [f"{snap.get('elapsed', 0):>4} s"]
    for key, label in (("stamped", "stamped"), ("cached", "cached"), ("restored", "restored"),
                       ("misses", "misses"), ("match", "checked ok"), ("mismatch", "mismatch")):
        if key in snap:
            parts.append(f"{label} {snap[key]}")
    if "proxy_error" in snap:
        parts.append(f"(stats: {snap['proxy_error'][:60]})")
    return "  ".join(parts)
