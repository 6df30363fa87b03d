"""Scenario tests: the proxy in namespaces with real TCP traffic, every packet
checked at the receiver (``sfcframe.demo``), plus quick BPF_PROG_TEST_RUN
checks that the demo's stamper and checker agree with a Python reference.

Each scenario runs ~3 s of iperf3 (two streams, pinned to CPU 0 and CPU 1)
through sender - SFF (stamps) - VNF host (proxy via the runtime + VNF) -
receiver (checks, strips). Namespaces are named ``sfcd-t<hex>-*``; the
``scenario`` fixture removes them and downs the proxy even when a test fails.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from pathlib import Path

import pytest

from sfcframe import discovery
from sfcframe.demo import ioam_stage, ioam_trace, programs
from sfcframe.demo.stamp import packet_hash

pytestmark = pytest.mark.kernel

SECONDS = 3  # the scenario fixture's traffic time (conftest.SCENARIO_SECONDS)
NCPU = os.cpu_count() or 1


# ---------------------------------------------------------------------------
# Python reference of the stamps (what the encapsulations' demo templates build)
# ---------------------------------------------------------------------------
def mpls_stamp(labels: int, h: int, chain: int, skip: int = 0) -> bytes:
    from sfcframe.encaps.mpls.scapy_layers import label_stack

    entries = [(1000 * chain + 100 + i, 0, 64) for i in range(labels - 1)]
    if labels:
        entries.append((h & 0xFFFFF, (h >> 20) & 7, (h >> 23) & 0xFF))
    kept = entries[skip:]
    return label_stack(kept) if kept else b""


def nsh_stamp(md_type: int, h: int, chain: int, si: int = 255, nextproto: int = 1) -> bytes:
    from sfcframe.encaps.nsh.scapy_layers import Tlv, nsh_md1, nsh_md2

    if md_type == 1:
        context = struct.pack("!IIII", h, h ^ 0x5FC05FC0, chain, ~h & 0xFFFFFFFF)
        return nsh_md1(spi=0x100 + chain, si=si, context=context, ttl=63, nextproto=nextproto)
    tlv = Tlv(0xFFFE, 0x42, struct.pack("!II", h, chain))
    return nsh_md2(spi=0x100 + chain, si=si, tlvs=[tlv], ttl=63, nextproto=nextproto)


def tcp_frame(ip_id=0x1234, seq=0x01020304, ack=0xA0B0C0D0, dst="10.77.2.2", payload=b"x" * 100):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    return bytes(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.77.11.2", dst=dst, id=ip_id)
        / TCP(sport=40000, dport=5201, seq=seq, ack=ack, flags="A")
        / payload
    )


# ---------------------------------------------------------------------------
# stamper and checker under BPF_PROG_TEST_RUN
# ---------------------------------------------------------------------------
CASES = [
    ("mpls", dict(labels=10), {"pop": 1, "max_labels": 10}),
    ("mpls", dict(labels=5), {"pop": 2, "max_labels": 10}),
    ("mpls", dict(labels=1), {"pop": 1, "max_labels": 10}),
    ("nsh", dict(md_type=1), {"max_md_bytes": 16}),
    ("nsh", dict(md_type=2), {"max_md_bytes": 16}),
]


def _reference(encap, opts, h, chain, after_proxy, proxy):
    if encap == "mpls":
        return mpls_stamp(opts["labels"], h, chain, proxy["pop"] if after_proxy else 0)
    return nsh_stamp(opts["md_type"], h, chain, 254 if after_proxy else 255)


CHAIN_ADDRS = {1: "10.77.2.2", 2: "10.77.2.12"}


def _build(encap, opts, proxy, ioam=None):
    plugin = discovery.load("encap", encap).plugin
    d = programs.demo_options(
        plugin, labels=opts.get("labels", 0), md_type=opts.get("md_type", 1), proxy_params=proxy,
        chains=[programs.Chain(c, a) for c, a in CHAIN_ADDRS.items()], ioam=ioam,
    )
    return programs.DemoPrograms(programs.render(plugin, d), len(CHAIN_ADDRS),
                                 ranges=programs.range_names(plugin, d)).load()


def _with_header(frame: bytes, ethertype: int, header: bytes) -> bytes:
    return frame[:12] + struct.pack("!H", ethertype) + header + frame[14:] if header else frame


@pytest.mark.parametrize("encap,opts,proxy", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_stamper_and_checker_match_the_reference(kernel_ready, encap, opts, proxy):
    from sfcframe.testrun import TC_ACT_OK, XDP_PASS, run_tc, run_xdp

    ethertype = discovery.load("encap", encap).plugin.ethertype
    progs = _build(encap, opts, proxy)
    stamp, check = progs.fds["demo_stamp"], progs.fds["demo_check"]
    packets = [(1, 2, 3), (0xFFFF, 0xFFFFFFFF, 0), (0x1234, 0x01020304, 0xA0B0C0D0)]
    try:
        for chain, addr in CHAIN_ADDRS.items():
            for ip_id, seq, ack in packets:
                frame = tcp_frame(ip_id, seq, ack, dst=addr)
                h = packet_hash(ip_id, seq, ack, chain)
                header = _reference(encap, opts, h, chain, False, proxy)
                updated = _reference(encap, opts, h, chain, True, proxy)
                # 1. the stamper pushes exactly the reference header
                stamped = run_tc(stamp, frame)
                assert stamped.retval == TC_ACT_OK
                assert stamped.packet == _with_header(frame, ethertype, header)
                # 2. a checker expecting no proxy accepts it and strips it
                progs.set_after_proxy(False)
                out = run_xdp(check, stamped.packet)
                assert out.retval == XDP_PASS and out.packet == frame
                # 3. a checker expecting the proxy accepts the updated header only
                progs.set_after_proxy(True)
                assert run_xdp(check, _with_header(frame, ethertype, updated)).packet == frame
                run_xdp(check, stamped.packet)  # not updated: mismatch
                # 4. the header of this chain on a packet of the other chain: mismatch
                other = tcp_frame(ip_id, seq, ack, dst=CHAIN_ADDRS[3 - chain])
                run_xdp(check, _with_header(other, ethertype, updated))
        n = len(packets)
        empty = not _reference(encap, opts, 0, 1, True, proxy)  # e.g. one label, popped
        for chain in CHAIN_ADDRS:
            counts = progs.checker_counters(chain)
            # steps 2 and 3 match; 3 (not updated) mismatches; 4 mismatches unless
            # nothing is left to restore, when the plain packet is right for any chain
            assert counts["match"] == 2 * n + (n if empty else 0), counts
            assert counts["mismatch"] == n + (0 if empty else n), counts
            assert counts["malformed"] == 0 and counts["unencapsulated"] == 0
        sample = progs.last_mismatch()
        assert sample is not None and sample["got"] != sample["expected"]
        assert progs.sff_counters()["stamped"] == 2 * n
    finally:
        progs.close()


def test_checker_counts_a_missing_header(kernel_ready):
    from sfcframe.testrun import run_xdp

    progs = _build("mpls", {"labels": 3}, {"pop": 1, "max_labels": 10})
    try:
        progs.set_after_proxy(True)
        run_xdp(progs.fds["demo_check"], tcp_frame())
        assert progs.checker_counters(1)["unencapsulated"] == 1
    finally:
        progs.close()


# ---------------------------------------------------------------------------
# NSH with an IOAM trace (RFC 9452) for the proxy's ioam stage, under BPF_PROG_TEST_RUN
# ---------------------------------------------------------------------------
def _ioam_layers():
    """sfcframe_ioam's scapy layers (and its stage's reference): installed, or from this tree."""
    try:
        from sfcframe_ioam import scapy_layers, stage, trace
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "sfcframe-ioam"))
        from sfcframe_ioam import scapy_layers, stage, trace
    return scapy_layers, trace, stage.IoamStage


L, STAGE_TRACE, IoamStage = _ioam_layers()
ETH_NSH = 0x894F
NSH_LEN = {1: 24, 2: 20}

IOAM_PLANS = [
    pytest.param(1, ioam_trace.TracePlan(), id="md1-fc0000x3"),
    pytest.param(2, ioam_trace.TracePlan(trace_type=0xFFF000, slots=2), id="md2-fff000x2"),  # bits 0-11
    pytest.param(1, ioam_trace.TracePlan(trace_type=0x800000, slots=4), id="md1-800000x4"),  # no ranges
]


def nsh_ioam_header(md_type: int, h: int, chain: int, plan, after: bool) -> bytes:
    """The reference: NSH (next protocol 6) and the IOAM header with the trace, as stamped
    or as the checker expects it after the proxy (the ranged words zero)."""
    return nsh_stamp(md_type, h, chain, 254 if after else 255, nextproto=6) + plan.ioam_header(h, after)


def stage_restored(md_type: int, h: int, chain: int, plan, delay: int = 2500, age_ns: int = 1000) -> bytes:
    """What the proxy's ioam stage restores, by the stage's own Python reference
    (sfcframe_ioam.trace.fill) configured as the demo configures it: its node data
    written age_ns ago after a dwell of delay ns."""
    offset = time.time_ns() - time.monotonic_ns()
    now = time.monotonic_ns() - age_ns
    settings = {p.name: p.default for p in IoamStage().settings({})}
    settings.update(ioam_stage.vnf_settings(plan.namespace), clock_offset_ns=offset)
    stamped = plan.trace(h, after=False)
    done = STAGE_TRACE.fill(STAGE_TRACE.PREALLOCATED, stamped, plan.hop_limit, settings,
                            now - delay, (now, now), 0)
    assert done.outcome == "filled"
    body = bytearray(done.body)
    for span in done.spans:  # exact (the clock was given, not read), or all ones (a delay >= 2^31)
        value = span.lo if span.lo == span.hi else 0xFFFFFFFF
        body[span.offset:span.offset + span.size] = value.to_bytes(span.size, "big")
    return nsh_stamp(md_type, h, chain, 254, nextproto=6) + plan.ioam_header(h, True)[:4] + bytes(body)


def reference_verdict(header: bytes, expected: bytes, ranges: list[tuple[str, int, int, int]]):
    """The core checker's verdict in Python: the same length, every word equal but the
    ranged ones, each ranged word within its range. (match?, ranged names out of range)."""
    if len(header) != len(expected):
        return False, ()
    ranged = {off for _, off, _, _ in ranges}
    same = all(header[i:i + 4] == expected[i:i + 4] for i in range(0, len(expected), 4) if i not in ranged)
    if not same:
        return False, ()
    out = tuple(name for name, off, lo, hi in ranges
                if not lo <= int.from_bytes(header[off:off + 4], "big") <= hi)
    return not out, out


def ranges_at(plan, md_type: int, now_ns: int) -> list[tuple[str, int, int, int]]:
    base = NSH_LEN[md_type] + 4
    return [(name, base + off, *plan.bounds(name, now_ns)) for name, off in plan.ranged()]


@pytest.mark.parametrize("md_type, plan", IOAM_PLANS)
def test_nsh_ioam_stamper_and_checker_match_the_reference(kernel_ready, md_type, plan):
    """The stamper puts exactly the reference NSH + IOAM header on (dissected with the
    scapy layers: the SFF's node data in the last slot); the checker accepts it as
    stamped, accepts what the proxy's stage restores (by the stage's own reference) and
    counts a trace the stage did not fill, a changed stamper node and out-of-range
    words as mismatches, keeping the ranged words' statistics."""
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    from sfcframe.testrun import TC_ACT_OK, XDP_PASS, run_tc, run_xdp

    progs = _build("nsh", {"md_type": md_type}, {"max_md_bytes": 16, "max_ioam_bytes": plan.header_len},
                   ioam=plan)
    stamp, check = progs.fds["demo_stamp"], progs.fds["demo_check"]
    names = [name for name, _ in plan.ranged()]
    assert progs.ranges == names
    packets = [(1, 2, 3), (0x1234, 0x01020304, 0xA0B0C0D0)]
    delays = []
    try:
        for chain, addr in CHAIN_ADDRS.items():
            for ip_id, seq, ack in packets:
                frame = tcp_frame(ip_id, seq, ack, dst=addr)
                h = packet_hash(ip_id, seq, ack, chain)
                stamped = run_tc(stamp, frame)
                assert stamped.retval == TC_ACT_OK
                assert stamped.packet == _with_header(frame, ETH_NSH, nsh_ioam_header(md_type, h, chain, plan, False))
                # dissected: NSH, the RFC 9452 IOAM header, the trace with the SFF's node data
                pkt = Ether(stamped.packet)
                carrier = pkt[L.NSHIOAM]
                assert (carrier.ioam_type, carrier.hdr_len * 4, carrier.next_protocol) == (0, plan.header_len, 1)
                trace = L.find_trace(pkt)
                assert L.decode_trace(trace) == {
                    "ioam_type": 0, "namespace_id": 0x8FC0, "node_len": plan.node_words, "overflow": False,
                    "flags": 0, "remaining_len": (plan.slots - 1) * plan.node_words,
                    "trace_type": plan.trace_type, "nodes": [plan.stamper_values(h)]}
                assert pkt[IP].dst == addr
                # the checker without a proxy: the trace as stamped
                progs.set_after_proxy(False)
                out = run_xdp(check, stamped.packet)
                assert out.retval == XDP_PASS and out.packet == frame
                # behind the proxy: what the stage restores matches (twice the dwell: two values)
                progs.set_after_proxy(True)
                for delay in (2500, 70_000 + ip_id):
                    restored = stage_restored(md_type, h, chain, plan, delay)
                    assert run_xdp(check, _with_header(frame, ETH_NSH, restored)).packet == frame
                    delays.append(delay)
                # ... a trace the stage did not fill (SI decremented, RemainingLen as stamped) does not
                unfilled = nsh_stamp(md_type, h, chain, 254, nextproto=6) + plan.ioam_header(h, False)
                run_xdp(check, _with_header(frame, ETH_NSH, unfilled))
                # ... nor a changed stamper node (its last word)
                changed = bytearray(stage_restored(md_type, h, chain, plan))
                changed[-1] ^= 1
                run_xdp(check, _with_header(frame, ETH_NSH, bytes(changed)))
        n = len(packets)
        for chain in CHAIN_ADDRS:
            counts = progs.checker_counters(chain)
            assert (counts["match"], counts["mismatch"], counts["malformed"]) == (3 * n, 2 * n, 0), counts
        stats = progs.range_stats()
        assert list(stats) == names
        for name, st in stats.items():
            assert st["count"] == len(delays) and st["out"] == 0, (name, st)
        if "transit_delay" in stats:
            st = stats["transit_delay"]
            assert (st["sum"], st["min"], st["max"]) == (sum(delays), min(delays), max(delays))
            sample = progs.last_match()
            got = L.find_trace(Ether(_with_header(frame, ETH_NSH, sample["header"])))
            stage_node, sff_node = L.decode_nodes(got)
            assert (stage_node["node_id"], stage_node["egress_if_id"]) == (0x5FC002, 0x202)
            assert sff_node == plan.stamper_values(int(sample["h"], 16))
        else:
            assert progs.last_match() is None  # nothing by range: every word compared
    finally:
        progs.close()


