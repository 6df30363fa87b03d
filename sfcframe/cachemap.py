"""The proxy's cache as user space sees it, whichever map layout holds it.

``cache=lru``: ``sfc_cache`` is an LRU hash map, key ``struct sfc_key``, value
``struct sfc_lru_entry`` (``struct sfc_value`` and a 32-bit stamp of the insert). ``cache=ring``: ``sfc_cache`` is an array of slots
``{__u64 tag; struct sfc_value val;}`` indexed by ``id % cache_size``; a slot is
live while its tag holds ``id | RING_VALID`` (``RING_BUSY`` while a writer fills
it, 0 when consumed). ``cache=assoc``: ``sfc_cache`` is a ``BPF_F_MMAPABLE``
array of buckets ``{__u16 tag[16]; __u16 gen[16]; {struct sfc_key key; struct
sfc_value val;} slot[16];}`` (little-endian lanes); a slot holds an entry while
its tag lane is its key's 15-bit fingerprint (``LANE_BUSY`` set while one
program run owns it, 0 when empty), inserted in generation ``gen`` (modulo
2^16). All read back as ``{key bytes: value bytes}`` with the key as ``struct
sfc_key`` (for the ring: the 64-bit id in host byte order).

The assoc table's hash, buckets and generations are mirrored here
(:func:`assoc_hash`, :func:`assoc_buckets`, :func:`generation_now`) for tests
and for telling stale entries from live ones.
"""

from __future__ import annotations

import math
import os
import struct
import time
from dataclasses import dataclass
from typing import Iterator

from sfcframe import bpfsys
from sfcframe.maps import fdinfo

MAP_TYPE_ARRAY = 2
MAP_TYPE_LRU_HASH = 9
#: cache=lru: bytes of the insert's stamp behind the entry in the map's value
LRU_STAMP_BYTES = 4
#: ring slot tag bits (bpf_templates/_cache.j2)
RING_VALID = 1 << 63
RING_BUSY = 1 << 62
RING_TAG = struct.Struct("=Q")
#: map flag of the assoc table (and of no other cache map): BPF_F_MMAPABLE
MAP_F_MMAPABLE = 1 << 10
#: cache=assoc (bpf_templates/_cache.j2): slots per bucket, lane bits, generation unit
ASSOC_WAYS = 16
#: bytes in front of a bucket's slots: 16 tag lanes and 16 generation lanes of 16 bits
ASSOC_HEAD = 4 * ASSOC_WAYS
LANE_BUSY = 0x8000
LANE_FP = 0x7FFF
GEN_MASK = 0xFFFF
#: generations an entry's gen may run ahead of a reader's now and still be new
GEN_AHEAD = 16
#: sfc_cache_events, in the order of enum sfc_cache_event
EVENTS = ("evicted", "reclaimed", "moved")
#: a generation is 2**GEN_SHIFT ns of CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns)
GEN_SHIFT = 22
#: the largest horizon a 16-bit generation can tell (ages are compared modulo 2^16)
HORIZON_MAX = 0x7FFE
CLOCK_MONOTONIC_COARSE = 6
_MASK64 = (1 << 64) - 1
_LANES = struct.Struct(f"<{ASSOC_WAYS}H")


def horizon_generations(ms: int) -> int:
    """cache_horizon_ms in whole generations (rounded up)."""
    return math.ceil(ms * 1_000_000 / (1 << GEN_SHIFT))


def generation_now() -> int:
    """The generation the programs read now (same clock, same unit, modulo 2^16)."""
    return (time.clock_gettime_ns(CLOCK_MONOTONIC_COARSE) >> GEN_SHIFT) & GEN_MASK


def lane_age(gen: int, now: int) -> int:
    """sfc_assoc_age(): generations since gen; 0 for a gen up to GEN_AHEAD ahead of now
    (inserted on another CPU after a tick the reader had not seen)."""
    age = (now - gen) & GEN_MASK
    return 0 if age > GEN_MASK - GEN_AHEAD else age


def assoc_hash(key: bytes) -> int:
    """sfc_assoc_hash(): the 64-bit hash of a struct sfc_key (host-order 32-bit words)."""
    h = 0
    for (word,) in struct.iter_unpack("=I", key):
        h = ((h ^ word) * 0x9E3779B97F4A7C15) & _MASK64
        h ^= h >> 32
    h = (h * 0xBF58476D1CE4E5B9) & _MASK64
    return h ^ (h >> 31)


