"""Network Service Header, RFC 8300, directly over Ethernet (ethertype 0x894F).

Ingress caches the whole NSH header as it arrived (MD type 1 or 2, TLVs
opaque) and strips it; egress puts it back with the Service Index decremented
by one, as an SFC proxy must (RFC 8300 §2.3), and drops the packet when the
index would reach zero.

Ingress checks, in this order (the C in nsh.c.j2 does the same):

1. fewer than 8 bytes (base + service path header)     -> malformed
2. Ver != 0                                             -> malformed
3. MD type 1 with Length != 6                           -> malformed
   MD type 2 with Length < 2                            -> malformed
   MD type 2 with Length*4 - 8 > max_md_bytes           -> too_deep
   any other MD type                                    -> malformed
4. fewer than Length*4 bytes                            -> malformed
5. Next Protocol 0x6 (IOAM, RFC 9452) with max_ioam_bytes 0 -> unsupported_inner
   otherwise the IOAM header behind the NSH header:
     fewer than 4 bytes, or IOAM HDR Len 0              -> malformed
     IOAM HDR Len * 4 > max_ioam_bytes                  -> too_deep
     fewer than IOAM HDR Len * 4 bytes                  -> malformed
   and its Next Protocol decides as below (the NSH and IOAM headers are
   cached and stripped together)
6. Next Protocol 0x1 (IPv4)                             -> go on, inner 0x0800
   0x2 IPv6, 0x3 Ethernet, 0x4 NSH, 0x5 MPLS, 0x6 IOAM  -> unsupported_inner
   anything else                                        -> malformed
"""

from __future__ import annotations

from typing import Any, Mapping

from sfcframe.errors import ParamError
from sfcframe.outcomes import Outcome
from sfcframe.params import Param
from sfcframe.plugin import ETH_P_IP, EncapParse, EncapPlugin

ETH_P_NSH = 0x894F

NSH_BASE_LEN = 8  # base header + service path header
NSH_MD1_LEN = 24  # MD type 1: base + path + 16 bytes of fixed context
NSH_MD1_CONTEXT_LEN = NSH_MD1_LEN - NSH_BASE_LEN
NSH_MD_TYPE_1 = 0x1
NSH_MD_TYPE_2 = 0x2
NSH_SI_OFFSET = 7

NSH_NP_IPV4 = 0x1
#: next protocols RFC 8300 assigns that this proxy does not strip down to
NSH_NP_UNSUPPORTED = (0x2, 0x3, 0x4, 0x5)  # IPv6, Ethernet, NSH, MPLS
#: RFC 9452: an IOAM header follows the NSH header
NSH_NP_IOAM = 0x6
#: IOAM header (RFC 9452): IOAM-Type, IOAM HDR Len (4-octet units, these 4 octets
#: included), Reserved, Next Protocol; then the IOAM option's data
IOAM_HDR_LEN = 4
MAX_IOAM_BYTES_LIMIT = 255 * 4

#: Length has 6 bits of 4-byte words: 252 header bytes, 244 of them metadata
MAX_MD_BYTES_LIMIT = 63 * 4 - NSH_BASE_LEN


def _capacity(values: Mapping[str, Any]) -> int:
    # MD type 1 always fits: its 16 context bytes are mandatory, so max_md_bytes
    # only bounds the variable-length metadata of MD type 2.
    return (NSH_BASE_LEN + max(NSH_MD1_CONTEXT_LEN, values["max_md_bytes"])
            + values["max_ioam_bytes"])


