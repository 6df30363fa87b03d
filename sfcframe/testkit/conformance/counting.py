"""Counters add up: after a mixed batch of frames, each direction's outcome counters
sum to the frames that direction ran (every packet ends in exactly one outcome)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sfcframe.testkit.conformance.edges import FOREIGN_ETHERTYPES
from sfcframe.testkit.conformance.examples import BATCH_EXAMPLES, property_settings
from sfcframe.testkit.conformance.frames import (inner_strategy, non_tcp_inners, stage_bodies,
                                                 with_stage_data)
from sfcframe.testkit.packets import ether
from sfcframe.testrun import tc_min_frame

BATCH = property_settings(BATCH_EXAMPLES)
#: most frames in one batch
BATCH_FRAMES = 8
KINDS = ("valid", "truncated", "foreign", "plain", "non_tcp")


def mixed_frame(harness, kind: str, data) -> bytes:
    """One frame of ``kind``: encapsulated and valid (stage data included), the same
    cut short, of a foreign ethertype, plain IP, encapsulated around UDP or ICMP."""
    family = data.draw(st.sampled_from(harness.inner_ethertypes), label="family")
    if kind == "foreign":
        ethertype = data.draw(st.sampled_from(
            [t for t in FOREIGN_ETHERTYPES if t not in harness.proxy.spec.ethertypes]))
        shortest = tc_min_frame(ether(ethertype)) if harness.proxy.spec.ingress_hook == "tc" else 14
        return ether(ethertype) + data.draw(st.binary(min_size=shortest - 14, max_size=80),
                                            label="payload")
    if kind == "plain":
        return ether(family) + data.draw(inner_strategy(harness, family), label="plain inner")
    header = data.draw(harness.encap.header_strategy(harness.encap_values, family), label="hdr")
    header = with_stage_data(harness, header, data.draw(stage_bodies(harness), label="stages"))
    if kind == "non_tcp":
        return harness.frame(header, data.draw(st.sampled_from(sorted(non_tcp_inners().values()))))
    frame = harness.frame(header, data.draw(inner_strategy(harness, family), label="inner"))
    if kind == "truncated":
        shortest = tc_min_frame(frame) if harness.proxy.spec.ingress_hook == "tc" else 14
        frame = frame[:data.draw(st.integers(shortest, len(frame) - 1), label="cut")]
    return frame


class CountingProperties:
    @BATCH
    @given(data=st.data())
    def test_counters_add_up_to_the_frames_seen(self, harness_factory, combo, data):
        """Ingress runs a batch of mixed frames; egress runs what ingress passed, in
        another order; then each direction's counters sum to its runs."""
        harness = self.harness(harness_factory, combo)
        kinds = data.draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=BATCH_FRAMES),
                          label="kinds")
        passed = []
        for kind in kinds:
            checked = harness.check_ingress(mixed_frame(harness, kind, data))
            if checked.expect.packet is not None:
                passed.append(checked)
        egressed = 0
        for checked in data.draw(st.permutations(passed), label="egress order"):
            packet = checked.result.packet
            if len(packet) >= tc_min_frame(packet):  # what a TC test run accepts
                harness.check_egress(packet, mark=harness.carried_mark(checked.result))
                egressed += 1
        counters = harness.proxy.counters()
        assert sum(counters["ingress"].values()) == len(kinds), counters["ingress"]
        assert sum(counters["egress"].values()) == egressed, counters["egress"]
