"""The ESP key: IPsec ESP, IP protocol 50 and UDP-encapsulated (RFC 3948).

ESP names its packets itself: the SPI names the SA at its destination (RFC
4303) and the sequence number increases by one with every packet sent on the
SA (with extended sequence numbers the low 32 bits travel, wrapping after 2^32
packets, long after a cache entry's life). The key holds the destination
address, the SPI, the sequence number and whether the packet was
UDP-encapsulated, in the flow layout (:mod:`sfcframe.keys.flow`). The source
address, the ports and the IP id are left out, so a function that rewrites the
source (a source NAT, also of the UDP source port of NAT traversal) keeps the
key (:attr:`EspKey.survives_nat`), as long as the packet still carries the
NAT-T port: a NAT translates the source of packets sent *to* port 4500.

Which packets are ESP (``esp.c.j2``, :func:`derive_esp`):

- IP protocol 50 directly behind the IP header: the SPI and sequence number
  (8 bytes) present, else ``malformed``; counted ``esp``.
- UDP with source or destination port ``nat_t_port`` (4500), by its payload:
  one byte 0xFF is a NAT-keepalive (``keepalive``), four zero bytes first are
  the non-ESP marker of IKE (``ike``), fewer than 8 bytes otherwise ``other``,
  anything else ESP (``esp_in_udp``). UDP on other ports and other protocols
  are ``other``. Keepalives, IKE and ``other`` are outside the key (``no_key``).
"""

from __future__ import annotations

from typing import Any, Mapping

from sfcframe.keys import flow
from sfcframe.keys.flowkey import FlowKey, example_ip, ip_layer, ip_strategy
from sfcframe.params import Param
from sfcframe.plugin import BenchInner

ESP_HDR_LEN = 8
PARAMS = (
    Param("nat_t_port", "int", 4500, "UDP port of UDP-encapsulated ESP (RFC 3948), either "
          "direction", 1, 65535),
)
#: a fixed AES-GCM key for test packets (RFC 4106: 16-byte key + 4-byte salt)
TEST_KEY = bytes(range(20))


def _esp_key(inner: flow.Inner, esp: bytes, in_udp: int) -> bytes:
    label = inner.label & 0xF0000000
    return flow.pack(inner, body=esp[0:8] + in_udp.to_bytes(4, "big") + bytes(4), saddr=bytes(16),
                     label=label, doff_flags=flow.KINDS["esp"])


def derive_esp(inner: flow.Inner, values: Mapping[str, Any]) -> tuple[str, bytes | None]:
    """Python twin of ``esp_derive_ip()`` / ``esp_derive_udp()``."""
    if inner.proto == flow.IPPROTO_ESP:
        if len(inner.l4) < ESP_HDR_LEN:
            return "malformed", None
        return "esp", _esp_key(inner, inner.l4, 0)
    header = flow.udp_header(inner)
    if header is None:
        return "malformed", None
    if values["nat_t_port"] not in header[:2]:
        return "other", None
    payload = inner.l4[8:]
    if len(payload) == 1:
        return ("keepalive" if payload == flow.NAT_KEEPALIVE else "other"), None
    if len(payload) < 4:
        return "other", None
    if payload[:4] == bytes(4):
        return "ike", None
    if len(payload) < ESP_HDR_LEN:
        return "other", None
    return "esp_in_udp", _esp_key(inner, payload, 1)


def uses_nat_t_source(inner: bytes, values: Mapping[str, Any]) -> bool:
    """Whether ``inner`` is UDP-encapsulated ESP matched by its source port alone."""
    ethertype = flow.ETH_P_IPV6 if inner[:1] and inner[0] >> 4 == 6 else flow.ETH_P_IP
    _, parsed = flow.parse_ip(inner, ethertype)
    if parsed is None or parsed.proto != flow.IPPROTO_UDP:
        return False
    header = flow.udp_header(parsed)
    return header is not None and header[1] != values["nat_t_port"]


