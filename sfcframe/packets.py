"""Inner packets, frames and simulated VNF steps for tests.

The key contract's default example packets come from here
(:meth:`sfcframe.plugin.KeyPlugin.example_inner` and its neighbours); the test
kit and plugin tests use them as :mod:`sfcframe.testkit.packets`.

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
    removed (or one added to an empty payload; a TCP header, options
    included, is never cut), lengths and checksums updated. A header whose
    length covers the inner packet must follow."""
    l3 = bytes(plain[14:])
    if l3[0] >> 4 == 6:
        from scapy.layers.inet6 import IPv6

        pkt = IPv6(l3)
        pkt_proto, pkt_len = pkt.nh, "plen"
    else:
        from scapy.layers.inet import IP

        pkt = IP(l3)
        pkt_proto, pkt_len = pkt.proto, "len"
        pkt.chksum = None
    body = bytes(pkt.payload)
    header = (body[12] >> 4) * 4 if pkt_proto == 6 and len(body) >= 20 else 20
    body = body[:-1] if len(body) > header else body + b"!"
    pkt.remove_payload()
    setattr(pkt, pkt_len, None)
    return plain[:14] + _retransport(pkt, body)


def _retransport(l3_packet, segment: bytes) -> bytes:
    """``segment`` behind ``l3_packet`` (lengths filled in by scapy), its TCP
    checksum (if TCP) recomputed on the bytes: the TCP header is never
    re-serialised, so options scapy cannot rebuild stay byte-exact."""
    from scapy.packet import Raw

    l3 = bytearray(bytes(l3_packet / Raw(segment)))
    proto = getattr(l3_packet, "proto", None) or getattr(l3_packet, "nh", None)
    if proto == 6 and len(segment) >= 20:
        _with_l4_checksum(l3, len(l3) - len(segment))
    return bytes(l3)


def _with_l4_checksum(l3: bytearray, l4_off: int) -> bytearray:
    """The TCP checksum of the segment at ``l4_off`` (to the end of ``l3``), over the
    IPv4 or IPv6 pseudo-header."""
    segment = bytearray(l3[l4_off:])
    segment[16:18] = b"\x00\x00"
    if l3[0] >> 4 == 6:
        pseudo = bytes(l3[8:40]) + struct.pack("!IxxxB", len(segment), 6)
    else:
        pseudo = bytes(l3[12:20]) + struct.pack("!BBH", 0, 6, len(segment))
    l3[l4_off + 16 : l4_off + 18] = struct.pack("!H", internet_checksum(pseudo + bytes(segment)))
    return l3


#: what vnf_remark XORs into the DSCP/ECN byte and the TCP flags
REMARK_TOS = 0xB9
REMARK_TCP_FLAGS = 0xC0  # CWR, ECE


def vnf_remark(plain: bytes) -> bytes:
    """A function that re-marks DSCP and ECN: the IPv4 TOS or IPv6 traffic class
    changed (IPv4 header checksum updated) and, for TCP directly behind the IP
    header, the ECN flags CWR and ECE flipped (TCP checksum updated)."""
    l3 = bytearray(plain[14:])
    if l3[0] >> 4 == 6:
        tc = (((l3[0] & 0x0F) << 4) | (l3[1] >> 4)) ^ REMARK_TOS
        l3[0] = (l3[0] & 0xF0) | (tc >> 4)
        l3[1] = ((tc & 0x0F) << 4) | (l3[1] & 0x0F)
        l4_off, tcp = 40, l3[6] == 6
    else:
        l3[1] ^= REMARK_TOS
        l4_off = (l3[0] & 0x0F) * 4
        tcp = l3[9] == 6 and not struct.unpack_from("!H", l3, 6)[0] & 0x1FFF
        _with_ip_checksum(l3)
    if tcp and len(l3) >= l4_off + 20:
        l3[l4_off + 13] ^= REMARK_TCP_FLAGS
        _with_l4_checksum(l3, l4_off)
    return plain[:14] + bytes(l3)


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
        _with_l4_checksum(l3, ihl_len)
    if l3[9] == 17:
        l3[ihl_len + 6 : ihl_len + 8] = b"\x00\x00"  # UDP checksum optional over IPv4
    return plain[:14] + bytes(_with_ip_checksum(l3))


VNF_STEPS = {"identity": vnf_identity, "ttl": vnf_ttl_decrement, "nat": vnf_nat,
             "trim": vnf_trim, "remark": vnf_remark}
