"""cache=assoc: the two-choice set-associative table (selectable for any key; tcpip's
default stays the LRU map until assoc wins on every figure of BENCHMARKS.md).

A key hashes to two buckets of 16 slots and a 15-bit fingerprint; an insert takes
the emptier bucket, frees stale entries (older than cache_horizon_ms) on contact,
moves an entry to its other bucket when both are full, and only then evicts the
oldest. The generic properties (round trip, edge cases, plain markers, collisions)
run for this cache and for lru through the conformance kit (tests/test_conformance.py
builds each tcpip parameter set with every cache kind CORE_PARAMS declares); here:
placement against the Python twin of the hash, ageing and eviction order, moves under
load, and two CPUs racing.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfcframe import cachemap
from sfcframe.encaps.mpls.scapy_layers import label_stack
from sfcframe.errors import ParamError
from sfcframe.spec import resolve_spec
from sfcframe.testkit.packets import ETH_P_IP, ether, frame, tcp_ipv4
from sfcframe.testrun import TC_ACT_OK, XDP_PASS

GEN_S = (1 << cachemap.GEN_SHIFT) / 1e9  # one generation, in seconds


def _encapsulated(seq: int, top: int = 1000) -> bytes:
    """An MPLS frame whose inner TCP packet has sequence number seq (a key of its own)
    and whose bottom label carries seq too (a header of its own)."""
    stack = [(top, 0, 64), (2000, 0, 63), (0x10000 + (seq & 0xFFFF), 0, 62)]
    return frame(0x8847, label_stack(stack), tcp_ipv4(seq=seq))


def _events(proxy) -> dict[str, int]:
    return proxy.cache_events()


def _view(proxy):
    return proxy._cache


def _seqs_in(proxy) -> set[int]:
    """Sequence numbers of the keys in the cache (tcpip IPv4 key: seq at bytes 12..16)."""
    return {int.from_bytes(k[12:16], "big") for k in proxy.cache()}


# ---- parameters --------------------------------------------------------------------


def test_assoc_parameters():
    spec = resolve_spec("mpls", "tcpip", {"cache": "assoc", "cache_horizon_ms": 250})
    assert spec.cache_kind == "assoc" and spec.core["cache_horizon_ms"] == 250
    assert spec.cache_horizon == cachemap.horizon_generations(250) == 60
    assert " cache_horizon_ms=250 " in spec.describe() + " "
    assert "cache_horizon_ms" not in resolve_spec("mpls", "tcpip", {"cache": "assoc"}).describe()
    # the horizon belongs to the assoc table
    assert "cache_horizon_ms" not in resolve_spec("mpls", "tcpip", {"cache": "lru"}).core
    with pytest.raises(ParamError, match="cache_horizon_ms applies to cache=assoc only"):
        resolve_spec("mpls", "tcpip", {"cache": "lru", "cache_horizon_ms": 10})
    with pytest.raises(ParamError, match="cache_horizon_ms does not apply to mode=static"):
        resolve_spec("mpls", "tcpip", {"mode": "static", "cache_horizon_ms": 10})
    with pytest.raises(ParamError):
        resolve_spec("mpls", "tcpip", {"cache": "assoc", "cache_horizon_ms": 120_001})
    # 120 s is the longest a 16-bit generation can tell apart
    assert cachemap.horizon_generations(120_000) <= cachemap.HORIZON_MAX
    # any key works by value: the metadata key may use it too
    assert resolve_spec("mpls", "metadata", {"cache": "assoc"}).cache_kind == "assoc"


def test_python_twin_of_the_bucket_choice():
    """The reflection maps each of a key's buckets to the other, for any table size."""
    for buckets in (1, 2, 3, 625, 6250, 1 << 20):
        for n in range(200):
            key = n.to_bytes(4, "little") * 6
            a, b, fp = cachemap.assoc_place(key, buckets)
            assert 0 <= a < buckets and 0 <= b < buckets and 1 <= fp <= cachemap.LANE_FP
            assert cachemap.assoc_alt(b, fp, buckets) == a
    assert cachemap.assoc_bucket_count(10000) == 625 and cachemap.assoc_bucket_count(16) == 1


