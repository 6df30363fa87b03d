"""The RTP key: IPv4/IPv6 + UDP + RTP version 2 (RFC 3550).

A packet of an RTP stream is named by its addresses, ports, SSRC, sequence
number and timestamp; the key holds those (and the IPv4 id or IPv6 flow
label, the marker and payload type) in the flow layout
(:mod:`sfcframe.keys.flow`). No function on the path rewrites them, and within
one stream the sequence number changes with every packet (it wraps only after
65,536 packets, far beyond a cache entry's life).

**Which UDP datagrams are RTP** (``rtp_derive()`` in ``rtp.c.j2``, and
:func:`derive_rtp`), in order:

1. a UDP header within the datagram, else ``malformed``;
2. the destination port within ``rtp_port_min``..``rtp_port_max`` (the port
   policy; default 1024..65535: RTP runs on dynamic ports, well-known services
   below 1024 are never taken for RTP), else ``not_rtp``;
3. room for the 12-byte fixed RTP header and version 2 in its first two bits,
   else ``not_rtp``;
4. a payload type (the second byte without the marker bit) of 72..76 is RTCP
   (packet types 200..204 with the marker bit: RFC 5761 section 4, how RTP and
   RTCP multiplexed on one port are told apart): ``rtcp``, outside the key;
5. the CSRC list (4 bytes per CSRC count) within the datagram, else ``not_rtp``.

RTCP and ``not_rtp`` datagrams are outside the key (ingress outcome
``no_key``), and each is counted (``sfc_key_ingress`` / ``sfc_key_egress``:
``rtp``, ``rtcp``, ``not_rtp``, ``other`` for non-UDP, ``malformed``,
``error``). A non-RTP datagram that passes the checks (a version-2 bit pattern
on a dynamic port) is keyed by its bytes 2..11 as if they were RTP; such a key
is still per packet whenever those bytes change from datagram to datagram, and
two equal keys in flight are a counted ``collision``, never a wrong header
(BENCHMARKS.md measures the collision rate). ``auto`` keys UDP that is neither
ESP nor RTP with the ``udp`` derivation instead.
"""

from __future__ import annotations

from typing import Any, Mapping

from sfcframe.errors import ParamError
from sfcframe.keys import flow
from sfcframe.keys.flowkey import FlowKey, example_ip, ip_layer, ip_strategy, udp_bytes
from sfcframe.params import Param
from sfcframe.plugin import BenchInner

RTP_HDR_LEN = 12

PARAMS = (
    Param("rtp_port_min", "int", 1024, "lowest UDP destination port taken for RTP", 0, 65535),
    Param("rtp_port_max", "int", 65535, "highest UDP destination port taken for RTP", 0, 65535),
)


def validate_ports(values: Mapping[str, Any], owner: str) -> None:
    if values["rtp_port_min"] > values["rtp_port_max"]:
        raise ParamError(f"key {owner}: rtp_port_min={values['rtp_port_min']} is above "
                         f"rtp_port_max={values['rtp_port_max']}")


def derive_rtp(inner: flow.Inner, values: Mapping[str, Any]) -> tuple[str, bytes | None]:
    """Python twin of ``rtp_derive()``."""
    header = flow.udp_header(inner)
    if header is None:
        return "malformed", None
    sport, dport, _, _ = header
    if not values["rtp_port_min"] <= dport <= values["rtp_port_max"]:
        return "not_rtp", None
    rtp = inner.l4[8:]
    if len(rtp) < RTP_HDR_LEN or rtp[0] >> 6 != 2:
        return "not_rtp", None
    if (rtp[1] & 0x7F) in flow.RTCP_PT:
        return "rtcp", None
    if RTP_HDR_LEN + (rtp[0] & 0x0F) * 4 > len(rtp):
        return "not_rtp", None
    body = rtp[8:12] + rtp[4:8] + rtp[0:4] + bytes(4)
    return "rtp", flow.pack(inner, sport, dport, body, doff_flags=flow.KINDS["rtp"])


