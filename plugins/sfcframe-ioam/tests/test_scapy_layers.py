"""The IOAM scapy layers against the RFCs' layouts (written out here with struct,
not taken from the layers) and in round trips: build -> bytes -> dissect -> the
same fields (hypothesis), in an IPv6 Hop-by-Hop header and after NSH."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.nsh import NSH
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrSegmentRouting
from scapy.layers.l2 import Ether

from sfcframe_ioam.scapy_layers import (
    NSHIOAM,
    HBHOptIOAM,
    IOAMIncrementalTrace,
    IOAMPreallocatedTrace,
    decode_trace,
    field_names,
    find_trace,
    incremental_trace,
    ioam_hbh,
    node_data,
    node_len_words,
    not_available,
    nsh_ioam,
    preallocated_trace,
    trace_type_of,
)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

#: RFC 9197 4.4.2: each field's width in bits, per IOAM-Trace-Type bit (written out
#: from the RFC for the tests; bit 22 is variable)
WIDTHS = {
    0: {"hop_limit": 8, "node_id": 24}, 1: {"ingress_if_id": 16, "egress_if_id": 16},
    2: {"timestamp_seconds": 32}, 3: {"timestamp_fraction": 32}, 4: {"transit_delay": 32},
    5: {"namespace_data": 32}, 6: {"queue_depth": 32}, 7: {"checksum_complement": 32},
    8: {"wide_hop_limit": 8, "wide_node_id": 56},
    9: {"wide_ingress_if_id": 32, "wide_egress_if_id": 32}, 10: {"wide_namespace_data": 64},
    11: {"buffer_occupancy": 32}, **{b: {f"undefined_{b}": 32} for b in range(12, 22)},
}
DEFINED_BITS = [*range(12), 22]


def hbh_of(raw_ipv6: bytes) -> bytes:
    return raw_ipv6[40:40 + 8 * (raw_ipv6[41] + 1)]


# ---- layouts written out from the RFCs ------------------------------------------------
def test_hop_by_hop_bytes_follow_rfc_9486_and_9197():
    """Trace type bits 0 and 3 (hop limit + node id, timestamp fraction): NodeLen 2;
    room for one more node; one node filled."""
    tt = 0x900000
    trace = preallocated_trace(0x1234, tt, nodes=[dict(hop_limit=61, node_id=0xABCDEF,
                                                       timestamp_fraction=999_999)], remaining=2)
    got = bytes(IPv6(src="fc00::1", dst="fc00::2") / ioam_hbh(trace, nh=43))
    trace_bytes = (struct.pack("!HHI", 0x1234, (2 << 11) | (0 << 7) | 2, tt << 8)
                   + bytes(8)  # the free slot (RemainingLen 2 words)
                   + struct.pack("!II", (61 << 24) | 0xABCDEF, 999_999))
    option = bytes([0x31, 2 + len(trace_bytes), 0, 0]) + trace_bytes  # type, length, reserved, Option-Type 0
    body = b"\x01\x00" + option  # PadN of 2 octets: the option starts at offset 4 (4n)
    body += b"\x01\x02\x00\x00" if (2 + len(body)) % 8 else b""
    expected = bytes([43, (2 + len(body)) // 8 - 1]) + body
    assert hbh_of(got) == expected
    # and the other way: bytes built by hand dissect into the same fields
    parsed = find_trace(IPv6(bytes(IPv6(src="fc00::1", dst="fc00::2", nh=0)) + expected))
    assert isinstance(parsed, IOAMPreallocatedTrace)
    assert decode_trace(parsed) == {
        "ioam_type": 0, "namespace_id": 0x1234, "node_len": 2, "overflow": False, "flags": 0,
        "remaining_len": 2, "trace_type": tt,
        "nodes": [{"hop_limit": 61, "node_id": 0xABCDEF, "timestamp_fraction": 999_999}]}


def test_overflow_flag_is_the_most_significant_flag_bit():
    trace = preallocated_trace(1, trace_type_of(0), nodes=[{}], remaining=0, flags=0b1000)
    raw = bytes(trace)
    assert raw[2:4] == struct.pack("!H", (1 << 11) | (0b1000 << 7))
    assert IOAMPreallocatedTrace(raw).overflow


def test_nsh_ioam_header_follows_rfc_9452():
    trace = incremental_trace(7, trace_type_of(0), nodes=[dict(hop_limit=9, node_id=5)], remaining=3)
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                  / NSH(nextproto=6, spi=0x42, si=254) / nsh_ioam(trace, 1) / IP(src="10.0.0.1", dst="10.0.0.2"))
    nsh_len = 4 * (frame[14 + 1] & 0x3F)  # NSH Length: 4-octet words
    ioam = frame[14 + nsh_len:]
    trace_bytes = struct.pack("!HHI", 7, (1 << 11) | 3, trace_type_of(0) << 8) + struct.pack("!I", (9 << 24) | 5)
    # IOAM-Type 1 (incremental), IOAM HDR Len (the whole IOAM header in 4-octet units),
    # Reserved, Next Protocol 1 (IPv4)
    assert ioam[:4 + len(trace_bytes)] == bytes([1, (4 + len(trace_bytes)) // 4, 0, 1]) + trace_bytes
    assert ioam[4 + len(trace_bytes)] == 0x45  # the IPv4 packet follows
    parsed = Ether(frame)
    assert parsed[NSHIOAM].next_protocol == 1 and parsed[IP].dst == "10.0.0.2"
    assert decode_trace(find_trace(parsed))["nodes"] == [{"hop_limit": 9, "node_id": 5}]


def test_node_len_counts_words_without_the_opaque_snapshot():
    assert node_len_words(trace_type_of(0)) == 1
    assert node_len_words(trace_type_of(*range(8))) == 8
    assert node_len_words(trace_type_of(8, 9, 10)) == 6
    assert node_len_words(trace_type_of(*range(12))) == 15
    assert node_len_words(trace_type_of(0, 22)) == 1
    assert node_len_words(trace_type_of(12, 21)) == 2  # undefined bits: 4 octets each


def test_not_available_values_are_all_ones():
    tt = trace_type_of(*range(12))
    na = not_available(tt)
    assert "hop_limit" not in na and "wide_hop_limit" not in na  # always known
    for bit, fields in WIDTHS.items():
        for name, width in fields.items():
            if name in na:
                assert na[name] == (1 << width) - 1, name
    assert bytes(node_data(tt, na, hop_limit=1, wide_hop_limit=1)) == (
        b"\x01\xff\xff\xff" + b"\xff" * 4 * 7 + b"\x01" + b"\xff" * 7 + b"\xff" * 20)


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError):
        node_data(trace_type_of(0), transit_delay=1)


# ---- round trips ----------------------------------------------------------------------
@st.composite
def traces(draw, undefined=False):
    bits = draw(st.sets(st.sampled_from(DEFINED_BITS + (list(range(12, 22)) if undefined else [])),
                        min_size=1, max_size=8))
    tt = trace_type_of(*bits)
    words = node_len_words(tt)
    nodes = []
    for _ in range(draw(st.integers(0, 3))):
        node = {}
        for bit in sorted(b for b in bits if b != 22):
            for name, width in WIDTHS[bit].items():
                node[name] = draw(st.integers(0, (1 << width) - 1))
        if 22 in bits:
            opaque = draw(st.binary(max_size=8).map(lambda b: b + bytes(-len(b) % 4)))
            node.update(opaque_len=len(opaque) // 4, schema_id=draw(st.integers(0, 0xFFFFFF)),
                        opaque_data=opaque)
        nodes.append(node)
    used = sum(4 * words + (4 + len(n.get("opaque_data", b"")) if 22 in bits else 0) for n in nodes)
    remaining = draw(st.integers(0, max(0, min(127, (240 - used) // 4))))
    return dict(namespace=draw(st.integers(0, 0xFFFF)), trace_type=tt, nodes=nodes,
                remaining=remaining, flags=draw(st.integers(0, 15)), node_len=words)


def expected_decoding(t: dict, ioam_type: int) -> dict:
    return {"ioam_type": ioam_type, "namespace_id": t["namespace"], "node_len": t["node_len"],
            "overflow": bool(t["flags"] & 8), "flags": t["flags"], "remaining_len": t["remaining"],
            "trace_type": t["trace_type"], "nodes": t["nodes"]}


def build(t: dict, cls):
    maker = preallocated_trace if cls is IOAMPreallocatedTrace else incremental_trace
    return maker(t["namespace"], t["trace_type"], None, t["nodes"], t["remaining"], t["flags"])


@PROPERTY
@given(t=traces(undefined=True), incremental=st.booleans(), inner=st.sampled_from(["ipv4", "ipv6"]))
def test_hop_by_hop_round_trip(t, incremental, inner):
    cls = IOAMIncrementalTrace if incremental else IOAMPreallocatedTrace
    payload = (IP(src="10.0.0.1", dst="10.0.0.2") if inner == "ipv4" else
               IPv6(src="fd00::1", dst="fd00::2")) / TCP(sport=1, dport=2)
    srh = IPv6ExtHdrSegmentRouting(addresses=["fc00:b::4", "fc00:a::1"], nh=4 if inner == "ipv4" else 41)
    raw = bytes(IPv6(src="fc00:1::1", dst="fc00:a::1") / ioam_hbh(build(t, cls)) / srh / payload)
    hbh = hbh_of(raw)
    assert raw[6] == 0 and hbh[0] == 43 and len(hbh) % 8 == 0
    assert hbh[2:4] == b"\x01\x00" and hbh[4] == 0x31  # PadN, then the option at offset 4
    assert hbh[5] == 2 + len(bytes(build(t, cls)))  # Opt Data Len
    parsed = IPv6(raw)
    trace = find_trace(parsed)
    assert isinstance(trace, cls)
    assert decode_trace(trace) == expected_decoding(t, 1 if incremental else 0)
    assert parsed[IPv6ExtHdrSegmentRouting].addresses == ["fc00:b::4", "fc00:a::1"]
    assert parsed[TCP].dport == 2  # what follows the Hop-by-Hop header dissects too
    if not incremental:  # the unfilled space comes first, zeros
        assert trace.free == bytes(4 * t["remaining"])


@PROPERTY
@given(t=traces(), incremental=st.booleans(), next_protocol=st.sampled_from([1, 2]))
def test_nsh_round_trip(t, incremental, next_protocol):
    cls = IOAMIncrementalTrace if incremental else IOAMPreallocatedTrace
    inner = IP(src="10.0.0.1", dst="10.0.0.2") if next_protocol == 1 else IPv6(src="fd00::1", dst="fd00::2")
    frame = Ether() / NSH(nextproto=6, spi=0x42, si=254) / nsh_ioam(build(t, cls), next_protocol) / inner
    parsed = Ether(bytes(frame))
    assert parsed[NSHIOAM].hdr_len * 4 == 4 + len(bytes(build(t, cls)))
    assert decode_trace(find_trace(parsed)) == expected_decoding(t, 1 if incremental else 0)
    assert parsed.getlayer(type(inner)).dst == inner.dst


@PROPERTY
@given(t=traces())
def test_fields_present_are_the_trace_types(t):
    for node in decode_trace(build(t, IOAMPreallocatedTrace))["nodes"]:
        assert list(node) == field_names(t["trace_type"])


def test_hbh_option_class_is_bound():
    raw = bytes(IPv6() / IPv6ExtHdrHopByHop(options=[HBHOptIOAM(data=preallocated_trace(1, 0x800000, remaining=1))]))
    assert isinstance(IPv6(raw)[IPv6ExtHdrHopByHop].options[1], HBHOptIOAM)
