"""Inner packets, frames and simulated VNF steps for tests.

Packets are built with scapy and handled as bytes; the VNF steps edit bytes
directly and recompute checksums, so a test sees exactly what changed.
"""

from __future__ import annotations

import struct

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
DST_MAC = bytes.fromhex("020000000002")
SRC_MAC = bytes.fromhex("020000000001")


def ether(ethertype: int, dst: bytes = DST_MAC, src: bytes = SRC_MAC) -> bytes:
    return dst + src + struct.pack("!H", ethertype)


def frame(ethertype: int, header: bytes, inner: bytes) -> bytes:
    """Ethernet header, encapsulation header, inner packet."""
    return ether(ethertype) + header + inner


# ---- checksums ------------------------------------------------------------
def internet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _with_ip_checksum(l3: bytearray) -> bytearray:
    ihl_len = (l3[0] & 0x0F) * 4
    l3[10:12] = b"\x00\x00"
    l3[10:12] = struct.pack("!H", internet_checksum(bytes(l3[:ihl_len])))
    return l3


def _with_tcp_checksum(l3: bytearray) -> bytearray:
    ihl_len = (l3[0] & 0x0F) * 4
    tot_len = struct.unpack_from("!H", l3, 2)[0]
    segment = bytearray(l3[ihl_len:tot_len])
    segment[16:18] = b"\x00\x00"
    pseudo = bytes(l3[12:20]) + struct.pack("!BBH", 0, l3[9], len(segment))
    l3[ihl_len + 16 : ihl_len + 18] = struct.pack("!H", internet_checksum(pseudo + bytes(segment)))
    return l3


# ---- VNF steps on a plain Ethernet frame ----------------------------------
def vnf_identity(plain: bytes) -> bytes:
    return plain


def vnf_ttl_decrement(plain: bytes) -> bytes:
    """A router: IPv4 TTL - 1 and the header checksum updated; IPv6 hop limit - 1."""
    l3 = bytearray(plain[14:])
    if l3[0] >> 4 == 6:
        l3[7] = (l3[7] - 1) & 0xFF
        return plain[:14] + bytes(l3)
    l3[8] = (l3[8] - 1) & 0xFF
    return plain[:14] + bytes(_with_ip_checksum(l3))


def vnf_trim(plain: bytes) -> bytes:
    """A function that changes the packet's length: the last payload byte
    removed (or one added to an empty payload), lengths and checksums
    updated. A header whose length covers the inner packet must follow."""
    l3 = bytearray(plain[14:])
    if l3[0] >> 4 == 6:
        from scapy.layers.inet6 import IPv6

        pkt = IPv6(bytes(l3))
        body = bytes(pkt.payload)
        body = body[:-1] if len(body) > 20 else body + b"!"
        pkt.remove_payload()
        pkt.plen = None
        return plain[:14] + _retransport(pkt, body)
    from scapy.layers.inet import IP

    pkt = IP(bytes(l3))
    body = bytes(pkt.payload)
    body = body[:-1] if len(body) > 20 else body + b"!"
    pkt.remove_payload()
    pkt.len = None
    pkt.chksum = None
    return plain[:14] + _retransport(pkt, body)


def _retransport(l3_packet, segment: bytes) -> bytes:
    """``segment`` behind ``l3_packet``, its TCP checksum (if TCP) recomputed."""
    from scapy.layers.inet import TCP
    from scapy.packet import Raw

    proto = getattr(l3_packet, "proto", None) or getattr(l3_packet, "nh", None)
    if proto == 6 and len(segment) >= 20:
        tcp = TCP(segment)
        tcp.chksum = None
        return bytes(l3_packet / tcp)
    return bytes(l3_packet / Raw(segment))


NAT_ADDRESS = bytes([100, 64, 0, 1])
NAT_PORT = 40000


def vnf_nat(plain: bytes) -> bytes:
    """A source NAT: new source address and TCP/UDP port, checksums updated."""
    l3 = bytearray(plain[14:])
    ihl_len = (l3[0] & 0x0F) * 4
    l3[12:16] = NAT_ADDRESS
    if l3[9] in (6, 17):
        l3[ihl_len : ihl_len + 2] = struct.pack("!H", NAT_PORT)
    if l3[9] == 6:
        _with_tcp_checksum(l3)
    if l3[9] == 17:
        l3[ihl_len + 6 : ihl_len + 8] = b"\x00\x00"  # UDP checksum optional over IPv4
    return plain[:14] + bytes(_with_ip_checksum(l3))


