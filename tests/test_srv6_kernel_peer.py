"""The SRv6 kernel-peer testbed (``sfcframe demo --encap srv6``): the kernel's own
SRv6 encapsulates at the SFF (H.Encaps) and decapsulates before the receiver
(End.DX4 / End.DT6); the VNF host's SID is served by the kernel's End as a
stand-in for sfcframe's proxy.

- BPF_PROG_TEST_RUN: the stamper's output and the checker's verdicts against
  scapy-built frames and the Python reference of the per-packet value, each
  program on its own (a checker bug cannot hide behind the stamper agreeing).
- Namespaces with real TCP (3 s of iperf3): inner IPv4, inner IPv6, HMAC; a
  corrupted HMAC-covered segment is dropped by the receiving kernel (its
  seg6local counters), and delivered when no HMAC is required.
- The proxy mode's addressing: the frame a proxy restores on the VNF host's
  ``out0`` (the VNF's Ethernet addresses) is taken by the decapsulating node.

Namespaces are ``sfcd-t<hex>-*``; they are removed even when a test fails.
"""

from __future__ import annotations

import os
import secrets

import pytest
from fixtures.srv6_frames import (
    FLOWS,
    bed_progs,
    end,
    ether,
    patched,
    plain_tcp,
    program_fixtures,
    restored_frame,
    send_from,
    set_tag_and_label,
    srv6_frame,
    value,
)

from sfcframe.demo import srv6_plan as plan
from sfcframe.demo.srv6_programs import MISMATCH_KINDS, Srv6Programs
from sfcframe.demo.srv6_topology import Srv6Topology
from sfcframe.demo.stamp import srv6_flow_label, srv6_hash4, srv6_hash6, srv6_tag
from sfcframe.demo.topology import leftover_namespaces

pytestmark = pytest.mark.kernel

NCPU = os.cpu_count() or 1


# ---------------------------------------------------------------------------
# frames: tests/fixtures/srv6_frames.py (scapy, values from the Python reference)
# ---------------------------------------------------------------------------
PACKETS = [(1, 2, 3), (0xFFFF, 0xFFFFFFFF, 0), (0x1234, 0x01020304, 0xA0B0C0D0)]


# ---------------------------------------------------------------------------
# stamper and checker under BPF_PROG_TEST_RUN
# ---------------------------------------------------------------------------
progs, fresh = program_fixtures()


def check(progs: Srv6Programs, frame: bytes, **options) -> dict[str, int]:
    """Run the checker once on frame (settings from options); the counters that moved.
    The checker never changes or drops a frame."""
    from sfcframe.testrun import TC_ACT_OK, run_tc

    progs.configure(plan.Srv6Options(**options))
    before = progs.checker_counters()
    out = run_tc(progs.fds["srv6_check"], frame)
    assert out.retval == TC_ACT_OK and out.packet == frame
    after = progs.checker_counters()
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


@pytest.mark.parametrize("hbh", [False, True], ids=["srh", "hbh+srh"])
@pytest.mark.parametrize("hmac", [False, True], ids=["plain", "hmac"])
@pytest.mark.parametrize("inner", ["ipv4", "ipv6"])
def test_stamper_writes_tag_and_flow_label_only(fresh, inner, hmac, hbh):
    from sfcframe.testrun import TC_ACT_OK, run_tc

    values = set()
    for ip_id, seq, ack in PACKETS:
        frame = srv6_frame(inner, ip_id, seq, ack, at="sff", hmac=hmac, hbh=hbh)
        h = value(inner, ip_id, seq, ack)
        values.add(h)
        out = run_tc(fresh.fds["srv6_stamp"], frame)
        assert out.retval == TC_ACT_OK
        assert out.packet == set_tag_and_label(frame, h)
        assert out.packet != frame
    assert len(values) == len(PACKETS)  # per packet, not per flow
    assert fresh.stamper_counters()["stamped"] == len(PACKETS)


