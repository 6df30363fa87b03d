"""Property: ingress -> VNF -> egress gives back the exact per-packet
encapsulation (after the encap's update rule) and the exact inner packet,
for every encap x key combination, on the real kernel."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from combos import parametrize_combos
from sfcframe.testkit.packets import VNF_STEPS, frame, inner_tcp_strategy

pytestmark = pytest.mark.kernel

EXAMPLES = 150
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _vnf_names(harness) -> list[str]:
    names = ["identity", "ttl"]
    if harness.key.survives_nat:
        names.append("nat")
    return names


@parametrize_combos
@PROPERTY
@given(data=st.data())
def test_round_trip_restores_exact_encapsulation(harness_factory, combo, data):
    encap, key, params = combo
    harness = harness_factory(encap, key, **params)
    plugin = harness.proxy.spec.encap.plugin
    header = data.draw(plugin.header_strategy(harness.proxy.spec.encap_params), label="header")
    inner = data.draw(inner_tcp_strategy(), label="inner")
    vnf = data.draw(st.sampled_from(_vnf_names(harness)), label="vnf")
    ingress, egress = harness.round_trip(frame(plugin.ethertype, header, inner), VNF_STEPS[vnf])
    assert ingress.expect.outcome == "cached"
    assert egress is not None and egress.expect.outcome == "restored"
    assert harness.proxy.cache() == {}, "a restored packet's entry must be deleted"


@parametrize_combos
@PROPERTY
@given(data=st.data())
def test_per_packet_not_per_flow(harness_factory, combo, data):
    """Two packets of one flow with different headers each get their own back,
    even when they leave the VNF in the opposite order."""
    encap, key, params = combo
    harness = harness_factory(encap, key, **params)
    plugin = harness.proxy.spec.encap.plugin
    strategy = plugin.header_strategy(harness.proxy.spec.encap_params)
    first, second = data.draw(strategy, label="first"), data.draw(strategy, label="second")
    seq = data.draw(st.integers(0, 2**32 - 2), label="seq")
    from sfcframe.testkit.packets import tcp_ipv4

    inner_a = tcp_ipv4(seq=seq, ip_id=7)
    inner_b = tcp_ipv4(seq=seq + 1, ip_id=8)
    a = harness.check_ingress(frame(plugin.ethertype, first, inner_a))
    b = harness.check_ingress(frame(plugin.ethertype, second, inner_b))
    assert a.expect.outcome == b.expect.outcome == "cached"
    out_b = harness.check_egress(b.result.packet, mark=harness.carried_mark(b.result))
    out_a = harness.check_egress(a.result.packet, mark=harness.carried_mark(a.result))
    assert out_a.expect.outcome == out_b.expect.outcome == "restored"
