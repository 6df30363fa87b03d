"""The flow key layout and the per-packet derivations behind it.

The keys ``rtp``, ``esp``, ``icmp``, ``udp`` and ``auto`` share one 60-byte
``struct sfc_key``, the layout of ``tcpip`` with ``family=any`` (so that
``auto`` stores a TCP packet under exactly the key ``tcpip`` gives it):

======  =====  ==============================================================
offset  bytes  field
======  =====  ==============================================================
0       16     source address: IPv6, or IPv4-mapped IPv4 (``::ffff:a.b.c.d``)
16      16     destination address, the same way
32      2      ``sport``: TCP/UDP source port; ICMP echo identifier
34      2      ``dport``: TCP/UDP destination port; ICMP echo sequence number
36      16     ``body``: four words naming the packet, per derivation (below)
52      4      ``label``: IPv4: ``0x4`` above the IP id; IPv6: version 6 and
               the flow label (traffic class masked)
56      2      ``window``: TCP window (tcpip only)
58      2      ``doff_flags``: tcpip: TCP data offset (5..15) and flags;
               every other derivation: its kind (:data:`KINDS`), whose data
               offset nibble is 0, so no other key equals a TCP key
======  =====  ==============================================================

``body`` per derivation: tcpip: sequence and acknowledgement numbers, TSval,
TSecr; rtp: SSRC, timestamp, the first RTP word (V P X CC M PT and the
sequence number), 0; esp: SPI, sequence number, 0 (IP protocol 50) or 1
(UDP-encapsulated), 0; icmp: type and code in the top bytes, 0, 0, 0; udp:
UDP length and checksum, the 64-bit payload hash (:func:`payload_hash`), the
number of payload bytes hashed. ESP keys leave the source address, the ports
and the IP id out (``label`` holds the version alone): the SA is named by the
destination and the SPI (RFC 4303), so a source NAT keeps the key.

Everything here is the Python twin of ``_flow.c.j2`` and the derivation
macros of the key templates (``rtp.c.j2``, ...): the reason codes, their
order, and the checks.

IP checks, in order (C ``flow_ip()``): IPv4: header present, version 4 and
IHL >= 5, else ``malformed``; IHL <= total length <= the bytes present, else
``malformed``; a non-first fragment is ``other``. IPv6: fixed header present
and version 6, else ``malformed``; 40 + payload length within the packet,
else ``malformed``. Anything but IPv4/IPv6 is ``other``. The layer-4 bytes
are those the IP header covers (Ethernet padding is not part of them); only
protocols directly behind the fixed IPv6 header are looked at (an extension
header is ``other``, as for tcpip).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable, Mapping

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ESP, IPPROTO_ICMPV6 = 1, 6, 17, 50, 58

#: struct sfc_key of every flow key, network byte order: the one place its size is fixed
KEY_FORMAT = "!16s16sHH16sIHH"
KEY_SIZE = struct.calcsize(KEY_FORMAT)
assert KEY_SIZE == 60

LABEL_MASK = 0xF00FFFFF
LABEL_IPV4 = 0x40000000
IPV4_MAPPED = bytes(10) + b"\xff\xff"
IP_OFFSET_MASK = 0x1FFF

#: the doff_flags word of keys that are not TCP: the derivation's kind
KINDS = {"rtp": 2, "esp": 3, "icmp": 4, "udp": 5}

#: why a derivation keyed a packet or not; the C enum flow_reason has this order.
#: The first group keyed the packet, the second says it is outside the derivation
#: (a chain of derivations then tries the next), the last two end the chain.
KEYED = ("tcpip", "rtp", "esp", "esp_in_udp", "echo", "udp")
OUTSIDE = ("rtcp", "not_rtp", "ike", "keepalive", "not_echo", "other")
FAILED = ("malformed", "error")
REASONS = KEYED + OUTSIDE + FAILED

#: RTP payload types that are RTCP packet types 200-204 with the marker bit taken
#: away (RFC 5761, section 4): a packet with one of them is RTCP, not RTP
RTCP_PT = range(72, 77)
#: RFC 3948: a UDP payload starting with 4 zero bytes is IKE (non-ESP marker);
#: one byte 0xFF alone is a NAT-keepalive
NAT_KEEPALIVE = b"\xff"
#: FNV-1a (64 bit) over big-endian 32-bit words: offset basis and prime
HASH_BASIS = 0xCBF29CE484222325
HASH_PRIME = 0x100000001B3
M64 = (1 << 64) - 1


@dataclass(frozen=True)
class Inner:
    """An inner packet's network layer as the derivations see it."""

    ethertype: int
    saddr: bytes  # 16 bytes, IPv4 mapped
    daddr: bytes
    label: int
    proto: int
    l4: bytes  # the layer-4 bytes the IP header covers