def inner_flows():
    from hypothesis import strategies as st

    port = st.integers(0, 0xFFFF)
    v4 = st.tuples(st.ip_addresses(v=4).map(str), st.ip_addresses(v=4).map(str), port, port)
    v6 = st.tuples(st.ip_addresses(v=6).map(str), st.ip_addresses(v=6).map(str), port, port)
    return st.one_of(st.tuples(st.just("ipv4"), v4), st.tuples(st.just("ipv6"), v6))


def test_stamper_and_checker_agree_with_the_reference_on_any_packet(fresh):
    """hypothesis: any inner flow and per-packet fields, with or without HMAC TLV. The
    stamper writes the reference's value; the checker accepts the frame built from the
    reference and rejects it with the Tag of a neighbouring value."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from sfcframe.testrun import run_tc

    word = st.integers(0, 0xFFFFFFFF)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(inner_flow=inner_flows(), ip_id=st.integers(0, 0xFFFF), seq=word, ack=word,
           hmac=st.booleans())
    def run(inner_flow, ip_id, seq, ack, hmac):
        inner, flow = inner_flow
        h = value(inner, ip_id, seq, ack, flow)
        frame = srv6_frame(inner, ip_id, seq, ack, at="sff", hmac=hmac, flow=flow)
        assert run_tc(fresh.fds["srv6_stamp"], frame).packet == set_tag_and_label(frame, h)
        expected = srv6_frame(inner, ip_id, seq, ack, hmac=hmac, flow=flow)
        assert check(fresh, expected, hmac=hmac) == {"match": 1}
        assert check(fresh, patched(expected, tag=srv6_tag(h + 1)), hmac=hmac) == {"tag": 1}

    run()


def test_stamper_corrupts_the_first_segment_on_request(fresh):
    from sfcframe.testrun import run_tc

    fresh.configure(plan.Srv6Options(corrupt=True))
    frame = srv6_frame(at="sff", hmac=True)
    out = run_tc(fresh.fds["srv6_stamp"], frame).packet
    # the first segment (the list's last entry, SID_PROXY) lost its lowest bit; nothing else changed
    expected = set_tag_and_label(frame, value("ipv4", 0x1234, 0x01020304, 0xA0B0C0D0))
    assert out == patched(expected, segment=(1, "fc00:a::"))
    assert fresh.stamper_counters()["corrupted"] == 1


def test_stamper_leaves_everything_else_alone(fresh):
    from scapy.layers.inet6 import ICMPv6ND_NS, IPv6
    from scapy.layers.l2 import Ether
    from sfcframe.testrun import run_tc

    others = [
        plain_tcp("ipv4"), plain_tcp("ipv6"),
        bytes(ether() / IPv6(src="fc00:1::1", dst="ff02::1:ff00:2") / ICMPv6ND_NS(tgt="fc00:1::2")),
        srv6_frame(at="sff", proto="icmp"),  # SRv6, but no TCP inside
    ]
    truncated = srv6_frame(at="sff")[: 14 + 40 + 4]  # SRH cut short
    for frame in others + [truncated]:
        out = run_tc(fresh.fds["srv6_stamp"], frame)
        assert out.packet == frame
    counts = fresh.stamper_counters()
    assert counts["other"] == len(others) and counts["malformed"] == 1 and counts["stamped"] == 0


@pytest.mark.parametrize("hbh", [False, True], ids=["srh", "hbh+srh"])
@pytest.mark.parametrize("hmac", [False, True], ids=["plain", "hmac"])
@pytest.mark.parametrize("inner", ["ipv4", "ipv6"])
def test_checker_accepts_exactly_the_expected_frame(fresh, inner, hmac, hbh):
    for ip_id, seq, ack in PACKETS:
        moved = check(fresh, srv6_frame(inner, ip_id, seq, ack, hmac=hmac, hbh=hbh), hmac=hmac)
        # a Hop-by-Hop header the SFF did not send is a header mismatch; the rest is checked through it
        assert moved == ({"header": 1} if hbh else {"match": 1})
    if hbh:
        assert fresh.last_mismatch()["fields"] == ["header"]


H = value("ipv4", 0x1234, 0x01020304, 0xA0B0C0D0)
FIELD_CASES = {
    "sl": dict(sl=1),
    "da": dict(dst=plan.SID_PROXY),
    "da-other-family": dict(dst=plan.SID_DT6),
    "segments-proxy": dict(segments=[plan.SID_DX4, "fc00:a::2"]),
    "segments-egress": dict(segments=[plan.SID_DT6, plan.SID_PROXY]),
    "header-source": dict(src="fc00:1::9"),
    "header-three-segments": dict(segments=[plan.SID_DX4, plan.SID_PROXY, "fc00:c::1"]),
    "hop_limit": dict(hlim=63),
    "payload_len-field": dict(plen_delta=8),
    "payload_len-frame": dict(trailer=b"\0" * 8),
    "tag": dict(tag=srv6_tag(H) ^ 0x8000),
    "flow_label": dict(fl=srv6_flow_label(H) ^ 1),
}


@pytest.mark.parametrize("case", FIELD_CASES)
def test_checker_names_the_field_that_differs(fresh, case):
    field = case.split("-")[0]
    assert field in MISMATCH_KINDS
    assert check(fresh, srv6_frame(**FIELD_CASES[case])) == {field: 1}
    sample = fresh.last_mismatch()
    assert sample["fields"] == [field] and sample["count"] == 1
    assert sample["h"] == f"0x{H:08x}"


def test_checker_settings_hop_limit_and_hmac(fresh):
    # the expected hop limit is a parameter; an HMAC TLV where none is expected is a header change
    assert check(fresh, srv6_frame(hlim=63), hop_limit=63) == {"match": 1}
    assert check(fresh, srv6_frame(), hop_limit=63) == {"hop_limit": 1}
    assert check(fresh, srv6_frame(hmac=True)) == {"header": 1}
    assert check(fresh, srv6_frame(), hmac=True) == {"header": 1}


def test_checker_counts_under_the_first_field_and_keeps_all(fresh):
    frame = srv6_frame(sl=1, hlim=61, tag=0, fl=0)
    assert check(fresh, frame) == {"sl": 1}
    sample = fresh.last_mismatch()
    assert sample["fields"] == ["sl", "hop_limit", "tag", "flow_label"]
    assert sample["got"]["sl"] == 1 and sample["got"]["hop_limit"] == 61
    assert sample["got"]["segments"] == [plan.SID_DX4, plan.SID_PROXY]


def test_checker_other_outcomes(fresh):
    from scapy.layers.inet6 import ICMPv6ND_NS, IPv6
    from scapy.layers.l2 import Ether

    frame = bytearray(srv6_frame())
    frame[14 + 40 + 1] = 1  # SRH length: 16 bytes, too short for two segments
    cases = [
        (plain_tcp("ipv4"), "unencapsulated"),
        (plain_tcp("ipv6"), "unencapsulated"),
        (plain_tcp("ipv4", dst="10.77.2.1"), "other"),
        (plain_tcp("ipv6", dst="fc00:2::1"), "other"),
        (bytes(ether() / IPv6(src="fc00:2::1", dst="ff02::1:ff00:2") / ICMPv6ND_NS(tgt="fc00:2::2")),
         "other"),
        (srv6_frame(proto="icmp"), "other"),
        (bytes(frame), "malformed"),
        (srv6_frame()[: 14 + 40 + 40 + 10], "malformed"),  # inner IPv4 header cut short
    ]
    for frame, outcome in cases:
        assert check(fresh, frame) == {outcome: 1}, outcome
    assert fresh.last_mismatch() is None


def test_stamper_then_kernel_end_then_checker(fresh):
    """The stamped frame, advanced the way End does it, is what the checker wants;
    not advanced, it is not."""
    from sfcframe.testrun import run_tc

    for inner in ("ipv4", "ipv6"):
        stamped = run_tc(fresh.fds["srv6_stamp"], srv6_frame(inner, at="sff", hmac=True)).packet
        assert check(fresh, stamped, hmac=True) == {"sl": 1}
        assert check(fresh, end(stamped), hmac=True) == {"match": 1}


# ---------------------------------------------------------------------------
# namespace runs with real TCP through the kernel End stand-in
# ---------------------------------------------------------------------------
@pytest.fixture
def srv6_run(scenario):
    """SRv6 demo runs through the kernel End stand-in (conftest's scenario fixture:
    nothing may be left behind)."""
    return lambda **kwargs: scenario(encap="srv6", sf="end", **kwargs)


def assert_every_packet_checked_and_delivered(s):
    assert s.passed, s.reasons()
    assert s.teardown.get("clean"), s.teardown
    assert not s.stream_errors, s.stream_errors
    assert s.checker["mismatch"] == 0 and s.checker["malformed"] == 0, (s.fields, s.mismatch_samples)
    assert s.checker["unencapsulated"] == 0
    assert s.checker["match"] > 10_000
    # every stamped packet reached the checker and matched; every checked packet was
    # decapsulated by the kernel and reached the receiver's TCP
    assert 0.999 * s.stamped <= s.checker["match"] <= s.stamped
    # a seg6local route counts a drop by the next veth (backlog full) as its error
    assert s.kernel_errors == s.downstream_dropped, (s.kernel, s.downstream_dropped)
    assert s.decapsulated + s.decap_errors == s.checked
    assert s.receiver_tcp_in == s.decapsulated
    if NCPU >= 2:
        assert sum(1 for x in s.checker_per_cpu["match"] if x > 0) >= 2, s.checker_per_cpu


def test_inner_ipv4_end_dx4(srv6_run):
    s = srv6_run(inner="ipv4")
    assert_every_packet_checked_and_delivered(s)
    assert s.kernel[f"dec End.DX4 {plan.SID_DX4}"]["packets"] + s.decap_errors == s.checked
    vnf_end = s.kernel[f"vnf End {plan.SID_PROXY}"]
    assert vnf_end["packets"] == s.checked  # its errors: drops by the veth toward dec


def test_inner_ipv6_end_dt6(srv6_run):
    s = srv6_run(inner="ipv6")
    assert_every_packet_checked_and_delivered(s)
    assert s.kernel[f"dec End.DT6 {plan.SID_DT6}"]["packets"] + s.decap_errors == s.checked


def test_hmac_every_packet_delivered(srv6_run):
    """The stamper writes Tag and flow label after the HMAC was computed: neither is
    covered, so the receiving node (seg6_require_hmac=1) takes every packet."""
    s = srv6_run(inner="ipv4", hmac=True)
    assert_every_packet_checked_and_delivered(s)


def test_hmac_corrupted_segment_dropped_by_the_kernel(srv6_run):
    """One bit of an HMAC-covered segment flipped at the SFF: the checker sees every
    such packet arrive, the kernel's End.DX4 drops every one (its errors counter) and
    the receiver's TCP gets nothing."""
    s = srv6_run(inner="ipv4", hmac=True, corrupt=True)
    assert s.sff["corrupted"] > 0 and s.sff["stamped"] == 0
    assert s.checker["match"] == 0
    assert s.fields["segments"] == s.checker["mismatch"] == s.sff["corrupted"]
    dx4 = s.kernel[f"dec End.DX4 {plan.SID_DX4}"]
    assert dx4["errors"] == s.checked and dx4["packets"] == 0
    assert s.receiver_tcp_in == 0
    assert not s.passed and s.teardown.get("clean"), s.teardown