def test_nsh_ioam_checker_agrees_with_the_reference(kernel_ready):
    """hypothesis: what the stage restores with any dwell time and timestamp age, and
    octets of the IOAM header changed: the checker's verdict and its out-of-range words
    are the reference's (examples whose verdict depends on the clock's exact second
    at the check are skipped)."""
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st

    from sfcframe.testrun import run_xdp

    md_type, plan = 1, ioam_trace.TracePlan()
    progs = _build("nsh", {"md_type": md_type}, {"max_md_bytes": 16, "max_ioam_bytes": plan.header_len},
                   ioam=plan)
    progs.set_after_proxy(True)
    check = progs.fds["demo_check"]
    frame = tcp_frame(0x4242, 1000, 2000)
    h = packet_hash(0x4242, 1000, 2000, 1)
    expected = nsh_ioam_header(md_type, h, 1, plan, True)
    ioam_at = NSH_LEN[md_type]

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(delay=st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 3000)),
           age=st.integers(-10**9, 3 * 10**9),
           # any octet of the IOAM header but IOAM HDR Len (another length: the inner
           # packet is not where the checker looks, a malformed frame)
           flips=st.lists(st.tuples(st.integers(0, plan.header_len - 1).filter(lambda at: at != 1),
                                    st.integers(1, 255)), max_size=2))
    def run(delay, age, flips):
        header = bytearray(stage_restored(md_type, h, 1, plan, delay % 2**32, age_ns=age))
        for at, xor in flips:
            header[ioam_at + at] ^= xor
        before = time.time_ns()
        b = progs.checker_counters(1)["match"]
        sample0 = progs.last_mismatch()
        run_xdp(check, _with_header(frame, ETH_NSH, bytes(header)))
        after = time.time_ns()
        verdicts = {reference_verdict(bytes(header), expected, ranges_at(plan, md_type, now))
                    for now in (before, after)}
        assume(len(verdicts) == 1)  # not at a second's turn
        (match, out), = verdicts
        assert (progs.checker_counters(1)["match"] - b == 1) == match, (delay, age, flips, out)
        if not match:
            sample = progs.last_mismatch()
            assert sample["count"] == (sample0["count"] if sample0 else 0) + 1
            assert tuple(sample["out_of_range"]) == out

    try:
        run()
    finally:
        progs.close()


