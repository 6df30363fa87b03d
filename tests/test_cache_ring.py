"""cache=ring: the metadata key's cache as an array indexed by the packet's id.

The id sequence is shared by every CPU, so slot = id % cache_size is reused exactly
cache_size packets later (FIFO eviction); a slot is claimed, filled and published with
atomics, and taken (copied, then released by cmpxchg of its tag) at egress.
"""

from __future__ import annotations

import json
import struct

import pytest
from fixtures.netns import sfc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfcframe.cachemap import RING_VALID
from sfcframe.encaps.mpls.scapy_layers import label_stack
from sfcframe.errors import ParamError
from sfcframe.keys.metadata import MetadataKey
from sfcframe.spec import resolve_spec
from sfcframe.testkit.packets import frame, tcp_ipv4

KEY = MetadataKey()
MARK = {"carrier": "mark"}


def test_cache_kind_resolution():
    assert resolve_spec("mpls", "metadata").cache_kind == "ring"
    assert resolve_spec("mpls", "metadata", {"cache": "lru"}).cache_kind == "lru"
    assert resolve_spec("mpls", "metadata", {"cache": "assoc"}).cache_kind == "assoc"
    # assoc does not beat the LRU map on every figure of BENCHMARKS.md: auto stays lru
    assert resolve_spec("mpls", "tcpip").cache_kind == "lru"
    assert resolve_spec("nsh", "tcpip", {"cache": "auto"}).cache_kind == "lru"
    assert resolve_spec("nsh", "tcpip", {"cache": "assoc"}).cache_kind == "assoc"
    assert resolve_spec("nsh", "tcpip", {"cache": "lru"}).cache_kind == "lru"
    with pytest.raises(ParamError, match="cache=ring needs a key"):
        resolve_spec("mpls", "tcpip", {"cache": "ring"})
    with pytest.raises(ParamError, match="cache does not apply to mode=static"):
        resolve_spec("mpls", "tcpip", {"mode": "static", "cache": "lru"})
    # the description names the ring and the assoc table; an LRU build's is as before
    assert " cache=ring " in resolve_spec("mpls", "metadata").describe()
    assert " cache=assoc " in resolve_spec("mpls", "tcpip", {"cache": "assoc"}).describe()
    assert "cache=" not in resolve_spec("mpls", "tcpip").describe()


def _encapsulated(seq: int, stack: list[int]) -> bytes:
    return frame(0x8847, label_stack([(label, 0, 64 - i) for i, label in enumerate(stack)]),
                 tcp_ipv4(seq=seq))


@pytest.fixture
def small_ring(proxy_factory):
    return proxy_factory("mpls", "metadata", **MARK, cache_size=8)


def _reset(proxy) -> None:
    proxy.clear()


def _ingress_ids(proxy, count: int) -> list[tuple[int, bytes]]:
    """(mark egress will see, stripped frame) for count fresh encapsulated packets."""
    out = []
    for seq in range(count):
        run = proxy.ingress(_encapsulated(seq, [1000 + seq, 2000, 3000]))
        assert run.retval == 2  # XDP_PASS
        out.append((KEY.carry_to_egress(run.meta, proxy.spec.key_params), run.packet))
    return out


@pytest.mark.kernel
def test_ring_slots_follow_the_id_and_evict_fifo(small_ring):
    proxy = small_ring
    _reset(proxy)
    carried = _ingress_ids(proxy, 11)  # 11 packets into 8 slots: the first 3 evicted
    ids = [mark & 0x3FFFFFFF for mark, _ in carried]
    assert ids == list(range(ids[0], ids[0] + 11))
    cache = proxy.cache()
    assert sorted(struct.unpack("=Q", k)[0] for k in cache) == ids[3:]
    assert proxy.counters()["ingress"]["cached"] == 11
    outcomes = []
    for mark, stripped in carried:
        run = proxy.egress(stripped, mark=mark)
        assert run.retval == 0  # TC_ACT_OK (strict off)
        outcomes.append("restored" if run.packet != stripped else "miss")
    assert outcomes == ["miss"] * 3 + ["restored"] * 8
    eg = proxy.counters()["egress"]
    assert eg["restored"] == 8 and eg["not_cached"] == 3
    assert proxy.cache() == {}  # every live entry taken exactly once


@pytest.mark.kernel
def test_ring_entry_restores_once(small_ring):
    proxy = small_ring
    _reset(proxy)
    (mark, stripped), = _ingress_ids(proxy, 1)
    first = proxy.egress(stripped, mark=mark)
    second = proxy.egress(stripped, mark=mark)  # the same id again: already taken
    assert first.packet != stripped and second.packet == stripped
    assert proxy.counters()["egress"]["restored"] == 1
    assert proxy.counters()["egress"]["not_cached"] == 1


@pytest.mark.kernel
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(size=st.sampled_from([1, 2, 3, 7, 8, 13]), sent=st.integers(1, 60))
def test_ring_keeps_exactly_the_last_cache_size_packets(proxy_factory, size, sent):
    """Whatever the ring size and the number of packets: the last min(size, sent) ids
    are in the cache, each slot holding its own id, and they restore."""
    proxy = proxy_factory("mpls", "metadata", **MARK, cache_size=size)
    _reset(proxy)
    carried = _ingress_ids(proxy, sent)
    ids = [mark & 0x3FFFFFFF for mark, _ in carried]
    live = {struct.unpack("=Q", k)[0] for k in proxy.cache()}
    assert live == set(ids[-min(size, sent):])
    restored = sum(proxy.egress(stripped, mark=mark).packet != stripped
                   for mark, stripped in carried)
    assert restored == min(size, sent)


@pytest.mark.kernel
def test_build_check_reports_the_ring(kernel_ready):
    proc = sfc("build", "--encap", "mpls", "--key", "metadata", "--check", "--json")
    assert proc.returncode == 0, proc.stderr
    cache = json.loads(proc.stdout)["check"]["cache"]
    assert cache["kind"] == "ring" and cache["max_entries"] == 10000
    # 8-byte tag + 40-byte value (10 labels, pop=1): no element header, no buckets
    assert cache["value_size"] == 48 and 48 <= cache["bytes_per_entry"] < 49
    text = sfc("build", "--encap", "mpls", "--key", "metadata", "--check")
    assert "cache=ring slot: 8 B tag + 40 B value" in text.stdout


def test_ring_tag_bits_match_the_template():
    from sfcframe.composer import render

    header = render(resolve_spec("mpls", "metadata")).files["sfc_proxy.h"]
    assert "#define SFC_RING_VALID\t\t(1ULL << 63)" in header
    assert RING_VALID == 1 << 63