def test_corrupted_segment_delivered_without_hmac(srv6_run):
    """The control: the same corruption without HMAC is forwarded and delivered (the
    flipped segment is no longer used for routing), so the drop above is the HMAC check."""
    s = srv6_run(inner="ipv4", corrupt=True)
    assert s.sff["corrupted"] > 10_000
    assert s.fields["segments"] == s.checker["mismatch"] == s.checked
    assert s.kernel_errors == s.downstream_dropped
    assert s.decapsulated + s.decap_errors == s.checked
    assert s.receiver_tcp_in == s.decapsulated
    assert s.goodput_mbps > 0 and not s.stream_errors


# ---------------------------------------------------------------------------
# the proxy mode's addressing, without a proxy
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("hmac", [False, True], ids=["plain", "hmac"])
def test_proxy_mode_restored_frame_reaches_the_receiver(bed_progs, hmac):
    """sf=proxy: the VNF host has no SRv6 configuration. A frame as the proxy will
    restore it on out0 (Ethernet addresses from the VNF's IPv4/IPv6 forwarding toward
    the receiver) is checked OK, decapsulated by the kernel and delivered."""
    import time

    topo = Srv6Topology(options=plan.Srv6Options(sf="proxy", hmac=hmac), tag="t" + secrets.token_hex(3))
    try:
        bed_progs.configure(topo.options)
        topo.create()
        assert "seg6" not in topo.ip("vnf", "-6", "route", "show", "table", "all").stdout
        topo.warm_up()
        bed_progs.attach_checker(topo.ns("dec"), topo.checker_iface)
        for inner in (("ipv4", "ipv6") if not hmac else ("ipv4",)):
            topo.options = plan.Srv6Options(sf="proxy", hmac=hmac, inner=inner)
            sid = topo.options.egress_sid
            k0, r0 = topo.seg6local_counters("dec", sid), topo.snmp("rcv")
            bed_progs.reset()
            send_from(topo.ns("vnf"), "out0", restored_frame(inner, topo.inner_next_hop(), hmac))
            time.sleep(0.2)
            k1, r1 = topo.seg6local_counters("dec", sid), topo.snmp("rcv")
            assert bed_progs.checker_counters()["match"] == 1, bed_progs.last_mismatch()
            assert (k1["packets"] - k0["packets"], k1["errors"] - k0["errors"]) == (1, 0)
            assert r1["TcpInSegs"] - r0["TcpInSegs"] == 1
    finally:
        left = topo.destroy() + leftover_namespaces(topo.tag)
        assert not left, left