# ---- kernel ------------------------------------------------------------------------


@pytest.mark.kernel
def test_entries_sit_where_the_python_twin_says(proxy_factory):
    proxy = proxy_factory("mpls", "tcpip", cache="assoc")
    proxy.clear()
    view = _view(proxy)
    start = cachemap.generation_now()
    for seq in range(200):
        assert proxy.ingress(_encapsulated(seq)).retval == XDP_PASS
    now = cachemap.generation_now()
    slots = view.assoc_slots()
    assert len(slots) == 200 and view.count() == 200
    for bucket, _way, lane, gen, key, _value in slots:
        a, b, fp = cachemap.assoc_place(key, view.max_entries)
        assert bucket in (a, b) and lane == fp
        # inserted between start and now, by the same clock
        assert cachemap.lane_age(gen, now) <= cachemap.lane_age(start, now)
    occupancy = view.occupancy(horizon=proxy.spec.cache_horizon)
    assert (occupancy.live, occupancy.stale, occupancy.busy) == (200, 0, 0)
    view.clear()
    assert proxy.cache() == {}


@pytest.mark.kernel
def test_a_full_bucket_evicts_its_oldest_entry(proxy_factory):
    """cache_size=16: one bucket, a key's two buckets are the same one. The 17th entry
    finds no empty slot and nothing can move: the oldest entry goes (counted)."""
    proxy = proxy_factory("mpls", "tcpip", cache="assoc", cache_size=16)
    proxy.clear()
    assert proxy.ingress(_encapsulated(0)).retval == XDP_PASS
    time.sleep(3 * GEN_S)  # entry 0 is older by a few generations
    stripped = {}
    for seq in range(1, 17):
        stripped[seq] = proxy.ingress(_encapsulated(seq)).packet
    assert _seqs_in(proxy) == set(range(1, 17))
    assert _events(proxy) == {"evicted": 1, "reclaimed": 0, "moved": 0}
    assert proxy.counters()["ingress"]["cached"] == 17
    first = proxy.ingress(_encapsulated(0))  # evicted: a new entry, not a collision
    assert proxy.counters()["ingress"]["cached"] == 18 and first.retval == XDP_PASS
    # every surviving entry still restores exactly its own header
    restored = sum(proxy.egress(pkt).packet != pkt for pkt in stripped.values())
    assert restored == 15  # one of 1..16 gave way to the second entry 0


@pytest.mark.kernel
def test_stale_entries_are_reclaimed_on_contact(proxy_factory):
    """An entry older than cache_horizon_ms (its packet was dropped) is stale: shown as
    such, and freed by the next insert into its bucket, so it holds no capacity."""
    proxy = proxy_factory("mpls", "tcpip", cache="assoc", cache_size=16, cache_horizon_ms=10)
    proxy.clear()
    lost = proxy.ingress(_encapsulated(1)).packet  # its packet never comes back
    horizon = proxy.spec.cache_horizon
    time.sleep((horizon + 3) * GEN_S)
    occupancy = _view(proxy).occupancy(horizon=horizon)
    assert (occupancy.live, occupancy.stale) == (0, 1)
    proxy.ingress(_encapsulated(2))
    assert _events(proxy)["reclaimed"] == 1
    assert _seqs_in(proxy) == {2}
    out = proxy.egress(lost)
    assert out.packet == lost and proxy.counters()["egress"]["not_cached"] == 1