# ---------------------------------------------------------------------------
# namespace scenarios (the scenario fixture is in conftest.py)
# ---------------------------------------------------------------------------
def assert_clean_run(s, *, misses_allowed=False, matches=True):
    assert s.teardown.get("clean"), s.teardown
    assert not s.stream_errors, s.stream_errors
    assert s.checker["mismatch"] == 0, s.mismatch_samples
    assert s.checker["malformed"] == 0
    if matches:
        assert s.checker["match"] > 1000
    assert s.goodput_mbps > 0
    if not misses_allowed:
        assert s.misses == 0, s.egress


def assert_both_cpus(s):
    if NCPU >= 2:
        per_cpu = s.checker_per_cpu["match"]
        assert sum(1 for x in per_cpu if x > 0) >= 2, per_cpu


def test_self_test_without_proxy(scenario):
    """The stamper and the checker alone (no VNF, no proxy): the full stack arrives."""
    s = scenario(vnf="none", labels=10)
    assert_clean_run(s)
    assert s.passed
    assert s.stamped >= s.checker["match"] > 0.9 * s.stamped


@pytest.mark.parametrize("labels", [0, 1, 5, 10])
def test_forwarding_vnf_mpls(scenario, labels):
    s = scenario(encap="mpls", labels=labels, vnf="forward", key="tcpip")
    assert_clean_run(s)
    assert s.passed, s.reasons()
    assert_both_cpus(s)
    assert s.checker["unencapsulated"] == 0
    if labels == 0:
        # nothing stamped: the proxy sees plain traffic both ways
        assert s.stamped == 0 and s.cached == 0 and s.restored == 0
        assert s.ingress["plain"] > 1000 and s.egress["plain"] > 1000
    else:
        # nothing is lost between XDP ingress and TC egress behind a forwarding VNF
        assert s.stamped > 1000 and s.cached > 1000
        assert s.restored >= 0.999 * s.cached