@pytest.mark.parametrize("inner", ["ipv4", "ipv6"])
def test_behind_nat_the_value_leaves_addresses_and_ports_out(fresh, inner):
    """A NAT VNF rewrites the inner addresses and ports between stamper and checker:
    with the nat setting both compute the value from the other fields only, so the
    same packet under another flow stamps and checks the same."""
    from sfcframe.testrun import run_tc

    fresh.configure(plan.Srv6Options(nat=True))
    ip_id, seq, ack = PACKETS[0]
    stamped = []
    for flow in (None, NATTED[inner]):
        h = (srv6_hash4(ip_id, seq, ack, *(flow or FLOWS[inner]), flow=False) if inner == "ipv4"
             else srv6_hash6(seq, ack, *(flow or FLOWS[inner]), flow=False))
        frame = srv6_frame(inner, ip_id, seq, ack, at="sff", flow=flow)
        out = run_tc(fresh.fds["srv6_stamp"], frame)
        assert out.packet == set_tag_and_label(frame, h)
        stamped.append(h)
        expected = srv6_frame(inner, ip_id, seq, ack, flow=flow, tag=srv6_tag(h),
                              fl=srv6_flow_label(h))
        assert check(fresh, expected, nat=True) == {"match": 1}
    assert stamped[0] == stamped[1] != value(inner, ip_id, seq, ack)


#: the flows of FLOWS after a source NAT (another source address and port)
NATTED = {"ipv4": ("10.77.2.1", "10.77.3.2", 40000, 5201),
          "ipv6": ("fc00:2::1", "fd77:3::2", 40000, 5201)}
