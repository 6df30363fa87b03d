"""The metadata key: a per-packet id carried in XDP data_meta or skb->mark.

Pure-Python tests cover the oracle helpers and rendering; kernel tests run the
generated programs through BPF_PROG_TEST_RUN. A TC test run cannot receive
data_meta, so the egress positive path is exercised with carrier=mark (the id
handed over in skb->mark by :meth:`MetadataKey.carry_to_egress`); with
carrier=data_meta only the ingress metadata and the egress miss are reachable.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
import scapy.contrib.mpls  # noqa: F401 - binds 0x8847 for dissection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from sfcframe.composer import render
from sfcframe.errors import ParamError
from sfcframe.keys.metadata import (
    CARRIER_COUNTERS,
    CARRIER_OUTCOMES,
    MARK_ID,
    MARK_OURS,
    MARK_PLAIN,
    META_FLAG_PLAIN,
    META_FORMAT,
    META_GUARD,
    META_LEN,
    META_MAGIC,
    META_SIZE,
    MetadataKey,
)
from sfcframe.spec import resolve_spec

XDP_DROP, XDP_PASS = 1, 2
TC_ACT_OK, TC_ACT_SHOT = 0, 2
ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_UC = 0x0800, 0x86DD, 0x8847
MACS = {"dst": "02:00:00:00:00:02", "src": "02:00:00:00:00:01"}

KEY = MetadataKey()
MARK = {"carrier": "mark"}
DATA_META = {"carrier": "data_meta"}
XDP_CORE = {"ingress": "xdp"}

kernel = pytest.mark.kernel


# ---- frames -------------------------------------------------------------


def labels(*entries: int, ttl: int = 64) -> bytes:
    return b"".join(
        bytes(MPLS(label=label, cos=0, ttl=ttl - i, s=int(i == len(entries) - 1)))
        for i, label in enumerate(entries)
    )


def tcp4(src="10.0.0.1", dst="10.0.1.1", sport=40000, dport=80, payload=b"hello") -> bytes:
    return bytes(IP(src=src, dst=dst, id=7) / TCP(sport=sport, dport=dport, seq=1000) / payload)


def encapsulated(stack: bytes, inner: bytes) -> bytes:
    return bytes(Ether(type=ETH_P_MPLS_UC, **MACS)) + stack + inner


def plain(inner: bytes, ethertype: int = ETH_P_IP) -> bytes:
    return bytes(Ether(type=ethertype, **MACS)) + inner


def restored(proxy, stack: bytes, inner: bytes, ethertype: int = ETH_P_IP) -> bytes:
    """The frame egress must send: the cached labels (per the encap oracle) + inner."""
    parse = proxy.spec.encap.plugin.reference_ingress(stack + inner, proxy.spec.encap_params)
    assert parse.outcome == "ok"
    if not parse.cached:  # every label popped: nothing to push back
        return plain(inner, ethertype)
    return encapsulated(parse.cached, inner)


def carrier_counts(proxy) -> dict[str, int]:
    table = proxy.module.table(CARRIER_COUNTERS)
    return {name: int(sum(table[table.Key(i)])) for i, name in enumerate(CARRIER_OUTCOMES)}


def zero_carrier_counts(proxy) -> None:
    table = proxy.module.table(CARRIER_COUNTERS)
    for i in range(len(table)):
        table[table.Key(i)] = table.Leaf(*([0] * len(table[table.Key(i)])))


def cache_ids(proxy) -> set[int]:
    return {struct.unpack("=Q", k)[0] for k in proxy.cache()}


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {name: n for name, n in counts.items() if n}


# ---- NAT: rewrite source address and port, checksums updated incrementally --


def _csum_update(csum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), 16-bit words."""
    total = ~csum & 0xFFFF
    for i in range(0, len(old), 2):
        total += ~int.from_bytes(old[i : i + 2], "big") & 0xFFFF
        total += int.from_bytes(new[i : i + 2], "big")
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def snat(frame: bytes, new_src: str, new_sport: int) -> bytes:
    """Source NAT of an Ethernet/IPv4/TCP frame as a kernel NAT does it:
    rewrite address and port, update the IP and TCP checksums incrementally."""
    out = bytearray(frame)
    ip = 14
    ihl = (out[ip] & 0x0F) * 4
    tcp = ip + ihl
    old_addr, new_addr = bytes(out[ip + 12 : ip + 16]), ipaddress.IPv4Address(new_src).packed
    old_port, new_port = bytes(out[tcp : tcp + 2]), new_sport.to_bytes(2, "big")
    ip_csum = int.from_bytes(out[ip + 10 : ip + 12], "big")
    tcp_csum = int.from_bytes(out[tcp + 16 : tcp + 18], "big")
    out[ip + 10 : ip + 12] = _csum_update(ip_csum, old_addr, new_addr).to_bytes(2, "big")
    # the TCP checksum covers the pseudo-header's address and the port
    tcp_csum = _csum_update(tcp_csum, old_addr + old_port, new_addr + new_port)
    out[tcp + 16 : tcp + 18] = tcp_csum.to_bytes(2, "big")
    out[ip + 12 : ip + 16] = new_addr
    out[tcp : tcp + 2] = new_port
    return bytes(out)