VNF_STEPS = {"identity": vnf_identity, "ttl": vnf_ttl_decrement, "nat": vnf_nat,
             "trim": vnf_trim}
#: the steps that work on IPv6 inner packets too (NAT here is IPv4 source NAT)
VNF_STEPS_IPV6 = ("identity", "ttl", "trim")


# ---- inner packets --------------------------------------------------------
def tcp_ipv4(
    src: str = "10.1.0.1",
    dst: str = "10.2.0.1",
    sport: int = 40001,
    dport: int = 5201,
    seq: int = 1000,
    ack: int = 2000,
    ip_id: int = 1,
    window: int = 512,
    ttl: int = 64,
    ip_option_words: int = 0,
    tcp_option_words: int = 0,
    payload: bytes = b"payload!",
    flags: str = "PA",
    frag: int = 0,
    ip_flags: str = "DF",
) -> bytes:
    from scapy.layers.inet import IP, TCP, IPOption_NOP

    ip = IP(
        src=src,
        dst=dst,
        id=ip_id,
        ttl=ttl,
        flags=ip_flags,
        frag=frag,
        options=[IPOption_NOP()] * (4 * ip_option_words),
    )
    tcp = TCP(
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        window=window,
        flags=flags,
        options=[("NOP", None)] * (4 * tcp_option_words),
    )
    return bytes(ip / tcp / payload)


def inner_tcp_strategy():
    """Hypothesis strategy of IPv4/TCP packets (bytes), options included."""
    from hypothesis import strategies as st

    octet = st.integers(1, 254)
    address = st.tuples(octet, octet, octet, octet).map(lambda t: ".".join(map(str, t)))
    return st.builds(
        tcp_ipv4,
        src=address,
        dst=address,
        sport=st.integers(1, 65535),
        dport=st.integers(1, 65535),
        seq=st.integers(0, 2**32 - 1),
        ack=st.integers(0, 2**32 - 1),
        ip_id=st.integers(0, 65535),
        window=st.integers(0, 65535),
        ttl=st.integers(2, 255),
        ip_option_words=st.integers(0, 10),
        tcp_option_words=st.integers(0, 10),
        payload=st.binary(max_size=96),
        flags=st.sampled_from(["S", "SA", "A", "PA", "FA", "R"]),
    )


def tcp_ipv6(
    src: str = "fd00:1::1",
    dst: str = "fd00:2::1",
    sport: int = 40001,
    dport: int = 5201,
    seq: int = 1000,
    ack: int = 2000,
    window: int = 512,
    hlim: int = 64,
    tc: int = 0,
    fl: int = 0x12345,
    tcp_option_words: int = 0,
    timestamps: tuple[int, int] | None = None,
    payload: bytes = b"payload!",
    flags: str = "PA",
) -> bytes:
    """An IPv6/TCP packet; ``timestamps`` adds the TCP timestamp option (TSval, TSecr)."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6

    options = [("NOP", None)] * (4 * tcp_option_words)
    if timestamps is not None:
        options += [("NOP", None), ("NOP", None), ("Timestamp", timestamps)]
    tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ack, window=window, flags=flags,
              options=options)
    return bytes(IPv6(src=src, dst=dst, hlim=hlim, tc=tc, fl=fl) / tcp / payload)


def inner_tcp6_strategy():
    """Hypothesis strategy of IPv6/TCP packets (bytes), options and timestamps included."""
    from hypothesis import strategies as st
    import ipaddress

    address = st.binary(min_size=16, max_size=16).map(lambda b: str(ipaddress.IPv6Address(b)))
    return st.builds(
        tcp_ipv6,
        src=address,
        dst=address,
        sport=st.integers(1, 65535),
        dport=st.integers(1, 65535),
        seq=st.integers(0, 2**32 - 1),
        ack=st.integers(0, 2**32 - 1),
        window=st.integers(0, 65535),
        hlim=st.integers(2, 255),
        tc=st.integers(0, 255),
        fl=st.integers(0, 0xFFFFF),
        tcp_option_words=st.integers(0, 7),
        timestamps=st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
        payload=st.binary(max_size=96),
        flags=st.sampled_from(["S", "SA", "A", "PA", "FA", "R"]),
    )


def inner_strategy(ethertype: int):
    """TCP inner packets of one family: IPv4 (0x0800) or IPv6 (0x86DD)."""
    return inner_tcp6_strategy() if ethertype == ETH_P_IPV6 else inner_tcp_strategy()


def example_inner(ethertype: int) -> bytes:
    return tcp_ipv6() if ethertype == ETH_P_IPV6 else tcp_ipv4()
