"""The srv6 encapsulation: End.AD per packet.

Pure Python: the reference parser against hand-built headers (every check in
its documented order) and scapy's dissection of what the strategies build.
Kernel: each ingress outcome through BPF_PROG_TEST_RUN against the oracle,
End performed on the cached copy, the payload length and hop limit at egress,
an entry wider than 252 bytes, and the verifier at the largest parameters.
The generic properties (round trips, truncations, plain traffic) run for srv6
in the conformance kit (tests/test_conformance.py).
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfcframe.encaps.srv6 import TEST_SID as SID
from sfcframe.encaps.srv6 import Srv6Encap
from sfcframe.encaps.srv6 import headers as h
from sfcframe.errors import ParamError
from sfcframe.plugin import ETH_P_IP, ETH_P_IPV6
from sfcframe.spec import resolve_spec
from sfcframe.testkit.packets import ether, tcp_ipv4, tcp_ipv6, vnf_trim

SRV6 = Srv6Encap()
VALUES = {"sid": SID, "max_segments": 8, "max_tlv_bytes": 64, "max_ext_bytes": 16}
PROPERTY = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def packet(segments=("fc00::e", SID), sl=1, nh=h.NH_IPV4, hlim=64, tlvs=b"", ext=b"",
           ext_nh=None, dst=SID, inner=None, last_entry=None, routing_type=None):
    """An SRv6 packet (from the IPv6 header on) with an inner TCP packet."""
    srh = h.srh(list(segments), sl, nh, tlvs=tlvs, last_entry=last_entry)
    if routing_type is not None:
        srh = srh[:2] + bytes([routing_type]) + srh[3:]
    inner = inner if inner is not None else (tcp_ipv6() if nh == h.NH_IPV6 else tcp_ipv4())
    outer = h.ipv6("fc00::1", dst, ext_nh if ext else h.NH_ROUTING, hlim=hlim, fl=0x12345)
    return h.with_payload_length(outer + ext + srh, len(inner)) + inner


def outcome(pkt, values=VALUES) -> str:
    return SRV6.reference_ingress(pkt, values).outcome


# ---- parameters ---------------------------------------------------------
def test_sid_is_required_and_validated():
    with pytest.raises(ParamError, match="sid is required"):
        resolve_spec("srv6", "tcpip")
    with pytest.raises(ParamError, match="not an IPv6 address"):
        resolve_spec("srv6", "tcpip", {"sid": "10.0.0.1"})
    with pytest.raises(ParamError, match="listed twice"):
        resolve_spec("srv6", "tcpip", {"sid": "fc00::a,fc00:0::a"})
    with pytest.raises(ParamError, match="multiples of 8"):
        resolve_spec("srv6", "tcpip", {"sid": SID, "max_tlv_bytes": 12})
    spec = resolve_spec("srv6", "tcpip", {"sid": "FC00:0:0::B, fc00::a"})
    assert spec.encap_params["sid"] == "fc00::b,fc00::a"  # canonical, in the given order


def test_capacity_and_wide_entries():
    narrow = resolve_spec("srv6", "tcpip", {"sid": SID})
    assert narrow.header_capacity == 40 + 8 + 16 * 8 + 64 and not narrow.value_layout.wide
    wide = resolve_spec("srv6", "tcpip", {"sid": SID, "max_segments": 16})
    assert wide.header_capacity == 368 and wide.value_layout.wide
    assert wide.value_size == 8 + 368
    with pytest.raises(ParamError, match="outside 0..480"):
        resolve_spec("srv6", "tcpip", {"sid": SID, "max_segments": 24, "max_tlv_bytes": 256})


def test_outcomes_are_declared_and_composed():
    spec = resolve_spec("srv6", "metadata", {"sid": SID})
    ingress = {o.name: (o.policy, o.source) for o in spec.ingress_outcomes}
    for name in ("no_srh", "sl_zero", "hop_limit_exceeded"):
        assert ingress[name] == ("strict", "srv6")
    assert {o.name: o.source for o in spec.egress_outcomes}["gso"] == "srv6"


# ---- the reference parser -----------------------------------------------
def test_end_is_performed_on_the_cached_copy():
    pkt = packet(segments=("fc00::3", "fc00::2", SID), sl=2)
    parse = SRV6.reference_ingress(pkt, VALUES)
    assert parse.outcome == "ok" and parse.inner_ethertype == ETH_P_IP
    assert parse.strip_len == 40 + 8 + 48 and parse.cached == parse.cached[:parse.strip_len]
    cached = parse.cached
    assert cached[40 + 3] == 1  # Segments Left - 1
    assert cached[24:40] == ipaddress.IPv6Address("fc00::2").packed  # Segment List[1]
    assert cached[:24] == pkt[:24] and cached[40:43] == pkt[40:43] and cached[44:] == pkt[44:96]


def test_ipv6_inner_and_reduced_srh():
    parse = SRV6.reference_ingress(packet(nh=h.NH_IPV6), VALUES)
    assert parse.outcome == "ok" and parse.inner_ethertype == ETH_P_IPV6
    # H.Encaps.Red: Segments Left = Last Entry + 1, the first segment only in the DA
    reduced = SRV6.reference_ingress(packet(segments=("fc00::e",), sl=1), VALUES)
    assert reduced.outcome == "ok"
    assert reduced.cached[24:40] == ipaddress.IPv6Address("fc00::e").packed


@pytest.mark.parametrize(
    "pkt, expected",
    [
        pytest.param(packet(dst="fc00::99"), "plain", id="other-destination"),
        pytest.param(packet()[:39], "plain", id="shorter-than-ipv6"),
        pytest.param(b"\x40" + packet()[1:], "plain", id="not-version-6"),
        pytest.param(h.with_payload_length(h.ipv6("fc00::1", SID, 6), 20) + bytes(20),
                     "no_srh", id="tcp-to-our-sid"),
        pytest.param(packet(routing_type=3), "no_srh", id="rpl-routing-header"),
        pytest.param(packet()[:40 + 7], "malformed", id="srh-truncated"),
        pytest.param(packet(last_entry=2), "malformed", id="segments-beyond-srh"),
        pytest.param(packet(sl=3), "malformed", id="sl-beyond-last-entry-plus-1"),
        pytest.param(packet(segments=["fc00::e"] * 9, sl=1), "too_deep", id="nine-segments"),
        pytest.param(packet(tlvs=h.tlv(7, bytes(70))), "too_deep", id="tlvs-over-budget"),
        pytest.param(packet()[:40 + 40], "malformed", id="no-inner-byte"),
        pytest.param(packet(sl=0), "sl_zero", id="sl-zero"),
        pytest.param(packet(hlim=1), "hop_limit_exceeded", id="hop-limit-1"),
        pytest.param(packet(hlim=0), "hop_limit_exceeded", id="hop-limit-0"),
        pytest.param(packet(nh=h.NH_ETHERNET), "unsupported_inner", id="ethernet-inner"),
        pytest.param(packet(nh=17), "unsupported_inner", id="udp-after-srh"),
        pytest.param(packet(ext=h.options_header(h.NH_ROUTING, bytes(4)), ext_nh=h.NH_HOPOPTS),
                     "ok", id="hop-by-hop"),
        pytest.param(packet(ext=h.options_header(h.NH_DSTOPTS, bytes(4))
                            + h.options_header(h.NH_ROUTING, bytes(4)), ext_nh=h.NH_HOPOPTS),
                     "ok", id="hop-by-hop-and-destopts"),
        pytest.param(packet(ext=h.options_header(h.NH_ROUTING, bytes(15)), ext_nh=h.NH_HOPOPTS),
                     "too_deep", id="extensions-over-budget"),
        pytest.param(packet(ext=h.options_header(h.NH_HOPOPTS, bytes(4))
                            + h.options_header(h.NH_ROUTING, bytes(4)), ext_nh=h.NH_DSTOPTS),
                     "no_srh", id="hop-by-hop-not-first"),
    ],
)
def test_reference_outcomes(pkt, expected):
    assert outcome(pkt) == expected


def test_icmpv6_neighbour_discovery_is_plain():
    from scapy.layers.inet6 import ICMPv6ND_NS, IPv6

    ns = bytes(IPv6(src="fe80::1", dst="ff02::1:ff00:a") / ICMPv6ND_NS(tgt=SID))
    assert outcome(ns) == "plain"


def test_restore_decrements_hop_limit_and_fixup_sets_payload_length():
    parse = SRV6.reference_ingress(packet(hlim=9), VALUES)
    status, restored = SRV6.reference_restore(parse.cached, VALUES, inner=tcp_ipv4())
    assert status == "ok" and restored[7] == 8
    inner = tcp_ipv4(payload=b"x" * 333)
    fixed = SRV6.reference_fixup(restored, inner, VALUES)
    assert struct.unpack_from("!H", fixed, 4)[0] == len(fixed) - 40 + len(inner)


@PROPERTY
@given(data=st.data())
def test_strategy_headers_are_valid_and_scapy_reads_them(data):
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrSegmentRouting

    family = data.draw(st.sampled_from([ETH_P_IP, ETH_P_IPV6]))
    header = data.draw(SRV6.header_strategy(VALUES, family))
    inner = tcp_ipv4() if family == ETH_P_IP else tcp_ipv6()
    ethertype, wire = SRV6.encapsulate(header, inner, VALUES)
    assert ethertype == ETH_P_IPV6
    parse = SRV6.reference_ingress(wire, VALUES)
    assert parse.outcome == "ok" and parse.strip_len == len(header)
    assert parse.inner_ethertype == family and wire[parse.strip_len:] == inner
    dissected = IPv6(wire)
    srh = dissected[IPv6ExtHdrSegmentRouting]
    assert dissected.dst == SID and dissected.plen == len(wire) - 40
    assert srh.segleft == wire[parse.strip_len - (srh.len + 1) * 8 + 3]
    assert len(srh.addresses) == srh.lastentry + 1


def test_example_header_is_valid_for_both_families():
    for family in (ETH_P_IP, ETH_P_IPV6):
        header = SRV6.example_header(VALUES, family)
        _, wire = SRV6.encapsulate(header, tcp_ipv4(), VALUES)
        assert SRV6.reference_ingress(wire, VALUES).outcome == "ok"


# ---- the kernel -----------------------------------------------------------

@pytest.mark.kernel
@pytest.mark.parametrize("hook", ["xdp", "tc"])
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_every_outcome_in_the_kernel(harness_factory, hook, strict):
    harness = harness_factory("srv6", "metadata", strict=strict, sid=SID, max_ext_bytes=16,
                              ingress=hook)
    seen = set()
    cases = [packet(), packet(nh=h.NH_IPV6), packet(dst="fc00::99"), packet(sl=0),
             packet(hlim=1), packet(nh=h.NH_ETHERNET), packet(routing_type=3),
             packet(last_entry=2), packet(segments=["fc00::e"] * 9),
             packet(tlvs=h.tlv(7, bytes(70))), packet()[:40 + 40],
             packet(ext=h.options_header(h.NH_ROUTING, bytes(4)), ext_nh=h.NH_HOPOPTS),
             packet(segments=("fc00::e",), sl=1)]
    for pkt in cases:
        harness.reset()
        seen.add(harness.check_ingress(ether(ETH_P_IPV6) + pkt).expect.outcome)
    assert {"cached", "plain", "sl_zero", "hop_limit_exceeded", "unsupported_inner", "no_srh",
            "too_deep", "malformed"} <= seen


@pytest.mark.kernel
@pytest.mark.parametrize("key, params", [("tcpip", {}), ("metadata", {"carrier": "mark"})])
def test_function_changing_the_length_gets_the_right_payload_length(harness_factory, key, params):
    harness = harness_factory("srv6", key, sid=SID, **params)
    wire = ether(ETH_P_IPV6) + packet(hlim=33, tlvs=h.hmac_tlv(9, bytes(32)) + h.pad_to_8(40))
    ingress, egress = harness.round_trip(wire, vnf_trim)
    assert egress.expect.outcome == "restored"
    out = egress.result.packet
    assert struct.unpack_from("!H", out, 14 + 4)[0] == len(out) - 14 - 40
    assert out[14 + 7] == 32  # hop limit decremented once
    assert out[14 + 24:14 + 40] == ipaddress.IPv6Address("fc00::e").packed
    assert out[14 + 40 + 3] == 0  # Segments Left


@pytest.mark.kernel
@pytest.mark.parametrize("hook", ["xdp", "tc"])
def test_sixteen_segments_and_tlvs_in_a_wide_entry(harness_factory, hook):
    harness = harness_factory("srv6", "tcpip", sid=SID, max_segments=16, max_tlv_bytes=64,
                              ingress=hook)
    assert harness.proxy.spec.value_layout.wide
    segments = [f"fc00::{i:x}" for i in range(1, 16)] + [SID]
    tlvs = h.hmac_tlv(1, bytes(range(32))) + h.tlv(7, bytes(18))
    tlvs += h.pad_to_8(len(tlvs))
    wire = ether(ETH_P_IPV6) + packet(segments=segments, sl=15, tlvs=tlvs)
    assert len(wire) - 14 - len(tcp_ipv4()) > 252
    ingress, egress = harness.round_trip(wire, lambda f: f)
    assert ingress.expect.outcome == "cached" and egress.expect.outcome == "restored"
    assert egress.result.packet[14 + 24:14 + 40] == ipaddress.IPv6Address("fc00::f").packed


@pytest.mark.kernel
def test_largest_build_passes_the_verifier(proxy_factory):
    proxy = proxy_factory("srv6", "tcpip", sid=",".join(f"fc00::{i}" for i in range(1, 9)),
                          max_segments=24, max_tlv_bytes=48, max_ext_bytes=0)
    assert proxy.spec.header_capacity == 40 + 8 + 16 * 24 + 48 == 480


@pytest.mark.kernel
@pytest.mark.parametrize("hook", ["xdp", "tc"])
def test_static_mode_pushes_the_configured_headers_with_the_right_payload_length(
        harness_factory, hook):
    """mode=static (the paper's baseline, End.AS-like): every SRv6 packet to our SID is
    stripped, and egress pushes one configured header; the fix-up still sets the payload
    length for each packet, the update rule (hop limit) does not run."""
    configured = SRV6.example_header(VALUES)
    harness = harness_factory("srv6", "tcpip", sid=SID, mode="static", ingress=hook,
                              static_header=configured.hex())
    assert harness.check_ingress(ether(ETH_P_IPV6) + packet()).expect.outcome == "stripped"
    for inner in (tcp_ipv4(), tcp_ipv4(payload=b"x" * 500)):
        out = harness.check_static_egress(ether(0x0800) + inner, configured)
        assert out.expect.outcome == "pushed"
        pushed = out.result.packet[14:14 + len(configured)]
        assert struct.unpack_from("!H", pushed, 4)[0] == len(configured) - 40 + len(inner)
        assert pushed[7] == configured[7]  # no update rule in static mode
