"""The proxy's cache as user space sees it, whichever map layout holds it.

``cache=lru``: ``sfc_cache`` is an LRU hash map, key ``struct sfc_key``, value
``struct sfc_value``. ``cache=ring``: ``sfc_cache`` is an array of slots
``{__u64 tag; struct sfc_value val;}`` indexed by ``id % cache_size``; a slot is
live while its tag holds ``id | RING_VALID`` (``RING_BUSY`` while a writer fills
it, 0 when consumed). Both read back as ``{key bytes: value bytes}`` with the key
as ``struct sfc_key`` (for the ring: the 64-bit id in host byte order).
"""

from __future__ import annotations

import os
import struct
from typing import Iterator

from sfcframe import bpfsys
from sfcframe.maps import fdinfo

MAP_TYPE_ARRAY = 2
MAP_TYPE_LRU_HASH = 9
#: ring slot tag bits (bpf_templates/_cache.j2)
RING_VALID = 1 << 63
RING_BUSY = 1 << 62
RING_TAG = struct.Struct("=Q")


class CacheView:
    """Read, count and empty a cache map through its fd (owned by the view)."""

    def __init__(self, fd: int, value_size: int | None = None):
        info = fdinfo(fd)
        self.map_type = int(info["map_type"])
        self.max_entries = int(info["max_entries"])
        self.kind = "ring" if self.map_type == MAP_TYPE_ARRAY else "lru"
        self.table = bpfsys.Map.from_fd(fd)
        #: sizeof(struct sfc_value): the whole value, or the slot behind the ring's tag
        #: (the slot may end in alignment padding: give the size when it matters)
        self.value_size = value_size or (
            self.table.value_size - (RING_TAG.size if self.kind == "ring" else 0))

    @classmethod
    def pinned(cls, path: str, value_size: int | None = None) -> "CacheView":
        return cls(bpfsys.obj_get(path), value_size)

    @classmethod
    def of_fd(cls, fd: int, value_size: int | None = None) -> "CacheView":
        """A view on a duplicate of ``fd`` (the caller keeps its own)."""
        return cls(os.dup(fd), value_size)

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

    def entries(self) -> dict[bytes, bytes]:
        """Live entries as {struct sfc_key bytes: struct sfc_value bytes}."""
        if self.kind == "lru":
            out = {}
            for key in list(self.table.keys()):
                value = self.table.lookup(key)
                if value is not None:
                    out[key] = value
            return out
        end = RING_TAG.size + self.value_size
        return {RING_TAG.pack(tag & ~(RING_VALID | RING_BUSY)): raw[RING_TAG.size:end]
                for _, tag, raw in self._live()}

    def count(self) -> int:
        if self.kind == "lru":
            return sum(1 for _ in self.table.keys())
        return sum(1 for _ in self._live())

    def clear(self) -> None:
        if self.kind == "lru":
            for key in list(self.table.keys()):
                self.table.delete(key)
            return
        zero = bytes(self.table.value_size)
        stride = self.table.stride
        for count, keys, values in self.table.chunks_batch():
            for i in range(count):
                if values[i * stride:i * stride + 8] != bytes(8):  # tag: live, busy or stale
                    self.table.update(keys[i * 4:i * 4 + 4], zero)
