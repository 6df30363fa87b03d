"""Building NSH headers (RFC 8300) with scapy.contrib.nsh (tests and demos).

Every builder returns the NSH header alone, as bytes on the wire: base
header, service path header and context headers, no payload.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

from scapy.contrib.nsh import NSH, NSHTLV

NSH_BASE_LEN = 8
NSH_MD1_CONTEXT_LEN = 16
NSH_NP_IPV4 = 0x1


class Tlv(NamedTuple):
    """One MD type 2 context header; ``data`` is unpadded (at most 127 bytes)."""

    md_class: int
    md_type: int
    data: bytes
    u_bit: int = 0

    @property
    def wire_len(self) -> int:
        """Bytes on the wire: 4 bytes of TLV header plus data padded to 4."""
        return 4 + padded(len(self.data))


def padded(n: int) -> int:
    return (n + 3) // 4 * 4


def _tlv_layer(tlv: Tlv) -> NSHTLV:
    if not 0 <= len(tlv.data) <= 127:
        raise ValueError(f"MD type 2 metadata of {len(tlv.data)} bytes: the length field has 7 bits")
    data = tlv.data + b"\0" * (padded(len(tlv.data)) - len(tlv.data))
    words = [int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4)]
    return NSHTLV(
        class_=tlv.md_class,
        type=tlv.md_type,
        reserved=tlv.u_bit,
        length=len(tlv.data),  # bytes, without the padding (RFC 8300 §2.5.1)
        metadata=words,
    )


def nsh_md1(
    spi: int,
    si: int,
    context: bytes = b"\0" * NSH_MD1_CONTEXT_LEN,
    *,
    ttl: int = 63,
    oam: int = 0,
    unused1: int = 0,
    unused2: int = 0,
    nextproto: int = NSH_NP_IPV4,
) -> bytes:
    """An MD type 1 header: 8 bytes of base and path header + 16 bytes of context."""
    if len(context) != NSH_MD1_CONTEXT_LEN:
        raise ValueError("MD type 1 carries exactly 16 bytes of context")
    return bytes(
        NSH(
            ver=0, oam=oam, unused1=unused1, ttl=ttl, unused2=unused2, mdtype=1,
            nextproto=nextproto, spi=spi, si=si, context_header=context,
        )
    )


def nsh_md2(
    spi: int,
    si: int,
    tlvs: Iterable[Tlv] = (),
    *,
    ttl: int = 63,
    oam: int = 0,
    unused1: int = 0,
    unused2: int = 0,
    nextproto: int = NSH_NP_IPV4,
) -> bytes:
    """An MD type 2 header with the given context TLVs (Length computed by scapy)."""
    layers = [_tlv_layer(t) for t in tlvs]
    fields = dict(
        ver=0, oam=oam, unused1=unused1, ttl=ttl, unused2=unused2, mdtype=2,
        nextproto=nextproto, spi=spi, si=si,
    )
    if layers:  # scapy cannot size an explicit empty or None list: leave the default
        fields["vlch"] = layers
    return bytes(NSH(**fields))


def dissect(header: bytes) -> NSH:
    """Parse header bytes back with scapy (the payload, if any, follows as Raw/IP...)."""
    return NSH(header)


def with_si(header: bytes, si: int) -> bytes:
    """The same header with another Service Index (byte 7)."""
    return header[:7] + bytes([si]) + header[8:]
