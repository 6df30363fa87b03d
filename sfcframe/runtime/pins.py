"""Pinning a loaded module's maps and programs in bpffs, and reopening them.

Layout: ``<pin root>/<name>/maps/<map>``, ``<pin root>/<name>/progs/<function>``
and ``<pin root>/<name>/undo`` (:mod:`.undo`). Every map the module declares
is pinned (bcc's module knows their names), so key-specific maps (e.g. the
metadata key's ``sfc_id_seq``) survive the ``up`` process with the rest.
Directories are 0700 and pins 0600, whatever the umask (:mod:`.trust`); the
clean-up removes only these entries and says what else it found.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import stat
from pathlib import Path

from sfcframe import bpfsys
from sfcframe.errors import KernelFeatureError
from sfcframe.maps import fdinfo
from sfcframe.runtime import trust

#: what an instance's pin directory holds: sub-directories of pins, and single pins
PIN_SUBDIRS = ("maps", "progs")
PIN_FILES = ("undo",)


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
    lib = bpfsys.import_bcc().libbcc.lib
    num, name = lib.bpf_num_tables, lib.bpf_table_name
    num.restype, num.argtypes = ctypes.c_size_t, [ctypes.c_void_p]
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_size_t]
    return sorted(name(module.bpf.module, i).decode() for i in range(num(module.bpf.module)))


def map_fd(module, name: str) -> int:
    table = module.table(name)
    return table.get_fd() if hasattr(table, "get_fd") else table.map_fd


def pin(fd: int, path: Path) -> None:
    """Pin ``fd`` at ``path`` (its directory, inside the instance's, made 0700), mode 0600."""
    if not path.parent.exists():
        trust.new_private_dir(path.parent)
    try:
        bpfsys.obj_pin(fd, path)
        os.chmod(path, trust.FILE_MODE)
    except OSError as exc:
        raise KernelFeatureError(f"cannot pin {path}: {exc.strerror}") from None


def _is_pin(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def unpin_tree(directory: Path) -> tuple[list[str], list[str]]:
    """Remove an instance's pins (``maps/*``, ``progs/*``, ``undo``) and its
    directories; returns (removed, left: anything else found, not touched)."""
    removed: list[str] = []
    left: list[str] = []
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return removed, left
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != trust.ROOT_UID:
        return removed, [f"{directory} (not a directory of root's)"]
    for sub in PIN_SUBDIRS:
        folder = directory / sub
        if not folder.exists():
            continue
        for entry in sorted(folder.iterdir()):
            if _is_pin(entry):
                entry.unlink()
                removed.append(str(entry))
            else:
                left.append(str(entry))
        with contextlib.suppress(OSError):
            folder.rmdir()
    for name in PIN_FILES:
        if _is_pin(directory / name):
            (directory / name).unlink()
            removed.append(str(directory / name))
    try:
        directory.rmdir()
    except FileNotFoundError:
        pass
    except OSError:  # not empty: something we did not pin is in it
        left += [str(p) for p in directory.iterdir() if p.name not in PIN_SUBDIRS]
    return removed, sorted(set(left))


def remove_instance_dir(directory: Path) -> tuple[list[str], list[str]]:
    """:func:`unpin_tree`, then the pin root too if no other instance is left in it."""
    removed, left = unpin_tree(directory)
    with contextlib.suppress(OSError):
        directory.parent.rmdir()
    return removed, left


def pinned_prog_ids(directory: Path) -> dict[int, Path]:
    """{program id: pin} of every program pinned under ``directory/progs``."""
    found: dict[int, Path] = {}
    folder = directory / "progs"
    if not folder.is_dir() or folder.is_symlink():
        return found
    for entry in sorted(folder.iterdir()):
        if not _is_pin(entry):
            continue
        with contextlib.suppress(OSError, KeyError, ValueError), opened(entry) as fd:
            found[prog_id(fd)] = entry
    return found


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
