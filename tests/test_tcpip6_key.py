"""The tcpip key over IPv6/TCP (``family=ipv6``) and over both families in one key
(``family=any``): parameter validation (pure Python), then the key the kernel stores
for hand-built packets, written out here byte by byte (timestamp option present,
absent, misplaced and malformed; flow label; IPv4-mapped addresses), extension
headers outside the key, and which packets do and do not share a key. Every kernel
run also goes through the test kit's oracle (verdict, counters, output, cache)."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from sfcframe.encaps.srv6 import TEST_SID as SID
from sfcframe.errors import ParamError
from sfcframe.spec import resolve_spec
from sfcframe.testkit.packets import (ETH_P_IP, ETH_P_IPV6, ether, tcp_ipv4, tcp_ipv6,
                                      vnf_identity, vnf_remark)
from sfcframe.testrun import TC_ACT_OK

SRC6, DST6 = "fd00:1::1", "fd00:2::1"
TS = struct.pack("!II", 0x01020304, 0xA0B0C0D0)
NOP, EOL = b"\x01", b"\x00"
PA = 0x18  # the flags tcp_ipv4/tcp_ipv6 send by default

#: the builds the kernel tests below run on: IPv6 only behind SRv6 with XDP, both
#: families behind SRv6 with TC ingress and behind MPLS with XDP
BUILDS = {
    "srv6-ipv6-xdp": ("srv6", {"sid": SID, "family": "ipv6"}),
    "srv6-any-tc": ("srv6", {"sid": SID, "family": "any", "ingress": "tc"}),
    "mpls-any-xdp": ("mpls", {"family": "any"}),
}
ANY_BUILDS = [name for name, (_, params) in BUILDS.items() if params["family"] == "any"]


def key6(src: str, dst: str, *, sport: int = 40001, dport: int = 5201, seq: int = 1000,
         ack: int = 2000, ts: bytes = bytes(8), label: int, window: int = 512, doff: int = 5,
         flags: int = PA) -> bytes:
    """struct sfc_key of the IPv6 layout, written out field by field."""
    return (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
            + struct.pack("!HHII", sport, dport, seq, ack) + ts
            + struct.pack("!IHH", label, window, doff << 12 | flags))


def mapped(address: str) -> str:
    return f"::ffff:{address}"


@pytest.fixture(params=sorted(BUILDS))
def build(request, harness_factory):
    encap, params = BUILDS[request.param]
    return lambda strict=False: harness_factory(encap, "tcpip", strict=strict, **params)


@pytest.fixture(params=ANY_BUILDS)
def any_build(request, harness_factory):
    encap, params = BUILDS[request.param]
    return lambda strict=False: harness_factory(encap, "tcpip", strict=strict, **params)


def family_of(inner: bytes) -> int:
    return ETH_P_IPV6 if inner[0] >> 4 == 6 else ETH_P_IP


def stored_key(harness, inner: bytes, vnf=vnf_identity) -> bytes:
    """The key ingress stored for ``inner`` encapsulated (the harness checks it against
    the Python reference); egress then finds and restores it after ``vnf``."""
    frame = harness.example_frame(inner, family_of(inner))
    ingress = harness.check_ingress(frame)
    assert ingress.expect.outcome == "cached", ingress.expect.outcome
    key = ingress.new_key
    egress = harness.check_egress(vnf(ingress.result.packet),
                                  mark=harness.carried_mark(ingress.result))
    assert egress.expect.outcome == "restored" and harness.proxy.cache() == {}
    return key


# ---------------------------------------------------------------------------
# parameters (pure Python)
# ---------------------------------------------------------------------------
def test_family_parameter_is_validated_and_named_only_off_its_default():
    with pytest.raises(ParamError, match=r"family='ipv5' is not one of ipv4\|ipv6\|any"):
        resolve_spec("mpls", "tcpip", {"family": "ipv5"})
    default = resolve_spec("mpls", "tcpip", {})
    assert default.key_params == {"family": "ipv4"}
    # the default stays out of the spec line, so builds made before the parameter
    # existed render byte-identical (tests/golden)
    assert " key=tcpip() " in default.describe()
    for family in ("ipv6", "any"):
        spec = resolve_spec("srv6", "tcpip", {"sid": SID, "family": family})
        assert f" key=tcpip(family={family}) " in spec.describe()


def test_families_cover_their_inner_ethertypes():
    from sfcframe.keys.tcpip import TcpIpKey

    key = TcpIpKey()
    assert key.inner_ethertypes({"family": "ipv4"}) == (ETH_P_IP,)
    assert key.inner_ethertypes({"family": "ipv6"}) == (ETH_P_IPV6,)
    assert set(key.inner_ethertypes({"family": "any"})) == {ETH_P_IP, ETH_P_IPV6}
    for family, other in (("ipv4", tcp_ipv6()), ("ipv6", tcp_ipv4())):
        assert key.reference_key(other, family_of(other), {"family": family}) == ("no_key", None)


def test_key_size_per_family(proxy_factory):
    """struct sfc_key as the kernel's map has it: 24 bytes for IPv4, 60 for the IPv6 layout."""
    from sfcframe.maps import map_memory
    from sfcframe.runtime.sizing import KNOWN_KEY_SIZES

    for encap, params, size in (("mpls", {}, 24), *((e, p, 60) for e, p in BUILDS.values())):
        proxy = proxy_factory(encap, "tcpip", **params)
        assert map_memory(proxy.module.table("sfc_cache").map_fd).key_size == size
        assert KNOWN_KEY_SIZES["tcpip"][proxy.spec.key_params["family"]] == size


