"""The ioam stage: its Python reference by hand, and what only it does in the real
kernel (node data, the dwell-time histogram) on NSH (RFC 9452) and SRv6 (RFC 9486)
carriers; the generic properties (the C against the reference on any trace, both
ingress hooks) are sfcframe's conformance kit, one line below."""

from __future__ import annotations

import struct

import pytest

from sfcframe.testkit.conformance import conformance_suite
from sfcframe_ioam import trace
from sfcframe_ioam.stage import IoamStage

#: the kit's properties on every build the ioam stage rides (round trips with any
#: trace and settings, truncations, counters, determinism ...)
TestConformance = conformance_suite("sfcframe-ioam")

SETTINGS = {p.name: p.default for p in IoamStage().settings({})}
NOW = (5_000_000_000, 5_000_001_000)
# bits 0 (hop limit, node id), 1 (interface ids), 4 (transit delay), 8 (wide node id)
TYPE = (1 << 23) | (1 << 22) | (1 << 19) | (1 << 15)


def configured(**kw):
    return {**SETTINGS, "node_id": 0xABCDEF, "ingress_if": 7, "egress_if": 9, **kw}


# ---- the reference, by hand --------------------------------------------------
def test_preallocated_fills_the_last_free_slot_and_lowers_remaining():
    earlier = bytes(range(20))  # one node of 5 words already there
    body = trace.preallocated(0, TYPE, 5, 3, [earlier])
    done = trace.fill(trace.PREALLOCATED, body, 63, configured(), 4_999_000_000, NOW, 0)
    assert done.outcome == "filled"
    hdr = trace.TraceHeader.parse(done.body)
    assert hdr.remaining == 5 and hdr.node_len == 5 and hdr.flags == 0
    node = done.body[8 + 20:8 + 40]
    assert node[:4] == bytes([63, 0xAB, 0xCD, 0xEF])  # hop limit, node id
    assert node[4:8] == struct.pack("!HH", 7, 9)
    (span,) = done.spans  # the transit delay: a range
    assert (span.offset, span.size) == (8 + 20 + 8, 4)
    assert (span.lo, span.hi) == (1_000_000, 1_001_000)
    assert node[12:20] == bytes([63]) + b"\xff" * 7  # wide node id not configured
    assert done.body[8 + 40:] == earlier and done.body[8:8 + 20] == bytes(20)


def test_full_trace_gets_the_overflow_flag_and_nothing_else():
    body = trace.preallocated(0, TYPE, 5, 2, [bytes(20), bytes(20)])
    done = trace.fill(trace.PREALLOCATED, body, 63, configured(), 1, NOW, 0)
    assert done.outcome == "overflow"
    assert trace.TraceHeader.parse(done.body).flags == trace.FLAG_OVERFLOW
    assert done.body[8:] == body[8:]


def test_other_namespace_and_short_trace_are_left_alone():
    body = trace.preallocated(7, TYPE, 5, 2)
    assert trace.fill(0, body, 63, configured(), 1, NOW, 0) == trace.Filled("other_namespace", body)
    assert trace.fill(0, body[:7], 63, configured(), 1, NOW, 0).outcome == "malformed"
    lying = trace.TraceHeader(0, 5, 0, 9, TYPE).pack() + bytes(20)  # 9 words of room claimed
    assert trace.fill(0, lying, 63, configured(), 1, NOW, 0).outcome == "malformed"


def test_incremental_inserts_at_the_front_when_there_is_room():
    earlier = bytes(range(8))
    body = trace.incremental(0, 1 << 23, 2, 4, [earlier])
    done = trace.fill(trace.INCREMENTAL, body, 5, configured(), 0, NOW, room=8)
    assert done.outcome == "filled" and len(done.body) == len(body) + 8
    assert done.body[8:12] == bytes([5, 0xAB, 0xCD, 0xEF]) and done.body[12:16] == b"\xff" * 4
    assert done.body[16:] == earlier
    assert trace.TraceHeader.parse(done.body).remaining == 2
    no_room = trace.fill(trace.INCREMENTAL, body, 5, configured(), 0, NOW, room=4)
    assert no_room.outcome == "overflow"


