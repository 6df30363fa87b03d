"""Round trips: ingress -> function -> egress gives back the exact header (after the
update rule, the fix-up and every stage's edits, loose fields within their ranges)
and the exact inner packet as the function sent it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sfcframe.testkit.conformance.examples import (PER_PACKET_EXAMPLES, ROUND_TRIP_EXAMPLES,
                                                   property_settings)
from sfcframe.testkit.conformance.frames import (inner_strategy, stage_bodies, stage_settings,
                                                 vnf_names, with_stage_data)
from sfcframe.testkit.packets import VNF_STEPS

ROUND_TRIP = property_settings(ROUND_TRIP_EXAMPLES)
PER_PACKET = property_settings(PER_PACKET_EXAMPLES)


def draw_stage_settings(harness, data) -> None:
    """Every stage's runtime settings drawn and written (kernel and oracle)."""
    for name, values in data.draw(stage_settings(harness), label="stage settings").items():
        harness.set_stage_settings(name, values)


class RoundTripProperties:
    @ROUND_TRIP
    @given(data=st.data())
    def test_round_trip_restores_the_exact_encapsulation(self, harness_factory, combo, data):
        """Any valid header (with any stage data or none) and inner packet of every
        family, through a function that forwards, routes, changes the length or
        (where the key survives it) NATs."""
        harness = self.harness(harness_factory, combo)
        draw_stage_settings(harness, data)
        family = data.draw(st.sampled_from(harness.inner_ethertypes), label="inner family")
        header = data.draw(harness.encap.header_strategy(harness.encap_values, family),
                           label="header")
        header = with_stage_data(harness, header, data.draw(stage_bodies(harness),
                                                            label="stage data"))
        inner = data.draw(inner_strategy(harness, family), label="inner")
        vnf = data.draw(st.sampled_from(vnf_names(harness, inner)), label="vnf")
        ingress, egress = harness.round_trip(harness.frame(header, inner), VNF_STEPS[vnf])
        assert ingress.expect.outcome == "cached"
        assert egress is not None and egress.expect.outcome == "restored"
        assert harness.proxy.cache() == {}, "a restored packet's entry must be deleted"

    @PER_PACKET
    @given(data=st.data())
    def test_per_packet_not_per_flow(self, harness_factory, combo, data):
        """Two packets of one flow (``KeyPlugin.flow_pair_strategy``) with different
        headers each get their own back, even when they leave the function in the
        opposite order."""
        harness = self.harness(harness_factory, combo)
        family = data.draw(st.sampled_from(harness.inner_ethertypes), label="inner family")
        strategy = harness.encap.header_strategy(harness.encap_values, family)
        first, second = data.draw(strategy, label="first"), data.draw(strategy, label="second")
        inner_a, inner_b = data.draw(harness.key.flow_pair_strategy(harness.values, family),
                                     label="one flow's packets")
        a = harness.check_ingress(harness.frame(first, inner_a))
        b = harness.check_ingress(harness.frame(second, inner_b))
        assert a.expect.outcome == b.expect.outcome == "cached"
        out_b = harness.check_egress(b.result.packet, mark=harness.carried_mark(b.result))
        out_a = harness.check_egress(a.result.packet, mark=harness.carried_mark(a.result))
        assert out_a.expect.outcome == out_b.expect.outcome == "restored"
