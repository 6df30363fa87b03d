"""``sfcframe size``: how big the cache must be, by Little's law with a margin.

in flight = packet rate x time a packet spends between ingress and egress (the
*sojourn*: the VNF's delay plus the time packets queue in front of it), or the
peak in-flight count observed on a running proxy (``--observe``); entries = in
flight x margin + the LRU's per-CPU slack (the kernel's LRU keeps up to
LOCAL_FREE_TARGET = 128 free nodes on each CPU's local list and evicts live
entries to refill one, so that many entries per CPU are not usable as cache),
rounded up to a power of two (the hash table's bucket array is a power of two
anyway, so the rest is free of bucket cost). Bytes are what the kernel charges for an LRU hash map of that
entry layout: measured by creating such maps when root (the layout comes from
compiling the spec with bcc), else computed from the rule the kernel follows
(about 48 B element header + key + value, each rounded up to 8, per entry, and
16 B per bucket).

cache=assoc (the tcpip key's default): no slack and no power of two; entries =
in flight x margin, but at least in flight / ASSOC_SAFE_FILL (the fill up to which
the two-choice table kept every live entry in the eviction benchmark), rounded up
to whole buckets of 16 slots. Bytes: an mmapable array of buckets (64 B of lanes +
16 slots of key + value), measured by creating one when root, else computed
(page-rounded).
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from sfcframe.runtime.errors import ConfigError

DEFAULT_MARGIN = 4.0
#: margin on an observed peak (already a peak, not a mean)
DEFAULT_OBSERVED_MARGIN = 2.0
#: kernel/bpf/bpf_lru_list.c LOCAL_FREE_TARGET: free nodes a CPU keeps on its local list
LRU_LOCAL_FREE = 128
#: largest cache_size the core accepts (spec.CORE_PARAMS)
MAX_CACHE = 1 << 24
#: maps up to this size are created at full size to measure; larger ones are extrapolated
MEASURE_LIMIT = 1 << 16
ELEMENT_HEADER = 48
BUCKET_BYTES = 16
#: struct sfc_key sizes of the built-in keys, for the computation without root
#: (tcpip: per family, its parameter)
KNOWN_KEY_SIZES = {"tcpip": {"ipv4": 24, "ipv6": 60, "any": 60}, "metadata": 8}

MARGIN_REASONS = (
    "Little's law gives the mean occupancy; the cache must hold the peaks, and an LRU "
    "hash map evicts before it is full: free nodes sit on per-CPU local lists, so an "
    "insert on one CPU can evict while other CPUs still hold free nodes; bursts and a "
    "varying VNF delay push occupancy well above the mean, and every evicted entry is a "
    "miss (the packet leaves without its encapsulation, or is dropped in strict mode). "
    "The paper's Table II (5 ms user-space VNF, about 2,300 packets in flight) measured "
    "0.04% misses with 2,500 entries (~1x), 0.01% with 5,000 (~2x), <0.01% with 10,000 "
    "(~4x) and none with 100,000 (~40x); stale entries of dropped packets also occupy "
    "the cache until evicted."
)

SOJOURN_NOTE = (
    "give the time from the proxy's ingress to its egress, not the VNF's nominal "
    "processing time: packets queue in front of a user-space VNF (measured here: 5-12x "
    "the nominal 5 ms behind a TUN program, see BENCHMARKS.md); if unsure, run the proxy "
    "with a generous cache and use `sfcframe size --observe NAME`, which samples the real "
    "in-flight count."
)

_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*(pps|p/s|/s)?\s*$")
_DELAY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(ns|us|µs|ms|s)\s*$")
_RATE_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
_DELAY_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_rate(text: str) -> float:
    """'2.5Mpps', '800kpps', '1e6pps', '1e6' -> packets per second."""
    match = _RATE.match(text or "")
    if not match:
        raise ConfigError(f"rate {text!r}: expected e.g. 2.5Mpps, 800kpps or 1e6pps")
    value = float(match.group(1)) * _RATE_UNITS[match.group(2).lower()]
    if value <= 0:
        raise ConfigError(f"rate {text!r}: must be above zero")
    return value


def parse_delay(text: str) -> float:
    """'5ms', '200us', '1s', '500ns' -> seconds."""
    match = _DELAY.match(text or "")
    if not match:
        raise ConfigError(f"delay {text!r}: expected a number with a unit, e.g. 5ms, 200us, 1s")
    value = float(match.group(1)) * _DELAY_UNITS[match.group(2)]
    if value <= 0:
        raise ConfigError(f"delay {text!r}: must be above zero")
    return value


def next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def lru_slack(cpus: int | None = None) -> int:
    """Entries an LRU hash map can evict before it is full: one local free list per CPU."""
    return LRU_LOCAL_FREE * (cpus or os.cpu_count() or 1)


@dataclass
class Sizing:
    rate_pps: float
    delay_s: float
    margin: float
    in_flight: float
    entries_needed: int
    cache_size: int
    describe: str
    key_size: int
    value_size: int
    bytes: int
    bytes_per_entry: float
    method: str  # "measured" | "extrapolated" | "computed"
    method_detail: str
    notes: list[str] = field(default_factory=list)
    basis: str = "rate x delay"  # or "observed peak"
    cache: str = "lru"           # the build's cache kind: assoc, lru or ring
    slack: int = 0               # LRU per-CPU slack added to in flight x margin
    observation: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["bytes_per_entry"] = round(self.bytes_per_entry, 1)
        doc["in_flight"] = round(self.in_flight, 3)
        return doc


def computed_bytes(entries: int, key_size: int, value_size: int) -> int:
    per = ELEMENT_HEADER + (key_size + 7) // 8 * 8 + (value_size + 7) // 8 * 8
    return per * entries + BUCKET_BYTES * next_pow2(entries)


#: cache=ring: the slot's tag holds the 64-bit id
RING_KEY_SIZE = 8
#: cache=assoc: the largest fill a recommendation plans for (BENCHMARKS.md, eviction
#: quality: no live entry lost in 10 million inserts at 75 % of cache_size)
ASSOC_SAFE_FILL = 0.75
PAGE = 4096


def assoc_bucket_bytes(key_size: int, value_size: int) -> int:
    """sizeof(struct sfc_assoc_bucket): 64 B of lanes + 16 slots of key + value (both
    4-aligned), the whole 8-aligned."""
    from sfcframe.cachemap import ASSOC_HEAD, ASSOC_WAYS

    slot = (key_size + 3) // 4 * 4 + (value_size + 3) // 4 * 4
    return (ASSOC_HEAD + ASSOC_WAYS * slot + 7) // 8 * 8


def assoc_bytes(entries: int, key_size: int, value_size: int) -> int:
    """The assoc table's array: whole buckets, its data page-aligned (mmapable), plus
    about a page for struct bpf_array."""
    from sfcframe.cachemap import assoc_bucket_count

    data = assoc_bucket_count(entries) * assoc_bucket_bytes(key_size, value_size)
    return (data + PAGE - 1) // PAGE * PAGE + PAGE


def measured_assoc_bytes(entries: int, key_size: int, value_size: int) -> int:
    """memlock of a real mmapable array of assoc buckets for ``entries`` slots."""
    from sfcframe.cachemap import MAP_F_MMAPABLE, assoc_bucket_count
    from sfcframe.maps import map_memory
    from sfcframe.runtime import bpfobj

    fd = bpfobj.create_map(bpfobj.BPF_MAP_TYPE_ARRAY, 4, assoc_bucket_bytes(key_size, value_size),
                           assoc_bucket_count(entries), flags=MAP_F_MMAPABLE)
    try:
        return map_memory(fd).memlock
    finally:
        os.close(fd)


def measured_bytes(entries: int, key_size: int, value_size: int) -> int:
    """memlock of a real LRU hash map with this layout and size."""
    from sfcframe.runtime import bpfobj
    from sfcframe.maps import map_memory

    fd = bpfobj.create_map(bpfobj.BPF_MAP_TYPE_LRU_HASH, key_size, value_size, entries)
    try:
        return map_memory(fd).memlock
    finally:
        os.close(fd)


def entry_layout(spec) -> tuple[int, int, str]:
    """(key size, value size, how known) of an entry of the build's cache
    (:class:`sfcframe.spec.ResolvedSpec`); value size is sizeof(struct sfc_value)
    whichever map holds it, with cache=lru the map's value (the entry and its
    insert's stamp)."""
    from sfcframe.composer import render

    kind = spec.cache_kind
    if os.geteuid() == 0:
        try:
            from sfcframe.cachemap import CacheView
            from sfcframe.loader import compile_and_load
            from sfcframe.maps import map_memory
            from sfcframe.runtime.pins import map_fd

            module = compile_and_load(render(spec))
            try:
                fd = map_fd(module, "sfc_cache")
                with CacheView.of_fd(fd, spec.value_size) as view:
                    value_size = view.value_size
                if kind == "lru":  # the map's value: the entry and its insert's stamp
                    value_size = map_memory(fd).value_size
                if kind == "ring":
                    key_size = RING_KEY_SIZE
                elif kind == "assoc":  # the map's key is a bucket index: the slot's key
                    from sfcframe.cachemap import table_key_size

                    key_size = table_key_size(module.table("sfc_cache"))
                else:
                    key_size = map_memory(fd).key_size
                return key_size, value_size, "compiled"
            finally:
                module.close()
        except Exception:  # noqa: BLE001 - fall back to the computation
            pass
    value_size = spec.value_size
    if kind == "lru":
        from sfcframe.cachemap import LRU_STAMP_BYTES

        value_size += LRU_STAMP_BYTES
    known = KNOWN_KEY_SIZES.get(spec.key.name)
    if isinstance(known, dict):
        known = known.get(spec.key_params.get("family"))
    if known is None:
        raise ConfigError(
            f"size: the key size of key {spec.key.name!r} is only known by compiling it; "
            "run as root"
        )
    return known, value_size, "known sizes"