def test_snat_helper_matches_scapy():
    frame = plain(tcp4(payload=b"odd-length!"))
    nat = snat(frame, "192.0.2.77", 61000)
    expect = Ether(frame)
    expect[IP].src = "192.0.2.77"
    expect[TCP].sport = 61000
    del expect[IP].chksum
    del expect[TCP].chksum
    assert nat == bytes(expect)


# ---- oracle and rendering (no kernel) -------------------------------------


def test_reference_key_is_opaque_for_ip_and_ipv6_only():
    assert KEY.reference_key(tcp4(), ETH_P_IP, MARK) == ("ok", None)
    assert KEY.reference_key(b"", ETH_P_IP, MARK) == ("ok", None)  # the packet is not parsed
    assert KEY.reference_key(bytes(IPv6() / UDP()), ETH_P_IPV6, MARK) == ("ok", None)
    assert KEY.reference_key(bytes(ARP()), 0x0806, MARK) == ("no_key", None)
    assert KEY.reference_egress_key(bytes(ARP()), 0x0806, MARK) == ("ignored", None)
    assert KEY.plain_in_carrier and KEY.survives_nat


def meta_bytes(flags: int, ident: int, magic: int = META_MAGIC) -> bytes:
    return struct.pack(META_FORMAT, magic, flags, ident) + bytes(META_GUARD)


def test_decode_meta():
    meta = meta_bytes(META_FLAG_PLAIN, 0x0123_4567_89AB)
    assert (META_SIZE, META_LEN) == (16, 20)
    assert MetadataKey.decode_meta(meta) == (META_FLAG_PLAIN, 0x0123_4567_89AB)
    assert KEY.decode_meta(meta + b"\xff" * 8) == (META_FLAG_PLAIN, 0x0123_4567_89AB)
    # the guard's content does not matter (a forwarding kernel overwrites part of it)
    assert KEY.decode_meta(meta[:-2] + b"\xee\xee") == (META_FLAG_PLAIN, 0x0123_4567_89AB)
    assert KEY.decode_meta(meta[:META_SIZE]) is None  # no guard: not what ingress writes
    assert KEY.decode_meta(b"") is None
    assert KEY.decode_meta(meta_bytes(0, 5, magic=META_MAGIC ^ 1)) is None


def test_carry_to_egress():
    cached = meta_bytes(0, (5 << 24) | 77)
    flagged = meta_bytes(META_FLAG_PLAIN, 3)
    assert KEY.carry_to_egress(cached, MARK) == MARK_OURS | (5 << 24) | 77
    assert KEY.carry_to_egress(flagged, MARK) == MARK_OURS | MARK_PLAIN | 3
    assert KEY.carry_to_egress(b"", MARK) == 0
    assert KEY.carry_to_egress(cached, DATA_META) == 0
    assert KEY.test_run_round_trip(MARK) and not KEY.test_run_round_trip(DATA_META)
    assert KEY.id_mask(MARK) == MARK_ID and KEY.id_mask(DATA_META) == (1 << 48) - 1


def test_carrier_parameter():
    assert resolve_spec("mpls", "metadata").key_params == DATA_META
    with pytest.raises(ParamError, match="carrier"):
        resolve_spec("mpls", "metadata", {"carrier": "cb"})
    assert KEY.extra_programs(DATA_META, XDP_CORE) == []
    (prog,) = KEY.extra_programs(MARK, XDP_CORE)
    assert (prog.function, prog.prog_type, prog.hook) == ("sfc_carrier", "sched_cls", "tc-ingress")
    assert KEY.extra_counters(MARK, XDP_CORE) == {CARRIER_COUNTERS: CARRIER_OUTCOMES}
    # a TC ingress program writes skb->mark itself: no carrier program
    assert KEY.extra_programs(MARK, {"ingress": "tc"}) == []


