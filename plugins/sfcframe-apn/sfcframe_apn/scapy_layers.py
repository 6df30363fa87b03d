"""scapy layers for the APN header (scapy has none): :class:`APN` dissects and builds
the header of :mod:`sfcframe_apn.header`; :func:`apn_option` / :func:`apn_srh_tlv`
wrap it as the IPv6 option / SRH TLV the build's code points name, and
:func:`find_apn` dissects it out of a packet scapy parsed.
"""

from __future__ import annotations

from scapy.fields import (BitFieldLenField, ByteEnumField, ByteField, FieldListField,
                          IntField, StrLenField)
from scapy.packet import Packet

from sfcframe_apn.header import FIXED, ID_BYTES

ID_TYPES = {1: "32-bit", 2: "64-bit", 3: "128-bit"}


class APN(Packet):
    """APN-ID-Type, Flags, APN-Para-Type, the APN ID and one 32-bit parameter per bit."""

    name = "APN header"
    fields_desc = [
        ByteEnumField("id_type", 1, ID_TYPES),
        ByteField("flags", 0),
        BitFieldLenField("para_type", None, 16, count_of="params",
                         adjust=lambda pkt, n: sum(1 << (15 - i) for i in range(n))),
        StrLenField("apn_id", b"\x00" * 4, length_from=lambda p: ID_BYTES.get(p.id_type, 4)),
        FieldListField("params", [], IntField("", 0),
                       count_from=lambda p: bin(p.para_type or 0).count("1")),
    ]

    def extract_padding(self, s):
        return b"", s

    @property
    def id_value(self) -> int:
        return int.from_bytes(self.apn_id, "big")


def apn_option(option_type: int, apn: bytes) -> bytes:
    """The APN header as an IPv6 option (Hop-by-Hop or Destination Options)."""
    return bytes([option_type, len(apn)]) + apn


def apn_srh_tlv(tlv_type: int, apn: bytes) -> bytes:
    """The APN header as an SRH TLV."""
    return bytes([tlv_type, len(apn)]) + apn


def find_apn(pkt, option_type: int = 0x1E, tlv_type: int = 124) -> APN | None:
    """The first APN header in the outer IPv6 extension headers of a dissected
    packet: a Hop-by-Hop or Destination option of ``option_type`` (scapy keeps
    unknown options' data raw) or an SRH TLV of ``tlv_type``."""
    from scapy.layers.inet6 import (IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop,
                                    IPv6ExtHdrSegmentRouting)

    for layer in (IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt):
        if layer in pkt:
            for opt in pkt[layer].options:
                if getattr(opt, "otype", None) == option_type and len(opt.optdata) >= FIXED:
                    return APN(bytes(opt.optdata))
    if IPv6ExtHdrSegmentRouting in pkt:
        for tlv in pkt[IPv6ExtHdrSegmentRouting].tlv_objects:
            if getattr(tlv, "type", None) == tlv_type:
                raw = bytes(tlv)[2:]
                if len(raw) >= FIXED:
                    return APN(raw)
    return None