def esp_packet(ip: dict | None = None, ethertype: int = flow.ETH_P_IP, spi: int = 0x5FC00001,
               seq: int = 1, payload: bytes = bytes(64), in_udp: bool = False,
               sport: int = 4500, dport: int = 4500, iv: bytes | None = None) -> bytes:
    """A real ESP packet: ``payload`` as a UDP datagram encrypted with AES-GCM (RFC
    4106) by scapy's SecurityAssociation, optionally UDP-encapsulated (RFC 3948)."""
    from scapy.layers.inet import UDP
    from scapy.layers.ipsec import ESP, SecurityAssociation

    layer = ip_layer(**ip) if ip else example_ip(ethertype)
    nat_t = UDP(sport=sport, dport=dport) if in_udp else None
    sa = SecurityAssociation(ESP, spi=spi, seq_num=seq, crypt_algo="AES-GCM", crypt_key=TEST_KEY,
                             auth_algo="NULL", nat_t_header=nat_t)
    plain = layer / UDP(sport=40000, dport=9) / payload
    return bytes(sa.encrypt(plain, iv=iv or seq.to_bytes(8, "big")))


def esp_strategy(values: Mapping[str, Any], ethertype: int):
    """Hypothesis strategy of ESP packets the key keys (protocol 50 or in UDP)."""
    from hypothesis import strategies as st

    port = values["nat_t_port"]
    other = st.integers(1, 65535)
    ports = st.one_of(st.tuples(st.just(port), st.just(port)), st.tuples(other, st.just(port)),
                      st.tuples(st.just(port), other))
    return st.builds(
        lambda ip, spi, seq, payload, in_udp, p: esp_packet(ip, spi=spi, seq=seq, payload=payload,
                                                            in_udp=in_udp, sport=p[0], dport=p[1]),
        ip_strategy(ethertype), st.integers(1, 2**32 - 1), st.integers(0, 2**32 - 1),
        st.binary(max_size=64), st.booleans(), ports)


def esp_pair_strategy(values: Mapping[str, Any], ethertype: int):
    """Two consecutive packets of one SA (sequence number + 1), raw or in UDP."""
    from hypothesis import strategies as st

    port = values["nat_t_port"]
    return st.builds(
        lambda ip, spi, seq, in_udp: tuple(esp_packet(ip, spi=spi, seq=seq + n, in_udp=in_udp,
                                                      sport=port, dport=port) for n in (0, 1)),
        ip_strategy(ethertype), st.integers(1, 2**32 - 1), st.integers(0, 2**32 - 2),
        st.booleans())


class EspKey(FlowKey):
    description = ("IPsec ESP (IP protocol 50, and in UDP on port 4500): destination, SPI, "
                   "sequence number; survives source NAT")
    template = "esp.c.j2"
    params = PARAMS
    survives_nat = True
    chains = {flow.IPPROTO_ESP: ("esp",), flow.IPPROTO_UDP: ("esp",)}
    counters = ("esp", "esp_in_udp", "ike", "keepalive", "other", "malformed", "error")

    def derivations(self):
        return {"esp": derive_esp}

    def bench_inners(self, values, payload: int) -> Mapping[str, BenchInner]:
        """ESP, and ESP in UDP to port 4500; the ESP sequence number counted."""
        return {"esp": BenchInner(esp_packet(payload=bytes(payload)), ((24, "!I"),)),
                "esp_udp": BenchInner(esp_packet(payload=bytes(payload), in_udp=True),
                                      ((32, "!I"),))}

    def example_inner(self, values, ethertype=flow.ETH_P_IP) -> bytes:
        return esp_packet(ethertype=ethertype)

    def vnf_steps(self, values, inner: bytes) -> tuple[str, ...]:
        """A source NAT keeps the key, also of ESP in UDP sent to the NAT-T port; one
        sent from it (the responder's direction) would lose its port match."""
        steps = super().vnf_steps(values, inner)
        if uses_nat_t_source(inner, values):
            steps = tuple(s for s in steps if s != "nat")
        return steps

    def inner_strategy(self, values, ethertype=flow.ETH_P_IP):
        return esp_strategy(values, ethertype)

    def flow_pair_strategy(self, values, ethertype=flow.ETH_P_IP):
        return esp_pair_strategy(values, ethertype)
