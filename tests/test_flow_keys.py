"""The flow keys (rtp, esp, icmp, udp, auto) through the kernel: hypothesis round trips
of each key's own inner packets on MPLS, NSH and SRv6 builds with XDP and TC ingress,
every run checked by the test kit's oracle (verdict, exact output, one outcome
counter, the cache) and the key's own counters checked against the Python twin
(exactly one per packet and direction: the derivation the reference names);
packets outside each key (RTCP, other UDP, IKE, keepalives, other ICMP, fragments,
other protocols) and every truncation of a keyed packet."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfcframe.encaps.srv6 import TEST_SID as SID
from sfcframe.keys import flow
from sfcframe.keys.esp import esp_packet
from sfcframe.keys.icmp import echo_packet
from sfcframe.keys.rtp import rtp_packet
from sfcframe.keys.udp import udp_packet
from sfcframe.testkit.packets import ETH_P_IP, ETH_P_IPV6, VNF_STEPS, ether, tcp_ipv4, tcp_ipv6
from sfcframe.testrun import tc_min_frame

KEYS = ("rtp", "esp", "icmp", "udp", "auto")
ENCAPS = {
    "mpls": {},
    "nsh": {"max_md_bytes": 64},
    "srv6": {"sid": SID},
}
BUILDS = [(key, encap, hook) for key in KEYS for encap in ENCAPS for hook in ("xdp", "tc")]
EXAMPLES = settings(max_examples=8, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def make(harness_factory, key: str, encap: str = "mpls", hook: str = "xdp", strict=False):
    return harness_factory(encap, key, strict=strict, ingress=hook, **ENCAPS[encap])


def key_moves(harness, before) -> dict[str, dict[str, int]]:
    after = harness.proxy.counters()
    return {m: {n: after[m][n] - before[m][n] for n in after[m] if after[m][n] != before[m][n]}
            for m in ("sfc_key_ingress", "sfc_key_egress")}


def expected_key_counter(harness, frame: bytes) -> str | None:
    """The key counter ingress moves for ``frame`` (None: the key is never reached:
    a frame the encapsulation refuses)."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype in harness.proxy.spec.ethertypes:
        parse = harness.encap.reference_ingress(frame[14:], harness.encap_values, ethertype)
        if parse.outcome == "ok":
            return harness.key.reference_counter(frame[14 + parse.strip_len:],
                                                 parse.inner_ethertype, harness.values)
        if parse.outcome != "plain":
            return None
    return harness.key.reference_counter(frame[14:], ethertype, harness.values)


def ingress_checked(harness, frame: bytes):
    """check_ingress, plus: the key counter the reference names moved by one."""
    before = harness.proxy.counters()
    checked = harness.check_ingress(frame)
    want = expected_key_counter(harness, frame)
    assert key_moves(harness, before) == {"sfc_key_ingress": {want: 1} if want else {},
                                          "sfc_key_egress": {}}
    return checked


def round_trip(harness, inner: bytes, family: int, header: bytes, vnf: str):
    """ingress -> function step -> egress, every step and every key counter checked."""
    ingress = ingress_checked(harness, harness.frame(header, inner))
    assert ingress.expect.outcome == "cached", ingress.expect.outcome
    plain = VNF_STEPS[vnf](ingress.result.packet)
    before = harness.proxy.counters()
    egress = harness.check_egress(plain, mark=harness.carried_mark(ingress.result))
    want = harness.key.reference_counter(plain[14:], family, harness.values)
    assert key_moves(harness, before) == {"sfc_key_ingress": {}, "sfc_key_egress": {want: 1}}
    assert egress.expect.outcome == "restored"
    assert harness.proxy.cache() == {}


@pytest.mark.parametrize("key,encap,hook", BUILDS, ids=["-".join(b) for b in BUILDS])
@EXAMPLES
@given(data=st.data())
def test_round_trip_of_the_keys_own_packets(harness_factory, key, encap, hook, data):
    """Any header of the encapsulation, any inner packet the key keys (both families
    where the encapsulation carries them), through any function step the key survives."""
    harness = make(harness_factory, key, encap, hook)
    family = data.draw(st.sampled_from(harness.inner_ethertypes), label="family")
    header = data.draw(harness.encap.header_strategy(harness.encap_values, family), label="header")
    inner = data.draw(harness.key.inner_strategy(harness.values, family), label="inner")
    vnf = data.draw(st.sampled_from(harness.key.vnf_steps(harness.values, inner)), label="vnf")
    round_trip(harness, inner, family, header, vnf)


