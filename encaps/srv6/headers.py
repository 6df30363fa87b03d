"""SRv6 headers as bytes: the outer IPv6 header, extension headers before the
SRH, the Segment Routing Header (RFC 8754) and its TLVs.

The IPv6 header is built with scapy. The SRH is assembled here because its
TLVs must be byte-exact (scapy 2.8's HMAC TLV writes a wrong length), and the
proxy's tests compare bytes; scapy still dissects what these builders make
(see tests/test_srv6_plugin.py).
"""

from __future__ import annotations

import ipaddress
import struct

IPV6_LEN = 40
SRH_FIXED = 8
SEGMENT_LEN = 16

NH_HOPOPTS = 0
NH_IPV4 = 4
NH_ROUTING = 43
NH_IPV6 = 41
NH_NONE = 59
NH_DSTOPTS = 60
NH_ETHERNET = 143
ROUTING_SRH = 4

TLV_PAD1 = 0
TLV_PADN = 4
TLV_HMAC = 5

#: IPv6 options (Hop-by-Hop / Destination Options)
OPT_PAD1 = 0
OPT_PADN = 1
OPT_IOAM = 0x31  # RFC 9486


def address(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def ipv6(src: str, dst: str, nh: int, payload_len: int = 0, hlim: int = 64, tc: int = 0,
         fl: int = 0) -> bytes:
    """A 40-byte IPv6 header."""
    from scapy.layers.inet6 import IPv6

    return bytes(IPv6(src=src, dst=dst, nh=nh, plen=payload_len, hlim=hlim, tc=tc, fl=fl))


def tlv(kind: int, value: bytes) -> bytes:
    """One SRH TLV: type, length, value (a Pad1 has neither length nor value)."""
    if kind == TLV_PAD1:
        return b"\x00"
    return struct.pack("!BB", kind, len(value)) + value


def hmac_tlv(key_id: int, digest: bytes, d_flag: int = 0) -> bytes:
    """The HMAC TLV of RFC 8754 section 2.1.2: D flag, reserved, key id, digest."""
    return tlv(TLV_HMAC, struct.pack("!HI", (d_flag & 1) << 15, key_id) + digest)


def pad_to_8(used: int) -> bytes:
    """Padding TLVs that bring ``used`` bytes up to a multiple of 8."""
    gap = -used % 8
    if gap == 0:
        return b""
    if gap == 1:
        return tlv(TLV_PAD1, b"")
    return tlv(TLV_PADN, bytes(gap - 2))


def srh(segments: list[str], segments_left: int, nh: int, tag: int = 0, flags: int = 0,
        tlvs: bytes = b"", last_entry: int | None = None) -> bytes:
    """A Segment Routing Header; ``segments`` in wire order (Segment List[0] is
    the last segment of the path). ``tlvs`` must keep the length a multiple
    of 8 (see :func:`pad_to_8`)."""
    body = b"".join(address(s) for s in segments) + tlvs
    if (SRH_FIXED + len(body)) % 8:
        raise ValueError("SRH length is not a multiple of 8: pad the TLVs")
    last = len(segments) - 1 if last_entry is None else last_entry
    head = struct.pack("!BBBBBBH", nh, (SRH_FIXED + len(body)) // 8 - 1, ROUTING_SRH,
                       segments_left, last, flags, tag)
    return head + body


def options_header(nh: int, options: bytes = b"") -> bytes:
    """A Hop-by-Hop or Destination Options header around ``options``, padded to 8."""
    used = 2 + len(options)
    gap = -used % 8
    if gap == 1:
        options += b"\x00"  # Pad1
    elif gap:
        options += struct.pack("!BB", 1, gap - 2) + bytes(gap - 2)  # PadN
    return struct.pack("!BB", nh, (2 + len(options)) // 8 - 1) + options


def with_payload_length(header: bytes, inner_len: int) -> bytes:
    """``header`` (IPv6 and its extension headers) with the payload length set
    for ``inner_len`` bytes of inner packet behind it."""
    length = len(header) - IPV6_LEN + inner_len
    return header[:4] + struct.pack("!H", length & 0xFFFF) + header[6:]


def ioam_option(kind: int, body: bytes) -> bytes:
    """IPv6 option 49 (RFC 9486): type, length, Reserved, IOAM Option-Type, data."""
    return struct.pack("!BBBB", OPT_IOAM, 2 + len(body), 0, kind) + body


def hbh_options(header: bytes):
    """(offset, type, data length) of each option of the Hop-by-Hop header right
    behind the IPv6 header of ``header``, if it has one; Pad1 included."""
    if len(header) < IPV6_LEN + 2 or header[6] != NH_HOPOPTS:
        return
    end = min(IPV6_LEN + (header[IPV6_LEN + 1] + 1) * 8, len(header))
    at = IPV6_LEN + 2
    while at < end:
        if header[at] == OPT_PAD1:
            yield at, OPT_PAD1, 0
            at += 1
            continue
        if at + 2 > end or at + 2 + header[at + 1] > end:
            return
        yield at, header[at], header[at + 1]
        at += 2 + header[at + 1]


_NEXT_NAMES = {NH_IPV4: "IPv4", NH_IPV6: "IPv6", NH_ETHERNET: "Ethernet", NH_NONE: "none"}


def describe(header: bytes) -> str:
    """A cached outer header in words, never raising on any bytes:
    ``fc00::1 > fc00::b hlim 63 | HBH 8B | SRH SL 1 [fc00::c, *fc00::b] | inner IPv4``.
    Segments are in wire order (Segment List[0] first) and the active one,
    Segment List[Segments Left], is starred; bytes the walk cannot place are
    shown as ``+N bytes``."""
    if len(header) < IPV6_LEN:
        return f"(short: {header.hex() or 'empty'})"
    src = ipaddress.IPv6Address(header[8:24])
    dst = ipaddress.IPv6Address(header[24:40])
    parts = [f"{src} > {dst} hlim {header[7]}"]
    nh, at = header[6], IPV6_LEN
    while nh in (NH_HOPOPTS, NH_DSTOPTS, NH_ROUTING) and at + 8 <= len(header):
        size = (header[at + 1] + 1) * 8
        if nh == NH_ROUTING and header[at + 2] == ROUTING_SRH:
            parts.append(_describe_srh(header[at:at + size]))
        elif nh == NH_ROUTING:
            parts.append(f"routing type {header[at + 2]} {size}B")
        else:
            parts.append(f"{'HBH' if nh == NH_HOPOPTS else 'DOH'} {size}B")
        nh, at = header[at], at + size
    parts.append(f"inner {_NEXT_NAMES.get(nh, f'next header {nh}')}")
    if at < len(header):
        parts.append(f"+{len(header) - at} bytes")
    return " | ".join(parts)


def _describe_srh(srh_bytes: bytes) -> str:
    segments_left, last_entry = srh_bytes[3], srh_bytes[4]
    listed = []
    for index in range(last_entry + 1):
        at = SRH_FIXED + index * SEGMENT_LEN
        if at + SEGMENT_LEN > len(srh_bytes):
            listed.append("...")
            break
        mark = "*" if index == segments_left else ""
        listed.append(f"{mark}{ipaddress.IPv6Address(srh_bytes[at:at + SEGMENT_LEN])}")
    tlv_bytes = len(srh_bytes) - SRH_FIXED - (last_entry + 1) * SEGMENT_LEN
    tlvs = f" tlv {tlv_bytes}B" if tlv_bytes > 0 else ""
    return f"SRH SL {segments_left} [{', '.join(listed)}]{tlvs}"