# ---------------------------------------------------------------------------
# the key the kernel stores, byte by byte
# ---------------------------------------------------------------------------
#: raw TCP options -> the timestamps the key holds (zeros: none found)
OPTION_CASES = {
    "absent": (b"", bytes(8)),
    "nop-nop-ts": (NOP + NOP + b"\x08\x0a" + TS, TS),
    "syn-layout": (b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + TS + b"\x01\x03\x03\x07", TS),
    "unaligned-after-window-scale": (b"\x03\x03\x07\x08\x0a" + TS + bytes(3), TS),
    "after-unknown-kind": (b"\xfe\x06\xaa\xbb\xcc\xdd\x08\x0a" + TS, TS),
    "kind8-wrong-length-skipped": (b"\x08\x06\x11\x22\x33\x44\x08\x0a" + TS, TS),
    "first-of-two": (b"\x08\x0a" + TS + b"\x08\x0a" + bytes(8) + bytes(4), TS),
    "mss-only": (b"\x02\x04\x05\xb4", bytes(8)),
    "end-of-list-first": (EOL * 4 + NOP * 2 + b"\x08\x0a" + TS, bytes(8)),
    "length-0-first": (b"\x1e\x00" + NOP * 2 + NOP * 2 + b"\x08\x0a" + TS, bytes(8)),
    "length-1-first": (b"\x1e\x01" + NOP * 2 + NOP * 2 + b"\x08\x0a" + TS, bytes(8)),
    "length-past-the-end": (NOP * 2 + b"\x1e\x20" + b"\x08\x0a" + TS + bytes(2), bytes(8)),
    "ts-cut-by-the-end": (NOP * 32 + b"\x08\x0a" + TS[:6], bytes(8)),
    "no-room-for-length": (NOP * 3 + b"\x08", bytes(8)),
}


@pytest.mark.parametrize("case", OPTION_CASES)
def test_timestamps_in_the_ipv6_key(build, case):
    options, ts = OPTION_CASES[case]
    options += bytes(-len(options) % 4)
    doff = 5 + len(options) // 4
    inner = tcp_ipv6(SRC6, DST6, fl=0xABCDE, tc=0x2E, options=options)
    assert stored_key(build(), inner) == key6(SRC6, DST6, ts=ts, label=0x600ABCDE, doff=doff)