def parse_ip(l3: bytes, ethertype: int) -> tuple[str, Inner | None]:
    """("next", Inner) or (reason, None): the checks of ``flow_ip()``."""
    if ethertype == ETH_P_IP:
        if len(l3) < 20 or l3[0] >> 4 != 4 or l3[0] & 0x0F < 5:
            return "malformed", None
        ihl_len = (l3[0] & 0x0F) * 4
        tot_len = struct.unpack_from("!H", l3, 2)[0]
        if tot_len < ihl_len or tot_len > len(l3):
            return "malformed", None
        if struct.unpack_from("!H", l3, 6)[0] & IP_OFFSET_MASK:
            return "other", None
        label = LABEL_IPV4 | struct.unpack_from("!H", l3, 4)[0]
        return "next", Inner(ethertype, IPV4_MAPPED + l3[12:16], IPV4_MAPPED + l3[16:20], label,
                             l3[9], l3[ihl_len:tot_len])
    if ethertype == ETH_P_IPV6:
        if len(l3) < 40 or l3[0] >> 4 != 6:
            return "malformed", None
        payload_len = struct.unpack_from("!H", l3, 4)[0]
        if 40 + payload_len > len(l3):
            return "malformed", None
        label = struct.unpack_from("!I", l3, 0)[0] & LABEL_MASK
        return "next", Inner(ethertype, l3[8:24], l3[24:40], label, l3[6], l3[40:40 + payload_len])
    return "other", None


def pack(inner: Inner, sport: int = 0, dport: int = 0, body: bytes = bytes(16),
         window: int = 0, doff_flags: int = 0, *, saddr: bytes | None = None,
         label: int | None = None) -> bytes:
    """The key bytes of a keyed packet."""
    return struct.pack(KEY_FORMAT, inner.saddr if saddr is None else saddr, inner.daddr, sport,
                       dport, body, inner.label if label is None else label, window, doff_flags)


def payload_hash(data: bytes, words: int) -> int:
    """The udp key's 64-bit hash of ``data`` (at most ``4 * words`` bytes): FNV-1a over
    ``words`` big-endian 32-bit words of the zero-padded bytes, started from the
    basis XOR the number of bytes (so trailing zeros still count)."""
    buf = data + bytes(4 * words - len(data))
    h = HASH_BASIS ^ len(data)
    for (word,) in struct.iter_unpack("!I", buf):
        h = ((h ^ word) * HASH_PRIME) & M64
    return h


#: a derivation: (inner, values) -> (reason, key or None)
Derivation = Callable[[Inner, Mapping[str, Any]], tuple[str, bytes | None]]


def derive(l3: bytes, ethertype: int, values: Mapping[str, Any],
           dispatch: Mapping[int, tuple[Derivation, ...]]) -> tuple[str, bytes | None]:
    """(reason, key bytes or None) for an inner packet: the IP checks, then the chain
    of derivations ``dispatch`` names for its layer-4 protocol (a protocol it does
    not name is ``other``), each tried while the previous one says ``outside``."""
    reason, inner = parse_ip(l3, ethertype)
    if inner is None:
        return reason, None
    reason, key = "other", None
    for derivation in dispatch.get(inner.proto, ()):
        reason, key = derivation(inner, values)
        if reason not in OUTSIDE:
            break
    return reason, key


def key_outcome(reason: str) -> str:
    """The ingress outcome of a derivation's reason (keyed: "ok")."""
    if reason in KEYED:
        return "ok"
    return reason if reason in FAILED else "no_key"


def udp_header(inner: Inner) -> tuple[int, int, int, int] | None:
    """(sport, dport, length, checksum) of the UDP header, or None if the layer-4
    bytes do not hold one (the derivations call that ``malformed``)."""
    if len(inner.l4) < 8:
        return None
    return struct.unpack_from("!HHHH", inner.l4, 0)
