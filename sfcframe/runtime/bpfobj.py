"""The bpf(2) commands the runtime needs beyond :mod:`sfcframe.bpfsys`:
creating a map from user space and opening a program by its id."""

from __future__ import annotations

import ctypes

from sfcframe import bpfsys

BPF_MAP_CREATE = 0
BPF_PROG_GET_FD_BY_ID = 13
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_LRU_HASH = 9


class _MapCreateAttr(ctypes.Structure):
    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * 16),
        ("_rest", ctypes.c_uint8 * 48),  # later fields of union bpf_attr, zero
    ]


class _IdAttr(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32),
                ("open_flags", ctypes.c_uint32), ("_pad", ctypes.c_uint32)]


def create_map(map_type: int, key_size: int, value_size: int, max_entries: int,
               name: bytes = b"", flags: int = 0) -> int:
    """A new map's fd (the caller closes it); OSError with errno on failure."""
    attr = _MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                          max_entries=max_entries, map_flags=flags, map_name=name[:15])
    return bpfsys.bpf(BPF_MAP_CREATE, attr)


def prog_fd_by_id(prog_id: int) -> int:
    """An fd of the loaded program with this id (OSError ENOENT if it is gone)."""
    return bpfsys.bpf(BPF_PROG_GET_FD_BY_ID, _IdAttr(id=prog_id))
