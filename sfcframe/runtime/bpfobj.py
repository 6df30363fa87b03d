"""The bpf(2) commands the runtime needs beyond :mod:`sfcframe.bpfsys`, from
bcc's library too: creating a map from user space (bcc's ``bcc_create_map``)
and opening a program by its id (libbpf's ``bpf_prog_get_fd_by_id``)."""

from __future__ import annotations

from sfcframe import bpfsys

BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_LRU_HASH = 9


def create_map(map_type: int, key_size: int, value_size: int, max_entries: int,
               name: bytes = b"", flags: int = 0) -> int:
    """A new map's fd (the caller closes it); OSError with errno on failure."""
    return bpfsys.call("bcc_create_map", map_type, name[:15] or None, key_size, value_size,
                       max_entries, flags)


def prog_fd_by_id(prog_id: int) -> int:
    """An fd of the loaded program with this id (OSError ENOENT if it is gone)."""
    return bpfsys.call("bpf_prog_get_fd_by_id", prog_id)
