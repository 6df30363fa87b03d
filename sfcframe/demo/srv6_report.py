"""The SRv6 testbed's summary: the demo's :class:`Summary` plus what the SRv6
checker tells per field and what the kernel's own counters say."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sfcframe.demo.ioam_stage import dwell_lines
from sfcframe.demo.report import Summary, _counters
from sfcframe.demo.srv6_programs import MISMATCH_KINDS


def checker_view(per_cpu: dict[str, list[int]]) -> dict[str, list[int]]:
    """The SRv6 checker's outcomes in the demo checker's terms (``mismatch``: every
    field kind together), per CPU, for :meth:`Summary.fill`."""
    ncpu = max(len(v) for v in per_cpu.values())
    mismatch = [sum(per_cpu[k][i] for k in MISMATCH_KINDS) for i in range(ncpu)]
    return {"match": per_cpu["match"], "mismatch": mismatch,
            "unencapsulated": per_cpu["unencapsulated"], "malformed": per_cpu["malformed"],
            "other": per_cpu["other"]}


@dataclass
class Srv6Summary(Summary):
    #: mismatches per field kind (sl, da, segments, header, hop_limit, payload_len, tag, flow_label)
    fields: dict[str, int] = field(default_factory=dict)
    #: the kernel's seg6local counters over the traffic window: "<node> <action> <SID>" -> counts
    kernel: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the receiver's TCP segments received over the traffic window (/proc/net/snmp)
    receiver_tcp_in: int = 0
    #: CPU-seconds of all CPUs per /proc/stat column over the traffic (iperf3 start to end)
    cpu: dict[str, float] = field(default_factory=dict)
    #: frames the decapsulating node's veth toward the receiver dropped (its backlog full):
    #: the kernel counts them as errors of the seg6local route that forwarded them
    downstream_dropped: int = 0
    #: --ioam (Srv6Programs.ioam_view): the stamper's insertions, the checker's IOAM
    #: outcomes, the VNF host's slot statistics, the last trace and the last mismatch
    ioam: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_s_per_mpkt(self) -> float | None:
        """Kernel CPU (system + softirq) per million checked packets; None for a stalled run."""
        if self.checked < 10_000 or not self.cpu:
            return None
        return round((self.cpu["system"] + self.cpu["softirq"]) / (self.checked / 1e6), 3)

    @property
    def stamped(self) -> int:
        return self.sff.get("stamped", 0) + self.sff.get("corrupted", 0)

    @property
    def checked(self) -> int:
        """SRv6 frames carrying TCP that reached the checker (match or a mismatch)."""
        return self.checker.get("match", 0) + self.checker.get("mismatch", 0)

    @property
    def kernel_errors(self) -> int:
        return sum(c.get("errors", 0) for c in self.kernel.values())

    @property
    def decap_errors(self) -> int:
        """Errors of the egress SIDs' seg6local routes."""
        return sum(c.get("errors", 0) for name, c in self.kernel.items() if name.startswith("dec "))

    @property
    def decapsulated(self) -> int:
        """Packets the egress SIDs' seg6local routes handled without error."""
        return sum(c.get("packets", 0) for name, c in self.kernel.items() if name.startswith("dec "))

    def reasons(self) -> list[str]:
        out = super().reasons()
        if not self.filled:
            return out
        if self.stamped == 0:
            out.append("the SFF's stamper found no SRv6 packet carrying TCP")
        for name in ("malformed", "error"):
            if self.sff.get(name, 0):
                out.append(f"stamper: {self.sff[name]} {name}")
        unexplained = self.kernel_errors - self.downstream_dropped
        if unexplained > 0:
            names = ", ".join(f"{n}: {c['errors']}" for n, c in self.kernel.items()
                              if c.get("errors", 0))
            out.append(f"the kernel's seg6local routes counted {self.kernel_errors} errors "
                       f"({names}), {unexplained} more than the receiver's queue dropped")
        return out + self.ioam_reasons()

    def ioam_reasons(self) -> list[str]:
        """IOAM: every stamped packet got the trace, every checked one was as expected."""
        if not self.ioam:
            return []
        out = []
        inserted = self.ioam["inserted"]
        if inserted.get("inserted", 0) != self.stamped:
            out.append(f"IOAM: the stamper inserted {inserted.get('inserted', 0)} traces into "
                       f"{self.stamped} stamped packets ({_counters(inserted)})")
        bad = {k: v for k, v in self.ioam["outcomes"].items() if k != "ok" and v}
        if bad:
            out.append(f"IOAM: {sum(bad.values())} traces not as expected ({_counters(bad)})")
        return out

    def ioam_lines(self) -> list[str]:
        if not self.ioam:
            return []
        vnf = self.ioam["vnf_slot"]
        lines = [
            f"  ioam         inserted {self.ioam['inserted'].get('inserted', 0)}; checker: "
            + _counters(self.ioam["outcomes"]),
            f"  VNF slot     {vnf['slots']} read; transit delay: available {vnf['delay_available']}"
            f" (mean {vnf['delay_mean_ns'] or 0:.0f} ns, max {vnf['delay_max_ns'] or 0} ns), "
            f"unavailable {vnf['delay_unavailable']}, overflow {vnf['delay_overflow']}, longer than "
            f"t1 -> t2 {vnf['delay_exceeds_path']}; t1 -> t2 mean {vnf['path_mean_ns'] or 0:.0f} ns",
        ]
        for key in ("last_trace", "last_mismatch"):
            sample = self.ioam.get(key)
            if sample:
                nodes = sample["decoded"].get("nodes", [])
                lines.append(f"  {key.replace('_', ' '):<12} {', '.join(sample['outcomes']) or 'ok'}: "
                             + " | ".join(" ".join(f"{k}={v:#x}" for k, v in n.items()) for n in nodes))
        return lines

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out["packets"]["stamped"] = self.stamped
        out["srv6"] = {"mismatch_fields": self.fields, "kernel": self.kernel, "ioam": self.ioam,
                       "checked": self.checked, "decapsulated": self.decapsulated,
                       "receiver_tcp_in_segs": self.receiver_tcp_in,
                       "downstream_dropped": self.downstream_dropped,
                       "cpu_s": self.cpu, "cpu_s_per_mpkt": self.cpu_s_per_mpkt}
        return out

    def text(self) -> str:
        c = self.config
        s6 = c["srv6"]
        lines = [
            f"sfcframe demo: srv6 with the kernel as peer, {s6['describe']}; {c['seconds']:g} s, "
            f"{c['streams']} TCP streams",
            f"  path         {s6['path']}",
        ]
        if c.get("proxy_spec"):
            lines.append(f"  proxy        {c['proxy_spec']}")
        if self.filled:
            ch = self.checker
            per_cpu = " / ".join(str(x) for x in self.checker_per_cpu.get("match", []))
            lines += [
                f"  stamped      {self.stamped:>10}   SRv6 packets the SFF stamped (Tag, flow label)"
                + (f", {self.sff.get('corrupted', 0)} with a corrupted segment"
                   if self.sff.get("corrupted") else ""),
            ]
            if c.get("proxy_spec"):
                lines += [
                    f"  cached       {self.cached:>10}   stripped and cached by the proxy",
                    f"  restored     {self.restored:>10}   restored by the proxy",
                    f"  egress miss  {self.misses:>10}   not_cached at egress",
                ]
            lines += [
                f"  checked OK   {ch.get('match', 0):>10}   every field as expected at the decapsulating"
                f" node (per CPU: {per_cpu})",
                f"  mismatch     {ch.get('mismatch', 0):>10}   " + (_counters(self.fields) if
                                                                   any(self.fields.values()) else "none"),
                f"  unencap      {ch.get('unencapsulated', 0):>10}   TCP to the receiver without an SRH",
                f"  malformed    {ch.get('malformed', 0):>10}   SRH or inner packet cut short",
                f"  kernel       " + "; ".join(f"{name}: {_counters(v)}" for name, v in self.kernel.items())
                + (f" (of the errors, {self.downstream_dropped} dropped by the receiver's queue)"
                   if self.kernel_errors else ""),
                f"  receiver     {self.receiver_tcp_in:>10}   TCP segments received (TcpInSegs)",
                f"  goodput      {self.goodput_mbps:>10.1f}   Mb/s ({self.retransmits} retransmits)",
            ]
            if c.get("proxy_spec"):
                lines += ["  proxy in     " + _counters(self.ingress),
                          "  proxy out    " + _counters(self.egress)]
            for sample in self.mismatch_samples[:1]:
                lines.append(f"  last mismatch: fields {', '.join(sample['fields'])}; "
                             f"got {sample.get('got', sample['outer'])}; expected {sample['expected']}")
            lines += self.ioam_lines()
            lines += dwell_lines(self.dwell)
        return "\n".join(lines + self.closing_lines())