def assoc_alt(bucket: int, fp: int, buckets: int) -> int:
    """sfc_assoc_alt(): the other bucket of an entry in ``bucket`` with fingerprint ``fp``."""
    g = (((fp * 0x9E3779B1) & 0xFFFFFFFF) * buckets) >> 32
    return g - bucket if g >= bucket else g + buckets - bucket


def assoc_place(key: bytes, buckets: int) -> tuple[int, int, int]:
    """(bucket a, bucket b, fingerprint) of a key in a table of ``buckets`` buckets."""
    h = assoc_hash(key)
    fp = (h >> 49) or 1
    a = ((h & 0xFFFFFFFF) * buckets) >> 32
    return a, assoc_alt(a, fp, buckets), fp


def assoc_bucket_count(cache_size: int) -> int:
    return (cache_size + ASSOC_WAYS - 1) // ASSOC_WAYS


def assoc_layout(memory, key_size: int | None, value_size: int) -> dict:
    """The assoc table as a cache report: entries (buckets x slots), the slot's key and
    value (struct sfc_key, struct sfc_value), what the kernel charges per entry.
    ``memory`` is the map's :class:`sfcframe.maps.MapMemory`."""
    capacity = memory.max_entries * ASSOC_WAYS
    slot = (memory.value_size - ASSOC_HEAD) // ASSOC_WAYS
    return {
        "buckets": memory.max_entries,
        "ways": ASSOC_WAYS,
        "capacity": capacity,
        "key_size": key_size if key_size is not None else slot - value_size,
        "value_size": value_size,
        "slot_size": slot,
        "bucket_size": memory.value_size,
        "bytes_per_entry": round(memory.memlock / capacity, 2) if capacity else 0.0,
    }


@dataclass(frozen=True)
class Occupancy:
    """What the slots of a cache hold now: ``live`` entries (for assoc: not older than
    the horizon), ``stale`` ones (assoc: older, reclaimed when an insert touches their
    bucket) and ``busy`` slots (claimed by a program run at the moment of reading)."""

    live: int
    stale: int = 0
    busy: int = 0

    @property
    def entries(self) -> int:
        return self.live + self.stale


def table_key_size(table) -> int | None:
    """sizeof(struct sfc_key) from a bcc table of a cache=assoc build (its Leaf type is the
    bucket: slot[].key), None for the other kinds (whose key size the map itself gives)."""
    import ctypes

    fields = dict(getattr(table.Leaf, "_fields_", ()))
    if "slot" not in fields:
        return None
    return ctypes.sizeof(dict(fields["slot"]._type_._fields_)["key"])


def module_view(module, value_size: int | None = None) -> "CacheView":
    """A view on a loaded module's sfc_cache (a duplicate of its fd)."""
    table = module.table("sfc_cache")
    return CacheView.of_fd(table.map_fd, value_size, table_key_size(table))