@pytest.mark.parametrize("carrier", ["data_meta", "mark"])
def test_render_is_deterministic_and_carrier_specific(carrier):
    spec = resolve_spec("mpls", "metadata", {"carrier": carrier})
    first, second = render(spec).files, render(spec).files
    assert first == second
    text = first["sfc_proxy.c"]
    assert ("int sfc_carrier(struct __sk_buff *skb)" in text) == (carrier == "mark")
    assert ("sfc_carrier_counters" in text) == (carrier == "mark")
    assert ("skb->data_meta" in first["sfc_egress.c"]) == (carrier == "data_meta")
    assert [p.function for p in spec.programs][2:] == (["sfc_carrier"] if carrier == "mark" else [])


# ---- kernel ------------------------------------------------------------------


@pytest.fixture
def proxies(proxy_factory):
    """Builds shared for the session (conftest); every test resets what it uses."""
    return {
        "data_meta": proxy_factory("mpls", "metadata", **DATA_META),
        "mark": proxy_factory("mpls", "metadata", **MARK),
        "mark_pop0": proxy_factory("mpls", "metadata", carrier="mark", pop=0),
    }


def _reset(proxy) -> None:
    proxy.clear()
    proxy.set_strict(False)
    if proxy.spec.key_params["carrier"] == "mark":
        zero_carrier_counts(proxy)


@pytest.fixture
def dm(proxies):
    _reset(proxies["data_meta"])
    return proxies["data_meta"]


@pytest.fixture
def mk(proxies):
    _reset(proxies["mark"])
    return proxies["mark"]


@pytest.fixture(params=["data_meta", "mark"])
def any_carrier(request, proxies):
    proxy = proxies[request.param]
    _reset(proxy)
    return proxy


@kernel
def test_ids_unique_across_many_packets(any_carrier):
    proxy = any_carrier
    values = proxy.spec.key_params
    frame = encapsulated(labels(100, 200, 300), tcp4())  # the very same packet each time
    ids = []
    for _ in range(1000):
        run = proxy.ingress(frame)
        assert run.retval == XDP_PASS
        ids.append(KEY.decode_meta(run.meta)[1])
    assert len(set(ids)) == 1000
    assert cache_ids(proxy) == set(ids)
    assert nonzero(proxy.counters()["ingress"]) == {"cached": 1000}
    # one sequence for every CPU: consecutive ids (what the ring cache indexes by)
    assert sorted(ids) == list(range(min(ids), min(ids) + 1000))
    assert max(ids) <= KEY.id_mask(values)
    if values["carrier"] == "mark":
        assert max(ids) <= MARK_ID


@kernel
def test_ingress_meta_layout(any_carrier):
    proxy = any_carrier
    stack, inner = labels(100, 200, 300), tcp4()
    run = proxy.ingress(encapsulated(stack, inner))
    assert run.retval == XDP_PASS
    assert run.packet == plain(inner)  # stripped, retagged IPv4
    assert len(run.meta) == META_LEN  # nothing but ours in front of the packet
    magic, flags, ident = struct.unpack_from(META_FORMAT, run.meta)
    assert (magic, flags) == (META_MAGIC, 0)
    assert run.meta[META_SIZE:] == bytes(META_GUARD)  # zeroed guard next to the packet
    # forwarding overwrites the 2 bytes in front of the MAC header (neigh_hh_output)
    assert KEY.decode_meta(run.meta[:-2] + b"\xa5\xa5") == (0, ident)
    (key, value), = proxy.cache().items()
    assert key == struct.pack("=Q", ident)
    # struct sfc_value: flags, len, outer_proto (network order), hdr[]
    assert value[0] == 0 and value[1] == 8
    assert value[2:4] == ETH_P_MPLS_UC.to_bytes(2, "big")
    assert value[4:12] == stack[4:]  # pop=1: the top label is not cached