def ring_bytes(entries: int, value_size: int) -> int:
    """An array of ring slots: an 8-byte tag + the value, rounded up to 8, per entry."""
    return (RING_KEY_SIZE + (value_size + 7) // 8 * 8) * entries


def measured_ring_bytes(entries: int, value_size: int) -> int:
    """memlock of a real array map of ring slots with this size."""
    from sfcframe.runtime import bpfobj
    from sfcframe.maps import map_memory

    slot = RING_KEY_SIZE + (value_size + 7) // 8 * 8  # the u64 tag aligns the slot to 8
    fd = bpfobj.create_map(bpfobj.BPF_MAP_TYPE_ARRAY, 4, slot, entries)
    try:
        return map_memory(fd).memlock
    finally:
        os.close(fd)


def size(rate: str, delay: str, encap: str = "mpls", key: str = "tcpip",
         params: Mapping[str, Any] | None = None, margin: float = DEFAULT_MARGIN,
         cpus: int | None = None) -> Sizing:
    """Recommendation from a packet rate and the sojourn time (Little's law)."""
    rate_pps, delay_s = parse_rate(rate), parse_delay(delay)
    return recommend(rate_pps * delay_s, encap, key, params, margin, cpus,
                     rate_pps=rate_pps, delay_s=delay_s, basis="rate x delay")


def size_observed(observation: Mapping[str, Any], encap: str, key: str,
                  params: Mapping[str, Any] | None = None,
                  margin: float = DEFAULT_OBSERVED_MARGIN, cpus: int | None = None) -> Sizing:
    """Recommendation from the peak in-flight count sampled on a running proxy."""
    peak = float(observation["peak_in_flight"])
    rate = float(observation.get("rate_pps") or 0.0)
    sojourn = peak / rate if rate > 0 else 0.0
    return recommend(peak, encap, key, params, margin, cpus, rate_pps=rate, delay_s=sojourn,
                     basis="observed peak", observation=dict(observation))


def recommend(in_flight: float, encap: str = "mpls", key: str = "tcpip",
              params: Mapping[str, Any] | None = None, margin: float = DEFAULT_MARGIN,
              cpus: int | None = None, *, rate_pps: float = 0.0, delay_s: float = 0.0,
              basis: str = "rate x delay", observation: dict[str, Any] | None = None) -> Sizing:
    if margin < 1:
        raise ConfigError(f"margin {margin}: must be at least 1")
    from sfcframe.spec import resolve_spec

    # the size is what this recommends: the build is resolved without the one given
    raw = {k: v for k, v in dict(params or {}).items()
           if k not in ("cache_size", "core.cache_size")}
    spec = resolve_spec(encap, key, raw)
    kind = spec.cache_kind
    key_size, value_size, how = entry_layout(spec)
    notes = []
    if kind == "ring":
        # FIFO: a slot is reused exactly cache_size packets later; no early eviction
        slack = 0
        needed = max(1, math.ceil(in_flight * margin - 1e-9))
        cache_size = needed
    elif kind == "assoc":
        # no per-CPU free lists; a bucket can fill before the table does: plan for at
        # most ASSOC_SAFE_FILL, in whole buckets
        from sfcframe.cachemap import ASSOC_WAYS

        slack = 0
        needed = max(1, math.ceil(max(in_flight * margin, in_flight / ASSOC_SAFE_FILL) - 1e-9))
        cache_size = -(-needed // ASSOC_WAYS) * ASSOC_WAYS
    else:
        slack = lru_slack(cpus)
        needed = max(1, math.ceil(in_flight * margin - 1e-9)) + slack
        cache_size = next_pow2(needed)
    if cache_size > MAX_CACHE:
        notes.append(
            f"{cache_size:,} entries exceed the largest cache_size ({MAX_CACHE:,}); "
            "split the traffic over several VNF instances"
        )
    describe = spec.with_core(cache_size=min(cache_size, MAX_CACHE)).describe()
    if kind == "assoc":
        notes.append("cache=assoc: an entry whose packet never comes back (a dropping VNF) is "
                     "stale after cache_horizon_ms and its slot is reused; keep the horizon "
                     "above the longest sojourn")
    if kind == "ring":
        method, detail = "computed", (
            f"array of ring slots: {RING_KEY_SIZE} B tag + value rounded up to 8 B per entry "
            f"(layout from {how})"
        )
        total = ring_bytes(cache_size, value_size)
    elif kind == "assoc":
        method, detail = "computed", (
            f"array of buckets: {assoc_bucket_bytes(key_size, value_size):,} B each (64 B of "
            f"lanes + 16 slots of key + value), page-rounded (layout from {how})"
        )
        total = assoc_bytes(cache_size, key_size, value_size)
    else:
        method, detail = "computed", (
            f"{ELEMENT_HEADER} B element header + key and value rounded up to 8 B per entry, "
            f"{BUCKET_BYTES} B per bucket (layout from {how})"
        )
        total = computed_bytes(cache_size, key_size, value_size)
    if os.geteuid() == 0:
        try:
            if kind == "ring":
                if cache_size <= MAX_CACHE:
                    total = measured_ring_bytes(cache_size, value_size)
                    method = "measured"
                    detail = f"memlock of an array map created with {cache_size:,} ring slots"
            elif kind == "assoc":
                if cache_size <= MAX_CACHE:
                    total = measured_assoc_bytes(cache_size, key_size, value_size)
                    method = "measured"
                    detail = (f"memlock of an mmapable array map created with "
                              f"{cache_size // 16:,} buckets of 16 slots")
            elif cache_size <= MEASURE_LIMIT:
                total = measured_bytes(cache_size, key_size, value_size)
                method = "measured"
                detail = f"memlock of an LRU hash map created with {cache_size:,} entries"
            else:
                small = measured_bytes(MEASURE_LIMIT // 2, key_size, value_size)
                big = measured_bytes(MEASURE_LIMIT, key_size, value_size)
                per = (big - small) / (MEASURE_LIMIT // 2)
                total = int(big + per * (cache_size - MEASURE_LIMIT))
                method = "extrapolated"
                detail = (
                    f"memlock of LRU hash maps created with {MEASURE_LIMIT // 2:,} and "
                    f"{MEASURE_LIMIT:,} entries, extrapolated linearly"
                )
        except OSError:
            pass
    return Sizing(
        rate_pps=rate_pps,
        delay_s=delay_s,
        margin=margin,
        in_flight=in_flight,
        entries_needed=needed,
        cache_size=cache_size,
        describe=describe,
        key_size=key_size,
        value_size=value_size,
        bytes=total,
        bytes_per_entry=total / cache_size,
        method=method,
        method_detail=detail,
        notes=notes,
        basis=basis,
        slack=slack,
        cache=kind,
        observation=observation,
    )


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:g} {prefix}{unit}"
    return f"{value:g} {unit}"


def _duration(seconds: float) -> str:
    for factor, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= factor:
            return f"{seconds / factor:g} {unit}"
    return f"{seconds / 1e-9:g} ns"


def _bytes(n: float) -> str:
    for factor, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n:.0f} B"


#: why a margin, for the ring (FIFO: no early eviction, but the mean is not the peak)
RING_MARGIN_REASONS = (
    "Little's law gives the mean occupancy; the cache must hold the peaks. The ring "
    "evicts nothing early: a slot is reused exactly cache_size packets after it was "
    "filled, so an entry is lost only when more than cache_size packets arrive while "
    "its packet is inside the VNF; bursts and a varying VNF delay push that count well "
    "above the mean, and every lost entry is a miss. Slots of dropped packets are simply "
    "overwritten in turn."
)


def _sojourn(s: Sizing) -> str:
    """The observed rate and sojourn, or n/a when no packet went through (idle)."""
    if s.rate_pps <= 0:
        return "n/a pps (idle: no packet entered), sojourn n/a"
    return f"{_si(round(s.rate_pps, 1), 'pps')}, sojourn ~{_duration(s.delay_s or 1e-9)}"


def render_text(s: Sizing, verbose: bool = False) -> str:
    """The answer in two lines; ``verbose`` (size -v): how it was reached and why."""
    if s.basis == "observed peak":
        obs = s.observation or {}
        basis = (f"observed {obs.get('name', '?')} for {obs.get('seconds', 0):g} s: peak "
                 f"{s.in_flight:,.0f} packets in flight (mean "
                 f"{obs.get('mean_in_flight', 0):,.1f}), {_sojourn(s)}")
    else:
        basis = (f"in flight (Little's law): {_si(s.rate_pps, 'pps')} x {_duration(s.delay_s)} "
                 f"= {s.in_flight:,.6g} packets")
    if s.cache == "ring":
        how = f"x{s.margin:g} (cache=ring: FIFO, no early eviction, no rounding)"
    elif s.cache == "assoc":
        how = (f"x{s.margin:g} (cache=assoc: at most {ASSOC_SAFE_FILL:.0%} full, no LRU slack) = "
               f"{s.entries_needed:,} entries, rounded up to whole buckets of 16")
    else:
        how = (f"x{s.margin:g} + LRU slack {s.slack:,} ({LRU_LOCAL_FREE} per CPU) = "
               f"{s.entries_needed:,} entries, rounded up to a power of two")
    if not verbose:
        lines = [
            f"--cache-size {s.cache_size}  ({s.cache_size:,} entries, {_bytes(s.bytes)})",
            f"  {basis}; {how}",
        ]
        lines += [f"note: {n}" for n in s.notes]
        lines.append("  (-v: entry layout, memory and the reasons for the margin)")
        return "\n".join(lines)
    lines = [basis]
    if s.basis == "observed peak":
        obs = s.observation or {}
        lines.append(f"  {obs.get('samples', 0):,} samples every "
                     f"{obs.get('interval_s', 0) * 1e3:g} ms")
    lines += [
        f"with margin {how}: {s.cache_size:,} entries  ->  --cache-size {s.cache_size}",
        f"entry: key {s.key_size} B + value {s.value_size} B ({s.describe})",
        f"memory: {_bytes(s.bytes)} ({s.bytes_per_entry:.1f} B per entry, {s.method}: "
        f"{s.method_detail})",
    ]
    reasons = RING_MARGIN_REASONS if s.cache == "ring" else MARGIN_REASONS
    lines += textwrap.wrap(f"why x{s.margin:g}: {reasons}", 100, subsequent_indent="  ")
    if s.basis != "observed peak":
        lines += textwrap.wrap(
            f"delay: {SOJOURN_NOTE}", 100, subsequent_indent="  ")
    lines += [f"note: {n}" for n in s.notes]
    return "\n".join(lines)