def rtp_packet(ip: dict | None = None, ethertype: int = flow.ETH_P_IP, sport: int = 40000,
               dport: int = 5004, ssrc: int = 0x5FC0FFEE, seq: int = 1, timestamp: int = 160,
               pt: int = 0, marker: int = 0, csrcs: tuple[int, ...] = (),
               payload: bytes = bytes(160)) -> bytes:
    """An RTP packet over UDP (scapy's RTP layer)."""
    from scapy.layers.rtp import RTP

    layer = ip_layer(**ip) if ip else example_ip(ethertype)
    rtp = RTP(version=2, marker=marker, payload_type=pt, sequence=seq, timestamp=timestamp,
              sourcesync=ssrc, sync=list(csrcs))
    return udp_bytes(layer, sport, dport, bytes(rtp) + payload)


def rtp_strategy(values: Mapping[str, Any], ethertype: int):
    """Hypothesis strategy of RTP packets the key keys (any payload type but RTCP's,
    up to 3 CSRCs)."""
    from hypothesis import strategies as st

    word = st.integers(0, 2**32 - 1)
    return st.builds(
        rtp_packet, ip=ip_strategy(ethertype), sport=st.integers(1, 65535),
        dport=st.integers(values["rtp_port_min"], values["rtp_port_max"]).filter(lambda p: p),
        ssrc=word, seq=st.integers(0, 0xFFFF), timestamp=word,
        pt=st.integers(0, 127).filter(lambda pt: pt not in flow.RTCP_PT),
        marker=st.integers(0, 1), csrcs=st.lists(word, max_size=3).map(tuple),
        # at least one payload byte: the test kit's length-changing step then cuts
        # payload, never the RTP header (a function does not cut into headers)
        payload=st.binary(min_size=1, max_size=64))


def rtp_pair_strategy(values: Mapping[str, Any], ethertype: int):
    """Two consecutive packets of one RTP stream (sequence number + 1, timestamp + 160)."""
    from hypothesis import strategies as st

    def pair(ip, dport, ssrc, seq, ts):
        return tuple(rtp_packet(ip, dport=dport, ssrc=ssrc, seq=(seq + n) & 0xFFFF,
                                timestamp=(ts + 160 * n) & 0xFFFFFFFF) for n in (0, 1))

    return st.builds(pair, ip_strategy(ethertype),
                     st.integers(values["rtp_port_min"], values["rtp_port_max"]).filter(bool),
                     st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1))


class RtpKey(FlowKey):
    description = ("IPv4/IPv6 UDP+RTP v2: addresses, ports, SSRC, sequence number, "
                   "timestamp; RTCP and other UDP counted outside the key")
    template = "rtp.c.j2"
    params = PARAMS
    chains = {flow.IPPROTO_UDP: ("rtp",)}
    counters = ("rtp", "rtcp", "not_rtp", "other", "malformed", "error")

    def derivations(self):
        return {"rtp": derive_rtp}

    def validate(self, values: Mapping[str, Any]) -> None:
        validate_ports(values, self.name or "rtp")

    def bench_inners(self, values, payload: int) -> Mapping[str, BenchInner]:
        """RTP sequence number and timestamp counted."""
        return {"rtp": BenchInner(rtp_packet(payload=bytes(payload)), ((30, "!H"), (32, "!I")))}

    def example_inner(self, values, ethertype=flow.ETH_P_IP) -> bytes:
        return rtp_packet(ethertype=ethertype, dport=max(values["rtp_port_min"], 1))

    def inner_strategy(self, values, ethertype=flow.ETH_P_IP):
        return rtp_strategy(values, ethertype)

    def flow_pair_strategy(self, values, ethertype=flow.ETH_P_IP):
        return rtp_pair_strategy(values, ethertype)
