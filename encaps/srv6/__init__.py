"""SRv6 (ethertype 0x86DD): the per-packet End.AD proxy.

The SR-unaware function sits behind a SID of this proxy (parameter ``sid``,
one or more). End.AD of draft-ietf-spring-sr-service-programming, with one
cache entry per packet instead of one per interface:

ingress
    An IPv6 packet addressed to one of our SIDs that carries a Segment Routing
    Header (routing type 4), possibly behind a Hop-by-Hop and/or Destination
    Options header: perform End (Segments Left - 1, destination = Segment
    List[Segments Left]), cache the outer IPv6 header and every extension
    header up to the inner packet byte-exact (TLVs, padding, HMAC included),
    strip them. Any other IPv6 packet (neighbour discovery, traffic to other
    addresses) is not ours: the core's plain path takes it, unmodified.

egress
    Restore the cached headers on the packet the function sends on, with the
    hop limit decremented once and the payload length recomputed for the
    inner packet's actual length; flow label, traffic class, source, SRH and
    TLVs as cached. A GSO packet is counted ``gso`` (this kernel could not
    segment it once restored).

Ingress checks, in this order (the C in ``srv6.c.j2`` does the same):

1. fewer than 40 bytes, or IP version != 6                      -> plain (not ours)
2. destination is none of our SIDs                              -> plain
3. Hop-by-Hop (first only) / Destination Options headers:
   truncated                                                   -> malformed
   more than max_ext_bytes of them                              -> too_deep
4. next header is not Routing, or routing type != 4             -> no_srh
5. SRH fixed part truncated                                     -> malformed
   8 + 16 * (Last Entry + 1) > SRH length                       -> malformed
   Last Entry + 1 > max_segments                                -> too_deep
   TLV bytes > max_tlv_bytes                                    -> too_deep
   Segments Left > Last Entry + 1                               -> malformed
6. the headers end beyond the frame (no inner byte behind them) -> malformed
7. Segments Left == 0                                           -> sl_zero
8. hop limit <= 1                                               -> hop_limit_exceeded
9. SRH next header 4 (IPv4) or 41 (IPv6)                        -> ours: cache and strip
   anything else (143 Ethernet, ...)                            -> unsupported_inner
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any, Mapping

from sfcframe.errors import ParamError
from sfcframe.outcomes import Outcome
from sfcframe.params import Param
from sfcframe.plugin import ETH_P_IP, ETH_P_IPV6, EncapParse, EncapPlugin
from sfcframe.encaps.srv6 import apn_carrier
from sfcframe.encaps.srv6 import headers as h

INNER = {h.NH_IPV4: ETH_P_IP, h.NH_IPV6: ETH_P_IPV6}
NH_OF = {ETH_P_IP: h.NH_IPV4, ETH_P_IPV6: h.NH_IPV6}
MAX_SIDS = 8
#: options of the Hop-by-Hop header a stage's carrier looks through (Pad1 counts)
HBH_OPTIONS_SCANNED = 8
HOP_LIMIT = 7  # byte offset of the hop limit in the IPv6 header
DA = slice(24, 40)  # destination address


#: the SID of the builds in tests (the conformance kit's and the kernel tests')
TEST_SID = "fc00::a"


def sid_list(values: Mapping[str, Any]) -> list[str]:
    return [s for s in values["sid"].split(",") if s]


class Srv6Encap(EncapPlugin):
    contract = 2
    description = (
        "SRv6 End.AD per packet (ethertype 0x86DD): caches the outer IPv6 header, SRH and "
        "TLVs of packets to our SIDs, restores them with hop limit - 1 and the payload length "
        "of the returning packet"
    )
    template = "srv6.c.j2"
    ethertype = ETH_P_IPV6
    params = (
        Param("sid", "ipv6list", "", "this proxy's SIDs (End.AD), comma-separated: "
              "packets addressed to one of them are proxied, other IPv6 is plain",
              max=MAX_SIDS),
        Param("max_segments", "int", 8, "most segments in an SRH (Last Entry + 1) cached",
              1, 24),
        Param("max_tlv_bytes", "int", 64, "most bytes of SRH TLVs (HMAC, padding, ...) cached",
              0, 256),
        Param("max_ext_bytes", "int", 0, "most bytes of Hop-by-Hop and Destination Options "
              "headers in front of the SRH cached", 0, 256),
    )

    def validate(self, values: Mapping[str, Any]) -> None:
        if not values["sid"]:
            raise ParamError("encap srv6: parameter sid is required: the proxy's SID(s), "
                             "e.g. --param sid=fc00::a")
        if values["max_tlv_bytes"] % 8 or values["max_ext_bytes"] % 8:
            raise ParamError("encap srv6: max_tlv_bytes and max_ext_bytes count whole "
                             "8-byte units (IPv6 extension headers are multiples of 8)")

    def template_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Adds ``sid_words``: each SID as four 32-bit words (host numbers, written
        with bpf_htonl in C), and ``sids``: the SIDs as text for comments."""
        sids = sid_list(values)
        words = [struct.unpack("!4I", ipaddress.IPv6Address(s).packed) for s in sids]
        return {**values, "sids": sids, "sid_words": words}

    def conformance_params(self) -> list[dict[str, Any]]:
        """One SID with the default sizes; a wide entry (more than 252 header bytes:
        16 segments and TLVs) behind two SIDs; and room for Hop-by-Hop and Destination
        Options headers, which offers the ``ioam`` carrier to stages."""
        return [
            {"sid": TEST_SID},
            {"sid": f"fc00::b,{TEST_SID}", "max_segments": 16},
            {"sid": TEST_SID, "max_ext_bytes": 256, "max_segments": 4, "max_tlv_bytes": 0},
        ]

    # ---- sizes --------------------------------------------------------
    def header_capacity(self, values: Mapping[str, Any]) -> int:
        return (h.IPV6_LEN + values["max_ext_bytes"] + h.SRH_FIXED
                + h.SEGMENT_LEN * values["max_segments"] + values["max_tlv_bytes"])

    def max_strip(self, values: Mapping[str, Any]) -> int:
        return self.header_capacity(values)

    def inner_ethertypes(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        return (ETH_P_IP, ETH_P_IPV6)

    def ingress_outcomes(self, values: Mapping[str, Any]) -> list[Outcome]:
        return [
            Outcome("no_srh", "strict", "addressed to our SID but no Segment Routing Header"),
            Outcome("sl_zero", "strict", "Segments Left is 0 at our SID: nothing left to "
                    "proxy for (End.AD needs a next segment)"),
            Outcome("hop_limit_exceeded", "strict", "hop limit 1 or 0: the restored packet "
                    "could not be forwarded"),
        ]

    def egress_outcomes(self, values: Mapping[str, Any]) -> list[Outcome]:
        return [
            Outcome("gso", "strict", "a GSO packet: one restored SRv6 header cannot be "
                    "segmented here; passed unmodified"),
        ]

    # ---- test oracle -------------------------------------------------
    def reference_ingress(self, l2_payload: bytes, values: Mapping[str, Any],
                          ethertype: int | None = None) -> EncapParse:
        pkt = l2_payload
        if len(pkt) < h.IPV6_LEN or pkt[0] >> 4 != 6:
            return EncapParse("plain")
        sids = {ipaddress.IPv6Address(s).packed for s in sid_list(values)}
        if pkt[DA] not in sids:
            return EncapParse("plain")
        nh, off = pkt[6], h.IPV6_LEN
        for i in range(2):
            if not (nh == h.NH_DSTOPTS or (i == 0 and nh == h.NH_HOPOPTS)):
                break
            if len(pkt) < off + 2:
                return EncapParse("malformed")
            nh, off = pkt[off], off + (pkt[off + 1] + 1) * 8
            if off - h.IPV6_LEN > values["max_ext_bytes"]:
                return EncapParse("too_deep")
        if nh != h.NH_ROUTING:
            return EncapParse("no_srh")
        if len(pkt) < off + h.SRH_FIXED:
            return EncapParse("malformed")
        srh = pkt[off:]
        if srh[2] != h.ROUTING_SRH:
            return EncapParse("no_srh")
        srh_len, sl, segs = (srh[1] + 1) * 8, srh[3], srh[4] + 1
        if h.SRH_FIXED + h.SEGMENT_LEN * segs > srh_len:
            return EncapParse("malformed")
        if segs > values["max_segments"]:
            return EncapParse("too_deep")
        if srh_len - h.SRH_FIXED - h.SEGMENT_LEN * segs > values["max_tlv_bytes"]:
            return EncapParse("too_deep")
        if sl > segs:
            return EncapParse("malformed")
        total = off + srh_len
        if len(pkt) < total + 1:
            return EncapParse("malformed")
        if sl == 0:
            return EncapParse("sl_zero")
        if pkt[HOP_LIMIT] <= 1:
            return EncapParse("hop_limit_exceeded")
        if srh[0] not in INNER:
            return EncapParse("unsupported_inner")
        cached = bytearray(pkt[:total])
        cached[off + 3] = sl - 1  # End: one segment further ...
        first = off + h.SRH_FIXED + h.SEGMENT_LEN * (sl - 1)
        cached[DA] = pkt[first:first + h.SEGMENT_LEN]  # ... and that segment is the destination
        return EncapParse("ok", strip_len=total, inner_ethertype=INNER[srh[0]],
                          cached=bytes(cached))

    def reference_restore(self, cached: bytes, values: Mapping[str, Any],
                          inner: bytes = b"") -> tuple[str, bytes]:
        if len(cached) < h.IPV6_LEN + h.SRH_FIXED:  # never cached by ingress
            return "error", b""
        restored = bytearray(cached)
        restored[HOP_LIMIT] -= 1  # ingress cached hop limits above 1 only
        return "ok", bytes(restored)

    def reference_fixup(self, header: bytes, inner: bytes, values: Mapping[str, Any]) -> bytes:
        """The payload length for the packet the header goes onto."""
        return h.with_payload_length(header, len(inner))

    def describe_header(self, header: bytes, values: Mapping[str, Any]) -> str:
        """The outer IPv6 header's addresses and hop limit, each extension header,
        the SRH's segments (the active one starred) and the inner packet's family."""
        return h.describe(header)

    # ---- carriers: ioam (RFC 9486, option 49 in the Hop-by-Hop header) and apn
    # (an option before the SRH or an SRH TLV, see apn_carrier) ----
    def carriers(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        ioam = ("ioam",) if values["max_ext_bytes"] else ()
        apn = ("apn",) if values["max_ext_bytes"] or values["max_tlv_bytes"] else ()
        return ioam + apn

    def carrier_find(self, carrier: str, header: bytes, kind: int,
                     values: Mapping[str, Any]) -> tuple[int, int] | None:
        """ioam: the data of the first IOAM option (type 49) of IOAM Option-Type ``kind``
        in the Hop-by-Hop header, behind its Reserved and IOAM Option-Type bytes.
        apn: see :func:`sfcframe.encaps.srv6.apn_carrier.find`."""
        if carrier == "apn":
            return apn_carrier.find(header, kind, self.header_capacity(values))
        if carrier != "ioam":
            return None
        for index, (at, opt_type, opt_len) in enumerate(h.hbh_options(header)):
            if index == HBH_OPTIONS_SCANNED or at + 4 > self.header_capacity(values):
                break
            if opt_type == h.OPT_IOAM and opt_len >= 2 and header[at + 3] == kind:
                return at + 4, opt_len - 2
        return None

    def carrier_hop_limit(self, carrier: str, header: bytes, values: Mapping[str, Any]) -> int:
        """The outer IPv6 hop limit."""
        return header[HOP_LIMIT]

    def carrier_embed(self, carrier: str, header: bytes, kind: int, body: bytes,
                      values: Mapping[str, Any]) -> bytes:
        """``header`` with a Hop-by-Hop header (replacing any) that carries ``body`` as
        IOAM option 49 of Option-Type ``kind``, 4n-aligned as RFC 9486 asks."""
        if carrier == "apn":
            return apn_carrier.embed(header, kind, body, values["max_ext_bytes"],
                                     values["max_tlv_bytes"])
        if carrier != "ioam":
            return super().carrier_embed(carrier, header, kind, body, values)
        nh, rest = header[6], header[h.IPV6_LEN:]
        if nh == h.NH_HOPOPTS:
            nh, rest = rest[0], rest[(rest[1] + 1) * 8:]
        option = h.ioam_option(kind, body)
        hbh = h.options_header(nh, bytes([1, 0]) + option)  # PadN(2): the option at 4n
        outer = header[:6] + bytes([h.NH_HOPOPTS]) + header[7:h.IPV6_LEN]
        return outer + hbh + rest

    def encapsulate(self, header: bytes, inner: bytes,
                    values: Mapping[str, Any]) -> tuple[int, bytes]:
        return ETH_P_IPV6, h.with_payload_length(header, len(inner)) + inner

    def example_header(self, values: Mapping[str, Any], inner_ethertype: int = ETH_P_IP) -> bytes:
        """H.Encaps toward ``segs SID,fc00::e``: our SID active, one segment left,
        an HMAC TLV when the TLV budget holds one."""
        sid = sid_list(values)[0]
        tlvs = h.hmac_tlv(7, bytes(range(32))) if values["max_tlv_bytes"] >= 40 else b""
        tlvs += h.pad_to_8(len(tlvs))
        srh = h.srh(["fc00::e", sid], 1, NH_OF[inner_ethertype], tag=0x1234, tlvs=tlvs)
        return h.ipv6("fc00::1", sid, h.NH_ROUTING, hlim=64, fl=0xABCDE, tc=0x20) + srh

    def header_strategy(self, values: Mapping[str, Any], inner_ethertype: int = ETH_P_IP):
        return header_strategy(values, inner_ethertype)


def header_strategy(values: Mapping[str, Any], inner_ethertype: int):
    """Valid End.AD headers for this proxy: one of our SIDs active (Segments Left
    >= 1, possibly Last Entry + 1 for a reduced SRH), any segments, flags, tag,
    TLVs (HMAC, padding, unknown types) within max_tlv_bytes, optional
    Hop-by-Hop / Destination Options headers within max_ext_bytes, any
    traffic class, flow label and hop limit above 1."""
    from hypothesis import strategies as st

    addresses = st.binary(min_size=16, max_size=16).map(
        lambda b: str(ipaddress.IPv6Address(b)))
    ours = st.sampled_from(sid_list(values))

    @st.composite
    def tlv_block(draw):
        budget, out = values["max_tlv_bytes"], b""
        while True:
            kind = draw(st.sampled_from(["hmac", "pad", "other", "stop"]))
            if kind == "stop":
                break
            if kind == "hmac":
                item = h.hmac_tlv(draw(st.integers(0, 2**32 - 1)),
                                  draw(st.binary(min_size=32, max_size=32)),
                                  draw(st.integers(0, 1)))
            elif kind == "pad":
                item = h.tlv(h.TLV_PADN, bytes(draw(st.integers(0, 5))))
            else:
                item = h.tlv(draw(st.sampled_from([6, 7, 128, 200, 255])),
                             draw(st.binary(max_size=20)))
            item += h.pad_to_8(len(out) + len(item))
            if len(out) + len(item) > budget:
                break
            out += item
        return out

    @st.composite
    def options(draw, nh):
        """A Hop-by-Hop or Destination Options header of PadN options."""
        return h.options_header(nh, bytes([1, 0]) * draw(st.integers(0, 3)))

    @st.composite
    def header(draw):
        segs = draw(st.integers(1, values["max_segments"]))
        segments = draw(st.lists(addresses, min_size=segs, max_size=segs))
        reduced = draw(st.booleans())  # H.Encaps.Red: the first segment is only in the DA
        sl = segs if reduced else draw(st.integers(1, segs - 1)) if segs > 1 else segs
        sid = draw(ours)
        if sl < segs:
            segments[sl] = sid  # the active segment is ours
        srh = h.srh(segments, sl, NH_OF[inner_ethertype], tag=draw(st.integers(0, 0xFFFF)),
                    flags=draw(st.integers(0, 0xFF)), tlvs=draw(tlv_block()))
        chain, nh = b"", h.NH_ROUTING
        budget = values["max_ext_bytes"]
        for kind in reversed(draw(st.sampled_from([[], ["hbh"], ["dst"], ["hbh", "dst"]]))):
            ext = draw(options(nh))
            if len(chain) + len(ext) > budget:
                continue
            chain = ext + chain
            nh = h.NH_HOPOPTS if kind == "hbh" else h.NH_DSTOPTS
        outer = h.ipv6(draw(addresses), sid, nh, hlim=draw(st.integers(2, 255)),
                       tc=draw(st.integers(0, 255)), fl=draw(st.integers(0, 0xFFFFF)))
        return outer + chain + srh

    return header()
