"""Edge cases of the tcpip key (built-in specific; the generic ones, for every
installed plugin, are the conformance kit's: tests/test_conformance.py)."""

from __future__ import annotations

import pytest

from sfcframe.testkit.conformance.frames import valid_frame
from sfcframe.testkit.packets import ETH_P_IP, ether, tcp_ipv4
from sfcframe.testrun import TC_ACT_OK, XDP_DROP, XDP_PASS

pytestmark = pytest.mark.kernel


def test_nat_breaks_the_tcpip_key_and_is_counted(harness_factory):
    from sfcframe.testkit.packets import vnf_nat

    harness = harness_factory("mpls", "tcpip")
    ingress, egress = harness.round_trip(valid_frame(harness), vnf_nat)
    assert ingress.expect.outcome == "cached"
    assert egress.expect.outcome == "not_cached"
    assert harness.proxy.counters()["egress"]["not_cached"] == 1


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_identical_plain_packets_share_a_counted_marker(harness_factory, strict):
    """Duplicate ACKs of the return direction: identical plain packets in flight are
    neither a collision nor, on the way out, a miss."""
    harness = harness_factory("mpls", "tcpip", strict=strict)
    ack = ether(ETH_P_IP) + tcp_ipv4(flags="A", payload=b"")
    for _ in range(3):
        checked = harness.check_ingress(ack)
        assert checked.expect.outcome == "plain" and checked.result.retval == XDP_PASS
    (marker,) = harness.proxy.cache().values()
    assert marker[1] == 3  # the marker counts three packets
    for _ in range(3):
        out = harness.check_egress(ack)
        assert out.expect.outcome == "plain" and out.result.retval == TC_ACT_OK
    assert harness.proxy.cache() == {}
    assert harness.check_egress(ack).expect.outcome == "not_cached"  # a fourth was never seen


def test_plain_packet_matching_an_encapsulated_entry_is_a_collision(harness_factory):
    """A plain packet under the key of an in-flight encapsulated one must not take its entry."""
    harness = harness_factory("mpls", "tcpip")
    inner = tcp_ipv4()
    harness.check_ingress(valid_frame(harness, inner))
    checked = harness.check_ingress(ether(ETH_P_IP) + inner)
    assert checked.expect.outcome == "collision" and checked.result.retval == XDP_DROP