@pytest.mark.parametrize("md_type", [1, 2])
def test_forwarding_vnf_nsh(scenario, md_type):
    """SI decremented by one and the per-packet metadata exact (the checker
    compares every byte of the header against the one recomputed from the packet)."""
    s = scenario(encap="nsh", md_type=md_type, vnf="forward", key="tcpip")
    assert_clean_run(s)
    assert s.passed, s.reasons()
    assert s.checker["unencapsulated"] == 0
    assert s.restored >= 0.99 * s.cached > 1000
    assert s.egress.get("si_expired", 0) == 0


@pytest.mark.parametrize("md_type, trace_type, slots", [(1, None, None), (2, 0xFFF000, 2)],
                         ids=["md1-fc0000x3", "md2-fff000x2"])
def test_nsh_ioam_stage(scenario, md_type, trace_type, slots):
    """sfcframe demo --encap nsh --stage ioam: NSH with an RFC 9452 IOAM trace; every
    packet arrives with the SFF's node data unchanged, the proxy-written VNF host's node
    data as configured (timestamps and dwell time within their ranges), RemainingLen
    lowered, SI decremented; the dwell time from both sides."""
    s = scenario(encap="nsh", md_type=md_type, stages=["ioam"], ioam_trace_type=trace_type,
                 ioam_slots=slots)
    plan = ioam_trace.TracePlan(**({"trace_type": trace_type, "slots": slots} if trace_type else {}))
    assert_clean_run(s)
    assert s.passed, s.reasons()
    assert s.checker["unencapsulated"] == 0
    assert s.restored >= 0.99 * s.cached > 1000
    # every frame that reached the receiver was checked; its native-XDP veth ring drops
    # some when full (TCP retransmits them: FIELD-NOTES), so checked trails restored
    assert s.checker["match"] >= 0.9 * s.restored
    assert f"max_ioam_bytes={plan.header_len}" in s.config["proxy_spec"] and "stage=ioam" in s.config["proxy_spec"]
    # every matched packet's ranged words were in range (a word out of range is a mismatch)
    ranged = [name for name, _ in plan.ranged()]
    assert list(s.ranges) == ranged
    for name in ranged:
        assert s.ranges[name]["count"] == s.checker["match"] and s.ranges[name]["out"] == 0, s.ranges
    # the dwell time: the checker's view (the proxy-written transit delay) and the stage's
    counters, dwell = s.dwell["counters"], s.dwell["dwell"]
    assert counters == {"filled": s.restored, "overflow": 0, "other_namespace": 0, "malformed": 0,
                        "no_trace": 0}, counters
    assert dwell["count"] == s.restored
    c = s.dwell["checker"]
    assert c["count"] == s.checker["match"] and 1 <= c["min_ns"] <= c["mean_ns"] <= c["max_ns"] < 10**9
    assert dwell["p50"]["lo"] <= c["max_ns"] and dwell["p50"]["hi"] >= c["min_ns"]
    assert "dwell time   by the proxy's ioam_dwell_ns histogram: p50" in s.text()
    assert json.loads(json.dumps(s.as_dict()))["dwell"]["checker"]["count"] == c["count"]  # --json
    # a header the checker matched, dissected: the proxy-written node data beside the SFF's
    from scapy.layers.l2 import Ether

    header = bytes.fromhex(s.last_match["header"])
    pkt = Ether(_with_header(tcp_frame(), ETH_NSH, header))
    trace = L.find_trace(pkt)
    assert (pkt[L.NSHIOAM].next_protocol, trace.remaining_len) == (1, (plan.slots - 2) * plan.node_words)
    proxy_node, sff_node = L.decode_nodes(trace)
    assert sff_node == plan.stamper_values(int(s.last_match["h"], 16))
    expected = {k: v for k, v in plan.proxy_values().items() if v is not None}
    assert {k: proxy_node[k] for k in expected} == expected
    assert (proxy_node["hop_limit"], proxy_node["node_id"], proxy_node["egress_if_id"]) == (63, 0x5FC002, 0x202)
    assert abs(proxy_node["timestamp_seconds"] - time.time()) < 60
    assert 1 <= proxy_node["transit_delay"] < 10**9