@pytest.mark.kernel
def test_a_take_finds_its_entry_behind_other_keys_with_its_fingerprint(proxy_factory):
    """Three keys with one fingerprint in one bucket (about once in 10 million takes at
    75 % fill): the third is found and restored, not lost behind the first two."""
    proxy = proxy_factory("mpls", "tcpip", cache="assoc", cache_size=16)  # one bucket
    proxy.clear()
    proxy.ingress(_encapsulated(0))
    (template,) = proxy.cache()  # the key of seq 0: seq sits at bytes 12..16
    proxy.clear()
    by_fp: dict[int, list[int]] = {}
    for seq in range(1, 1 << 16):  # seq also picks the bottom label: at most 0xFFFF
        key = template[:12] + seq.to_bytes(4, "big") + template[16:]
        same = by_fp.setdefault(cachemap.assoc_place(key, 1)[2], [])
        same.append(seq)
        if len(same) == 3:
            break
    assert len(same) == 3, "no three keys with one fingerprint among 65,535"
    stripped = [proxy.ingress(_encapsulated(seq)).packet for seq in same]  # slots 0, 1, 2
    assert _seqs_in(proxy) == set(same)
    for packet in reversed(stripped):  # the third first: behind two of its fingerprint
        assert proxy.egress(packet).packet != packet
    assert proxy.counters()["egress"]["restored"] == 3 and not proxy.cache()


def _set_generations(view, gens_of) -> None:
    """Rewrite the generation lanes of the one bucket of a 16-entry table: gens_of(way, gen)."""
    import struct

    index = struct.pack("=I", 0)
    raw = bytearray(view.table.lookup(index))
    at = 2 * cachemap.ASSOC_WAYS  # the generation lanes, behind the tag lanes
    gens = struct.unpack_from(f"<{cachemap.ASSOC_WAYS}H", raw, at)
    struct.pack_into(f"<{cachemap.ASSOC_WAYS}H", raw, at,
                     *(gens_of(way, gen) & cachemap.GEN_MASK for way, gen in enumerate(gens)))
    view.table.update(index, bytes(raw))


@pytest.mark.kernel
@pytest.mark.parametrize("ahead", [1, 2, cachemap.GEN_AHEAD])
def test_an_entry_from_a_later_generation_is_new_not_stale(proxy_factory, ahead):
    """An insert reads the clock once, at its start; another CPU may insert into the same
    bucket after the generation ticked. Its entry, a generation or more ahead of the
    insert's now, is new: neither reclaimed as stale (2^16 - 1 generations old) nor the
    first to evict (lost once in 10 million inserts of the evict bench at 75 % fill)."""
    proxy = proxy_factory("mpls", "tcpip", cache="assoc", cache_size=16)  # one bucket
    proxy.clear()
    view = _view(proxy)
    early = proxy.ingress(_encapsulated(1)).packet  # slot 0
    _set_generations(view, lambda way, gen: cachemap.generation_now() + ahead if way == 0 else gen)
    assert view.occupancy(horizon=proxy.spec.cache_horizon).stale == 0
    for seq in range(2, 17):  # fill the bucket: every insert looks at the entry
        proxy.ingress(_encapsulated(seq))
    assert _events(proxy)["reclaimed"] == 0
    # the others a few generations old, the first still ahead: one of the others leaves
    now = cachemap.generation_now()
    _set_generations(view, lambda way, gen: now + ahead if way == 0 else now - 5)
    proxy.ingress(_encapsulated(17))
    assert _events(proxy)["reclaimed"] == 0 and _events(proxy)["evicted"] == 1
    assert proxy.egress(early).packet != early  # restored
    assert proxy.counters()["egress"]["restored"] == 1


@pytest.mark.kernel
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(st.integers(0, 40), min_size=1, max_size=60))
def test_one_bucket_keeps_up_to_16_live_entries(harness_factory, ops):
    """Whatever the order of arrivals and departures, a table that never holds more than
    its 16 slots loses nothing: every step checked against the oracle (verdict, frame,
    counter, cache contents)."""
    harness = harness_factory("mpls", "tcpip", cache="assoc", cache_size=16)
    live: dict[int, bytes] = {}
    for seq in ops:
        if seq in live:  # its packet comes back from the VNF
            out = harness.check_egress(live.pop(seq))
            assert out.expect.outcome == "restored"
        elif len(live) < 16:
            checked = harness.check_ingress(_encapsulated(seq))
            assert checked.expect.outcome == "cached"
            live[seq] = checked.result.packet
    assert _events(harness.proxy)["evicted"] == 0


