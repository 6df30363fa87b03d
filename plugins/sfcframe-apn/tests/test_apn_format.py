"""The APN header, its scapy layer, the srv6 carrier's Python twin and the mapping
reference, without the kernel."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from sfcframe.encaps.srv6 import apn_carrier
from sfcframe.encaps.srv6 import headers as h
from sfcframe_apn import header, qos
from sfcframe_apn.scapy_layers import APN, find_apn
from sfcframe_apn.stage import ApnStage

VALUES = {p.name: p.default for p in ApnStage.params}


def test_header_layout_by_hand():
    raw = header.ApnHeader(1, 0x300A0C08, flags=0x80, para_type=0xA000,
                           params=(100, 7)).pack()
    assert raw == bytes([1, 0x80, 0xA0, 0x00, 0x30, 0x0A, 0x0C, 0x08]) + struct.pack("!II", 100, 7)
    parsed = header.ApnHeader.parse(raw)
    assert parsed == header.ApnHeader(1, 0x300A0C08, 0x80, 0xA000, (100, 7))
    assert header.ApnHeader.parse(bytes([4, 0, 0, 0]) + bytes(16)) is None  # unknown ID type
    assert header.id_bytes(bytes([3, 0, 0, 0]) + bytes(8)) is None  # shorter than its ID


@settings(max_examples=200, deadline=None)
@given(raw=header.strategy(64))
def test_scapy_dissects_and_rebuilds_every_header(raw):
    pkt = APN(raw)
    assert bytes(pkt) == raw
    assert pkt.apn_id == header.id_bytes(raw)
    assert len(pkt.params) == bin(pkt.para_type).count("1")


@settings(max_examples=100, deadline=None)
@given(raw=header.strategy(48), where=st.sampled_from([0, 1, 2]), sl=st.integers(1, 3))
def test_carrier_embed_and_find_agree_and_scapy_sees_it(raw, where, sl):
    from scapy.layers.inet6 import IPv6

    kind = where << 8 | (VALUES["option_type"] if where < 2 else VALUES["tlv_type"])
    srh = h.srh(["fc00::e", "fc00::b", "fc00::a"], sl, h.NH_IPV4, tlvs=h.hmac_tlv(1, bytes(32)))
    outer = h.ipv6("fc00::1", "fc00::a", h.NH_ROUTING)
    hdr = apn_carrier.embed(outer + srh, kind, raw, 64, 128)
    off, length = apn_carrier.find(hdr, kind, 1000)
    assert hdr[off:off + length] == raw
    dissected = find_apn(IPv6(h.with_payload_length(hdr, 0)), VALUES["option_type"],
                         VALUES["tlv_type"])
    assert dissected is not None and bytes(dissected) == raw


def test_dscp_mapping_and_undo_keep_ecn_and_checksum():
    from scapy.layers.inet import IP, TCP

    l3 = bytes(IP(src="10.0.0.1", dst="10.0.0.2", tos=0x2B) / TCP())
    mapped = qos.with_tos(l3, qos.ETH_P_IP, qos.with_dscp(0x2B, 46))
    assert mapped[1] == 46 << 2 | 0x3
    check = IP(mapped)
    del check.chksum
    assert IP(bytes(check)).chksum == IP(mapped).chksum
    assert qos.with_tos(mapped, qos.ETH_P_IP, 0x2B) == l3


def test_the_mapping_table():
    table = qos.Mapping("dscp", True, 0xFFFF0000, ((0x300A0000, 46), (0, 64)), 64, 64)
    assert table.value(0x300A0C08) == 46  # the APP-Group part matches
    assert table.value(0x400A0C08) is None
    assert qos.Mapping("dscp", False, ~0, ((0x300A0000, 46),), 10, 64).value(0x300A0000) is None
    assert qos.Mapping("dscp", True, ~0, (), 10, 64).value(7) == 10