def test_nsh_ioam_without_the_stage_is_caught(scenario):
    """The control: the checker expects the VNF host's node data (--ioam-vnf proxy) but the
    proxy runs without the stage: it carries the trace through untouched (SI decremented),
    and every packet is a mismatch; the SFF's node data arrived intact."""
    from scapy.layers.l2 import Ether

    s = scenario(encap="nsh", ioam=True, ioam_vnf="proxy", seconds=1)
    assert not s.passed and s.checker["match"] == 0 and s.checker["mismatch"] > 1000
    assert s.dwell == {} and "stage=" not in s.config["proxy_spec"]
    got = bytes.fromhex(s.mismatch_samples[0]["got"].replace(" ", ""))
    trace = L.find_trace(Ether(_with_header(tcp_frame(), ETH_NSH, got)))
    plan = ioam_trace.TracePlan()
    assert trace.remaining_len == (plan.slots - 1) * plan.node_words
    assert L.decode_nodes(trace) == [plan.stamper_values(int(s.mismatch_samples[0]["h"], 16))]


def test_random_drop_vnf(scenario):
    s = scenario(encap="mpls", labels=10, vnf="drop", key="tcpip", cache_size=65536)
    assert_clean_run(s)
    assert s.vnf.get("dropped", 0) > 0
    ratio = s.restored / s.cached
    assert 0.975 <= ratio <= 0.998, ratio  # 1 % dropped between ingress and egress


