"""Building MPLS label stacks with scapy (tests and demos)."""

from __future__ import annotations

from typing import Iterable

from scapy.contrib.mpls import MPLS


def label_stack(entries: Iterable[tuple[int, int, int]]) -> bytes:
    """Bytes of a label stack; the bottom-of-stack bit is set on the last entry."""
    entries = list(entries)
    return b"".join(
        bytes(MPLS(label=label, cos=tc, ttl=ttl, s=int(i == len(entries) - 1)))
        for i, (label, tc, ttl) in enumerate(entries)
    )
