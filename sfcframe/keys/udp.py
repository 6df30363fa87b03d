"""The UDP key: any UDP datagram, by the strongest immutable discriminator it has.

UDP has no sequence number. The key holds what a forwarding function leaves
alone: addresses, ports, the IPv4 id (IPv6 has none: the flow label, constant
per flow, stands in its place), the UDP length and checksum as sent (the
checksum covers the whole payload), and a 64-bit hash of the first
``hash_bytes`` payload bytes (default 32; FNV-1a over 32-bit words,
:func:`sfcframe.keys.flow.payload_hash`), in the flow layout
(:mod:`sfcframe.keys.flow`).

What it cannot tell apart: two datagrams of one flow with the same IPv4 id (or
over IPv6), the same length and checksum and the same first ``hash_bytes``
bytes, in flight at once: a retransmitted identical datagram (a DNS retry, an
application that repeats itself) and, with a payload hash collision, two
different ones. The second is a counted ``collision`` at ingress (it passes
without being cached, per the policy of ``collision``), never a wrong header.
How often that happens under real traffic is in BENCHMARKS.md. The IPv4 id
does much of the work: this kernel (6.18) gives every UDP datagram a new one,
connected socket or not, DF or not, so over IPv4 two datagrams sent one after
the other differ even when their bytes do not (the ids wrap after 65,536
datagrams per destination); over IPv6, and from senders that write their own
IP header, only the payload, length and checksum tell them apart. A function that changes the payload or
its length (the test kit's ``trim``) changes the key: not for such functions.

Checks (``udp_derive()`` in ``udp.c.j2``, :func:`derive_udp`): UDP directly
behind the IP header, else ``other``; its 8-byte header within the datagram,
else ``malformed``. The hashed bytes are those the IP header covers behind the
UDP header, at most ``hash_bytes``.
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from sfcframe.errors import ParamError
from sfcframe.keys import flow
from sfcframe.keys.flowkey import FlowKey, example_ip, ip_layer, ip_strategy, udp_bytes
from sfcframe.params import Param
from sfcframe.plugin import BenchInner

PARAMS = (
    Param("hash_bytes", "int", 32, "UDP payload bytes hashed into the key (a multiple of 4)",
          0, 64),
)


def validate_hash_bytes(values: Mapping[str, Any], owner: str) -> None:
    if values["hash_bytes"] % 4:
        raise ParamError(f"key {owner}: hash_bytes={values['hash_bytes']} is not a multiple of 4")


def derive_udp(inner: flow.Inner, values: Mapping[str, Any]) -> tuple[str, bytes | None]:
    """Python twin of ``udp_derive()`` + ``udp_hash()``."""
    header = flow.udp_header(inner)
    if header is None:
        return "malformed", None
    sport, dport, length, checksum = header
    data = inner.l4[8:8 + values["hash_bytes"]]
    h = flow.payload_hash(data, values["hash_bytes"] // 4)
    body = struct.pack("!HHQI", length, checksum, h, len(data))
    return "udp", flow.pack(inner, sport, dport, body, doff_flags=flow.KINDS["udp"])


def udp_packet(ip: dict | None = None, ethertype: int = flow.ETH_P_IP, sport: int = 40000,
               dport: int = 5201, payload: bytes = b"udp payload!", checksum: bool = True) -> bytes:
    layer = ip_layer(**ip) if ip else example_ip(ethertype)
    return udp_bytes(layer, sport, dport, payload, checksum=checksum or layer.version == 6)


def udp_strategy(values: Mapping[str, Any], ethertype: int):
    from hypothesis import strategies as st

    return st.builds(udp_packet, ip=ip_strategy(ethertype), sport=st.integers(0, 65535),
                     dport=st.integers(0, 65535), payload=st.binary(max_size=96),
                     checksum=st.booleans())


def udp_pair_strategy(values: Mapping[str, Any], ethertype: int):
    """Two consecutive datagrams of one UDP flow that number their payloads (a
    sequence number in the first 8 bytes, as iperf3's do), the rest alike."""
    from hypothesis import strategies as st

    def pair(ip, sport, dport, counter, tail):
        return tuple(udp_packet(ip, sport=sport, dport=dport,
                                payload=struct.pack("!Q", counter + n) + tail) for n in (0, 1))

    return st.builds(pair, ip_strategy(ethertype), st.integers(0, 65535), st.integers(0, 65535),
                     st.integers(0, 2**64 - 2), st.binary(max_size=64))


class UdpKey(FlowKey):
    description = ("any UDP: addresses, ports, IPv4 id, UDP length and checksum, a hash of "
                   "the first payload bytes (identical datagrams in flight collide)")
    template = "udp.c.j2"
    params = PARAMS
    chains = {flow.IPPROTO_UDP: ("udp",)}
    counters = ("udp", "other", "malformed", "error")

    def derivations(self):
        return {"udp": derive_udp}

    def validate(self, values: Mapping[str, Any]) -> None:
        validate_hash_bytes(values, self.name or "udp")

    def bench_inners(self, values, payload: int) -> Mapping[str, BenchInner]:
        """The first payload word counted."""
        return {"udp": BenchInner(udp_packet(payload=bytes(payload)), ((28, "!I"),))}

    def example_inner(self, values, ethertype=flow.ETH_P_IP) -> bytes:
        return udp_packet(ethertype=ethertype)

    def inner_strategy(self, values, ethertype=flow.ETH_P_IP):
        return udp_strategy(values, ethertype)

    def flow_pair_strategy(self, values, ethertype=flow.ETH_P_IP):
        return udp_pair_strategy(values, ethertype)

    def vnf_steps(self, values, inner: bytes) -> tuple[str, ...]:
        return tuple(s for s in super().vnf_steps(values, inner) if s != "trim")