@kernel
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    new_src=st.ip_addresses(v=4).map(str),
    new_sport=st.integers(1, 65535),
    payload=st.binary(max_size=64),
)
def test_mark_round_trip_through_nat(proxies, data, new_src, new_sport, payload):
    """ingress -> NAT of the stripped packet -> carrier -> egress: the label
    stack comes back exactly (pop=0) in front of the rewritten packet."""
    proxy = proxies["mark_pop0"]
    _reset(proxy)
    values = proxy.spec.key_params
    stack = data.draw(proxy.spec.encap.plugin.header_strategy(proxy.spec.encap_params))
    inner = tcp4(payload=payload)

    run = proxy.ingress(encapsulated(stack, inner))
    assert run.retval == XDP_PASS
    assert run.packet == plain(inner)
    vnf_out = snat(run.packet, new_src, new_sport)
    parsed = Ether(vnf_out)
    assert (parsed[IP].src, parsed[TCP].sport) == (new_src, new_sport)

    mark = KEY.carry_to_egress(run.meta, values)
    assert mark & MARK_OURS and not mark & MARK_PLAIN
    out = proxy.egress(vnf_out, mark=mark)
    assert out.retval == TC_ACT_OK
    assert out.packet == encapsulated(stack, vnf_out[14:])
    assert out.mark == 0  # the carrier is consumed
    assert proxy.cache() == {}
    counts = proxy.counters()
    assert nonzero(counts["ingress"]) == {"cached": 1}
    assert nonzero(counts["egress"]) == {"restored": 1}


@kernel
def test_nat_round_trip_with_pop(mk):
    stack, inner = labels(16, 17, 18), tcp4()
    run = mk.ingress(encapsulated(stack, inner))
    vnf_out = snat(run.packet, "198.51.100.9", 1025)
    out = mk.egress(vnf_out, mark=KEY.carry_to_egress(run.meta, mk.spec.key_params))
    assert out.retval == TC_ACT_OK
    assert out.packet == encapsulated(stack[4:], vnf_out[14:])
    dissected = Ether(out.packet)
    assert [layer.label for layer in (dissected[MPLS], dissected[MPLS].payload)] == [17, 18]
    assert dissected[IP].src == "198.51.100.9" and dissected[TCP].sport == 1025


INNER = {
    "udp": (ETH_P_IP, IP(src="10.0.0.1", dst="10.0.1.1") / UDP(sport=5000, dport=53) / b"q"),
    "icmp": (ETH_P_IP, IP(src="10.0.0.1", dst="10.0.1.1") / ICMP(id=3, seq=9) / b"ping"),
    "fragment": (ETH_P_IP, IP(src="10.0.0.1", dst="10.0.1.1", proto=17, frag=100) / (b"x" * 40)),
    "ipv6-udp": (ETH_P_IPV6, IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(dport=4789) / b"v6"),
    "ipv6-icmp": (ETH_P_IPV6, IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest()),
}


@kernel
@pytest.mark.parametrize("name", sorted(INNER))
def test_any_inner_packet_cached_and_restored(mk, name):
    ethertype, packet = INNER[name]
    stack, inner = labels(1000, 2000), bytes(packet)
    run = mk.ingress(encapsulated(stack, inner))
    assert run.retval == XDP_PASS
    assert run.packet == plain(inner, ethertype)
    out = mk.egress(run.packet, mark=KEY.carry_to_egress(run.meta, mk.spec.key_params))
    assert out.retval == TC_ACT_OK
    assert out.packet == restored(mk, stack, inner, ethertype)
    assert nonzero(mk.counters()["ingress"]) == {"cached": 1}
    assert nonzero(mk.counters()["egress"]) == {"restored": 1}


@kernel
@pytest.mark.parametrize("name", sorted(INNER))
def test_any_inner_packet_cached_with_data_meta(dm, name):
    ethertype, packet = INNER[name]
    run = dm.ingress(encapsulated(labels(1000, 2000), bytes(packet)))
    assert run.retval == XDP_PASS
    assert run.packet == plain(bytes(packet), ethertype)
    flags, ident = KEY.decode_meta(run.meta)
    assert flags == 0 and cache_ids(dm) == {ident}


@kernel
def test_single_label_popped_sends_plain(mk):
    stack, inner = labels(42), tcp4()
    run = mk.ingress(encapsulated(stack, inner))
    out = mk.egress(run.packet, mark=KEY.carry_to_egress(run.meta, mk.spec.key_params))
    assert out.retval == TC_ACT_OK
    assert out.packet == plain(inner)
    assert nonzero(mk.counters()["egress"]) == {"restored": 1}