@pytest.mark.parametrize("case", ["absent", "nop-nop-ts", "syn-layout", "length-0-first"])
def test_ipv4_in_family_any_is_ipv4_mapped(any_build, case):
    options, ts = OPTION_CASES[case]
    options += bytes(-len(options) % 4)
    inner = tcp_ipv4("10.1.0.1", "10.2.0.1", ip_id=0xBEEF, ip_option_words=2, options=options)
    assert stored_key(any_build(), inner) == key6(
        mapped("10.1.0.1"), mapped("10.2.0.1"), ts=ts, label=0x4000BEEF,
        doff=5 + len(options) // 4)


def test_ports_numbers_window_and_flags(build):
    inner = tcp_ipv6(SRC6, DST6, sport=1, dport=65535, seq=0xFFFFFFFF, ack=7, window=0xFFFF,
                     fl=0, flags="SA", timestamps=(5, 6))
    assert stored_key(build(), inner) == key6(
        SRC6, DST6, sport=1, dport=65535, seq=0xFFFFFFFF, ack=7, window=0xFFFF,
        ts=struct.pack("!II", 5, 6), label=0x60000000, doff=8, flags=0x12)


def test_dscp_ecn_rewrite_keeps_the_key(build):
    """Traffic class (DSCP/ECN) and the TCP ECN flags are outside the key: a function that
    re-marks them still gets the packet's header back."""
    inner = tcp_ipv6(SRC6, DST6, tc=0x00, fl=0x12345, timestamps=(1, 2), flags="PA")
    stored_key(build(), inner, vnf=vnf_remark)


# ---------------------------------------------------------------------------
# outside the key
# ---------------------------------------------------------------------------
def _outside_packets() -> dict[str, bytes]:
    from scapy.layers.inet import TCP, UDP
    from scapy.layers.inet6 import (ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt,
                                    IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                    IPv6ExtHdrRouting)

    ip6 = IPv6(src=SRC6, dst=DST6)
    tcp = TCP(sport=40001, dport=5201, seq=1, ack=2, flags="A") / b"data"
    return {
        "hop-by-hop": bytes(ip6 / IPv6ExtHdrHopByHop() / tcp),
        "destination-options": bytes(ip6 / IPv6ExtHdrDestOpt() / tcp),
        "routing": bytes(ip6 / IPv6ExtHdrRouting() / tcp),
        "first-fragment": bytes(ip6 / IPv6ExtHdrFragment(offset=0, m=1, id=9) / tcp),
        "udp": bytes(ip6 / UDP(sport=1, dport=2) / (b"x" * 8)),
        "icmpv6": bytes(ip6 / ICMPv6EchoRequest(id=1, seq=2)),
    }


@pytest.mark.parametrize("name", sorted(_outside_packets()))
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_ipv6_not_tcp_directly_is_outside_the_key(build, name, strict):
    harness = build(strict)
    inner = _outside_packets()[name]
    encapsulated = harness.check_ingress(harness.example_frame(inner, ETH_P_IPV6))
    assert encapsulated.expect.outcome == "no_key"
    assert encapsulated.result.retval == (harness.oracle.ingress_drop if strict else harness.oracle.ingress_pass)
    plain = ether(ETH_P_IPV6) + inner
    assert harness.check_ingress(plain).expect.outcome == "ignored"
    out = harness.check_egress(plain)
    assert out.expect.outcome == "ignored" and out.result.retval == TC_ACT_OK
    assert harness.proxy.cache() == {}


# ---------------------------------------------------------------------------
# which packets share a key
# ---------------------------------------------------------------------------
def _ingress_two(harness, first: bytes, second: bytes) -> tuple[str, str]:
    a = harness.check_ingress(harness.example_frame(first, family_of(first)))
    b = harness.check_ingress(harness.example_frame(second, family_of(second)))
    return a.expect.outcome, b.expect.outcome


def test_packets_differing_only_in_tsval_get_different_keys(build):
    harness = build()
    assert _ingress_two(harness, tcp_ipv6(timestamps=(100, 7)),
                        tcp_ipv6(timestamps=(101, 7))) == ("cached", "cached")
    assert len(harness.proxy.cache()) == 2
    # the same packet twice in flight is a counted collision
    harness.reset()
    assert _ingress_two(harness, tcp_ipv6(timestamps=(100, 7)),
                        tcp_ipv6(timestamps=(100, 7))) == ("cached", "collision")


@pytest.mark.parametrize("first,second,shared", [
    pytest.param(dict(tc=0), dict(tc=0xFC), True, id="traffic-class"),
    pytest.param(dict(hlim=64), dict(hlim=63), True, id="hop-limit"),
    pytest.param(dict(fl=1), dict(fl=2), False, id="flow-label"),
    pytest.param(dict(flags="A"), dict(flags="FA"), False, id="fin"),
    pytest.param(dict(flags="A"), dict(flags="A", payload=b""), True, id="payload"),
    pytest.param(dict(timestamps=None), dict(timestamps=(0, 0)), False, id="ts-zero-vs-none"),
])
def test_what_the_ipv6_key_tells_apart(build, first, second, shared):
    harness = build()
    outcomes = _ingress_two(harness, tcp_ipv6(**first), tcp_ipv6(**second))
    assert outcomes == ("cached", "collision" if shared else "cached")


def test_ipv4_and_ipv6_with_the_same_numbers_differ(any_build):
    """An IPv6 packet with IPv4-mapped addresses whose flow label equals an IPv4
    packet's IP id: the version nibble of the label keeps them apart."""
    harness = any_build()
    v4 = tcp_ipv4("10.1.0.1", "10.2.0.1", ip_id=0x1234)
    v6 = tcp_ipv6(mapped("10.1.0.1"), mapped("10.2.0.1"), fl=0x1234)
    assert _ingress_two(harness, v4, v6) == ("cached", "cached")


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_identical_plain_ipv6_acks_share_a_counted_marker(build, strict):
    """Duplicate ACKs of the return direction, over IPv6: one marker counts them."""
    harness = build(strict)
    ack = ether(ETH_P_IPV6) + tcp_ipv6(flags="A", payload=b"", timestamps=(9, 8))
    for _ in range(3):
        assert harness.check_ingress(ack).expect.outcome == "plain"
    (marker,) = harness.proxy.cache().values()
    assert marker[1] == 3
    for _ in range(3):
        out = harness.check_egress(ack)
        assert out.expect.outcome == "plain" and out.result.packet == ack
    assert harness.check_egress(ack).expect.outcome == "not_cached"


# ---------------------------------------------------------------------------
# any option bytes: kernel and Python reference agree
# ---------------------------------------------------------------------------
def test_any_tcp_options_kernel_matches_reference(build):
    """hypothesis: raw option bytes of every kind, position and malformation, in IPv6
    (and with family=any IPv4) packets: ingress stores the reference's key and egress
    derives it again (the harness compares the stored key byte for byte)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from sfcframe.testkit.packets import tcp_options_strategy

    harness = build()

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(options=tcp_options_strategy(), v4=st.booleans(),
           seq=st.integers(0, 2**32 - 1), fl=st.integers(0, 0xFFFFF))
    def run(options, v4, seq, fl):
        harness.reset()
        if v4 and ETH_P_IP in harness.inner_ethertypes:
            inner = tcp_ipv4(seq=seq, options=options)
        else:
            inner = tcp_ipv6(seq=seq, fl=fl, options=options)
        stored_key(harness, inner)

    run()
