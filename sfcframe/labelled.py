"""A stage's labelled counters as user space reads them.

A labelled counter (``StagePlugin.labelled_counters()``) is two maps: a hash map
``stage_<stage>_<name>`` from label bytes to ``struct sfc_label_count {__u64
packets; __u64 bytes;}`` (bounded: at most ``max_labels`` labels) and a per-CPU
array ``stage_<stage>_<name>_other`` of one such count for what arrived while the
hash map was full. Both readers here take :class:`sfcframe.bpfsys.Map` objects,
so the test kit (fds of a loaded module) and ``sfcframe stats`` (pinned maps)
share them.
"""

from __future__ import annotations

import struct
from typing import Callable

from sfcframe.bpfsys import Map

COUNT = struct.Struct("=QQ")  # packets, bytes
#: the label the overflow counter is shown under
OTHER = "other"


def map_names(stage: str, name: str) -> tuple[str, str]:
    """(hash map, overflow array) of labelled counter ``name`` of ``stage``."""
    base = f"stage_{stage}_{name}"
    return base, f"{base}_other"


def _count(raw: bytes | list[bytes] | None) -> tuple[int, int]:
    if raw is None:
        return 0, 0
    parts = raw if isinstance(raw, list) else [raw]
    packets = sum(COUNT.unpack_from(p)[0] for p in parts)
    return packets, sum(COUNT.unpack_from(p)[1] for p in parts)


def read(labels: Map, other: Map, text: Callable[[bytes], str] = lambda b: "0x" + b.hex()
         ) -> dict[str, dict[str, int]]:
    """{label text: {"packets": n, "bytes": n}} including ``other`` (always present)."""
    out: dict[str, dict[str, int]] = {}
    for key in list(labels.keys()):
        packets, nbytes = _count(labels.lookup(key))
        out[text(key)] = {"packets": packets, "bytes": nbytes}
    packets, nbytes = _count(other.lookup(struct.pack("=I", 0)))
    out[OTHER] = {"packets": packets, "bytes": nbytes}
    return out


def clear(labels: Map, other: Map) -> None:
    """Forget every label and zero the overflow counter (tests)."""
    for key in list(labels.keys()):
        labels.delete(key)
    other.update(struct.pack("=I", 0), [bytes(COUNT.size)] * other.slots)
