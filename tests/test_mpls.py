"""SR-MPLS specifics: depth limits, pop, inner protocols; reference and kernel."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfcframe.encaps.mpls import MplsEncap
from sfcframe.encaps.mpls.scapy_layers import label_stack
from sfcframe.testkit.packets import frame, tcp_ipv4, vnf_identity, vnf_ttl_decrement
from sfcframe.testrun import TC_ACT_OK, TC_ACT_SHOT, XDP_DROP, XDP_PASS

MPLS = 0x8847
DEFAULTS = {"max_labels": 10, "pop": 1}


def stack(depth: int, base: int = 100) -> bytes:
    return label_stack([(base + i, i % 8, 64) for i in range(depth)])


# ---- reference (pure Python) ----------------------------------------------
def test_reference_strips_to_bottom_of_stack_and_pops():
    parse = MplsEncap().reference_ingress(stack(3) + tcp_ipv4(), DEFAULTS)
    assert parse.outcome == "ok" and parse.strip_len == 12 and parse.inner_ethertype == 0x0800
    assert parse.cached == stack(3)[4:]


@pytest.mark.parametrize(
    "payload, outcome",
    [
        (stack(11) + tcp_ipv4(), "too_deep"),
        (stack(10) + tcp_ipv4(), "ok"),
        (stack(2)[:6], "malformed"),
        (stack(2), "malformed"),
        (stack(2) + b"\x50", "unsupported_inner"),
        (stack(2) + b"\x60", "ok"),
    ],
)
def test_reference_outcomes(payload, outcome):
    assert MplsEncap().reference_ingress(payload, DEFAULTS).outcome == outcome


@pytest.mark.parametrize("depth, pop, outcome", [
    (1, 2, "too_shallow"), (2, 3, "too_shallow"), (2, 2, "ok"), (3, 2, "ok"), (1, 0, "ok"),
])
def test_reference_stack_shallower_than_pop(depth, pop, outcome):
    parse = MplsEncap().reference_ingress(stack(depth) + tcp_ipv4(), {"max_labels": 10, "pop": pop})
    assert parse.outcome == outcome


@given(st.lists(st.tuples(st.integers(0, 2**20 - 1), st.integers(0, 7), st.integers(0, 255)),
                min_size=1, max_size=10))
def test_scapy_dissects_what_the_strategy_builds(entries):
    from scapy.contrib.mpls import MPLS as ScapyMPLS

    layer = ScapyMPLS(label_stack(entries) + tcp_ipv4())
    seen = []
    while isinstance(layer, ScapyMPLS):
        seen.append((layer.label, layer.cos, layer.ttl, layer.s))
        layer = layer.payload
    assert seen == [(l, c, t, int(i == len(entries) - 1)) for i, (l, c, t) in enumerate(entries)]


# ---- kernel ---------------------------------------------------------------
@pytest.mark.kernel
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("extra", [1, 2, 5])
def test_stack_deeper_than_max_is_counted(harness_factory, strict, extra):
    harness = harness_factory("mpls", "tcpip", strict=strict)
    checked = harness.check_ingress(frame(MPLS, stack(10 + extra), tcp_ipv4()))
    assert checked.expect.outcome == "too_deep"
    assert checked.result.retval == (XDP_DROP if strict else XDP_PASS)


@pytest.mark.kernel
@pytest.mark.parametrize("max_labels", [1, 16, 32])
def test_large_and_small_maximum_depths(harness_factory, max_labels):
    harness = harness_factory("mpls", "tcpip", max_labels=max_labels)
    _, egress = harness.round_trip(frame(MPLS, stack(max_labels), tcp_ipv4()), vnf_ttl_decrement)
    assert egress.expect.outcome == "restored"
    assert harness.check_ingress(frame(MPLS, stack(max_labels + 1), tcp_ipv4())).expect.outcome == "too_deep"


@pytest.mark.kernel
@pytest.mark.parametrize("pop, depth", [(p, d) for p in (0, 1, 3) for d in (1, 2, 3, 5)
                                        if d >= p])
def test_pop_restores_all_but_the_topmost(harness_factory, pop, depth):
    harness = harness_factory("mpls", "tcpip", pop=pop)
    original = stack(depth)
    _, egress = harness.round_trip(frame(MPLS, original, tcp_ipv4()), vnf_identity)
    assert egress.expect.outcome == "restored"
    out = egress.result.packet
    if depth == pop:  # every label was addressed to this function: the packet leaves plain
        assert out[12:14] == b"\x08\x00"
    else:
        assert out[12:14] == b"\x88\x47" and out[14 : 14 + 4 * (depth - pop)] == original[4 * pop :]


@pytest.mark.kernel
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("hook", ["xdp", "tc"])
@pytest.mark.parametrize("mode", ["cache", "static"])
def test_stack_shallower_than_pop_is_too_shallow(harness_factory, strict, hook, mode):
    """Fewer labels than pop: its own outcome, the frame passed unmodified (dropped in
    strict mode); it never leaves as plain IPv4 counted restored."""
    extra = {"static_header": "100,200"} if mode == "static" else {}
    harness = harness_factory("mpls", "tcpip", pop=3, strict=strict, ingress=hook, mode=mode,
                              **extra)
    for depth in (1, 2):
        original = frame(MPLS, stack(depth), tcp_ipv4())
        checked = harness.check_ingress(original)  # verdict and output checked by the oracle
        assert checked.expect.outcome == "too_shallow"
        if hook == "xdp":
            assert checked.result.retval == (XDP_DROP if strict else XDP_PASS)
        else:
            assert checked.result.retval == (TC_ACT_SHOT if strict else TC_ACT_OK)
        if not strict:
            assert checked.result.packet == original
    assert harness.check_ingress(frame(MPLS, stack(3), tcp_ipv4())).expect.outcome == (
        "cached" if mode == "cache" else "stripped")


@pytest.mark.kernel
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("nibble, outcome", [(0x6, "no_key"), (0x5, "unsupported_inner"), (0x0, "unsupported_inner")])
def test_inner_protocol_by_version_nibble(harness_factory, strict, nibble, outcome):
    harness = harness_factory("mpls", "tcpip", strict=strict)
    inner = bytes([nibble << 4 | 5]) + tcp_ipv4()[1:]
    assert harness.check_ingress(frame(MPLS, stack(2), inner)).expect.outcome == outcome


@pytest.mark.kernel
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(1, 14), max_labels=st.sampled_from([4, 10]))
def test_depth_against_maximum(harness_factory, depth, max_labels):
    harness = harness_factory("mpls", "tcpip", max_labels=max_labels)
    checked = harness.check_ingress(frame(MPLS, stack(depth), tcp_ipv4()))
    assert checked.expect.outcome == ("cached" if depth <= max_labels else "too_deep")
