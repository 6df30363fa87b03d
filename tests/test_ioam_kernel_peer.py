"""The SRv6 kernel-peer testbed with IOAM (``sfcframe demo --encap srv6 --ioam``):
the SFF's stamper inserts a pre-allocated IOAM trace (IPv6 Hop-by-Hop option 49)
after the kernel's H.Encaps, kernel IOAM routers t1 and t2 around the VNF host
(and the VNF host's kernel with the End stand-in) fill their node data, the
checker reads the trace before the decapsulating node's kernel.

- BPF_PROG_TEST_RUN: the stamper's insertion against the Python reference
  (``srv6_ioam.insert_trace``) and dissected with sfcframe_ioam's scapy layers;
  the checker's IOAM verdicts, samples and VNF-slot statistics against the Python
  reference (``srv6_ioam.reference_check`` / ``vnf_slot``) on scapy-built frames,
  named cases and hypothesis-mutated traces.
- Namespaces with real TCP (3 s of iperf3), the kernel-only chain: every packet
  arrives with t1's, the VNF host's and t2's node data as configured, with and
  without HMAC.
- Kernel facts: the IOAM option must start 4n-aligned (else the transit node drops
  the packet, Ip6InHdrErrors); the decapsulating node fills its node data after
  the checker has seen the packet; a frame restored on the VNF host's ``out0`` (a
  proxy's, with a proxy-written VNF slot) goes through t2 and is accepted.

Namespaces are ``sfcd-t<hex>-*``; they are removed even when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import sys
import time
from pathlib import Path

import pytest
from fixtures.srv6_frames import (
    bed_progs,
    kernel_hmac,
    program_fixtures,
    send_from,
    set_tag_and_label,
    srv6_frame,
    value,
)
from scapy.layers.inet6 import IPv6ExtHdrHopByHop, Pad1, PadN

from sfcframe.demo import srv6_ioam, srv6_plan as plan
from sfcframe.demo.srv6_ioam import IoamOptions
from sfcframe.demo.srv6_programs import Srv6Programs
from sfcframe.demo.srv6_topology import Srv6Topology
from sfcframe.demo.topology import leftover_namespaces

pytestmark = pytest.mark.kernel

NCPU = os.cpu_count() or 1


def _layers():
    """sfcframe_ioam's scapy layers: installed, or from this source tree."""
    try:
        from sfcframe_ioam import scapy_layers
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "sfcframe-ioam"))
        from sfcframe_ioam import scapy_layers
    return scapy_layers


L = _layers()

#: what the testbed's kernel nodes write (node ids and interface ids of srv6_ioam.node_ids)
T1, VNF, T2, DEC = 0x5FC001, 0x5FC002, 0x5FC003, 0x5FC004
#: hop limit each writes: t1 receives 63 (H.Encaps' 64 less the SFF's forwarding) and
#: writes what it will send; each later node one less
HOP_LIMIT = {"t1": 62, "vnf": 61, "t2": 60, "dec": 59}


# ---------------------------------------------------------------------------
# frames: traces built with the scapy layers
# ---------------------------------------------------------------------------
def now_usec() -> int:
    return int(time.time() * 1_000_000)