@kernel
def test_plain_packet_flagged_in_carrier(any_carrier):
    proxy = any_carrier
    proxy.set_strict(True)
    frame = plain(tcp4())
    run = proxy.ingress(frame)
    assert run.retval == XDP_PASS
    assert run.packet == frame
    flags, _ = KEY.decode_meta(run.meta)
    assert flags == META_FLAG_PLAIN
    assert proxy.cache() == {}  # plain packets live in the carrier, not the map
    assert nonzero(proxy.counters()["ingress"]) == {"plain": 1}
    if proxy.spec.key_params["carrier"] == "mark":
        mark = KEY.carry_to_egress(run.meta, proxy.spec.key_params)
        assert mark & MARK_OURS and mark & MARK_PLAIN
        out = proxy.egress(frame, mark=mark)
        assert out.retval == TC_ACT_OK  # passes even in strict mode
        assert out.packet == frame
        assert out.mark == 0
        assert nonzero(proxy.counters()["egress"]) == {"plain": 1}


@kernel
def test_plain_non_ip_gets_no_meta(any_carrier):
    frame = bytes(Ether(**MACS) / ARP(psrc="10.0.0.1", pdst="10.0.0.2"))
    run = any_carrier.ingress(frame)
    assert (run.retval, run.packet, run.meta) == (XDP_PASS, frame, b"")
    assert nonzero(any_carrier.counters()["ingress"]) == {"ignored": 1}


@kernel
@pytest.mark.parametrize("strict", [False, True])
def test_no_carrier_at_egress_is_ignored_even_when_strict(any_carrier, strict):
    """The host's own packets (IPv6 neighbour discovery, local traffic) carry no id:
    they are not ours, so strict mode must not drop them."""
    proxy = any_carrier
    proxy.set_strict(strict)
    frame = plain(tcp4())
    out = proxy.egress(frame)  # no data_meta (test_run cannot carry it), mark 0
    assert (out.retval, out.packet) == (TC_ACT_OK, frame)
    assert nonzero(proxy.counters()["egress"]) == {"ignored": 1}


@kernel
def test_foreign_mark_is_not_ours(mk):
    frame = plain(tcp4())
    out = mk.egress(frame, mark=0x1234)
    assert (out.retval, out.packet, out.mark) == (TC_ACT_OK, frame, 0x1234)  # left alone
    assert nonzero(mk.counters()["egress"]) == {"ignored": 1}


@kernel
def test_id_restores_once(mk):
    stack, inner = labels(7, 8, 9), tcp4()
    run = mk.ingress(encapsulated(stack, inner))
    mark = KEY.carry_to_egress(run.meta, mk.spec.key_params)
    assert mk.egress(run.packet, mark=mark).packet == restored(mk, stack, inner)
    again = mk.egress(run.packet, mark=mark)  # a duplicate of the VNF's output
    assert (again.retval, again.packet) == (TC_ACT_OK, run.packet)
    assert nonzero(mk.counters()["egress"]) == {"restored": 1, "not_cached": 1}


@kernel
def test_packets_interleaved_get_their_own_stack(mk):
    """Per-packet, not per-flow: same flow, different stacks, restored crosswise."""
    inner = tcp4()
    stacks = [labels(100 + i, 200 + i, 300 + i) for i in range(5)]
    runs = [mk.ingress(encapsulated(s, inner)) for s in stacks]
    for stack, run in reversed(list(zip(stacks, runs))):
        out = mk.egress(run.packet, mark=KEY.carry_to_egress(run.meta, mk.spec.key_params))
        assert out.packet == restored(mk, stack, inner)
    assert mk.cache() == {}


@kernel
@pytest.mark.parametrize("strict", [False, True])
def test_non_ip_egress_always_passes(any_carrier, strict):
    any_carrier.set_strict(strict)
    frame = bytes(Ether(**MACS) / ARP(psrc="10.0.0.1", pdst="10.0.0.2"))
    out = any_carrier.egress(frame, mark=MARK_OURS | 5)
    assert (out.retval, out.packet) == (TC_ACT_OK, frame)
    assert nonzero(any_carrier.counters()["egress"]) == {"ignored": 1}


@kernel
@pytest.mark.parametrize("mark", [0, 0x1234])
def test_carrier_program_counts_absent(mk, mark):
    frame = plain(tcp4())
    out = mk.run_program("sfc_carrier", frame, mark=mark)
    assert (out.retval, out.packet, out.mark) == (TC_ACT_OK, frame, mark)
    assert carrier_counts(mk) == {"copied": 0, "absent": 1}
    out = mk.run_program("sfc_carrier", bytes(Ether(**MACS) / ARP()))
    assert out.retval == TC_ACT_OK
    assert carrier_counts(mk) == {"copied": 0, "absent": 2}