def test_nat_vnf_metadata_key(scenario):
    s = scenario(encap="mpls", labels=10, vnf="nat", key="metadata")
    assert_clean_run(s)
    assert s.passed, s.reasons()
    assert_both_cpus(s)
    assert s.checker["unencapsulated"] == 0


@pytest.mark.parametrize("key, vnf", [("tcpip", "forward"), ("metadata", "nat")])
def test_tc_ingress_hook(scenario, key, vnf):
    """ingress=tc on real TCP: the SFF's skbs carry their payload in page fragments, so the
    key must see the whole packet (skb->len), not only the pulled headers."""
    s = scenario(encap="mpls", labels=10, vnf=vnf, key=key, params={"ingress": "tc"})
    assert_clean_run(s)
    assert s.passed, s.reasons()
    assert s.checker["unencapsulated"] == 0
    assert s.ingress.get("malformed", 0) == 0 and s.ingress.get("gso", 0) == 0
    assert s.restored >= 0.999 * s.cached > 1000


def test_nat_vnf_tcpip_key_misses(scenario):
    """MASQUERADE rewrites the source address (and maybe port) the tcpip key is
    made of: egress cannot find the entry, counts not_cached, and the packet
    leaves without its stack (non-strict mode) - never with a wrong one."""
    s = scenario(encap="mpls", labels=10, vnf="nat", key="tcpip")
    assert_clean_run(s, misses_allowed=True, matches=False)
    assert s.cached > 1000 and s.misses > 1000 and s.restored == 0
    # every stamped packet reaches the receiver plain: counted, never mistaken
    assert s.checker["unencapsulated"] > 1000 and s.checker["match"] == 0
    assert not s.passed