class NshEncap(EncapPlugin):
    contract = 2
    description = (
        "NSH, RFC 8300 (ethertype 0x894F), MD types 1 and 2, next protocol IPv4; "
        "restores the cached header with the Service Index decremented"
    )
    template = "nsh.c.j2"
    demo_template = "demo.c.j2"
    ethertype = ETH_P_NSH
    params = (
        Param(
            "max_md_bytes",
            "int",
            16,
            "largest MD type 2 metadata (bytes after the 8-byte base and path headers) "
            "cached; more counts as too_deep. MD type 1 is always accepted",
            0,
            MAX_MD_BYTES_LIMIT,
        ),
        Param(
            "max_ioam_bytes",
            "int",
            0,
            "largest IOAM header (RFC 9452, NSH next protocol 0x6) cached with the NSH "
            "header, for stages such as ioam; 0: next protocol IOAM is unsupported_inner",
            0,
            MAX_IOAM_BYTES_LIMIT,
        ),
    )

    def validate(self, values: Mapping[str, Any]) -> None:
        if values["max_ioam_bytes"] % 4:
            raise ParamError("encap nsh: max_ioam_bytes counts 4-octet units (a multiple of 4)")

    def header_capacity(self, values: Mapping[str, Any]) -> int:
        return _capacity(values)

    def conformance_params(self) -> list[dict[str, Any]]:
        """MD type 2 metadata up to 64 bytes; and an IOAM header behind NSH, which
        offers the ``ioam`` carrier to stages."""
        return [{"max_md_bytes": 64}, {"max_ioam_bytes": 256}]

    def max_strip(self, values: Mapping[str, Any]) -> int:
        return _capacity(values)

    def egress_outcomes(self, values: Mapping[str, Any]) -> list[Outcome]:
        return [
            Outcome(
                "si_expired",
                "drop",
                "NSH Service Index would reach 0 once decremented (RFC 8300 §2.3)",
            )
        ]

    def describe_header(self, header: bytes, values: Mapping[str, Any]) -> str:
        """RFC 8300 fields: ``SPI 0x000100 SI 255 MD1 ttl 63 np 0x1 ctx 01020304:...``."""
        if len(header) < NSH_BASE_LEN:
            return "(truncated) " + header.hex()
        ttl = ((header[0] & 0x0F) << 2) | (header[1] >> 6)
        md_type, np = header[2] & 0x0F, header[3]
        spi, si = int.from_bytes(header[4:7], "big"), header[7]
        rest = header[NSH_BASE_LEN:]
        words = ":".join(rest[i:i + 4].hex() for i in range(0, len(rest), 4))
        what = "ctx" if md_type == NSH_MD_TYPE_1 else "md"
        return (f"SPI {spi:#08x} SI {si} MD{md_type} ttl {ttl} np {np:#x}"
                + (f" {what} {words}" if words else ""))

    # ---- test oracle -------------------------------------------------
    def reference_ingress(self, l2_payload: bytes, values: Mapping[str, Any],
                          ethertype: int | None = None) -> EncapParse:
        hdr = l2_payload
        if len(hdr) < NSH_BASE_LEN:
            return EncapParse("malformed")
        if hdr[0] >> 6 != 0:
            return EncapParse("malformed")
        length = (hdr[1] & 0x3F) * 4
        md_type = hdr[2] & 0x0F
        if md_type == NSH_MD_TYPE_1:
            if length != NSH_MD1_LEN:
                return EncapParse("malformed")
        elif md_type == NSH_MD_TYPE_2:
            if length < NSH_BASE_LEN:
                return EncapParse("malformed")
            if length - NSH_BASE_LEN > values["max_md_bytes"]:
                return EncapParse("too_deep")
        else:
            return EncapParse("malformed")
        if len(hdr) < length:
            return EncapParse("malformed")
        next_proto = hdr[3]
        if next_proto == NSH_NP_IOAM:
            if not values["max_ioam_bytes"]:
                return EncapParse("unsupported_inner")
            if len(hdr) < length + IOAM_HDR_LEN:
                return EncapParse("malformed")
            ioam_len = hdr[length + 1] * 4
            if ioam_len < IOAM_HDR_LEN:
                return EncapParse("malformed")
            if ioam_len > values["max_ioam_bytes"]:
                return EncapParse("too_deep")
            if len(hdr) < length + ioam_len:
                return EncapParse("malformed")
            next_proto = hdr[length + 3]
            length += ioam_len
        if next_proto in NSH_NP_UNSUPPORTED or next_proto == NSH_NP_IOAM:
            return EncapParse("unsupported_inner")
        if next_proto != NSH_NP_IPV4:
            return EncapParse("malformed")
        return EncapParse(
            "ok", strip_len=length, inner_ethertype=ETH_P_IP, cached=bytes(hdr[:length])
        )

    def reference_restore(self, cached: bytes, values: Mapping[str, Any],
                          inner: bytes = b"") -> tuple[str, bytes]:
        if len(cached) < NSH_BASE_LEN:  # never cached by ingress
            return "error", b""
        si = cached[NSH_SI_OFFSET]
        if si <= 1:
            return "si_expired", b""
        return "ok", cached[:NSH_SI_OFFSET] + bytes([si - 1]) + cached[NSH_SI_OFFSET + 1 :]

    # ---- the ioam carrier (RFC 9452) -----------------------------------
    def carriers(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        return ("ioam",) if values["max_ioam_bytes"] else ()

    def carrier_find(self, carrier: str, header: bytes, kind: int,
                     values: Mapping[str, Any]) -> tuple[int, int] | None:
        """The IOAM option's data behind the IOAM header, if the header's IOAM-Type is ``kind``."""
        if carrier != "ioam" or len(header) < NSH_BASE_LEN or header[3] != NSH_NP_IOAM:
            return None
        at = (header[1] & 0x3F) * 4
        if len(header) < at + IOAM_HDR_LEN or header[at] != kind:
            return None
        end = at + header[at + 1] * 4
        return (at + IOAM_HDR_LEN, end - at - IOAM_HDR_LEN) if end <= len(header) else None

    def carrier_room(self, carrier: str, header: bytes, values: Mapping[str, Any]) -> int:
        """Bytes the IOAM header may still grow by: max_ioam_bytes, and the entry's capacity."""
        if carrier != "ioam" or len(header) < NSH_BASE_LEN or header[3] != NSH_NP_IOAM:
            return 0
        at = (header[1] & 0x3F) * 4
        ioam_len = header[at + 1] * 4
        if ioam_len > values["max_ioam_bytes"]:
            return 0
        return min(values["max_ioam_bytes"] - ioam_len, self.header_capacity(values) - len(header))

    def carrier_replace(self, carrier: str, header: bytes, offset: int, length: int,
                        body: bytes, values: Mapping[str, Any]) -> bytes:
        """The IOAM option's data replaced; IOAM HDR Len follows a longer one."""
        out = bytearray(super().carrier_replace(carrier, header, offset, length, body, values))
        at = (header[1] & 0x3F) * 4
        out[at + 1] += (len(body) - length) // 4
        return bytes(out)

    def carrier_hop_limit(self, carrier: str, header: bytes, values: Mapping[str, Any]) -> int:
        """NSH's 6-bit TTL."""
        return ((header[0] & 0x0F) << 2) | (header[1] >> 6)

    def carrier_embed(self, carrier: str, header: bytes, kind: int, body: bytes,
                      values: Mapping[str, Any]) -> bytes:
        """``header`` with an IOAM header of ``kind`` carrying ``body`` (padded to 4)
        behind it: NSH next protocol 0x6, the IOAM header's the old one."""
        if carrier != "ioam":
            return super().carrier_embed(carrier, header, kind, body, values)
        body = body + bytes(-len(body) % 4)
        nsh_len = (header[1] & 0x3F) * 4
        ioam = bytes([kind, (IOAM_HDR_LEN + len(body)) // 4, 0, header[3]]) + body
        return header[:3] + bytes([NSH_NP_IOAM]) + header[4:nsh_len] + ioam

    def example_header(self, values: Mapping[str, Any], inner_ethertype: int = ETH_P_IP) -> bytes:
        """MD type 2 with two TLVs (one padded) when they fit max_md_bytes, else MD type 1."""
        from sfcframe.encaps.nsh.scapy_layers import Tlv, nsh_md1, nsh_md2

        tlvs = [Tlv(0x0101, 0x01, bytes(range(1, 5))), Tlv(0xFFF0, 0x42, b"nsh-5", u_bit=1)]
        if sum(t.wire_len for t in tlvs) <= values["max_md_bytes"]:
            return nsh_md2(spi=0x00ABCD, si=254, tlvs=tlvs, ttl=63)
        return nsh_md1(spi=0x00ABCD, si=254, context=bytes(range(16)), ttl=63)

    def bench_header(self, values: Mapping[str, Any], size: int,
                     inner_ethertype: int = ETH_P_IP) -> bytes:
        """``size`` is the MD type: 1 (16 bytes of context) or 2 (two 4-byte TLVs,
        16 bytes of metadata); SPI 0xABCD, SI 254."""
        from sfcframe.encaps.nsh.scapy_layers import Tlv, nsh_md1, nsh_md2

        if size == 1:
            return nsh_md1(spi=0x00ABCD, si=254, context=bytes(range(16)))
        if size != 2:
            raise ValueError(f"nsh: MD type {size}, benchmark headers are MD type 1 or 2")
        tlvs = [Tlv(0x0101, 0x01, bytes(range(1, 5))), Tlv(0x0101, 0x02, bytes(range(5, 9)))]
        if sum(t.wire_len for t in tlvs) > values["max_md_bytes"]:
            raise ValueError("nsh: the MD type 2 benchmark header needs max_md_bytes >= 16")
        return nsh_md2(spi=0x00ABCD, si=254, tlvs=tlvs)

    def header_strategy(self, values: Mapping[str, Any], inner_ethertype: int = ETH_P_IP):
        from hypothesis import strategies as st

        from sfcframe.encaps.nsh.scapy_layers import Tlv, nsh_md1, nsh_md2

        common = dict(
            spi=st.integers(0, (1 << 24) - 1),
            si=st.integers(2, 255),
            ttl=st.integers(0, 63),
            oam=st.integers(0, 1),
            unused1=st.integers(0, 1),
            unused2=st.integers(0, 15),
        )
        md1 = st.builds(nsh_md1, context=st.binary(min_size=16, max_size=16), **common)

        @st.composite
        def tlvs(draw):
            budget = values["max_md_bytes"]
            out = []
            while budget >= 4 and draw(st.booleans()):
                data_len = draw(st.integers(0, min(127, (budget - 4) // 4 * 4)))
                tlv = Tlv(
                    md_class=draw(st.integers(0, 0xFFFF)),
                    md_type=draw(st.integers(0, 0xFF)),
                    data=draw(st.binary(min_size=data_len, max_size=data_len)),
                    u_bit=draw(st.integers(0, 1)),
                )
                out.append(tlv)
                budget -= tlv.wire_len
            return out

        md2 = st.builds(nsh_md2, tlvs=tlvs(), **common)
        return st.one_of(md1, md2)