# ---- outside the key, inside another ---------------------------------------------------
def _fragment(inner: bytes) -> bytes:
    """An IPv4 packet made a non-first fragment (offset 8 bytes; checksum not fixed)."""
    l3 = bytearray(inner)
    struct.pack_into("!H", l3, 6, 1)
    return bytes(l3)


def _ipv6_with_hop_by_hop(inner: bytes) -> bytes:
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop

    pkt = IPv6(inner)
    payload = pkt.payload
    pkt.remove_payload()
    pkt.nh = None
    pkt.plen = None
    return bytes(pkt / IPv6ExtHdrHopByHop() / payload)


def _unreachable() -> bytes:
    from scapy.layers.inet import ICMP, IP

    return bytes(IP(src="10.2.0.1", dst="10.1.0.1") / ICMP(type=3, code=1) / udp_packet())


#: name -> (inner, ethertype, {key: expected key counter}); "+" marks keyed packets
CASES = {
    "rtp": (rtp_packet(), ETH_P_IP,
            {"rtp": "+rtp", "auto": "+rtp", "udp": "+udp", "esp": "other", "icmp": "other"}),
    "rtp6": (rtp_packet(ethertype=ETH_P_IPV6), ETH_P_IPV6,
             {"rtp": "+rtp", "auto": "+rtp", "udp": "+udp"}),
    "rtcp-sr": (rtp_packet(pt=72, marker=1), ETH_P_IP, {"rtp": "rtcp", "auto": "+udp"}),
    "rtcp-bye": (rtp_packet(pt=75, marker=1), ETH_P_IP, {"rtp": "rtcp", "auto": "+udp"}),
    "pt-71": (rtp_packet(pt=71, marker=1), ETH_P_IP, {"rtp": "+rtp", "auto": "+rtp"}),
    "pt-77": (rtp_packet(pt=77), ETH_P_IP, {"rtp": "+rtp", "auto": "+rtp"}),
    "rtp-v1": (udp_packet(payload=b"\x40" + bytes(19)), ETH_P_IP,
               {"rtp": "not_rtp", "auto": "+udp"}),
    "rtp-short": (udp_packet(payload=b"\x80" + bytes(10)), ETH_P_IP,
                  {"rtp": "not_rtp", "auto": "+udp"}),
    "rtp-csrc-past-end": (udp_packet(payload=b"\x83\x00" + bytes(18)), ETH_P_IP,
                          {"rtp": "not_rtp", "auto": "+udp"}),
    "rtp-csrcs": (rtp_packet(csrcs=(1, 2, 3)), ETH_P_IP, {"rtp": "+rtp", "auto": "+rtp"}),
    "rtp-low-port": (rtp_packet(dport=53), ETH_P_IP, {"rtp": "not_rtp", "auto": "+udp"}),
    "udp-empty": (udp_packet(payload=b""), ETH_P_IP,
                  {"udp": "+udp", "rtp": "not_rtp", "auto": "+udp", "esp": "other"}),
    "udp-no-checksum": (udp_packet(checksum=False), ETH_P_IP, {"udp": "+udp", "auto": "+udp"}),
    "udp-long": (udp_packet(payload=bytes(range(200))), ETH_P_IP, {"udp": "+udp"}),
    "udp6": (udp_packet(ethertype=ETH_P_IPV6, payload=bytes(range(70))), ETH_P_IPV6,
             {"udp": "+udp", "auto": "+udp"}),
    "esp": (esp_packet(), ETH_P_IP, {"esp": "+esp", "auto": "+esp", "udp": "other",
                                     "rtp": "other", "icmp": "other"}),
    "esp6": (esp_packet(ethertype=ETH_P_IPV6), ETH_P_IPV6, {"esp": "+esp", "auto": "+esp"}),
    "esp-in-udp": (esp_packet(in_udp=True), ETH_P_IP,
                   {"esp": "+esp_in_udp", "auto": "+esp", "udp": "+udp"}),
    "esp-in-udp-natted": (esp_packet(in_udp=True, sport=61000), ETH_P_IP,
                          {"esp": "+esp_in_udp", "auto": "+esp"}),
    "esp-in-udp6": (esp_packet(ethertype=ETH_P_IPV6, in_udp=True), ETH_P_IPV6,
                    {"esp": "+esp_in_udp", "auto": "+esp"}),
    "ike": (udp_packet(sport=4500, dport=4500, payload=bytes(4) + b"ike message"), ETH_P_IP,
            {"esp": "ike", "auto": "+udp"}),
    "keepalive": (udp_packet(sport=4500, dport=4500, payload=b"\xff"), ETH_P_IP,
                  {"esp": "keepalive", "auto": "+udp"}),
    "esp-in-udp-short": (udp_packet(sport=4500, dport=4500, payload=b"\x01\x02\x03\x04\x05"),
                         ETH_P_IP, {"esp": "other", "auto": "+udp"}),
    "udp-other-port": (udp_packet(sport=4501, dport=4499, payload=b"\x01" * 20), ETH_P_IP,
                       {"esp": "other"}),
    "echo-request": (echo_packet(), ETH_P_IP, {"icmp": "+echo", "auto": "+icmp", "udp": "other"}),
    "echo-reply": (echo_packet(reply=True), ETH_P_IP, {"icmp": "+echo", "auto": "+icmp"}),
    "echo6": (echo_packet(ethertype=ETH_P_IPV6), ETH_P_IPV6, {"icmp": "+echo", "auto": "+icmp"}),
    "echo6-reply": (echo_packet(ethertype=ETH_P_IPV6, reply=True), ETH_P_IPV6,
                    {"icmp": "+echo", "auto": "+icmp"}),
    "icmp-unreachable": (_unreachable(), ETH_P_IP,
                         {"icmp": "not_echo", "auto": "other"}),
    "tcp": (tcp_ipv4(), ETH_P_IP, {"auto": "+tcpip", "rtp": "other", "esp": "other",
                                   "icmp": "other", "udp": "other"}),
    "tcp6": (tcp_ipv6(timestamps=(1, 2)), ETH_P_IPV6, {"auto": "+tcpip"}),
    "fragment": (_fragment(udp_packet()), ETH_P_IP, {"udp": "other", "auto": "other"}),
    "ipv6-hop-by-hop-udp": (_ipv6_with_hop_by_hop(udp_packet(ethertype=ETH_P_IPV6)), ETH_P_IPV6,
                            {"udp": "other", "auto": "other"}),
    "gre": (bytes(tcp_ipv4()[:9]) + b"\x2f" + tcp_ipv4()[10:], ETH_P_IP,
            {"auto": "other", "udp": "other"}),
}
CASE_RUNS = [(name, key) for name, (_, _, want) in CASES.items() for key in want]


