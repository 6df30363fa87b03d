"""Pinning a loaded module's maps and programs in bpffs, and reopening them.

Layout: ``<pin root>/<name>/maps/<map>`` and ``<pin root>/<name>/progs/<function>``.
Every map the module declares is pinned (bcc's module knows their names), so
key-specific maps (e.g. the metadata key's ``sfc_id_seq``) survive the ``up``
process with the rest.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

from sfcframe import bpfsys
from sfcframe.errors import KernelFeatureError
from sfcframe.maps import fdinfo


def check_bpffs(path: Path) -> None:
    """``path`` (or the directory it will be created in) must be on a bpffs."""
    best, fstype = "", ""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        mount_point = left.split()[4]
        kind = right.split()[0] if right else ""
        target = str(path)
        if (target == mount_point or target.startswith(mount_point.rstrip("/") + "/")) and len(
            mount_point
        ) >= len(best):
            best, fstype = mount_point, kind
    if fstype != "bpf":
        raise KernelFeatureError(
            f"{path} is not on a bpffs (found {fstype or 'nothing'} at {best or '/'}); "
            "mount it: mount -t bpf bpf /sys/fs/bpf"
        )


def map_names(module) -> list[str]:
    """Names of every map the bcc module declares."""
    from bcc import libbcc

    num, name = libbcc.lib.bpf_num_tables, libbcc.lib.bpf_table_name
    num.restype, num.argtypes = ctypes.c_size_t, [ctypes.c_void_p]
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_size_t]
    return sorted(name(module.bpf.module, i).decode() for i in range(num(module.bpf.module)))


def map_fd(module, name: str) -> int:
    table = module.table(name)
    return table.get_fd() if hasattr(table, "get_fd") else table.map_fd


def pin(fd: int, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        bpfsys.obj_pin(fd, path)
    except OSError as exc:
        raise KernelFeatureError(f"cannot pin {path}: {exc.strerror}") from None


def unpin_tree(directory: Path) -> list[str]:
    """Remove the pins under ``directory`` and the directories; returns what was removed."""
    removed: list[str] = []
    if not directory.exists():
        return removed
    for root, dirs, files in os.walk(directory, topdown=False):
        for name in files:
            path = Path(root) / name
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(str(path))
        for name in dirs:
            with contextlib.suppress(FileNotFoundError):
                (Path(root) / name).rmdir()
    with contextlib.suppress(FileNotFoundError):
        directory.rmdir()
    return removed


def remove_instance_dir(directory: Path) -> list[str]:
    """:func:`unpin_tree`, then the pin root too if no other instance is left in it."""
    removed = unpin_tree(directory)
    with contextlib.suppress(OSError):
        directory.parent.rmdir()
    return removed


def prog_id(fd: int) -> int:
    return int(fdinfo(fd)["prog_id"])


def map_id(fd: int) -> int:
    return int(fdinfo(fd)["map_id"])


@contextlib.contextmanager
def opened(path: str | Path):
    """An fd for a pinned object, closed on exit."""
    fd = bpfsys.obj_get(path)
    try:
        yield fd
    finally:
        os.close(fd)


def open_map(path: str | Path) -> bpfsys.Map:
    return bpfsys.Map.from_fd(bpfsys.obj_get(path))
