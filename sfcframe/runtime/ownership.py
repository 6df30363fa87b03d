"""What an instance owns, proven against the kernel before anything is removed.

* **Programs**: the ids of the programs pinned under the instance's pin
  directory (opened with ``bpf_obj_get``, id from fdinfo), and the ids its
  record names. Program ids are not reused while the kernel runs. An XDP
  program or a TC filter is ours only if it runs one of these ids.
* **Interfaces**: the namespace (its inode, recorded at ``up``) and the
  ifindex recorded at ``up``. A namespace or an interface deleted and created
  again under the same name has another inode or ifindex: not ours, left
  alone, and said so.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sfcframe.runtime import bpfobj, netns, pins, state
from sfcframe.runtime.errors import AttachError
from sfcframe.runtime.state import Footprint, IfaceState, Record


@dataclass
class Programs:
    """The programs of one instance: {program id: its pin, or None if only recorded}."""

    ids: dict[int, Path | None] = field(default_factory=dict)

    def __contains__(self, prog_id: object) -> bool:
        return prog_id in self.ids

    def __bool__(self) -> bool:
        return bool(self.ids)

    @contextlib.contextmanager
    def fd(self, prog_id: int) -> Iterator[int]:
        """An fd of our program ``prog_id`` (by id: loaded as long as it is attached)."""
        if prog_id not in self.ids:
            raise AttachError(f"program id {prog_id} is not ours")
        handle = bpfobj.prog_fd_by_id(prog_id)
        try:
            yield handle
        finally:
            os.close(handle)


def programs(name: str, record: Record | None) -> Programs:
    """The programs instance ``name`` pinned, and those its record names."""
    owned = Programs(dict(pins.pinned_prog_ids(state.pin_dir(name))))
    for prog in (record.programs.values() if record else ()):
        owned.ids.setdefault(prog["prog_id"], None)
    return owned


def same_namespace(footprint: Footprint) -> str | None:
    """None if the footprint's namespace is still the one ``up`` used, else why not."""
    where = footprint.netns or "the host namespace"
    try:
        now = netns.identity(footprint.netns)
    except (AttachError, OSError):
        return f"netns {footprint.netns} is gone (and its interfaces with it)"
    if footprint.netns_ino is not None and now != footprint.netns_ino:
        return (f"{where} is not the namespace {footprint.name} was started in (inode "
                f"{now}, was {footprint.netns_ino}): nothing in it is touched")
    return None


def device(ipr, iface: IfaceState) -> tuple[int | None, str | None]:
    """(ifindex, None) if the interface ``up`` changed is still there, else
    (None, why not: gone, or another interface under its name)."""
    where = netns.where(iface.netns)
    try:
        link = ipr.link("get", index=iface.ifindex)[0]
    except Exception:  # noqa: BLE001 - NetlinkError ENODEV: no such ifindex
        link = None
    if link is not None:
        return iface.ifindex, None
    now = ipr.link_lookup(ifname=iface.name)
    if now:
        return None, (f"{iface.name}{where} is now ifindex {now[0]}, not the interface "
                      f"(ifindex {iface.ifindex}) up changed: left alone")
    return None, f"{iface.name}{where} is gone"


def renamed(ipr, index: int, iface: IfaceState) -> str | None:
    link = ipr.link("get", index=index)[0]
    name = link.get_attr("IFLA_IFNAME")
    return name if name != iface.name else None