class CacheView:
    """Read, count and empty a cache map through its fd (owned by the view)."""

    def __init__(self, fd: int, value_size: int | None = None, key_size: int | None = None):
        info = fdinfo(fd)
        self.map_type = int(info["map_type"])
        self.max_entries = int(info["max_entries"])
        flags = int(info.get("map_flags", "0"), 16)
        if self.map_type != MAP_TYPE_ARRAY:
            self.kind = "lru"
        else:
            self.kind = "assoc" if flags & MAP_F_MMAPABLE else "ring"
        self.table = bpfsys.Map.from_fd(fd)
        #: entries the cache holds at most (assoc: whole buckets)
        self.capacity = self.max_entries * (ASSOC_WAYS if self.kind == "assoc" else 1)
        #: assoc: bytes of one {key, value} slot behind the bucket's lanes
        self.slot_size = ((self.table.value_size - ASSOC_HEAD) // ASSOC_WAYS
                          if self.kind == "assoc" else 0)
        #: sizeof(struct sfc_value): the LRU map's value without its stamp, or the slot
        #: behind the ring's tag (the slot may end in alignment padding: give the size
        #: when it matters)
        if value_size:
            self.value_size = value_size
        elif self.kind == "ring":
            self.value_size = self.table.value_size - RING_TAG.size
        elif self.kind == "lru":
            self.value_size = self.table.value_size - LRU_STAMP_BYTES
        else:
            self.value_size = self.table.value_size
        #: assoc: sizeof(struct sfc_key) (needed for entries(); counting needs the tags only)
        self.key_size = key_size

    @classmethod
    def pinned(cls, path: str, value_size: int | None = None,
               key_size: int | None = None) -> "CacheView":
        return cls(bpfsys.obj_get(path), value_size, key_size)

    @classmethod
    def of_fd(cls, fd: int, value_size: int | None = None,
              key_size: int | None = None) -> "CacheView":
        """A view on a duplicate of ``fd`` (the caller keeps its own)."""
        return cls(os.dup(fd), value_size, key_size)

    def close(self) -> None:
        os.close(self.table.fd)

    def __enter__(self) -> "CacheView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _live(self) -> Iterator[tuple[bytes, int, bytes]]:
        """(slot index bytes, tag, slot bytes) of every ring slot holding an entry; the
        array is read in batches and only the tags are looked at for the others."""
        stride = self.table.stride
        for count, keys, values in self.table.chunks_batch():
            for i in range(count):
                (tag,) = RING_TAG.unpack_from(values, i * stride)
                if tag & RING_VALID:
                    yield keys[i * 4:i * 4 + 4], tag, values[i * stride:(i + 1) * stride]

    def _buckets(self) -> Iterator[tuple[int, tuple[int, ...], tuple[int, ...], bytes]]:
        """assoc: (bucket index, tag lanes, generation lanes, the whole bucket) of every
        bucket."""
        stride = self.table.stride
        for count, keys, values in self.table.chunks_batch(256):
            for i in range(count):
                raw = values[i * stride:(i + 1) * stride]
                (index,) = struct.unpack_from("=I", keys, i * 4)
                yield index, _LANES.unpack_from(raw), _LANES.unpack_from(raw, 2 * ASSOC_WAYS), raw

    def assoc_slots(self) -> list[tuple[int, int, int, int, bytes, bytes]]:
        """assoc: (bucket, way, tag lane, generation lane, key bytes, value bytes) of every
        live entry (not claimed by a program run at the moment of reading)."""
        if self.kind != "assoc":
            raise ValueError("assoc_slots(): not a cache=assoc table")
        ks = self.key_size if self.key_size is not None else self.slot_size - self.value_size
        out = []
        for index, tags, gens, raw in self._buckets():
            for way, tag in enumerate(tags):
                if tag and not tag & LANE_BUSY:
                    at = ASSOC_HEAD + way * self.slot_size
                    out.append((index, way, tag, gens[way], raw[at:at + ks],
                                raw[at + ks:at + ks + self.value_size]))
        return out

    def occupancy(self, horizon: int | None = None) -> Occupancy:
        """Live, stale and busy slots now (stale: assoc entries older than ``horizon``
        generations; the other kinds cannot tell)."""
        if self.kind != "assoc":
            return Occupancy(self.count())
        now = generation_now()
        live = stale = busy = 0
        for _, tags, gens, _ in self._buckets():
            for tag, gen in zip(tags, gens):
                if tag & LANE_BUSY:
                    busy += 1
                elif tag:
                    if horizon is not None and lane_age(gen, now) > horizon:
                        stale += 1
                    else:
                        live += 1
        return Occupancy(live, stale, busy)

    def entries(self) -> dict[bytes, bytes]:
        """Live entries as {struct sfc_key bytes: struct sfc_value bytes}."""
        if self.kind == "assoc":
            return {key: value for _, _, _, _, key, value in self.assoc_slots()}
        if self.kind == "lru":
            out = {}
            for key in list(self.table.keys()):
                value = self.table.lookup(key)
                if value is not None:  # the map's value ends in the insert's stamp
                    out[key] = value[:self.value_size]
            return out
        end = RING_TAG.size + self.value_size
        return {RING_TAG.pack(tag & ~(RING_VALID | RING_BUSY)): raw[RING_TAG.size:end]
                for _, tag, raw in self._live()}

    def count(self) -> int:
        if self.kind == "lru":
            return sum(1 for _ in self.table.keys())
        if self.kind == "assoc":
            return sum(1 for _, tags, _, _ in self._buckets() for tag in tags
                       if tag and not tag & LANE_BUSY)
        return sum(1 for _ in self._live())

    def clear(self) -> None:
        if self.kind == "lru":
            for key in list(self.table.keys()):
                self.table.delete(key)
            return
        if self.kind == "assoc":  # an empty tag lane frees its slot; the bytes may stay
            zero = bytes(2 * ASSOC_WAYS)
            for index, tags, _, raw in list(self._buckets()):
                if any(tags):
                    self.table.update(struct.pack("=I", index), zero + raw[len(zero):])
            return
        zero = bytes(self.table.value_size)
        stride = self.table.stride
        for count, keys, values in self.table.chunks_batch():
            for i in range(count):
                if values[i * stride:i * stride + 8] != bytes(8):  # tag: live, busy or stale
                    self.table.update(keys[i * 4:i * 4 + 4], zero)