def test_fields_that_do_not_fit_stay_not_available():
    # bits 0 and 8 ask for 12 bytes; a node of 2 words gets bit 0 only
    node = trace.node_data((1 << 23) | (1 << 15), 2, 64, configured(), 0, NOW)
    assert node.data == bytes([64, 0xAB, 0xCD, 0xEF]) + b"\xff" * 4


def test_timestamps_need_the_clock_offset_and_opaque_state_is_empty():
    types = (1 << 21) | (1 << 20) | (1 << 1)  # seconds, subseconds, opaque state snapshot
    none = trace.node_data(types, 3, 64, configured(), 0, NOW)
    assert none.data == b"\xff" * 8 + bytes([0, 0xFF, 0xFF, 0xFF]) and not none.spans
    posix = trace.node_data(types, 3, 64, configured(clock_offset_ns=10**18), 0, NOW)
    seconds, subseconds = posix.spans
    assert seconds.lo == seconds.hi == (10**18 + NOW[0]) // 10**9
    assert (subseconds.lo, subseconds.hi) == (0, 1)


def test_the_opaque_snapshot_takes_a_word_beyond_node_len():
    """Bit 22: NodeLen does not count the snapshot (RFC 9197 4.4.1); a node adds its
    4-octet header after its other fields, one word more than NodeLen, as Linux does."""
    types = (1 << 23) | (1 << 1)  # hop limit and node id (1 word), opaque state snapshot
    body = trace.TraceHeader(0, 1, 0, 4, types).pack() + bytes(16)
    done = trace.fill(trace.PREALLOCATED, body, 63, configured(), 0, NOW, 0)
    assert done.outcome == "filled"
    assert trace.TraceHeader.parse(done.body) == trace.TraceHeader(0, 1, 0, 2, types)
    assert done.body[8:] == bytes(8) + bytes([63, 0xAB, 0xCD, 0xEF]) + bytes([0, 0xFF, 0xFF, 0xFF])
    again = trace.fill(trace.PREALLOCATED, done.body, 63, configured(), 0, NOW, 0)
    assert again.outcome == "filled" and trace.TraceHeader.parse(again.body).remaining == 0
    full = trace.fill(trace.PREALLOCATED, trace.TraceHeader(0, 1, 0, 1, types).pack() + bytes(4),
                      63, configured(), 0, NOW, 0)
    assert full.outcome == "overflow"  # one word left, two needed


# ---- the kernel -----------------------------------------------------------------
SID = "fc00::a"
BUILDS = [
    pytest.param("nsh", "tcpip", {"max_ioam_bytes": 256}, id="nsh-tcpip"),
    pytest.param("nsh", "metadata", {"max_ioam_bytes": 256, "carrier": "mark", "cache": "lru"},
                 id="nsh-metadata"),
    pytest.param("nsh", "tcpip", {"max_ioam_bytes": 256, "ingress": "tc"}, id="nsh-tcpip-tc"),
    pytest.param("srv6", "tcpip", {"sid": SID, "max_ext_bytes": 256, "max_segments": 4,
                                   "max_tlv_bytes": 0}, id="srv6-tcpip"),
    pytest.param("srv6", "metadata", {"sid": SID, "max_ext_bytes": 256, "max_segments": 4,
                                      "max_tlv_bytes": 0, "ingress": "tc"}, id="srv6-metadata-tc"),
]

@pytest.mark.kernel
@pytest.mark.parametrize("encap, key, params", BUILDS[:1] + BUILDS[3:4])
def test_dwell_time_goes_into_the_histogram(harness_factory, encap, key, params):
    from sfcframe.testkit.packets import tcp_ipv4

    harness = harness_factory(encap, key, stages=("ioam",), **params)
    table = harness.proxy.module.table("ioam_dwell_ns")
    before = [sum(table[table.Key(i)]) for i in range(64)]
    stage = harness.proxy.spec.stages[0]
    header = harness.encap.carrier_embed(stage.carrier, harness.encap.example_header(
        harness.encap_values), 0, trace.preallocated(0, TYPE, 5, 2), harness.encap_values)
    for seq in range(5):
        harness.round_trip(harness.frame(header, tcp_ipv4(seq=seq)), lambda f: f)
    after = [sum(table[table.Key(i)]) for i in range(64)]
    moved = [i for i in range(64) if after[i] != before[i]]
    assert sum(after) - sum(before) == 5
    assert all(6 <= i <= 30 for i in moved), moved  # between 64 ns and 1 s


