"""``sfcframe cache NAME``: the live entries of an instance's cache, decoded.

Each cache kind reads its entries through a decoder registered here
(:func:`decoder`): it yields :class:`RawEntry` (key bytes, ``struct sfc_value``
bytes, and the entry's age when the kind can tell it). ``lru`` has no age (the
entry holds no time, and the kernel keeps its LRU order to itself); ``ring``
gives it in packets (ids drawn since the entry's, from the one sequence every
encapsulated packet draws from); ``assoc`` in milliseconds, from the
generation each slot records at insertion (4.19 ms steps). A kind without a
decoder of its own is read through :meth:`CacheView.entries`, without age. The
key is shown through ``KeyPlugin.describe_key()`` (addresses in their usual
notation), the header through ``EncapPlugin.describe_header()``.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from sfcframe.cachemap import GEN_SHIFT, CacheView, generation_now, lane_age
from sfcframe.errors import SfcError


@dataclass
class RawEntry:
    key: bytes
    value: bytes
    age: dict[str, int] | None = None


Decoder = Callable[[CacheView], Iterator[RawEntry]]
DECODERS: dict[str, Decoder] = {}


def decoder(kind: str) -> Callable[[Decoder], Decoder]:
    """Register the decoder of a cache kind (``CacheView.kind``)."""
    def register(function: Decoder) -> Decoder:
        DECODERS[kind] = function
        return function
    return register


@decoder("lru")
def _lru(view: CacheView) -> Iterator[RawEntry]:
    for key, value in view.entries().items():
        yield RawEntry(key, value)


@decoder("ring")
def _ring(view: CacheView) -> Iterator[RawEntry]:
    entries = view.entries()  # {id (host-order __u64): value}
    ids = {key: struct.unpack("=Q", key)[0] for key in entries}
    newest = max(ids.values(), default=0)
    for key, value in sorted(entries.items(), key=lambda kv: -ids[kv[0]]):
        yield RawEntry(key, value, {"packets": newest - ids[key]})


@decoder("assoc")
def _assoc(view: CacheView) -> Iterator[RawEntry]:
    now = generation_now()
    slots = sorted(view.assoc_slots(), key=lambda slot: lane_age(slot[3], now))
    for _bucket, _way, _tag, generation, key, value in slots:
        age_ns = lane_age(generation, now) << GEN_SHIFT
        yield RawEntry(key, value, {"ms": round(age_ns / 1e6)})


def _generic(view: CacheView) -> Iterator[RawEntry]:
    for key, value in view.entries().items():
        yield RawEntry(key, value)


def _field(value: Any) -> Any:
    """Address bytes in their usual notation, the rest as is."""
    if isinstance(value, bytes):
        if len(value) == 4:
            return str(ipaddress.IPv4Address(value))
        if len(value) == 16:
            address = ipaddress.IPv6Address(value)
            return str(address.ipv4_mapped or address)
        return value.hex()
    return value


def _key_fields(spec, kind: str, key: bytes) -> dict[str, Any]:
    if kind == "ring":  # the ring's key is the packet's id
        return {"id": struct.unpack("=Q", key)[0]}
    try:
        fields = spec.key.plugin.describe_key(key, spec.key_params)
    except (ValueError, struct.error, SfcError):
        return {"key": key.hex()}
    return {name: _field(value) for name, value in fields.items()}


def inspect(record, limit: int | None = None) -> dict[str, Any]:
    """The ``cache --json`` document of a running instance (README: "sfcframe cache")."""
    from sfcframe.runtime import state
    from sfcframe.runtime.stats import CACHE_MAP

    if CACHE_MAP not in record.maps:
        raise SfcError(f"{record.name}: mode=static has no cache")
    spec = record.resolved_spec()
    layout = spec.value_layout
    with CacheView.pinned(record.maps[CACHE_MAP], layout.size) as view:
        kind, capacity = view.kind, view.capacity  # assoc: buckets x slots
        raw = list(DECODERS.get(kind, _generic)(view))
    items = []
    for entry in raw[:limit] if limit is not None else raw:
        value = layout.unpack(entry.value)
        item: dict[str, Any] = {"key": _key_fields(spec, kind, entry.key), "plain": value.plain,
                                "age": entry.age}
        if value.plain:
            item["plain_packets"] = value.length
            item["header"] = None
        else:
            item["outer_proto"] = f"{value.outer_proto:#06x}"
            item["header"] = {
                "hex": value.header.hex(),
                "text": spec.encap.plugin.describe_header(value.header, spec.encap_params)}
        if value.area.strip(b"\0"):
            item["area"] = value.area.hex()
        items.append(item)
    return {
        "schema": state.SCHEMA, "name": record.name, "kind": kind, "entries": len(raw),
        "capacity": capacity, "occupancy": round(len(raw) / capacity, 4) if capacity else 0.0,
        "plain_markers": sum(1 for e in raw if layout.unpack(e.value).plain),
        "shown": len(items), "items": items,
    }


def _key_text(key: dict[str, Any]) -> str:
    if {"saddr", "daddr", "sport", "dport"} <= set(key):
        rest = " ".join(f"{k} {v}" for k, v in key.items()
                        if k not in ("saddr", "daddr", "sport", "dport"))
        src, dst = key["saddr"], key["daddr"]
        if ":" in str(src):
            src, dst = f"[{src}]", f"[{dst}]"
        return f"{src}:{key['sport']} > {dst}:{key['dport']} {rest}"
    return " ".join(f"{k} {v}" for k, v in key.items())


def render_text(doc: dict[str, Any]) -> str:
    lines = [f"{doc['name']}: cache {doc['kind']}, {doc['entries']:,} of {doc['capacity']:,} "
             f"entries ({doc['occupancy'] * 100:.1f}%), {doc['plain_markers']:,} plain "
             f"markers; showing {doc['shown']:,}"]
    for item in doc["items"]:
        age = ("age " + ", ".join(f"{v:,} {k}" for k, v in item["age"].items())
               if item["age"] else "age n/a")
        if item["plain"]:
            what = f"plain marker ({item['plain_packets']} packet(s) arrived plain)"
        else:
            what = item["header"]["text"]
        lines.append(f"  {_key_text(item['key'])}  |  {what}  |  {age}")
    if doc["shown"] < doc["entries"]:
        lines.append(f"  ... {doc['entries'] - doc['shown']:,} more (--limit)")
    return "\n".join(lines)
