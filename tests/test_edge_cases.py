"""Bad and unusual input, for every encap x key: verdict and counter exactly
as the oracle says, output unchanged unless the packet was processed, and
the cache changed only as predicted."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st  # noqa: F401  (strategies used via plugins)

from combos import COMBOS, combo_id, in_drop, in_pass, parametrize_combos
from sfcframe.testkit.packets import ETH_P_IP, ETH_P_IPV6, ether, tcp_ipv4, tcp_ipv6
from sfcframe.testrun import TC_ACT_OK, TC_ACT_SHOT, XDP_DROP, XDP_PASS, tc_min_frame

pytestmark = pytest.mark.kernel


def _keyed_inners(harness) -> list[bytes]:
    """One inner packet per family the combination keys: IPv4/TCP with IP options,
    IPv6/TCP with a timestamp option behind a no-operation word."""
    return [tcp_ipv4(ip_option_words=2) if family == ETH_P_IP
            else tcp_ipv6(tcp_option_words=1, timestamps=(0x01020304, 0x05060708))
            for family in harness.inner_ethertypes]


def _valid_frame(harness, inner: bytes | None = None) -> bytes:
    """An encapsulated frame around ``inner`` (default: the first keyed inner packet)."""
    inner = inner or _keyed_inners(harness)[0]
    return harness.example_frame(inner, ETH_P_IPV6 if inner[0] >> 4 == 6 else ETH_P_IP)


def _plain_inner(harness) -> tuple[int, bytes]:
    """(ethertype, packet) of a plain packet the key covers."""
    inner = _keyed_inners(harness)[0]
    return (ETH_P_IPV6 if inner[0] >> 4 == 6 else ETH_P_IP), inner


@parametrize_combos
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_every_truncation_at_ingress(harness_factory, combo, strict):
    encap, key, params = combo
    harness = harness_factory(encap, key, strict=strict, **params)
    for inner in _keyed_inners(harness):
        full = _valid_frame(harness, inner)
        outcomes = set()
        shortest = tc_min_frame(full) if harness.proxy.spec.ingress_hook == "tc" else 14
        for length in range(shortest, len(full) + 1):
            harness.reset()
            outcomes.add(harness.check_ingress(full[:length]).expect.outcome)
        assert "cached" in outcomes and "malformed" in outcomes


@parametrize_combos
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_every_truncation_at_egress(harness_factory, combo, strict):
    encap, key, params = combo
    harness = harness_factory(encap, key, strict=strict, **params)
    for inner in _keyed_inners(harness):
        full = _valid_frame(harness, inner)
        # BPF_PROG_TEST_RUN refuses an IPv4 (IPv6) skb shorter than an IPv4 (IPv6) header
        for length in range(14 + (40 if inner[0] >> 4 == 6 else 20), len(full) - 1):
            harness.reset()
            ingress = harness.check_ingress(full)
            stripped = ingress.result.packet
            if length > len(stripped):
                break
            harness.check_egress(stripped[:length], mark=harness.carried_mark(ingress.result))


@parametrize_combos
@pytest.mark.parametrize("ethertype", [0x0806, 0x8848, 0x86DD, 0x88B5, 0x0000, 0xFFFF])
def test_foreign_ethertypes_pass_untouched(harness_factory, combo, ethertype):
    encap, key, params = combo
    harness = harness_factory(encap, key, **params)
    checked = harness.check_ingress(ether(ethertype) + bytes(range(64)))
    # the metadata key covers IPv6 too: such a frame is tracked as plain, still untouched
    assert checked.expect.outcome in ("ignored", "plain")
    assert checked.result.retval == in_pass(harness)
    assert checked.result.packet == ether(ethertype) + bytes(range(64))
    # a key that reads IPv6 headers finds these bytes malformed (version 0): passed as they are
    egress = harness.check_egress(ether(ethertype) + bytes(range(64)))
    covered = ethertype in harness.key.inner_ethertypes(harness.values)
    assert egress.expect.outcome in ("ignored", "not_cached") + (("malformed",) if covered else ())
    assert egress.result.retval == TC_ACT_OK
    assert egress.result.packet == ether(ethertype) + bytes(range(64))


@parametrize_combos
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_plain_packets_are_tracked_and_passed(harness_factory, combo, strict):
    encap, key, params = combo
    harness = harness_factory(encap, key, strict=strict, **params)
    ethertype, inner = _plain_inner(harness)
    plain = ether(ethertype) + inner
    ingress = harness.check_ingress(plain)
    assert ingress.expect.outcome == "plain" and ingress.result.packet == plain
    egress = harness.check_egress(plain, mark=harness.carried_mark(ingress.result))
    assert egress.expect.outcome == "plain"
    assert egress.result.retval == TC_ACT_OK and egress.result.packet == plain


@parametrize_combos
@pytest.mark.parametrize(
    "inner",
    [
        pytest.param(dict(ip_option_words=10), id="ipv4-options-max"),
        pytest.param(dict(ip_option_words=1, tcp_option_words=10), id="tcp-options"),
        pytest.param(dict(ip_flags="MF", frag=0), id="first-fragment"),
        pytest.param(dict(ip_flags="MF", frag=100), id="middle-fragment"),
        pytest.param(dict(ip_flags=0, frag=200), id="last-fragment"),
        pytest.param(dict(payload=b""), id="no-payload"),
    ],
)
def test_inner_variants(harness_factory, combo, inner):
    from sfcframe.testkit.packets import vnf_ttl_decrement

    encap, key, params = combo
    harness = harness_factory(encap, key, **params)
    ingress, egress = harness.round_trip(_valid_frame(harness, tcp_ipv4(**inner)), vnf_ttl_decrement)
    if ETH_P_IP not in harness.inner_ethertypes or (inner.get("frag") and key == "tcpip"):
        # non-first fragments are outside the tcpip key; IPv4 is outside family=ipv6
        assert ingress.expect.outcome == "no_key"
    else:
        assert egress is not None and egress.expect.outcome == "restored"


def _udp_icmp():
    from scapy.layers.inet import ICMP, IP, UDP

    return {
        "udp": bytes(IP(src="10.1.0.1", dst="10.2.0.1") / UDP(sport=1, dport=2) / (b"x" * 8)),
        "icmp": bytes(IP(src="10.1.0.1", dst="10.2.0.1") / ICMP(id=3, seq=4) / (b"y" * 8)),
    }


@parametrize_combos
@pytest.mark.parametrize("proto", ["udp", "icmp"])
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_non_tcp_inner(harness_factory, combo, proto, strict):
    encap, key, params = combo
    harness = harness_factory(encap, key, strict=strict, **params)
    ingress, egress = harness.round_trip(_valid_frame(harness, _udp_icmp()[proto]), lambda f: f)
    if key == "tcpip":
        assert ingress.expect.outcome == "no_key"
        assert ingress.result.retval == (in_drop(harness) if strict else in_pass(harness))
    else:
        assert egress.expect.outcome == "restored"


@pytest.mark.parametrize("combo", [c for c in COMBOS if c[1] == "tcpip"], ids=combo_id)
def test_duplicate_key_is_a_counted_drop(harness_factory, combo):
    """Only keys read from the packet can collide; metadata ids are unique per packet."""
    encap, key, params = combo
    harness = harness_factory(encap, key, **params)
    one = _valid_frame(harness)
    harness.check_ingress(one)
    second = harness.check_ingress(one)
    assert second.expect.outcome == "collision" and second.result.retval == in_drop(harness)


@parametrize_combos
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_egress_miss(harness_factory, combo, strict):
    encap, key, params = combo
    harness = harness_factory(encap, key, strict=strict, **params)
    ingress = harness.check_ingress(_valid_frame(harness))
    harness.reset()  # the entry is gone: evicted, or the VNF held the packet too long
    egress = harness.check_egress(ingress.result.packet, mark=harness.carried_mark(ingress.result))
    assert egress.expect.outcome == "not_cached"
    assert egress.result.retval == (TC_ACT_SHOT if strict else TC_ACT_OK)


def test_nat_breaks_the_tcpip_key_and_is_counted(harness_factory):
    from sfcframe.testkit.packets import vnf_nat

    harness = harness_factory("mpls", "tcpip")
    ingress, egress = harness.round_trip(_valid_frame(harness), vnf_nat)
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
    harness.check_ingress(_valid_frame(harness, inner))
    checked = harness.check_ingress(ether(ETH_P_IP) + inner)
    assert checked.expect.outcome == "collision" and checked.result.retval == XDP_DROP