@pytest.mark.kernel
@pytest.mark.parametrize("encap, key, params", BUILDS)
@pytest.mark.parametrize("kind", [trace.PREALLOCATED, trace.INCREMENTAL])
def test_the_proxy_writes_this_hops_node_data(harness_factory, encap, key, params, kind):
    """A 3-slot trace with one earlier node: the restored header carries the earlier
    node's data unchanged and this node's hop limit, node id, interface ids and a
    transit delay that lies between the two program runs."""
    import time

    from sfcframe.testkit.packets import tcp_ipv4

    harness = harness_factory(encap, key, stages=("ioam",), **params)
    harness.set_stage_settings("ioam", {"node_id": 0x0A0B0C, "ingress_if": 3, "egress_if": 4})
    stage = harness.proxy.spec.stages[0]
    earlier = bytes([9, 0, 0, 1]) + bytes(16)
    body = (trace.preallocated(0, TYPE, 5, 3, [earlier]) if kind == trace.PREALLOCATED
            else trace.incremental(0, TYPE, 5, 10, [earlier]))
    header = harness.encap.carrier_embed(stage.carrier, harness.encap.example_header(
        harness.encap_values), kind, body, harness.encap_values)
    t0 = time.monotonic_ns()
    ingress, egress = harness.round_trip(harness.frame(header, tcp_ipv4()), lambda f: f)
    elapsed = time.monotonic_ns() - t0
    grows = kind == trace.INCREMENTAL and encap == "nsh"
    assert egress.expect.stage_counters == {"ioam": "filled" if kind == trace.PREALLOCATED
                                            or grows else "overflow"}
    restored = egress.result.packet[14:]
    found = harness.encap.carrier_find(stage.carrier, restored, kind, harness.encap_values)
    assert found is not None
    new = restored[found[0]:found[0] + found[1]]
    if kind == trace.INCREMENTAL and not grows:  # SRv6: no room to grow, the O flag
        assert trace.TraceHeader.parse(new).flags == trace.FLAG_OVERFLOW
        return
    slot = 8 + (5 if kind == trace.PREALLOCATED else 0) * 4  # 10 words of room - 5
    node = new[slot:slot + 20]
    hop = harness.encap.carrier_hop_limit(stage.carrier, restored, harness.encap_values)
    assert node[:8] == bytes([hop, 0x0A, 0x0B, 0x0C]) + struct.pack("!HH", 3, 4)
    delay = int.from_bytes(node[8:12], "big")
    assert 0 < delay < elapsed
    assert new.endswith(earlier)


@pytest.mark.kernel
@pytest.mark.parametrize("offset", [2**32 * 10**9 + 12345, 2**63, 2**64 - 1],
                         ids=["seconds-past-2^32", "2^63", "all-ones"])
def test_timestamps_past_2106_keep_their_low_32_bits(harness_factory, offset):
    """POSIX seconds beyond 32 bits (a clock offset past the year 2106): the C keeps
    their low 32 bits and adds in 64 bits, wrapping; the reference says the same."""
    from sfcframe.testkit.packets import tcp_ipv4

    harness = harness_factory("nsh", "tcpip", stages=("ioam",), max_ioam_bytes=256)
    harness.set_stage_settings("ioam", {"clock_offset_ns": offset})
    stage = harness.proxy.spec.stages[0]
    seconds_and_microseconds = (1 << 21) | (1 << 20)  # trace-type bits 2 and 3
    header = harness.encap.carrier_embed(stage.carrier, harness.encap.example_header(
        harness.encap_values), trace.PREALLOCATED, trace.preallocated(
            0, seconds_and_microseconds, 2, 2), harness.encap_values)
    _, egress = harness.round_trip(harness.frame(header, tcp_ipv4()), lambda f: f)
    assert egress.expect.stage_counters == {"ioam": "filled"}
    seconds = egress.expect.loose[0]
    assert seconds.hi <= 0xFFFFFFFF
