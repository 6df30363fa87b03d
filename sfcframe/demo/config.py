"""What one demo run does: :class:`DemoConfig`, the ``sfcframe demo`` flags as
fields, and :data:`Progress`, the callback that takes a progress snapshot once a
second (:mod:`sfcframe.demo.run` for the MPLS/NSH testbed,
:mod:`sfcframe.demo.srv6_run` for SRv6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from sfcframe.demo.vnfs import AUTO_KEY


@dataclass
class DemoConfig:
    encap: str = "mpls"
    labels: int = 10  # MPLS: labels stamped
    md_type: int = 1  # NSH: metadata type stamped
    vnf: str = "forward"  # forward | drop | nat | delay | none (no VNF, no proxy: self-test)
    key: str = "auto"
    seconds: float = 10
    streams: int = 2
    chains: int = 1
    cache_size: int | None = None
    params: dict[str, str] = field(default_factory=dict)  # proxy parameters
    #: the proxy's ingress hook unless params name one: tc, the fastest on this veth testbed
    #: (BENCHMARKS.md, hook comparison) and correct here, since no peer sends GSO frames
    ingress: str = "tc"
    delay_ms: float = 3.0
    #: checker expectation; None: after the proxy's update rule iff a proxy is in the path
    after_proxy: bool | None = None
    #: names: namespaces sfcd-<tag>-<role>, proxy instance sfcd-<tag>; None: random
    tag: str | None = None
    #: encap srv6 (the kernel-peer testbed, sfcframe.demo.srv6_run): the inner packets
    #: (ipv4: End.DX4, ipv6: End.DT6), the kernel's HMAC, what owns SID_PROXY on the VNF
    #: host (end: the kernel's End stand-in, proxy: sfcframe's srv6 proxy, auto: the
    #: proxy when the srv6 plugin is installed), the hop limit the checker expects
    #: (None: the plan's), and (tests only) a stamper that corrupts an HMAC-covered segment
    inner: str = "ipv4"
    hmac: bool = False
    sf: str = "auto"
    hop_limit: int | None = None
    corrupt: bool = False
    #: encap srv6: kernel IOAM routers around the VNF host and a pre-allocated IOAM
    #: trace the stamper inserts and the checker reads (sfcframe.demo.srv6_ioam);
    #: its IOAM-Trace-Type (None: the default, bits 0-5), the node data slots, who fills
    #: the VNF host's slot (auto | kernel | proxy | none: srv6_ioam.IoamOptions.vnf)
    ioam: bool = False
    ioam_trace_type: int | None = None
    ioam_slots: int | None = None
    ioam_vnf: str = "auto"
    #: what the sender sends (sfcframe.demo.flowtraffic.TRAFFIC): tcp (iperf3), udp
    #: (iperf3 -u), rtp (cfg.rtp_streams streams), esp, icmp (ping -f) or mixed
    traffic: str = "tcp"
    rtp_streams: int = 50
    #: rtp / esp: packets per second in all (None: rtp 50 per stream, esp as fast as it goes)
    rate_pps: int | None = None
    #: the proxy's metadata stages (``sfcframe up --stage``), in order. ``ioam``: the
    #: stamper puts a pre-allocated IOAM trace on every packet (SRv6: as with ``ioam``;
    #: NSH: an RFC 9452 IOAM header behind NSH), the proxy's stage fills the VNF host's
    #: node data (its settings written as ``sfcframe set NAME ioam.X=V`` would) and the
    #: checker holds it to them on every packet; the summary reports the dwell time
    stages: list[str] = field(default_factory=list)

    def resolved_key(self) -> str:
        """``auto`` picks: metadata behind NAT, tcpip for TCP traffic, and for any other
        traffic the ``auto`` key plugin (a derivation per packet by protocol)."""
        if self.key != "auto":
            return self.key
        if self.traffic != "tcp" and self.vnf != "nat":
            return "auto"
        return AUTO_KEY.get(self.vnf, "tcpip")

    @property
    def with_proxy(self) -> bool:
        return self.vnf != "none"


Progress = Callable[[dict[str, Any]], None]
