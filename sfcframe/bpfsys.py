"""The few bpf(2) commands sfcframe needs outside a bcc module, from bcc's library.

bcc's ``libbcc`` declares the element commands (``bpf_lookup_elem``,
``bpf_update_elem``, ``bpf_delete_elem``, ``bpf_get_next_key``,
``bpf_lookup_batch``) and links libbpf, whose ``bpf_obj_pin`` / ``bpf_obj_get``
(pinned objects reopened from a new process) it resolves too: :func:`libbpf`
declares the C signatures bcc's Python side leaves out. Errors are OSError with
errno.
"""

from __future__ import annotations

import ctypes
import functools
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

BPF_ANY = 0

#: C signatures of the libbpf calls used here that bcc's Python side does not
#: declare: {name: (restype, argtypes)}
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "bpf_obj_pin": (ctypes.c_int, [ctypes.c_int, ctypes.c_char_p]),
    "bpf_obj_get": (ctypes.c_int, [ctypes.c_char_p]),
    "bpf_prog_get_fd_by_id": (ctypes.c_int, [ctypes.c_uint32]),
    "bcc_create_map": (ctypes.c_int, [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                                      ctypes.c_int, ctypes.c_int]),
    "bpf_prog_test_run_opts": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p]),
}


def import_bcc():
    """The ``bcc`` package (ImportError when it is not installed). Debian's
    ``bcc/__init__.py`` writes a regular expression as a non-raw bytes literal
    (``b'^.*\\.cold...'``); Python warns of its escape sequence while compiling that
    module when no bytecode is cached. The warning is about bcc's source, not a
    caller's: it is silenced for this import only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "invalid escape sequence", DeprecationWarning)
        warnings.filterwarnings("ignore", "invalid escape sequence", SyntaxWarning)
        import bcc  # noqa: PLC0415 - optional until a kernel step is needed
    return bcc


@functools.cache
def libbpf() -> ctypes.CDLL:
    """bcc's library (``bcc.libbcc.lib``: libbcc and the libbpf it links), with the
    signatures of :data:`_SIGNATURES` declared."""
    lib = import_bcc().libbcc.lib
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


def call(name: str, *args: Any) -> int:
    """``name(*args)`` of :func:`libbpf`; its result, or OSError with its errno
    (libbpf returns -errno)."""
    rc = getattr(libbpf(), name)(*args)
    if rc < 0:
        err = ctypes.get_errno() or -rc
        raise OSError(err, os.strerror(err))
    return rc


def obj_pin(fd: int, path: str | Path) -> None:
    call("bpf_obj_pin", fd, str(path).encode())


def obj_get(path: str | Path) -> int:
    return call("bpf_obj_get", str(path).encode())


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
        try:
            call("bpf_lookup_elem", self.fd, k, v)
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
        call("bpf_update_elem", self.fd, k, v, flags)

    def delete(self, key: bytes) -> bool:
        k = ctypes.create_string_buffer(key, self.key_size)
        try:
            call("bpf_delete_elem", self.fd, k)
        except FileNotFoundError:
            return False
        return True

    def keys(self) -> Iterator[bytes]:
        current: bytes | None = None
        nxt = ctypes.create_string_buffer(self.key_size)
        while True:
            k = None if current is None else ctypes.create_string_buffer(current, self.key_size)
            try:
                call("bpf_get_next_key", self.fd, k, nxt)
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
        # the batch token: a bucket index for hash maps, a key for arrays
        token_in = ctypes.create_string_buffer(max(self.key_size, 8))
        token_out = ctypes.create_string_buffer(max(self.key_size, 8))
        as_u32 = ctypes.POINTER(ctypes.c_uint32)
        first = True
        while True:
            count = ctypes.c_uint32(chunk)
            done = False
            try:
                call("bpf_lookup_batch", self.fd, None if first else ctypes.cast(token_in, as_u32),
                     ctypes.cast(token_out, as_u32), keys, values, ctypes.byref(count))
            except FileNotFoundError:
                done = True  # the last chunk: count holds how many came back
            if count.value:
                yield count.value, keys.raw, values.raw
            if done or count.value == 0:
                return
            ctypes.memmove(token_in, token_out, len(token_out))
            first = False

    def close(self) -> None:
        os.close(self.fd)