def kernel_values(role: str, tt: int, usec: int) -> dict[str, int]:
    """A Linux node's data in trace type tt, received at usec (the End stand-in's
    route is the seg6local one on in0: its egress interface id is in0's)."""
    values = srv6_ioam.kernel_node(role, tt, HOP_LIMIT[role], egress_if="in0" if role == "vnf" else None)
    values.update(timestamp_seconds=usec // 1_000_000, timestamp_fraction=usec % 1_000_000)
    present = L.field_names(tt)
    return {k: v for k, v in values.items() if k in present}


def trace_layer(o: IoamOptions, written: list[dict], *, namespace: int | None = None, flags: int = 0):
    """The Hop-by-Hop header with a pre-allocated trace whose node data ``written``
    (in writing order) fill the last slots."""
    words = srv6_ioam.node_words(o.trace_type)
    trace = L.preallocated_trace(o.namespace if namespace is None else namespace, o.trace_type,
                                 nodes=list(reversed(written)), remaining=(o.slots - len(written)) * words,
                                 flags=flags)
    return L.ioam_hbh(trace)


def chain(o: IoamOptions, start: int, roles=("t1", "vnf", "t2"), **changes) -> list[dict]:
    """Node data of roles as the kernel writes it, 10 us apart from start;
    changes: {role: {field: value}}."""
    out = []
    for i, role in enumerate(roles):
        values = kernel_values(role, o.trace_type, start + 10 * i)
        values.update(changes.get(role, {}))
        out.append(values)
    return out


def patch(frame: bytes, hbh_offset: int, data: bytes) -> bytes:
    """frame with data written at hbh_offset of its Hop-by-Hop header."""
    at = 14 + 40 + hbh_offset
    return frame[:at] + data + frame[at + len(data):]


def traced(options: plan.Srv6Options, hbh, **kwargs) -> bytes:
    """An SRv6 frame as the checker expects it (after the VNF host and t2) with hbh."""
    return srv6_frame(options.inner, hmac=options.hmac, hlim=options.expected_hop_limit, hbh=hbh, **kwargs)


# ---------------------------------------------------------------------------
# stamper and checker under BPF_PROG_TEST_RUN
# ---------------------------------------------------------------------------
progs, fresh = program_fixtures()


TRACE_TYPES = [
    IoamOptions(),
    IoamOptions(trace_type=0x800000, slots=3),
    IoamOptions(trace_type=0xFFF002, slots=3),  # bits 0-11 and 22: 15 words + the snapshot's
    IoamOptions(trace_type=0x080000, slots=5),  # transit delay only
]


@pytest.mark.parametrize("hmac", [False, True], ids=["plain", "hmac"])
@pytest.mark.parametrize("inner", ["ipv4", "ipv6"])
@pytest.mark.parametrize("o", TRACE_TYPES, ids=lambda o: f"{o.trace_type:06x}x{o.slots}")
def test_stamper_inserts_the_preallocated_trace(fresh, o, inner, hmac):
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrSegmentRouting
    from sfcframe.testrun import TC_ACT_OK, run_tc

    fresh.configure(plan.Srv6Options(inner=inner, hmac=hmac, ioam=o))
    frame = srv6_frame(inner, at="sff", hmac=hmac)
    out = run_tc(fresh.fds["srv6_stamp"], frame)
    assert out.retval == TC_ACT_OK
    h = value(inner, 0x1234, 0x01020304, 0xA0B0C0D0)
    assert out.packet == srv6_ioam.insert_trace(set_tag_and_label(frame, h), o)
    # dissected: a Hop-by-Hop header right after the IPv6 header, the option 4n-aligned
    # after a PadN, an empty pre-allocated trace of o.slots slots, then the SRH as it was
    ip6 = IPv6(out.packet[14:])
    hbh = ip6[IPv6ExtHdrHopByHop]
    assert ip6.nh == 0 and hbh.nh == 43 and (hbh.len + 1) * 8 == o.hbh_len
    assert ip6.plen == len(out.packet) - 14 - 40
    assert type(hbh.options[0]).__name__ == "PadN" and isinstance(hbh.options[1], L.HBHOptIOAM)
    trace = L.find_trace(ip6)
    words = L.node_len_words(o.trace_type) + (1 if L.trace_bit(o.trace_type, 22) else 0)
    assert L.decode_trace(trace) == {
        "ioam_type": 0, "namespace_id": o.namespace, "node_len": L.node_len_words(o.trace_type),
        "overflow": False, "flags": 0, "remaining_len": o.slots * words, "trace_type": o.trace_type,
        "nodes": []}
    assert trace.free == bytes(4 * o.slots * words)
    assert ip6[IPv6ExtHdrSegmentRouting].addresses == [plan.SID_DX4 if inner == "ipv4" else plan.SID_DT6,
                                                       plan.SID_PROXY]
    assert ip6[TCP].seq == 0x01020304
    assert fresh.ioam_insert_counters() == {"inserted": 1, "has_hbh": 0, "no_room": 0}
    assert fresh.stamper_counters()["stamped"] == 1


def test_stamper_leaves_a_hop_by_hop_header_alone_and_corrupts_with_the_trace(fresh):
    from sfcframe.testrun import run_tc

    o = IoamOptions()
    fresh.configure(plan.Srv6Options(ioam=o))
    frame = srv6_frame(at="sff", hbh=True)
    h = value("ipv4", 0x1234, 0x01020304, 0xA0B0C0D0)
    assert run_tc(fresh.fds["srv6_stamp"], frame).packet == set_tag_and_label(frame, h)
    assert fresh.ioam_insert_counters()["has_hbh"] == 1
    # corruption (tests only) still flips the segment: the trace goes in after it
    fresh.configure(plan.Srv6Options(ioam=o, corrupt=True, hmac=True))
    frame = srv6_frame(at="sff", hmac=True)
    out = run_tc(fresh.fds["srv6_stamp"], frame).packet
    hbh_len = o.hbh_len
    assert out[14 + 40 + hbh_len:] != set_tag_and_label(frame, h)[14 + 40:]
    assert fresh.stamper_counters()["corrupted"] == 1 and fresh.ioam_insert_counters()["inserted"] == 1


def check(progs: Srv6Programs, options: plan.Srv6Options, frame: bytes) -> tuple[dict, dict]:
    """Run the checker once; (SRv6 counters that moved, IOAM counters that moved)."""
    from sfcframe.testrun import TC_ACT_OK, run_tc

    progs.configure(options)
    b6, bi = progs.checker_counters(), progs.ioam_counters()
    out = run_tc(progs.fds["srv6_check"], frame)
    assert out.retval == TC_ACT_OK and out.packet == frame  # never changes a frame
    a6, ai = progs.checker_counters(), progs.ioam_counters()
    return ({k: a6[k] - b6[k] for k in a6 if a6[k] != b6[k]}, {k: ai[k] - bi[k] for k in ai if ai[k] != bi[k]})


END = plan.Srv6Options(ioam=IoamOptions())
START = 1_795_000_000_000_000  # some time in microseconds
O = END.ioam


def case_frames() -> dict[str, tuple[plan.Srv6Options, bytes, str]]:
    """Named frames: (options, frame, the IOAM outcome the checker must count)."""
    good = chain(O, START)

    def with_(**changes):
        return traced(END, trace_layer(O, chain(O, START, **changes)))

    proxy = plan.Srv6Options(sf="proxy", ioam=IoamOptions(vnf_expect=(("hop_limit", 61), ("node_id", VNF))))
    proxy_slot = {"hop_limit": 61, "node_id": VNF, "transit_delay": 2500}
    # the suggested expectation of a proxy's slot: the kernel's identities, "not available"
    # for what a proxy cannot know (here: none of the default type's fields), any delay
    suggested = plan.Srv6Options(sf="proxy", ioam=IoamOptions(vnf_expect=srv6_ioam.proxy_slot(O.trace_type)))
    stage = {"egress_if_id": 0x202, "transit_delay": 1234}
    # the proxy's ioam stage as the demo runs it (--stage ioam): its slot as configured and
    # a plausible transit delay (available, no longer than t1 -> t2 = 20 us, plus 1 us)
    held = plan.Srv6Options(sf="proxy", ioam=IoamOptions(vnf_expect=srv6_ioam.proxy_slot(O.trace_type),
                                                         vnf_delay=True))

    def dwell(delay: int):
        return traced(held, trace_layer(O, chain(O, START, vnf={**stage, "transit_delay": delay})))

    return {
        "ok": (END, traced(END, trace_layer(O, good)), "ok"),
        "ok-inner-ipv6-hmac": (plan.Srv6Options(inner="ipv6", hmac=True, ioam=O),
                               srv6_frame("ipv6", hmac=True, hlim=60, hbh=trace_layer(O, good)), "ok"),
        "no-hbh": (END, traced(END, False), "no_trace"),
        "empty-hbh": (END, traced(END, True), "no_trace"),
        "option-at-8": (END, traced(END, IPv6ExtHdrHopByHop(nh=43, autopad=0, options=[
            PadN(optdata=b"\0" * 4), L.HBHOptIOAM(data=L.preallocated_trace(
                O.namespace, O.trace_type, nodes=list(reversed(good)), remaining=O.node_words)),
            PadN(optdata=b"\0" * 2)])), "no_trace"),
        "namespace": (END, traced(END, trace_layer(O, good, namespace=O.namespace + 1)), "layout"),
        # bits 5 and 6 swapped: the same length, another trace type
        "trace-type": (END, patch(traced(END, trace_layer(O, good)), srv6_ioam.TRACE_OFF + 4,
                                  bytes([(O.trace_type ^ 0x060000) >> 16])), "layout"),
        "overflow": (END, traced(END, trace_layer(O, good, flags=0b1000)), "overflow"),
        "remaining": (END, traced(END, trace_layer(O, good + chain(O, START + 40, roles=("dec",)))), "remaining"),
        "t1-hop-limit": (END, with_(t1={"hop_limit": 63}), "t1"),
        "t1-ingress-if": (END, with_(t1={"ingress_if_id": 0x102}), "t1"),
        "vnf-node-id": (END, with_(vnf={"node_id": T2}), "vnf"),
        "vnf-egress-if": (END, with_(vnf={"egress_if_id": 0x202}), "vnf"),
        "vnf-transit-delay": (END, with_(vnf={"transit_delay": 1000}), "vnf"),
        "t2-namespace-data": (END, with_(t2={"namespace_data": 0}), "t2"),
        "t2-node-id": (END, with_(t2={"node_id": DEC}), "t2"),
        "t2-before-t1": (END, with_(t2={"timestamp_seconds": START // 1_000_000 - 1}), "timestamps"),
        "path-over-1s": (END, with_(t2={"timestamp_seconds": START // 1_000_000 + 2}), "timestamps"),
        # the same time as usual, written with a fraction of a second >= 10^6 us
        "fraction-1e6": (END, with_(t1={"timestamp_seconds": START // 1_000_000 - 1,
                                        "timestamp_fraction": 1_000_000 + START % 1_000_000}), "timestamps"),
        "vnf-none-ok": (plan.Srv6Options(ioam=IoamOptions(vnf="none")),
                        traced(END, trace_layer(O, chain(O, START, roles=("t1", "t2")))), "ok"),
        "vnf-none-but-filled": (plan.Srv6Options(ioam=IoamOptions(vnf="none")),
                                traced(END, trace_layer(O, good)), "remaining"),
        "proxy-slot-ok": (proxy, traced(proxy, trace_layer(O, chain(O, START, vnf=proxy_slot))), "ok"),
        "proxy-slot-hop-limit": (proxy, traced(proxy, trace_layer(O, chain(
            O, START, vnf={**proxy_slot, "hop_limit": 62}))), "vnf"),
        "proxy-slot-suggested": (suggested, traced(suggested, trace_layer(O, chain(O, START, vnf=stage))), "ok"),
        "proxy-slot-suggested-in0": (suggested, traced(suggested, trace_layer(O, chain(
            O, START, vnf={**stage, "egress_if_id": 0x201}))), "vnf"),
        "proxy-slot-unchecked": (plan.Srv6Options(sf="proxy", ioam=IoamOptions()),
                                 traced(proxy, trace_layer(O, chain(O, START, vnf={"node_id": 7}))), "ok"),
        "stage-dwell-ok": (held, dwell(2500), "ok"),
        "stage-dwell-at-path": (held, dwell(21_000), "ok"),
        "stage-dwell-beyond-path": (held, dwell(21_001), "vnf"),
        "stage-dwell-unavailable": (held, dwell(0xFFFFFFFF), "vnf"),
        "stage-dwell-overflow": (held, dwell(0x80001234), "vnf"),
        "stage-dwell-unchecked-when-not-asked": (suggested, dwell(0xFFFFFFFF), "ok"),
        "stage-node-id": (held, traced(held, trace_layer(O, chain(O, START, vnf={**stage, "node_id": 7}))), "vnf"),
    }


CASES = case_frames()


@pytest.mark.parametrize("case", CASES)
def test_checker_ioam_verdict_matches_the_reference(fresh, case):
    options, frame, outcome = CASES[case]
    srv6, ioam = check(fresh, options, frame)
    reference, found = srv6_ioam.reference_check(frame, options.ioam_check)
    assert reference == outcome, found
    assert ioam == {outcome: 1}
    # the SRv6 part: the Hop-by-Hop header is expected with IOAM, everything else as before
    assert srv6 == ({"header": 1} if outcome == "no_trace" and case == "no-hbh" else {"match": 1})
    last = fresh.ioam_sample(0)
    assert last["outcomes"] == [o for o in found if o != "ok"]
    hbh = frame[54:54 + 8 * (frame[55] + 1)] if frame[20] == 0 else None
    if hbh and outcome != "no_trace":
        assert last["hbh"] == hbh
    mismatch = fresh.ioam_sample(1)
    assert (mismatch is None) == (outcome == "ok")


def test_checker_without_ioam_settings_counts_nothing_ioam(fresh):
    options, frame, _ = CASES["ok"]
    srv6, ioam = check(fresh, plan.Srv6Options(), frame)
    assert srv6 == {"header": 1} and ioam == {}  # a Hop-by-Hop header where none is expected


def test_checker_agrees_with_the_reference_on_mutated_traces(fresh):
    """hypothesis: any octet of the trace's Hop-by-Hop header changed, with any
    timestamps: the checker counts the reference's outcome and keeps its list."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    fresh.configure(END)
    plan_ = END.ioam_check

    latest = (2**32 - 1) * 1_000_000

    # octets 0 and 1 (next header, length) locate the SRH: the SRv6 checker's business
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(start=st.integers(0, latest), gaps=st.tuples(st.integers(-3_000_000, 3_000_000), st.integers(0, 20)),
           flips=st.lists(st.tuples(st.integers(2, O.hbh_len - 1), st.integers(1, 255)), max_size=3))
    def run(start, gaps, flips):
        nodes = chain(O, start)
        t2 = max(0, min(latest, start + gaps[0]))
        nodes[2].update(timestamp_seconds=t2 // 1_000_000, timestamp_fraction=t2 % 1_000_000 + gaps[1] * 50_000)
        nodes[2]["timestamp_fraction"] &= 0xFFFFFFFF
        frame = bytearray(traced(END, trace_layer(O, nodes)))
        for at, xor in flips:
            frame[54 + at] ^= xor
        frame = bytes(frame)
        _, ioam = check(fresh, END, frame)
        outcome, found = srv6_ioam.reference_check(frame, plan_)
        assert ioam == {outcome: 1}, (found, frame[54:54 + O.hbh_len].hex())
        if outcome != "no_trace":
            assert fresh.ioam_sample(0)["outcomes"] == [o for o in found if o != "ok"]

    run()


def test_vnf_slot_statistics_match_the_reference(fresh):
    """The VNF host's transit delay as a proxy's stage writes it: available, not
    available, overflow, longer than t1 -> t2; mean, minimum and maximum."""
    options = plan.Srv6Options(sf="proxy", ioam=IoamOptions())
    plan_ = options.ioam_check
    delays = [2500, 0xFFFFFFFF, 0x80000000, 0x80001234, 700, 25_000]  # t1 -> t2 is 20 us here
    expected = {"slots": 0, "delay_available": 0, "delay_unavailable": 0, "delay_overflow": 0,
                "delay_exceeds_path": 0, "delay_sum_ns": 0, "path_count": 0, "path_sum_ns": 0}
    available = []
    for delay in delays:
        frame = traced(options, trace_layer(O, chain(O, START, vnf={"transit_delay": delay})))
        _, ioam = check(fresh, options, frame)
        assert ioam == {"ok": 1}
        ref = srv6_ioam.vnf_slot(frame, plan_)
        expected["slots"] += 1
        expected[f"delay_{ref['delay']}"] += 1
        expected["path_count"] += 1
        expected["path_sum_ns"] += ref["path_ns"]
        if ref["delay"] == "available":
            available.append(ref["delay_ns"])
            expected["delay_sum_ns"] += ref["delay_ns"]
            expected["delay_exceeds_path"] += ref["exceeds_path"]
    stats = fresh.ioam_vnf_stats()
    assert {k: stats[k] for k in expected} == expected
    assert expected["delay_exceeds_path"] == 1 and expected["delay_overflow"] == 2
    assert stats["delay_min_ns"] == min(available) and stats["delay_max_ns"] == max(available)
    assert stats["path_max_ns"] == 20_000
    decoded = srv6_ioam.decode_hbh(fresh.ioam_sample(0)["hbh"])
    assert [n["transit_delay"] for n in decoded["nodes"]] == [0xFFFFFFFF, 25_000, 0xFFFFFFFF]


# ---------------------------------------------------------------------------
# namespace runs with real TCP: the kernel-only chain
# ---------------------------------------------------------------------------
@pytest.fixture
def ioam_run(scenario):
    return lambda **kwargs: scenario(encap="srv6", sf="end", ioam=True, **kwargs)


def assert_every_packet_traced(s, decap: str, free: int = 1):
    assert s.passed, s.reasons()
    assert s.teardown.get("clean"), s.teardown
    io = s.ioam
    outcomes = io["outcomes"]
    assert {k: v for k, v in outcomes.items() if k != "ok" and v} == {}, (io.get("last_mismatch"), outcomes)
    assert s.checker["match"] > 10_000 and s.checker["mismatch"] == 0
    # every stamped packet got a trace, reached the checker with t1's, the VNF host's
    # and t2's node data as configured, and went on to the receiver
    assert io["inserted"] == {"inserted": s.stamped, "has_hbh": 0, "no_room": 0}
    assert outcomes["ok"] == s.checked == s.checker["match"]
    assert 0.999 * s.stamped <= s.checked <= s.stamped
    assert s.kernel_errors == 0 and s.kernel[decap]["packets"] == s.checked
    assert s.receiver_tcp_in == s.checked
    # the kernel End writes "not available" as transit delay; timestamps t1 -> t2 on every packet
    vnf = io["vnf_slot"]
    assert vnf["slots"] == vnf["delay_unavailable"] == vnf["path_count"] == s.checked
    assert vnf["delay_available"] == 0 and 0 < vnf["path_mean_ns"] < 1e9
    if NCPU >= 2:
        assert sum(1 for x in io["ok_per_cpu"] if x > 0) >= 2, io["ok_per_cpu"]
    # the last trace, dissected with the scapy layers: kernel-written node data, newest first
    nodes = assert_last_trace(io, vnf_egress_if=0x201, free=free)
    assert all(n["transit_delay"] == 0xFFFFFFFF for n in nodes)
    assert nodes[2]["timestamp_seconds"] <= nodes[0]["timestamp_seconds"] <= time.time()
    return nodes


def assert_last_trace(io: dict, vnf_egress_if: int, free: int) -> list[dict]:
    """The checker's last trace dissected with the scapy layers: t2's, the VNF host's
    and t1's node data (newest first) with the testbed's identities, the decapsulating
    node's ``free`` slots left, no overflow."""
    trace = L.find_trace(IPv6ExtHdrHopByHop(bytes.fromhex(io["last_trace"]["hbh"])))
    nodes = L.decode_nodes(trace)
    assert [(n["hop_limit"], n["node_id"]) for n in nodes] == [(60, T2), (61, VNF), (62, T1)]
    assert [(n["ingress_if_id"], n["egress_if_id"]) for n in nodes] == [
        (0x301, 0x302), (0x201, vnf_egress_if), (0x101, 0x102)]
    assert [n["namespace_data"] for n in nodes] == [0xDA7A0003, 0xDA7A0002, 0xDA7A0001]
    words = L.node_len_words(trace.trace_type) + (1 if L.trace_bit(trace.trace_type, 22) else 0)
    assert trace.remaining_len == free * words  # the decapsulating node's slot
    assert not trace.overflow
    return nodes


def test_kernel_chain_inner_ipv4(ioam_run):
    s = ioam_run(inner="ipv4")
    assert_every_packet_traced(s, f"dec End.DX4 {plan.SID_DX4}")
    assert s.kernel[f"vnf End {plan.SID_PROXY}"]["packets"] == s.checked


def test_kernel_chain_hmac_inner_ipv6_every_field(ioam_run):
    """The kernel's HMAC does not cover Hop-by-Hop headers: with seg6_require_hmac=1
    at the decapsulating node every traced packet is accepted. Trace type 0xFFF002
    (bits 0-11 and the opaque snapshot: 16 words a node, 3 slots): every field the
    kernel writes as the plan says, on every packet; no room is left for the
    decapsulating node (it sets the O flag after the checker)."""
    s = ioam_run(inner="ipv6", hmac=True, ioam_trace_type=0xFFF002, ioam_slots=3)
    nodes = assert_every_packet_traced(s, f"dec End.DT6 {plan.SID_DT6}", free=0)
    t1 = nodes[2]
    assert (t1["wide_hop_limit"], t1["wide_node_id"]) == (62, 0x5FC0_0000_0000_01)
    assert (t1["wide_ingress_if_id"], t1["wide_egress_if_id"]) == (0x5FC00101, 0x5FC00102)
    assert (t1["queue_depth"], t1["checksum_complement"], t1["buffer_occupancy"]) == (0, 0xFFFFFFFF, 0xFFFFFFFF)
    assert (t1["wide_namespace_data"], t1["opaque_len"], t1["schema_id"]) == (0xDA7A5FC000000001, 0, 0xFFFFFF)


def test_srv6_proxy_carries_the_trace_through(scenario):
    """sfcframe's srv6 proxy (no IOAM stage) caching the Hop-by-Hop header with the
    outer headers: t1's and t2's node data on every packet, the VNF host's slot
    left to t2 (``--ioam-vnf auto`` without the stage: none): the baseline a proxy's
    IOAM stage adds to."""
    s = scenario(encap="srv6", sf="proxy", ioam=True)  # no stage: --ioam-vnf auto is none
    assert s.passed, s.reasons()
    assert "max_ext_bytes=112" in s.config["proxy_spec"]  # the inserted Hop-by-Hop header
    assert s.ioam["outcomes"]["ok"] == s.checked == s.restored == s.stamped > 10_000
    nodes = L.decode_nodes(L.find_trace(IPv6ExtHdrHopByHop(bytes.fromhex(s.ioam["last_trace"]["hbh"]))))
    assert [(n["hop_limit"], n["node_id"]) for n in nodes] == [(60, T2), (62, T1)]


# ---------------------------------------------------------------------------
# the proxy's ioam stage between kernel IOAM nodes (--stage ioam)
# ---------------------------------------------------------------------------
def test_demo_options_of_the_stage():
    """--stage ioam turns the trace on, expects the VNF host's slot as the stage is
    configured (node 2's identities, hop limit 61: the restored header's, which is what
    a Linux node receiving 62 would write) and a plausible transit delay."""
    from sfcframe.demo import ioam_stage
    from sfcframe.demo.run import DemoConfig

    o = srv6_ioam.options_of(DemoConfig(encap="srv6", stages=["ioam"]))
    assert o.vnf_delay and dict(o.vnf_expect) == {
        "hop_limit": 61, "node_id": VNF, "ingress_if_id": 0x201, "egress_if_id": 0x202,
        "namespace_data": 0xDA7A0002}
    assert srv6_ioam.proxy_hop_limit() == HOP_LIMIT["vnf"] == HOP_LIMIT["t1"] - 1
    settings = ioam_stage.vnf_settings()
    assert (settings["node_id"], settings["ingress_if"], settings["egress_if"]) == (VNF, 0x201, 0x202)
    assert ioam_stage.setting_assignments({"node_id": VNF}) == ["ioam.node_id=0x5fc002"]
    plain = DemoConfig(encap="srv6", ioam=True)
    assert srv6_ioam.options_of(plain).vnf_expect is None
    # --ioam-vnf auto: the kernel End fills, a proxy without the stage leaves the slot free
    assert srv6_ioam.options_of(plain, "end").filler("end") == "kernel"
    assert srv6_ioam.options_of(plain, "proxy").filler("proxy") == "none"
    assert srv6_ioam.options_of(DemoConfig(encap="srv6", stages=["ioam"]), "proxy").filler("proxy") == "proxy"


def assert_stage_filled_every_packet(s, decap: str, free: int = 1) -> list[dict]:
    """Every packet reached the checker with t1's and t2's kernel-written node data
    and the proxy-written VNF host's data as configured, its transit delay available
    and within t1 -> t2; the stage filled every restored packet and counted its dwell."""
    assert s.passed, s.reasons()
    assert s.teardown.get("clean"), s.teardown
    io = s.ioam
    assert {k: v for k, v in io["outcomes"].items() if k != "ok" and v} == {}, io.get("last_mismatch")
    assert io["outcomes"]["ok"] == s.checked == s.restored == s.stamped > 10_000
    assert s.kernel_errors == s.downstream_dropped and s.kernel[decap]["packets"] + s.decap_errors == s.checked
    vnf = io["vnf_slot"]
    assert vnf["slots"] == vnf["delay_available"] == vnf["path_count"] == s.checked
    assert vnf["delay_unavailable"] == vnf["delay_overflow"] == vnf["delay_exceeds_path"] == 0
    assert 0 < vnf["delay_min_ns"] <= vnf["delay_mean_ns"] <= vnf["delay_max_ns"] < 2**31
    # the stage's own view: every restored packet filled, every dwell time counted
    counters = s.dwell["counters"]
    assert counters == {"filled": s.restored, "overflow": 0, "other_namespace": 0, "malformed": 0,
                        "no_trace": 0}, counters
    assert s.dwell["dwell"]["count"] == s.restored
    assert s.dwell["checker"] == {"count": s.checked, "mean_ns": vnf["delay_mean_ns"],
                                  "min_ns": vnf["delay_min_ns"], "max_ns": vnf["delay_max_ns"]}
    p50 = s.dwell["dwell"]["p50"]
    assert p50["lo"] <= vnf["delay_max_ns"] and p50["hi"] >= vnf["delay_min_ns"]
    assert "dwell time   function (VNF) dwell time" in s.text()
    assert json.loads(json.dumps(s.as_dict()))["dwell"]["dwell"]["count"] == s.restored  # --json
    if NCPU >= 2:
        assert sum(1 for x in io["ok_per_cpu"] if x > 0) >= 2, io["ok_per_cpu"]
    # the last trace, dissected: kernel-written (t2, t1) and proxy-written (VNF host) node
    # data side by side, newest first; the proxy's egress is out0
    nodes = assert_last_trace(io, vnf_egress_if=0x202, free=free)
    t2, proxy, t1 = nodes
    assert t1["transit_delay"] == t2["transit_delay"] == 0xFFFFFFFF  # Linux: not available
    usec = [n["timestamp_seconds"] * 1_000_000 + n["timestamp_fraction"] for n in nodes]
    # the proxy's timestamp is its egress time, between t1's and t2's receive times. The
    # stage converts the monotonic clock with the realtime offset taken once at up (two
    # clock reads): a few us of grain on an idle machine, but a preemption between the
    # reads or the clock being slewed since shifts every timestamp alike; 13 us was seen
    # under load, so the bound is 100 us either side (a wrong clock is off by far more)
    assert usec[2] - 100 <= usec[1] <= usec[0] + 100, usec
    assert 0 < proxy["transit_delay"] <= (usec[0] - usec[2]) * 1000 + 1000
    return nodes


def test_srv6_proxy_ioam_stage_between_kernel_nodes(scenario):
    """sfcframe demo --encap srv6 --ioam --stage ioam: the proxy's stage writes the VNF
    host's node data (settings as `sfcframe set NAME ioam.X=V` writes them) between
    kernel IOAM routers; every packet checked."""
    s = scenario(encap="srv6", sf="proxy", ioam=True, stages=["ioam"])
    assert s.config["proxy_spec"].count("stage=ioam") == 1 and "max_ext_bytes=112" in s.config["proxy_spec"]
    assert_stage_filled_every_packet(s, f"dec End.DX4 {plan.SID_DX4}")


def test_srv6_proxy_ioam_stage_hmac_inner_ipv6_every_field(scenario):
    """With the kernel's HMAC required at the decapsulating node, inner IPv6 and trace
    type 0xFFF002 (bits 0-11 and the opaque snapshot; 3 slots, none left for dec): every
    field of the proxy-written node data is what Linux writes as the VNF host, but the
    egress interface (out0, the proxy's egress) and what a proxy cannot know (queue
    depth, checksum complement, buffer occupancy: not available), on every packet."""
    s = scenario(encap="srv6", sf="proxy", ioam=True, stages=["ioam"], inner="ipv6", hmac=True,
                 ioam_trace_type=0xFFF002, ioam_slots=3)
    nodes = assert_stage_filled_every_packet(s, f"dec End.DT6 {plan.SID_DT6}", free=0)
    t2, proxy, t1 = nodes
    kernel = srv6_ioam.kernel_node("vnf", 0xFFF002, HOP_LIMIT["vnf"])
    for name in ("timestamp_seconds", "timestamp_fraction", "transit_delay"):
        del kernel[name]
    kernel.update(queue_depth=0xFFFFFFFF, checksum_complement=0xFFFFFFFF, buffer_occupancy=0xFFFFFFFF)
    assert {k: proxy[k] for k in kernel} == kernel
    assert (proxy["wide_egress_if_id"], proxy["opaque_len"], proxy["schema_id"]) == (0x5FC00202, 0, 0xFFFFFF)
    assert t1["queue_depth"] == t2["queue_depth"] == 0 and t1["wide_hop_limit"] == 62


# ---------------------------------------------------------------------------
# kernel facts on a bed without traffic
# ---------------------------------------------------------------------------
@pytest.fixture
def ioam_bed(bed_progs):
    """A testbed with IOAM (sf given by the test), the checker attached; removed even on failure."""
    beds = []

    def make(**options):
        topo = Srv6Topology(options=plan.Srv6Options(ioam=IoamOptions(), **options),
                            tag="t" + secrets.token_hex(3))
        beds.append(topo)
        bed_progs.reset()
        bed_progs.configure(topo.options)
        topo.create()
        topo.warm_up()
        bed_progs.attach_checker(topo.ns("dec"), topo.checker_iface)
        return topo

    yield make
    for topo in beds:
        left = topo.destroy() + leftover_namespaces(topo.tag)
        assert not left, left


def mac(topo: Srv6Topology, role: str, ifname: str) -> bytes:
    link = json.loads(topo.ip(role, "-j", "link", "show", "dev", ifname).stdout)[0]
    return bytes.fromhex(link["address"].replace(":", ""))


def as_sent_by_the_sff(topo: Srv6Topology, hbh) -> bytes:
    """A frame as the SFF's stamper sends it on down0 (Tag and flow label stamped,
    hop limit 63), with the Hop-by-Hop header hbh, addressed to t1."""
    h = value("ipv4", 0x4242, 1000, 2000)
    frame = srv6_frame("ipv4", 0x4242, 1000, 2000, at="sff", hbh=hbh)
    frame = set_tag_and_label(frame, h)
    return mac(topo, "t1", "eth0") + mac(topo, "sff", "down0") + frame[12:]


def test_kernel_ioam_alignment_and_the_receiving_node(bed_progs, ioam_bed):
    """An IOAM option at offset 2 or 6 of the Hop-by-Hop header: t1 drops the packet
    (Ip6InHdrErrors). At offset 4 and 8 (4n): t1, the VNF host and t2 fill. The
    decapsulating node fills its slot too, after the checker: the checker sees one
    slot free, an nftables rule at the node's prerouting (after the IPv6 header
    processing) sees its node data."""
    topo = ioam_bed(sf="end")
    o = topo.options.ioam
    empty = L.preallocated_trace(o.namespace, o.trace_type, remaining=o.slots * o.node_words)
    option = L.HBHOptIOAM(data=empty)

    def at(offset: int):
        """The option at offset (2: right after the header's first two octets)."""
        before = [PadN(optdata=bytes(offset - 4))] if offset >= 4 else []
        tail = -(offset + len(option)) % 8
        pad = [PadN(optdata=bytes(tail - 2))] if tail >= 2 else [Pad1()] * tail
        return IPv6ExtHdrHopByHop(nh=43, autopad=0, options=before + [option] + pad)

    hbhs = {off: (L.ioam_hbh(empty) if off == 4 else at(off)) for off in (2, 4, 6, 8)}
    for off, hbh in hbhs.items():
        raw = bytes(hbh)
        assert raw.index(b"\x31", 2) == off and len(raw) % 8 == 0, (off, raw.hex())
    # the decapsulating node's own node data in the first slot: hop limit 59, its node id
    word = (HOP_LIMIT["dec"] << 24) | DEC
    topo.exec("dec", "nft", "add", "table", "ip6", "ioam")
    topo.exec("dec", "nft", "add", "chain", "ip6", "ioam", "pre", "{ type filter hook prerouting priority -300; }")
    topo.exec("dec", "nft", "add", "rule", "ip6", "ioam", "pre", "@nh,448,32", hex(word), "counter")
    # and its interface ids: eth0 in, and out the seg6local route's device, eth0 again
    topo.exec("dec", "nft", "add", "rule", "ip6", "ioam", "pre", "@nh,480,32", "0x04010401", "counter")
    results = {}
    for off, hbh in hbhs.items():
        errors0, tcp0, ioam0 = topo.snmp("t1")["Ip6InHdrErrors"], topo.snmp("rcv")["TcpInSegs"], bed_progs.ioam_counters()
        send_from(topo.ns("sff"), "down0", as_sent_by_the_sff(topo, hbh))
        time.sleep(0.3)
        ioam1 = bed_progs.ioam_counters()
        results[off] = {"t1_hdr_errors": topo.snmp("t1")["Ip6InHdrErrors"] - errors0,
                        "received": topo.snmp("rcv")["TcpInSegs"] - tcp0,
                        "checker": {k: ioam1[k] - ioam0[k] for k in ioam1 if ioam1[k] != ioam0[k]}}
    assert results[2] == results[6] == {"t1_hdr_errors": 1, "received": 0, "checker": {}}, results
    assert results[4] == {"t1_hdr_errors": 0, "received": 1, "checker": {"ok": 1}}, results
    # offset 8: a longer header than the stamper's (no_trace for the checker), filled all the same
    assert results[8] == {"t1_hdr_errors": 0, "received": 1, "checker": {"no_trace": 1}}, results
    filled = L.find_trace(IPv6ExtHdrHopByHop(bed_progs.ioam_sample(1)["hbh"]))
    assert [(n["hop_limit"], n["node_id"]) for n in L.decode_nodes(filled)] == [(60, T2), (61, VNF), (62, T1)]
    # the receiving node wrote its data into the slot the checker saw free (the offset-4 frame)
    ruleset = topo.exec("dec", "nft", "list", "chain", "ip6", "ioam", "pre").stdout
    assert ruleset.count("counter packets 1 ") == 2, ruleset


def test_proxy_mode_restored_frame_goes_through_t2(bed_progs, ioam_bed):
    """sf=proxy: what a proxy with an IOAM stage sends from out0 (the VNF's Ethernet
    addresses, hop limit 61, the HMAC'd SRH, t1's node data and the VNF host's slot
    written) reaches t2, which fills its slot; the checker counts it ok, the VNF
    slot's transit delay lands in the statistics; the decapsulating node (HMAC
    required) takes it and the receiver gets it."""
    topo = ioam_bed(sf="proxy", hmac=True)
    o = topo.options.ioam
    start = now_usec() - 2_000
    slot = {"hop_limit": 61, "node_id": VNF, "ingress_if_id": 0x201, "egress_if_id": 0x202,
            "timestamp_seconds": (start + 5) // 1_000_000, "timestamp_fraction": (start + 5) % 1_000_000,
            "transit_delay": 2500, "namespace_data": 0xDA7A0002}
    written = [kernel_values("t1", o.trace_type, start), slot]
    frame = srv6_frame("ipv4", 0x4242, 1000, 2000, hmac=True, hlim=61, inner_ttl=63,
                       digest=kernel_hmac([plan.SID_DX4, plan.SID_PROXY]), hbh=trace_layer(o, written))
    src, dst = (bytes.fromhex(m.replace(":", "")) for m in topo.inner_next_hop())
    assert dst == mac(topo, "t2", "eth0")  # the VNF's next hop for the receiver is t2
    k0, r0 = topo.seg6local_counters("dec", plan.SID_DX4), topo.snmp("rcv")
    send_from(topo.ns("vnf"), "out0", dst + src + frame[12:])
    time.sleep(0.3)
    k1, r1 = topo.seg6local_counters("dec", plan.SID_DX4), topo.snmp("rcv")
    assert bed_progs.ioam_counters()["ok"] == 1, bed_progs.ioam_view()
    assert bed_progs.checker_counters()["match"] == 1, bed_progs.last_mismatch()
    stats = bed_progs.ioam_vnf_stats()
    assert (stats["delay_available"], stats["delay_sum_ns"], stats["delay_exceeds_path"]) == (1, 2500, 0)
    nodes = L.decode_nodes(L.find_trace(IPv6ExtHdrHopByHop(bed_progs.ioam_sample(0)["hbh"])))
    assert [(n["hop_limit"], n["node_id"]) for n in nodes] == [(60, T2), (61, VNF), (62, T1)]
    assert nodes[1]["transit_delay"] == 2500
    assert (k1["packets"] - k0["packets"], k1["errors"] - k0["errors"]) == (1, 0)
    assert r1["TcpInSegs"] - r0["TcpInSegs"] == 1
