"""The few bpf(2) commands sfcframe needs outside bcc, through ctypes.

Pinned objects are reopened from a new process with :func:`obj_get`; maps are
read and written with the element commands. Errors are OSError with errno.
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path
from typing import Iterator

BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_OBJ_PIN = 6
BPF_OBJ_GET = 7
BPF_PROG_TEST_RUN = 10
BPF_MAP_LOOKUP_BATCH = 24

BPF_ANY = 0

_NR_BPF = {"x86_64": 321, "aarch64": 280}
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def bpf(cmd: int, attr: ctypes.Structure) -> int:
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        raise OSError(0, f"bpf syscall number unknown for {platform.machine()}")
    rc = _libc.syscall(
        ctypes.c_long(nr), ctypes.c_long(cmd), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr))
    )
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc


class _ElemAttr(ctypes.Structure):
    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class _BatchAttr(ctypes.Structure):
    _fields_ = [
        ("in_batch", ctypes.c_uint64),
        ("out_batch", ctypes.c_uint64),
        ("keys", ctypes.c_uint64),
        ("values", ctypes.c_uint64),
        ("count", ctypes.c_uint32),
        ("map_fd", ctypes.c_uint32),
        ("elem_flags", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class _ObjAttr(ctypes.Structure):
    _fields_ = [
        ("pathname", ctypes.c_uint64),
        ("bpf_fd", ctypes.c_uint32),
        ("file_flags", ctypes.c_uint32),
        ("path_fd", ctypes.c_int32),
        ("_pad", ctypes.c_uint32),
    ]


def obj_pin(fd: int, path: str | Path) -> None:
    raw = ctypes.create_string_buffer(str(path).encode())
    bpf(BPF_OBJ_PIN, _ObjAttr(pathname=ctypes.addressof(raw), bpf_fd=fd))


def obj_get(path: str | Path) -> int:
    raw = ctypes.create_string_buffer(str(path).encode())
    return bpf(BPF_OBJ_GET, _ObjAttr(pathname=ctypes.addressof(raw)))


def possible_cpus() -> int:
    """Number of possible CPUs: the stride of per-CPU map values."""
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


class Map:
    """A map by fd with fixed key and value sizes (value = per-CPU total for per-CPU maps)."""

    def __init__(self, fd: int, key_size: int, value_size: int, percpu: bool = False):
        self.fd = fd
        self.key_size = key_size
        self.value_size = value_size
        self.stride = (value_size + 7) // 8 * 8
        self.slots = possible_cpus() if percpu else 1

    @classmethod
    def from_fd(cls, fd: int) -> "Map":
        from sfcframe.maps import fdinfo

        info = fdinfo(fd)
        percpu = int(info["map_type"]) in (5, 6, 10)  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH
        return cls(fd, int(info["key_size"]), int(info["value_size"]), percpu)

    def lookup(self, key: bytes) -> bytes | list[bytes] | None:
        k = ctypes.create_string_buffer(key, self.key_size)
        v = ctypes.create_string_buffer(self.stride * self.slots)
        attr = _ElemAttr(map_fd=self.fd, key=ctypes.addressof(k), value=ctypes.addressof(v))
        try:
            bpf(BPF_MAP_LOOKUP_ELEM, attr)
        except FileNotFoundError:
            return None
        if self.slots == 1:
            return v.raw[: self.value_size]
        return [v.raw[i * self.stride : i * self.stride + self.value_size] for i in range(self.slots)]

    def update(self, key: bytes, value: bytes | list[bytes], flags: int = BPF_ANY) -> None:
        k = ctypes.create_string_buffer(key, self.key_size)
        if isinstance(value, list):
            blob = b"".join(part.ljust(self.stride, b"\x00") for part in value)
        else:
            blob = value
        v = ctypes.create_string_buffer(blob, self.stride * self.slots)
        attr = _ElemAttr(map_fd=self.fd, key=ctypes.addressof(k), value=ctypes.addressof(v), flags=flags)
        bpf(BPF_MAP_UPDATE_ELEM, attr)

    def delete(self, key: bytes) -> bool:
        k = ctypes.create_string_buffer(key, self.key_size)
        try:
            bpf(BPF_MAP_DELETE_ELEM, _ElemAttr(map_fd=self.fd, key=ctypes.addressof(k)))
        except FileNotFoundError:
            return False
        return True

    def keys(self) -> Iterator[bytes]:
        current: bytes | None = None
        nxt = ctypes.create_string_buffer(self.key_size)
        while True:
            if current is None:
                attr = _ElemAttr(map_fd=self.fd, key=0, value=ctypes.addressof(nxt))
            else:
                k = ctypes.create_string_buffer(current, self.key_size)
                attr = _ElemAttr(map_fd=self.fd, key=ctypes.addressof(k), value=ctypes.addressof(nxt))
            try:
                bpf(BPF_MAP_GET_NEXT_KEY, attr)
            except FileNotFoundError:
                return
            current = nxt.raw[: self.key_size]
            yield current

    def items_batch(self, chunk: int = 4096) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) with BPF_MAP_LOOKUP_BATCH, ``chunk`` elements per call
        (one syscall per chunk instead of one per element; not for per-CPU maps)."""
        for count, keys, values in self.chunks_batch(chunk):
            for i in range(count):
                yield (keys[i * self.key_size:(i + 1) * self.key_size],
                       values[i * self.stride:i * self.stride + self.value_size])

    def chunks_batch(self, chunk: int = 4096) -> Iterator[tuple[int, bytes, bytes]]:
        """(count, keys, values) per BPF_MAP_LOOKUP_BATCH call: the raw buffers, values
        ``stride`` bytes apart, for callers that only look at a few bytes of each."""
        keys = ctypes.create_string_buffer(self.key_size * chunk)
        values = ctypes.create_string_buffer(self.stride * chunk)
        token_in = ctypes.create_string_buffer(max(self.key_size, 8))
        token_out = ctypes.create_string_buffer(max(self.key_size, 8))
        first = True
        while True:
            attr = _BatchAttr(
                in_batch=0 if first else ctypes.addressof(token_in),
                out_batch=ctypes.addressof(token_out),
                keys=ctypes.addressof(keys), values=ctypes.addressof(values),
                count=chunk, map_fd=self.fd,
            )
            done = False
            try:
                bpf(BPF_MAP_LOOKUP_BATCH, attr)
            except FileNotFoundError:
                done = True  # the last chunk: attr.count holds how many came back
            if attr.count:
                yield attr.count, keys.raw, values.raw
            if done or attr.count == 0:
                return
            ctypes.memmove(token_in, token_out, len(token_out))
            first = False

    def close(self) -> None:
        os.close(self.fd)