@pytest.mark.parametrize("name,key", CASE_RUNS, ids=[f"{n}-{k}" for n, k in CASE_RUNS])
def test_which_packets_each_key_takes(harness_factory, name, key):
    """The reference says what the table says, and the kernel what the reference says
    (plain frames included: the key runs on those too); keyed packets go round."""
    inner, family, want = CASES[name]
    counter = want[key].lstrip("+")
    harness = make(harness_factory, key)
    assert harness.key.reference_counter(inner, family, harness.values) == counter
    if want[key].startswith("+"):
        header = harness.encap.example_header(harness.encap_values, family)
        round_trip(harness, inner, family, header, "identity")
    else:
        checked = ingress_checked(harness, harness.frame(
            harness.encap.example_header(harness.encap_values, family), inner))
        assert checked.expect.outcome == "no_key"
    harness.reset()
    plain = ingress_checked(harness, ether(family) + inner)
    assert plain.expect.outcome == ("plain" if want[key].startswith("+") else "ignored")


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("hook", ["xdp", "tc"])
def test_every_truncation(harness_factory, key, hook):
    """Each keyed example of the key cut at every length, at ingress and at egress:
    the kernel does what the reference says, and some lengths are malformed."""
    harness = make(harness_factory, key, "mpls", hook)
    for family in harness.inner_ethertypes:
        inner = harness.key.example_inner(harness.values, family)
        full = harness.example_frame(inner, family)
        outcomes = set()
        shortest = tc_min_frame(full) if hook == "tc" else 14
        for length in range(shortest, len(full) + 1):
            harness.reset()
            outcomes.add(ingress_checked(harness, full[:length]).expect.outcome)
        assert {"cached", "malformed"} <= outcomes, outcomes
        harness.reset()
        stripped = harness.check_ingress(full).result.packet
        for length in range(tc_min_frame(stripped), len(stripped)):
            harness.reset()
            ingress = harness.check_ingress(full)
            harness.check_egress(stripped[:length], mark=harness.carried_mark(ingress.result))


