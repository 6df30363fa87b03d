"""Reading maps of a loaded build: counters, cache entries, kernel memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MapMemory:
    key_size: int
    value_size: int
    max_entries: int
    memlock: int  # bytes the kernel charges for the map

    @property
    def bytes_per_entry(self) -> float:
        return self.memlock / self.max_entries if self.max_entries else 0.0

    def as_dict(self) -> dict:
        return {
            "key_size": self.key_size,
            "value_size": self.value_size,
            "max_entries": self.max_entries,
            "memlock_bytes": self.memlock,
            "bytes_per_entry": round(self.bytes_per_entry, 1),
        }


def fdinfo(fd: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields


def map_memory(fd: int) -> MapMemory:
    info = fdinfo(fd)
    return MapMemory(
        key_size=int(info["key_size"]),
        value_size=int(info["value_size"]),
        max_entries=int(info["max_entries"]),
        memlock=int(info.get("memlock", "0")),
    )


def counters(table, names: list[str]) -> dict[str, int]:
    """Sum a per-CPU counter array into {outcome name: packets}."""
    totals = {}
    for index, name in enumerate(names):
        values = table[table.Key(index)]
        totals[name] = int(sum(values))
    return totals
