"""Bad and unusual input: every truncation, foreign and plain traffic, inner packets
outside the usual, collisions and misses. Each run is checked by the harness against
the oracle: verdict, exact output, exactly one counter, the cache as predicted."""

from __future__ import annotations

import pytest

from sfcframe.testkit.conformance.frames import (family_of, keyed_inners, non_tcp_inners,
                                                 plain_inner, valid_frame)
from sfcframe.testkit.conformance.select import applies_to
from sfcframe.testkit.packets import ether, tcp_ipv4, vnf_ttl_decrement
from sfcframe.testrun import TC_ACT_OK, TC_ACT_SHOT, tc_min_frame

STRICT = pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
#: ethertypes no built-in claims (ARP, MPLS multicast, IPv6, local experimental, odd
#: values); a build whose encapsulation claims one leaves it out
FOREIGN_ETHERTYPES = (0x0806, 0x8848, 0x86DD, 0x88B5, 0x0000, 0xFFFF)
#: IPv4/TCP variants (tcp_ipv4 arguments) every build must handle as its key says
INNER_VARIANTS = {
    "ipv4-options-max": dict(ip_option_words=10),
    "tcp-options": dict(ip_option_words=1, tcp_option_words=10),
    "first-fragment": dict(ip_flags="MF", frag=0),
    "middle-fragment": dict(ip_flags="MF", frag=100),
    "last-fragment": dict(ip_flags=0, frag=200),
    "no-payload": dict(payload=b""),
}


def _expect_key_path(harness, inner: bytes, ingress, egress) -> None:
    """A packet the key covers is cached and restored; one it does not is counted
    under the key's outcome (with the verdict the oracle checked)."""
    outcome, _ = harness.key.reference_key(inner, family_of(inner), harness.values)
    if outcome == "ok":
        assert ingress.expect.outcome == "cached"
        assert egress is not None and egress.expect.outcome == "restored"
    else:
        assert ingress.expect.outcome == outcome


class EdgeProperties:
    @STRICT
    def test_every_truncation_at_ingress(self, harness_factory, combo, strict):
        harness = self.harness(harness_factory, combo, strict=strict)
        for inner in keyed_inners(harness):
            full = valid_frame(harness, inner)
            outcomes = set()
            shortest = tc_min_frame(full) if harness.proxy.spec.ingress_hook == "tc" else 14
            for length in range(shortest, len(full) + 1):
                harness.reset()
                outcomes.add(harness.check_ingress(full[:length]).expect.outcome)
            assert "cached" in outcomes and "malformed" in outcomes, outcomes

    @STRICT
    def test_every_truncation_at_egress(self, harness_factory, combo, strict):
        harness = self.harness(harness_factory, combo, strict=strict)
        for inner in keyed_inners(harness):
            full = valid_frame(harness, inner)
            stripped = harness.check_ingress(full).result.packet
            # BPF_PROG_TEST_RUN refuses an IPv4 (IPv6) skb shorter than its IP header
            for length in range(tc_min_frame(stripped), len(stripped)):
                harness.reset()
                ingress = harness.check_ingress(full)
                harness.check_egress(stripped[:length], mark=harness.carried_mark(ingress.result))

    def test_foreign_ethertypes_pass_untouched(self, harness_factory, combo):
        harness = self.harness(harness_factory, combo)
        foreign = [t for t in FOREIGN_ETHERTYPES if t not in harness.proxy.spec.ethertypes]
        assert foreign, "every foreign ethertype is claimed by the encapsulation"
        for ethertype in foreign:
            harness.reset()
            frame = ether(ethertype) + bytes(range(64))
            checked = harness.check_ingress(frame)
            # a key covering IPv6 tracks such a frame as plain, still untouched
            assert checked.expect.outcome in ("ignored", "plain")
            assert checked.result.retval == harness.oracle.ingress_pass
            assert checked.result.packet == frame
            # a key that reads IPv6 headers finds these bytes malformed (version 0)
            egress = harness.check_egress(frame)
            covered = ethertype in harness.key.inner_ethertypes(harness.values)
            allowed = ("ignored", "not_cached") + (("malformed",) if covered else ())
            assert egress.expect.outcome in allowed
            assert egress.result.retval == TC_ACT_OK and egress.result.packet == frame

    @STRICT
    def test_plain_packets_are_tracked_and_passed(self, harness_factory, combo, strict):
        harness = self.harness(harness_factory, combo, strict=strict)
        ethertype, inner = plain_inner(harness)
        plain = ether(ethertype) + inner
        ingress = harness.check_ingress(plain)
        assert ingress.expect.outcome == "plain" and ingress.result.packet == plain
        egress = harness.check_egress(plain, mark=harness.carried_mark(ingress.result))
        assert egress.expect.outcome == "plain"
        assert egress.result.retval == TC_ACT_OK and egress.result.packet == plain

    @applies_to(lambda combo: combo.carries_ipv4)
    @pytest.mark.parametrize("variant", sorted(INNER_VARIANTS))
    def test_inner_variants(self, harness_factory, combo, variant):
        """IP and TCP options at their maximum, fragments, no payload."""
        harness = self.harness(harness_factory, combo)
        inner = tcp_ipv4(**INNER_VARIANTS[variant])
        ingress, egress = harness.round_trip(valid_frame(harness, inner), vnf_ttl_decrement)
        _expect_key_path(harness, inner, ingress, egress)

    @applies_to(lambda combo: combo.carries_ipv4)
    @pytest.mark.parametrize("proto", ["udp", "icmp"])
    @STRICT
    def test_non_tcp_inner(self, harness_factory, combo, proto, strict):
        harness = self.harness(harness_factory, combo, strict=strict)
        inner = non_tcp_inners()[proto]
        ingress, egress = harness.round_trip(valid_frame(harness, inner), lambda f: f)
        _expect_key_path(harness, inner, ingress, egress)

    @applies_to(lambda combo: combo.key_from_packet)
    def test_duplicate_key_is_a_counted_drop(self, harness_factory, combo):
        """Only keys read from the packet can collide (an id drawn per packet cannot)."""
        harness = self.harness(harness_factory, combo)
        one = valid_frame(harness)
        assert harness.check_ingress(one).expect.outcome == "cached"
        second = harness.check_ingress(one)
        assert second.expect.outcome == "collision"
        assert second.result.retval == harness.oracle.ingress_drop

    @STRICT
    def test_egress_miss(self, harness_factory, combo, strict):
        harness = self.harness(harness_factory, combo, strict=strict)
        ingress = harness.check_ingress(valid_frame(harness))
        harness.reset()  # the entry is gone: evicted, or the function held the packet too long
        egress = harness.check_egress(ingress.result.packet,
                                      mark=harness.carried_mark(ingress.result))
        assert egress.expect.outcome == "not_cached"
        assert egress.result.retval == (TC_ACT_SHOT if strict else TC_ACT_OK)
