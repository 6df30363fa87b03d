"""Property: ingress -> VNF -> egress gives back the exact per-packet
encapsulation (after the encap's update rule) and the exact inner packet,
for every encap x key combination, on the real kernel."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from combos import parametrize_combos
from sfcframe.testkit.packets import (ETH_P_IP, VNF_STEPS, VNF_STEPS_IPV6, inner_strategy)

pytestmark = pytest.mark.kernel

EXAMPLES = 150
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _vnf_names(harness, inner_ethertype: int) -> list[str]:
    names = ["identity", "ttl", "trim"]
    if harness.key.survives_nat and inner_ethertype == ETH_P_IP:
        names.append("nat")
    return [n for n in names if inner_ethertype == ETH_P_IP or n in VNF_STEPS_IPV6]


@parametrize_combos
@PROPERTY
@given(data=st.data())
def test_round_trip_restores_exact_encapsulation(harness_factory, combo, data):
    encap, key, params = combo
    harness = harness_factory(encap, key, **params)
    family = data.draw(st.sampled_from(harness.inner_ethertypes), label="inner family")
    header = data.draw(harness.encap.header_strategy(harness.encap_values, family), label="header")
    inner = data.draw(inner_strategy(family), label="inner")
    vnf = data.draw(st.sampled_from(_vnf_names(harness, family)), label="vnf")
    ingress, egress = harness.round_trip(harness.frame(header, inner), VNF_STEPS[vnf])
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
    family = data.draw(st.sampled_from(harness.inner_ethertypes), label="inner family")
    strategy = harness.encap.header_strategy(harness.encap_values, family)
    first, second = data.draw(strategy, label="first"), data.draw(strategy, label="second")
    seq = data.draw(st.integers(0, 2**32 - 2), label="seq")
    from sfcframe.testkit.packets import tcp_ipv4, tcp_ipv6

    if family == ETH_P_IP:
        inner_a, inner_b = tcp_ipv4(seq=seq, ip_id=7), tcp_ipv4(seq=seq + 1, ip_id=8)
    else:
        inner_a, inner_b = tcp_ipv6(seq=seq), tcp_ipv6(seq=seq + 1)
    a = harness.check_ingress(harness.frame(first, inner_a))
    b = harness.check_ingress(harness.frame(second, inner_b))
    assert a.expect.outcome == b.expect.outcome == "cached"
    out_b = harness.check_egress(b.result.packet, mark=harness.carried_mark(b.result))
    out_a = harness.check_egress(a.result.packet, mark=harness.carried_mark(a.result))
    assert out_a.expect.outcome == out_b.expect.outcome == "restored"
