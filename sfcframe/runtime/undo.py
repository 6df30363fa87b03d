"""The undo copy: what ``down`` needs of the state record, kept next to the pins.

If ``/run/sfcframe/<name>.json`` is lost, ``down`` still has to know which
interfaces ``up`` changed, whether it created their clsact qdiscs and which
offloads it switched off. bpffs holds no regular files, so that footprint
(JSON: name, netns and its inode, and per interface ifindex, filters, clsact,
offloads) lives in a one-entry BPF array map pinned at
``<pin root>/<name>/undo``: root's only, and gone with the pins. It is
rewritten with every save of the record (:meth:`state.Record.save`).

Value layout: 4-byte length (little endian), then the JSON, zero padded.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from sfcframe.runtime import bpfobj, pins

PIN_NAME = "undo"
#: bytes of footprint per proxied interface, plus a base (names are short and bounded)
BYTES_PER_INTERFACE = 1024
BASE_BYTES = 1024
_KEY = struct.pack("=I", 0)


def path_of(pin_dir: Path) -> Path:
    return pin_dir / PIN_NAME


def create(pin_dir: Path, interfaces: int) -> Path:
    """Create and pin an empty undo map sized for ``interfaces`` interfaces."""
    value_size = BASE_BYTES + BYTES_PER_INTERFACE * max(1, interfaces)
    fd = bpfobj.create_map(bpfobj.BPF_MAP_TYPE_ARRAY, 4, value_size, 1, b"sfc_undo")
    try:
        pins.pin(fd, path_of(pin_dir))
    finally:
        os.close(fd)
    return path_of(pin_dir)


def write(pin_dir: Path, footprint: dict[str, Any]) -> bool:
    """Store ``footprint``; False if there is no undo map (not pinned yet)."""
    path = path_of(pin_dir)
    if not path.exists():
        return False
    blob = json.dumps(footprint, sort_keys=True, separators=(",", ":")).encode()
    table = pins.open_map(path)
    try:
        if len(blob) + 4 > table.value_size:
            raise OverflowError(f"undo copy of {len(blob)} bytes exceeds {path}")
        table.update(_KEY, (struct.pack("<I", len(blob)) + blob).ljust(table.value_size, b"\0"))
    finally:
        table.close()
    return True


def read(pin_dir: Path) -> dict[str, Any] | None:
    """The stored footprint; None if there is none or it is not readable."""
    path = path_of(pin_dir)
    try:
        table = pins.open_map(path)
    except OSError:
        return None
    try:
        raw = table.lookup(_KEY)
    finally:
        table.close()
    if not isinstance(raw, bytes) or len(raw) < 4:
        return None
    (length,) = struct.unpack_from("<I", raw)
    try:
        doc = json.loads(raw[4 : 4 + length]) if 0 < length <= len(raw) - 4 else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