@pytest.mark.kernel
def test_identical_plain_packets_and_collisions_on_assoc(harness_factory):
    """The markers count identical plain packets; an encapsulated packet under a
    marker's key, or a plain one under an entry's, is a collision (as with lru)."""
    harness = harness_factory("mpls", "tcpip", cache="assoc", cache_size=16)
    ack = ether(ETH_P_IP) + tcp_ipv4(seq=77, flags="A", payload=b"")
    for _ in range(2):
        assert harness.check_ingress(ack).expect.outcome == "plain"
    enc = frame(0x8847, label_stack([(1000, 0, 64), (5, 0, 63)]), tcp_ipv4(seq=77, flags="A",
                                                                          payload=b""))
    assert harness.check_ingress(enc).expect.outcome == "collision"
    for _ in range(2):
        assert harness.check_egress(ack).result.retval == TC_ACT_OK
    assert harness.proxy.cache() == {}


# ---- churn: the build's own cache functions on two CPUs ----------------------------------


@pytest.fixture(scope="module")
def churn_builds(kernel_ready):
    from sfcframe.bench.evict import ChurnBuild

    builds: dict = {}

    def get(cache: str, size: int):
        if (cache, size) not in builds:
            builds[(cache, size)] = ChurnBuild(cache, size)
        return builds[(cache, size)]

    yield get
    for build in builds.values():
        build.close()


def _cpus() -> list[int]:
    import os

    return sorted(os.sched_getaffinity(0))[:2]


@pytest.mark.kernel
def test_moves_keep_every_live_entry_at_90_percent(churn_builds):
    """At 90 % fill both buckets of a key are often full: entries move to their other
    bucket (one cuckoo step) and none is lost."""
    from sfcframe.bench.evict import measure

    row = measure(churn_builds("assoc", 1024), 0.9, 400_000, _cpus(), chunk=50_000)
    assert row["wrong"] == 0 and row["lost"] == 0 and row["failed"] == 0
    assert row["events"]["moved"] > 0 and row["events"]["evicted"] == 0
    assert row["taken"] == row["takes"]


#: steps per CPU of a race run: a wrong header was seen once in 600,000 (LRU map, same
#: keys, before a take re-validated its copy); a run of this many takes about 3 s
STEPS = 2_000_000


@pytest.mark.kernel
@pytest.mark.parametrize("cache", ["assoc", pytest.param("lru", id="lru")])
@pytest.mark.parametrize("shared", [False, pytest.param(True, id="same-keys")],
                         ids=["own-keys", "same-keys"])
def test_two_cpus_racing_never_get_a_wrong_header(churn_builds, cache, shared):
    """Both CPUs insert and take at once in a 64-entry table filled to the brim, so slots
    are evicted, moved and reused under each other's claims all the time; with
    same-keys both CPUs insert every key at about the same moment. Whatever a take
    returns must be its own key's header: lost entries are allowed, wrong ones not."""
    from sfcframe.bench.evict import run_steps

    build = churn_builds(cache, 64)
    cpus = _cpus()
    build.configure(window=32, seed=7, shared=shared)
    # the two CPUs' runs must overlap for the race to happen: on a loaded machine one
    # may finish before the other starts, so a same-keys run goes again (at most 4
    # times) until the CPUs met on a key in flight
    for attempt in range(1, 5):
        run_steps(build.fd, cpus, STEPS, 100_000)
        state = {f: sum(v) for f, v in build.state().items()}
        assert state["step"] == STEPS * len(cpus) * attempt
        assert state["wrong"] == 0, state
        if not (shared and len(cpus) > 1) or state["exists"] > 0:
            break
    assert state["taken"] > 0
    if shared and len(cpus) > 1:
        assert state["exists"] > 0  # the same key in flight twice: refused, never doubled
