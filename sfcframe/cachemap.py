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

    def __init__(self, fd: int):
        info = fdinfo(fd)
        self.map_type = int(info["map_type"])
        self.max_entries = int(info["max_entries"])
        self.kind = "ring" if self.map_type == MAP_TYPE_ARRAY else "lru"
        self.table = bpfsys.Map.from_fd(fd)

    @classmethod
    def pinned(cls, path: str) -> "CacheView":
        return cls(bpfsys.obj_get(path))

    @classmethod
    def of_fd(cls, fd: int) -> "CacheView":
        """A view on a duplicate of ``fd`` (the caller keeps its own)."""
        return cls(os.dup(fd))

    def close(self) -> None:
        os.close(self.table.fd)

    def __enter__(self) -> "CacheView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _slots(self) -> Iterator[tuple[bytes, bytes]]:
        for index in range(self.max_entries):
            raw = self.table.lookup(struct.pack("=I", index))
            if raw is None:
                continue
            yield struct.pack("=I", index), raw

    def entries(self) -> dict[bytes, bytes]:
        """Live entries as {struct sfc_key bytes: struct sfc_value bytes}."""
        if self.kind == "lru":
            out = {}
            for key in list(self.table.keys()):
                value = self.table.lookup(key)
                if value is not None:
                    out[key] = value
            return out
        out = {}
        for _, raw in self._slots():
            (tag,) = RING_TAG.unpack_from(raw)
            if tag & RING_VALID:
                out[RING_TAG.pack(tag & ~(RING_VALID | RING_BUSY))] = raw[RING_TAG.size:]
        return out

    def count(self) -> int:
        if self.kind == "lru":
            return sum(1 for _ in self.table.keys())
        return sum(1 for _, raw in self._slots() if RING_TAG.unpack_from(raw)[0] & RING_VALID)

    def clear(self) -> None:
        if self.kind == "lru":
            for key in list(self.table.keys()):
                self.table.delete(key)
            return
        zero = bytes(self.table.value_size)
        for key, raw in self._slots():
            if raw != zero:
                self.table.update(key, zero)