#: the steps that work on IPv6 inner packets too (NAT here is IPv4 source NAT)
VNF_STEPS_IPV6 = ("identity", "ttl", "trim", "remark")


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
    options: bytes | None = None,
) -> bytes:
    """An IPv4/TCP packet; ``options``: raw TCP option bytes instead of
    ``tcp_option_words`` no-operation words."""
    from scapy.layers.inet import IP, IPOption_NOP

    ip = IP(
        src=src,
        dst=dst,
        id=ip_id,
        ttl=ttl,
        flags=ip_flags,
        frag=frag,
        options=[IPOption_NOP()] * (4 * ip_option_words),
    )
    return bytes(ip / _tcp(sport, dport, seq, ack, window, flags,
                           [("NOP", None)] * (4 * tcp_option_words), options, payload))


def _tcp(sport: int, dport: int, seq: int, ack: int, window: int, flags: str, scapy_options,
         raw_options: bytes | None, payload: bytes):
    """A scapy TCP segment: options as scapy's list, or ``raw_options`` (bytes, a
    multiple of 4, at most 40) exactly as given, however malformed."""
    from scapy.layers.inet import TCP
    from scapy.packet import Raw

    if raw_options is None:
        return TCP(sport=sport, dport=dport, seq=seq, ack=ack, window=window, flags=flags,
                   options=scapy_options) / payload
    assert len(raw_options) % 4 == 0 and len(raw_options) <= 40, raw_options
    return TCP(sport=sport, dport=dport, seq=seq, ack=ack, window=window, flags=flags,
               dataofs=5 + len(raw_options) // 4) / Raw(raw_options + payload)


def inner_tcp_strategy():
    """Hypothesis strategy of IPv4/TCP packets (bytes), IP and TCP options included
    (TCP: no-operation words, or raw options from :func:`tcp_options_strategy`)."""
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
        options=st.none() | tcp_options_strategy(),
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
    options: bytes | None = None,
) -> bytes:
    """An IPv6/TCP packet; ``timestamps`` adds the TCP timestamp option (TSval, TSecr)
    behind two no-operations; ``options``: raw TCP option bytes instead of both."""
    from scapy.layers.inet6 import IPv6

    listed = [("NOP", None)] * (4 * tcp_option_words)
    if timestamps is not None:
        listed += [("NOP", None), ("NOP", None), ("Timestamp", timestamps)]
    return bytes(IPv6(src=src, dst=dst, hlim=hlim, tc=tc, fl=fl)
                 / _tcp(sport, dport, seq, ack, window, flags, listed, options, payload))


def tcp_options_strategy():
    """Hypothesis strategy of raw TCP option bytes (a multiple of 4, at most 40):
    what Linux sends (MSS, window scale, SACK permitted, SACK blocks, timestamps)
    in any order and alignment, no-operations, end of list, unknown kinds, a
    kind 8 of the wrong length, and malformed options (length 0 or 1, or
    running past the options, or cut by the 40-byte limit). Padded with zeros."""
    from hypothesis import strategies as st

    word = st.integers(0, 2**32 - 1)
    option = st.one_of(
        st.just(b"\x01"),
        st.just(b"\x00"),
        st.integers(0, 0xFFFF).map(lambda v: struct.pack("!BBH", 2, 4, v)),
        st.integers(0, 14).map(lambda v: bytes([3, 3, v])),
        st.just(b"\x04\x02"),
        st.lists(word, min_size=2, max_size=8).map(
            lambda w: bytes([5, 2 + 4 * len(w)]) + struct.pack(f"!{len(w)}I", *w)),
        st.tuples(word, word).map(lambda t: struct.pack("!BBII", 8, 10, *t)),
        st.binary(min_size=2, max_size=12).map(lambda b: bytes([8, 2 + len(b)]) + b),
        st.tuples(st.integers(9, 255), st.binary(max_size=8)).map(
            lambda t: bytes([t[0], 2 + len(t[1])]) + t[1]),
        st.tuples(st.integers(2, 255), st.integers(0, 1)).map(bytes),
        st.tuples(st.integers(2, 255), st.integers(3, 255)).map(bytes),
        st.binary(min_size=1, max_size=6),
    )

    def pad(parts: list[bytes]) -> bytes:
        raw = b"".join(parts)[:40]
        return raw + bytes(-len(raw) % 4)

    return st.lists(option, max_size=12).map(pad)


def inner_tcp6_strategy():
    """Hypothesis strategy of IPv6/TCP packets (bytes), options and timestamps included
    (no-operation words and a timestamp option, or raw options from
    :func:`tcp_options_strategy`)."""
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
        options=st.none() | tcp_options_strategy(),
    )


def inner_strategy(ethertype: int):
    """TCP inner packets of one family: IPv4 (0x0800) or IPv6 (0x86DD)."""
    return inner_tcp6_strategy() if ethertype == ETH_P_IPV6 else inner_tcp_strategy()


def example_inner(ethertype: int) -> bytes:
    return tcp_ipv6() if ethertype == ETH_P_IPV6 else tcp_ipv4()