def test_user_space_delay_vnf(scenario):
    s = scenario(encap="mpls", labels=10, vnf="delay", key="tcpip")
    assert_clean_run(s)
    assert s.vnf.get("written", 0) > 1000


def test_user_space_delay_cache_sizes(scenario):
    """Little's law: in flight = rate x delay. A cache well below it evicts
    entries of packets still held by the VNF (misses); one well above does not."""
    delay_ms = 5.0
    big = scenario(encap="mpls", labels=10, vnf="delay", key="tcpip", delay_ms=delay_ms,
                   cache_size=20000)
    assert_clean_run(big)
    rate = big.cached / SECONDS
    # L = lambda * W; W is the program's hold time plus the queue in front of it,
    # so the most packets the program held at once bounds L from above
    occupancy = max(rate * delay_ms / 1000, big.vnf["max_held"])
    # well above it (the program held up to ~2000 at once on a loaded 2-core machine)
    assert 20000 > 4 * occupancy, occupancy
    assert big.restored == big.cached  # the TUN program loses nothing
    small_size = 32
    assert small_size < occupancy / 2, occupancy
    small = scenario(encap="mpls", labels=10, vnf="delay", key="tcpip", delay_ms=delay_ms,
                     cache_size=small_size)
    assert_clean_run(small, misses_allowed=True, matches=False)
    assert small.misses > 100, small.egress
    # an evicted entry costs the packet its stack, never gives it a wrong one
    assert small.checker["unencapsulated"] >= small.misses * 0.9


def test_two_chains(scenario):
    """Two sender/receiver pairs whose stacks differ (SIDs and per-packet bottom
    labels) through one VNF: each receiver gets only its own chain's stack."""
    s = scenario(encap="mpls", labels=5, vnf="forward", key="tcpip", chains=2)
    assert_clean_run(s)
    assert s.passed, s.reasons()
    assert len(s.checkers) == 2
    for chain in s.checkers:
        assert chain["match"] > 1000 and chain["mismatch"] == 0 and chain["unencapsulated"] == 0
