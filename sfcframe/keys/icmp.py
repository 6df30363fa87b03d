"""The ICMP key: ICMP and ICMPv6 echo requests and replies.

``ping`` numbers its packets: the identifier names the sender's socket, the
sequence number increases with every request (wrapping after 65,536; at the
fastest flood seen here, ~50 kpps, that is more than a second, far beyond the
time a packet spends between ingress and egress). The key holds the addresses,
identifier, sequence number, type and code, and the IPv4 id or IPv6 flow
label, in the flow layout (:mod:`sfcframe.keys.flow`).

Checks (``icmp_derive()`` in ``icmp.c.j2``, :func:`derive_icmp`): ICMP (IP
protocol 1) or ICMPv6 (next header 58) directly behind the IP header, else
``other``; its 8-byte echo header present, else ``malformed``; type echo
request or reply (8 / 0, ICMPv6 128 / 129), else ``not_echo`` (errors, neighbour
discovery, ...: outside the key, counted). A NAT rewrites the identifier, so the
key does not survive one.
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from sfcframe.keys import flow
from sfcframe.keys.flowkey import FlowKey, example_ip, ip_layer, ip_strategy
from sfcframe.plugin import BenchInner

ECHO = {flow.IPPROTO_ICMP: (8, 0), flow.IPPROTO_ICMPV6: (128, 129)}


def derive_icmp(inner: flow.Inner, values: Mapping[str, Any]) -> tuple[str, bytes | None]:
    """Python twin of ``icmp_derive()``."""
    if len(inner.l4) < 8:
        return "malformed", None
    kind, code = inner.l4[0], inner.l4[1]
    if kind not in ECHO[inner.proto]:
        return "not_echo", None
    ident, seq = struct.unpack_from("!HH", inner.l4, 4)
    body = struct.pack("!I", kind << 24 | code << 16) + bytes(12)
    return "echo", flow.pack(inner, ident, seq, body, doff_flags=flow.KINDS["icmp"])


def echo_packet(ip: dict | None = None, ethertype: int = flow.ETH_P_IP, ident: int = 0x1234,
                seq: int = 1, reply: bool = False, code: int = 0,
                payload: bytes = bytes(56)) -> bytes:
    """An ICMP (ICMPv6) echo request or reply."""
    layer = ip_layer(**ip) if ip else example_ip(ethertype)
    if layer.version == 6:
        from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest

        echo = (ICMPv6EchoReply if reply else ICMPv6EchoRequest)(id=ident, seq=seq, code=code)
    else:
        from scapy.layers.inet import ICMP

        echo = ICMP(type=0 if reply else 8, code=code, id=ident, seq=seq)
    return bytes(layer / echo / payload)


def echo_strategy(values: Mapping[str, Any], ethertype: int):
    from hypothesis import strategies as st

    return st.builds(echo_packet, ip=ip_strategy(ethertype), ident=st.integers(0, 0xFFFF),
                     seq=st.integers(0, 0xFFFF), reply=st.booleans(), code=st.integers(0, 255),
                     payload=st.binary(max_size=64))


def echo_pair_strategy(values: Mapping[str, Any], ethertype: int):
    """Two consecutive echo requests of one ping (sequence number + 1)."""
    from hypothesis import strategies as st

    return st.builds(
        lambda ip, ident, seq: tuple(echo_packet(ip, ident=ident, seq=(seq + n) & 0xFFFF)
                                     for n in (0, 1)),
        ip_strategy(ethertype), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))


class IcmpKey(FlowKey):
    description = ("ICMP/ICMPv6 echo request and reply: addresses, identifier, sequence "
                   "number, type, IPv4 id; other ICMP counted outside the key")
    template = "icmp.c.j2"
    chains = {flow.IPPROTO_ICMP: ("icmp",), flow.IPPROTO_ICMPV6: ("icmp",)}
    counters = ("echo", "not_echo", "other", "malformed", "error")

    def derivations(self):
        return {"icmp": derive_icmp}

    def bench_inners(self, values, payload: int) -> Mapping[str, BenchInner]:
        """An echo request, its sequence number counted."""
        return {"icmp": BenchInner(echo_packet(payload=bytes(payload)), ((26, "!H"),))}

    def example_inner(self, values, ethertype=flow.ETH_P_IP) -> bytes:
        return echo_packet(ethertype=ethertype)

    def inner_strategy(self, values, ethertype=flow.ETH_P_IP):
        return echo_strategy(values, ethertype)

    def flow_pair_strategy(self, values, ethertype=flow.ETH_P_IP):
        return echo_pair_strategy(values, ethertype)