@pytest.mark.parametrize("key", ["esp", "auto"])
def test_esp_key_survives_source_nat(harness_factory, key):
    """ESP in UDP through a source NAT (address and port rewritten): still restored."""
    harness = make(harness_factory, key)
    inner = esp_packet(in_udp=True, sport=4500)
    ingress = harness.check_ingress(harness.example_frame(inner))
    assert ingress.expect.outcome == "cached"
    egress = harness.check_egress(VNF_STEPS["nat"](ingress.result.packet))
    assert egress.expect.outcome == "restored"


def test_identical_udp_datagrams_collide_and_are_counted(harness_factory):
    """The udp key's documented limit: the same datagram twice in flight is a collision
    (the second passes uncached), never a second entry or a wrong header."""
    harness = make(harness_factory, "udp")
    inner = udp_packet(payload=b"the same query")
    frame = harness.example_frame(inner)
    assert harness.check_ingress(frame).expect.outcome == "cached"
    assert harness.check_ingress(frame).expect.outcome == "collision"
    assert len(harness.proxy.cache()) == 1


def test_auto_counts_a_mixed_batch_per_derivation(harness_factory):
    """One auto proxy, one of each: every derivation counted once at ingress and egress,
    all restored, the cache empty again."""
    harness = make(harness_factory, "auto", "mpls", "tc")
    inners = [tcp_ipv4(), rtp_packet(), esp_packet(), esp_packet(in_udp=True), echo_packet(),
              udp_packet(), rtp_packet(pt=72), tcp_ipv6(), echo_packet(ethertype=ETH_P_IPV6)]
    stripped = []
    for inner in inners:
        family = ETH_P_IPV6 if inner[0] >> 4 == 6 else ETH_P_IP
        stripped.append(harness.check_ingress(harness.example_frame(inner, family)))
    for checked in stripped:
        assert checked.expect.outcome == "cached"
        harness.check_egress(checked.result.packet)
    counters = harness.proxy.counters()
    want = {"tcpip": 2, "rtp": 1, "esp": 2, "icmp": 2, "udp": 2}
    for direction in ("sfc_key_ingress", "sfc_key_egress"):
        assert {n: v for n, v in counters[direction].items() if v} == want
    assert harness.proxy.cache() == {}


# ---- the Python twins alone -----------------------------------------------------------
def _plugin(name: str):
    from sfcframe import discovery

    return discovery.load("key", name).plugin


def _values(name: str) -> dict:
    return {p.name: p.default for p in _plugin(name).params}


@settings(max_examples=60, deadline=None, database=None)
@given(data=st.data())
def test_auto_keys_each_packet_as_its_own_key_does(data):
    """auto's key of a TCP packet is tcpip(family=any)'s, of an RTP packet rtp's, ... and
    keys of different derivations never meet (the kind in doff_flags)."""
    family = data.draw(st.sampled_from([ETH_P_IP, ETH_P_IPV6]))
    name = data.draw(st.sampled_from(["tcpip", "rtp", "esp", "icmp", "udp"]))
    values = {"family": "any"} if name == "tcpip" else _values(name)
    inner = data.draw(_plugin(name).inner_strategy(values, family))
    own = _plugin(name).reference_key(inner, family, values)
    auto = _plugin("auto").reference_key(inner, family, _values("auto"))
    assert own[0] == "ok"
    if name != "udp" or _plugin("auto").reference_counter(inner, family, _values("auto")) == "udp":
        assert auto == own
    kind = struct.unpack_from("!H", auto[1], 58)[0]
    assert (kind >> 12 >= 5) == (name == "tcpip")


def test_payload_hash_by_hand():
    """FNV-1a over big-endian words from basis ^ length, zero-padded."""
    h = flow.HASH_BASIS ^ 5
    for word in (0x01020304, 0x05000000):
        h = ((h ^ word) * flow.HASH_PRIME) % 2**64
    assert flow.payload_hash(bytes([1, 2, 3, 4, 5]), 2) == h
    assert flow.payload_hash(b"", 0) == flow.HASH_BASIS
    assert flow.payload_hash(b"\0", 1) != flow.payload_hash(b"", 1)


def test_flow_key_parameters_are_checked():
    from sfcframe.errors import ParamError
    from sfcframe.spec import resolve_spec

    with pytest.raises(ParamError, match="not a multiple of 4"):
        resolve_spec("mpls", "udp", {"hash_bytes": 6})
    with pytest.raises(ParamError, match="rtp_port_min=2000 is above"):
        resolve_spec("mpls", "auto", {"rtp_port_min": 2000, "rtp_port_max": 1000})
    with pytest.raises(ParamError, match="outside 0..64"):
        resolve_spec("mpls", "auto", {"hash_bytes": 68})
