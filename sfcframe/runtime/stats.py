"""What a running instance reports: counters, cache occupancy, memory, attachment.

Everything is read from the pinned maps (``bpf_obj_get``) and rtnetlink, so
any process can ask. The document :func:`collect` returns is ``stats --json``;
its schema is documented in the README ("stats --json schema") and versioned
by ``schema``: fields are only ever added within one schema number.
"""

from __future__ import annotations

import struct
import time
from typing import Any

from sfcframe.errors import SfcError
from sfcframe.maps import fdinfo, map_memory
from sfcframe.runtime import attach, instance, netns, ownership, pins
from sfcframe.runtime.errors import AttachError
from sfcframe.runtime.health import Instance
from sfcframe.runtime.state import SCHEMA, Record

CACHE_MAP = "sfc_cache"
#: cache=assoc: entries evicted, stale entries reclaimed, entries moved (per CPU)
EVENTS_MAP = "sfc_cache_events"
DIRECTIONS = {"ingress": "sfc_ingress_counters", "egress": "sfc_egress_counters"}
MAP_TYPES = {1: "hash", 2: "array", 5: "percpu_hash", 6: "percpu_array", 9: "lru_hash",
             10: "lru_percpu_hash"}


def read_counters(path: str, names: list[str]) -> dict[str, int]:
    """A per-CPU counter array as {outcome: sum over CPUs}."""
    table = pins.open_map(path)
    try:
        totals = {}
        for index, name in enumerate(names):
            values = table.lookup(struct.pack("=I", index)) or []
            if isinstance(values, bytes):
                values = [values]
            totals[name] = sum(struct.unpack("=Q", v[:8])[0] for v in values)
        return totals
    finally:
        table.close()


def read_histogram(path: str) -> list[int]:
    """A per-CPU log2 histogram (64 buckets) summed over CPUs."""
    return list(read_counters(path, [str(i) for i in range(64)]).values())


def histogram_summary(buckets: list[int], what: str) -> dict[str, Any]:
    """Count and percentiles of a log2 histogram: bucket i holds values in
    [2^i, 2^(i+1)), so a percentile is known to within that range."""
    total = sum(buckets)
    out: dict[str, Any] = {"what": what, "count": total, "buckets": buckets}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        if not total:
            out[name] = None
            continue
        need, seen = q * total, 0
        for i, n in enumerate(buckets):
            seen += n
            if seen >= need:
                out[name] = {"lo": 0 if i == 0 else 1 << i, "hi": (1 << (i + 1)) - 1}
                break
    return out


def read_labelled(record: Record) -> dict[str, Any]:
    """Each labelled counter of the stages: what it counts and {label: packets, bytes}."""
    from sfcframe import discovery, labelled

    params = {st["name"]: st.get("params", {}) for st in record.spec.get("stages", [])}
    out: dict[str, Any] = {}
    for map_name, info in sorted(record.labelled_counters.items()):
        other = f"{map_name}_other"
        if map_name not in record.maps or other not in record.maps:
            continue
        try:
            plugin = discovery.load("stage", info["stage"]).plugin
            text = lambda raw, p=plugin, i=info: p.label_text(  # noqa: E731
                i["counter"], raw, params.get(i["stage"], {}))
        except SfcError:  # the stage's distribution is gone: its labels in hex
            text = lambda raw: "0x" + raw.hex()  # noqa: E731
        labels, overflow = pins.open_map(record.maps[map_name]), pins.open_map(record.maps[other])
        try:
            counts = labelled.read(labels, overflow, text)
        finally:
            labels.close()
            overflow.close()
        out[map_name] = {"label": info["label"], "what": info["what"],
                         "max_labels": info["max_labels"], "counts": counts}
    return out


def count_entries(path: str) -> int:
    """Live entries of a pinned cache map (LRU hash: its keys; ring: slots holding an entry)."""
    from sfcframe.cachemap import CacheView

    with CacheView.pinned(path) as view:
        return view.count()


def map_info(path: str) -> dict[str, Any]:
    with pins.opened(path) as fd:
        memory = map_memory(fd)
        info = fdinfo(fd)
    kind = int(info.get("map_type", "0"))
    return {
        "type": MAP_TYPES.get(kind, str(kind)),
        "key_size": memory.key_size,
        "value_size": memory.value_size,
        "max_entries": memory.max_entries,
        "memlock_bytes": memory.memlock,
    }


def attachment(record: Record) -> list[dict[str, Any]]:
    """Each interface as recorded, plus what the kernel shows now (``ok``): the
    same namespace and ifindex, running the recorded programs."""
    rows = []
    live: dict[str, tuple] = {}
    try:
        if ownership.same_namespace(record.footprint()) is None:
            with netns.iproute(record.netns) as ipr:
                for iface in record.interfaces:
                    index, _ = ownership.device(ipr, iface)
                    if index is None:
                        continue
                    _, prog_id = attach.xdp_state(ipr, index)
                    present = [
                        f.direction for f in iface.filters
                        if attach.find_filter(ipr, index, f.parent, f.prio, f.handle, {f.prog_id})
                    ]
                    live[iface.name] = (index, prog_id, present)
    except AttachError:
        pass  # namespace gone: every interface reads as not attached
    for iface in record.interfaces:
        index, prog_id, present = live.get(iface.name, (None, None, []))
        if record.ingress_hook == "tc":  # ingress is one of the TC filters
            xdp_ok = iface.xdp_prog_id is None
        else:
            xdp_ok = iface.xdp_prog_id is not None and prog_id == iface.xdp_prog_id
        tc_ok = all(f.direction in present for f in iface.filters)
        rows.append({
            "name": iface.name,
            "ifindex": iface.ifindex,
            "netns": iface.netns,
            "xdp_mode": iface.xdp_mode,
            "xdp_prog_id": iface.xdp_prog_id,
            "ingress_hook": record.ingress_hook,
            "tc": [
                {"direction": f.direction, "prio": f.prio, "handle": f.handle,
                 "function": f.function, "prog_id": f.prog_id}
                for f in iface.filters
            ],
            "offloads_changed": dict(iface.offloads_changed),
            "offloads_seen": dict(iface.offloads_seen),
            "ok": bool(index is not None and xdp_ok and tc_ok),
        })
    return rows


def _cache(record: Record, maps: dict[str, Any]) -> dict[str, Any] | None:
    """The cache section; None for a build without one (mode=static). cache=assoc adds
    live / stale / busy slots (stale: older than the horizon, freed when an insert
    touches their bucket), the horizon and the table's events since ``up``."""
    from sfcframe.cachemap import EVENTS, CacheView, horizon_generations

    if CACHE_MAP not in record.maps:
        return None
    cache = maps[CACHE_MAP]
    core = record.spec.get("core", {})
    with CacheView.pinned(record.maps[CACHE_MAP]) as view:
        kind, capacity = view.kind, view.capacity
        if kind == "assoc":
            horizon_ms = int(core.get("cache_horizon_ms", 0)) or None
            occupancy = view.occupancy(horizon_generations(horizon_ms) if horizon_ms else None)
            entries = occupancy.entries
        else:
            entries = view.count()
    doc = {
        "kind": kind,
        "entries": entries,
        "capacity": capacity,
        "occupancy": round(entries / capacity, 4) if capacity else 0.0,
        # an entry's key and value (assoc: as recorded at up; the map holds buckets)
        "key_size": record.cache_entry.get("key_size", cache["key_size"]),
        "value_size": record.cache_entry.get("value_size", cache["value_size"]),
        "memlock_bytes": cache["memlock_bytes"],
        "bytes_per_entry": round(cache["memlock_bytes"] / capacity, 1) if capacity else 0.0,
    }
    if kind == "assoc":
        # the map's key is the bucket index and its value a bucket: give the slot too
        doc.update({
            "buckets": cache["max_entries"],
            "slot_size": view.slot_size,
            "live": occupancy.live,
            "stale": occupancy.stale,
            "busy": occupancy.busy,
            "horizon_ms": horizon_ms,
            "events": (read_counters(record.maps[EVENTS_MAP], list(EVENTS))
                       if EVENTS_MAP in record.maps else {}),
        })
    return doc


def assoc_text(cache: dict[str, Any]) -> str:
    """cache=assoc: slots live / stale / busy and the events, as one line of text."""
    events = ", ".join(f"{name} {n:,}" for name, n in (cache.get("events") or {}).items())
    return (f"assoc: {cache['live']:,} live, {cache['stale']:,} stale (older than "
            f"{cache['horizon_ms']} ms), {cache['busy']:,} busy in {cache['buckets']:,} buckets "
            f"x 16 slots; since up: {events}")


def collect(record: Record) -> dict[str, Any]:
    """The ``stats --json`` document of one instance."""
    maps = {name: map_info(path) for name, path in sorted(record.maps.items())}
    # egress before ingress: a packet is counted at ingress before egress, so no
    # reading shows more restored than cached (demo progress lines, watchers)
    read = {
        direction: read_counters(record.maps[map_name], names)
        for (direction, map_name), names in reversed(list(zip(
            DIRECTIONS.items(), (record.ingress_outcomes, record.egress_outcomes))))
    }
    counters = {direction: read[direction] for direction in DIRECTIONS}
    extra = {
        map_name: read_counters(record.maps[map_name], names)
        for map_name, names in sorted(record.extra_counters.items())
        if map_name in record.maps
    }
    interfaces = attachment(record)
    histograms = {
        map_name: histogram_summary(read_histogram(record.maps[map_name]), what)
        for map_name, what in sorted(record.histograms.items()) if map_name in record.maps
    }
    return {
        "schema": SCHEMA,
        "name": record.name,
        "time": round(time.time(), 3),
        "status": record.status if all(i["ok"] for i in interfaces) else "degraded",
        "encap": record.encap,
        "key": record.key,
        "spec": record.spec,
        "describe": record.describe,
        "netns": record.netns,
        "started": round(record.started, 3),
        "settings": instance.read_settings(record),
        "interfaces": interfaces,
        "programs": {
            name: {"prog_type": p["prog_type"], "hook": p["hook"], "prog_id": p["prog_id"]}
            for name, p in sorted(record.programs.items())
        },
        "counters": counters,
        "extra_counters": extra,
        "histograms": histograms,
        "labelled_counters": read_labelled(record),
        "stages": record.stages,
        "ingress_hook": record.ingress_hook,
        "mode": record.mode,
        "static": instance.read_static(record),
        "cache": _cache(record, maps),
        "maps": maps,
        "map_memory_bytes": sum(m["memlock_bytes"] for m in maps.values()),
        "pin_dir": record.pin_dir,
        "warnings": list(record.warnings),
    }


def damaged(name: str, reason: str) -> dict[str, Any]:
    """The document of an instance that cannot be read (README: stats --json schema)."""
    from sfcframe.runtime import state

    return {"schema": SCHEMA, "name": name, "time": round(time.time(), 3), "status": "damaged",
            "reason": reason, "pin_dir": str(state.pin_dir(name))}


def collect_instance(instance: Instance) -> dict[str, Any]:
    """:func:`collect`, or the damaged document saying why it cannot be read."""
    if instance.damaged:
        return damaged(instance.name, instance.problem)
    try:
        return collect(instance.record)
    except (OSError, SfcError, KeyError, ValueError, struct.error) as exc:
        return damaged(instance.name, f"reading its pins failed: {exc}")


def _range_ns(bucket: dict[str, int] | None) -> str:
    """A log2 bucket of nanoseconds in readable units: "2.0-4.1 us"."""
    if bucket is None:
        return "n/a"
    lo, hi = bucket["lo"], bucket["hi"] + 1
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3), ("ns", 1)):
        if hi >= scale * 2 or unit == "ns":
            return f"{lo / scale:.3g}-{hi / scale:.3g} {unit}"
    return f"{lo}-{hi} ns"


def _mib(n: int) -> str:
    return f"{n / 1048576:.2f} MiB" if n >= 1048576 else f"{n / 1024:.1f} KiB"


def render_text(doc: dict[str, Any], previous: dict[str, Any] | None = None) -> str:
    """A short human-readable report; with ``previous``, rates per second too."""
    if doc["status"] == "damaged":
        return (f"{doc['name']}: damaged: {doc['reason']}\n"
                f"  `sfcframe down {doc['name']}` cleans it up")
    static = doc.get("mode") == "static"
    lines = [
        f"{doc['name']}: {doc['encap']}/{doc['key']}{' static' if static else ''} {doc['status']}"
        f"{' in netns ' + doc['netns'] if doc['netns'] else ''}  "
        f"strict={str(doc['settings']['strict']).lower()} ({doc['settings']['source']})",
    ]
    for iface in doc["interfaces"]:
        tc = ", ".join(f"tc {t['direction']}" for t in iface["tc"])
        changed = ", ".join(f"{k} was {v}" for k, v in sorted(iface["offloads_changed"].items()))
        xdp = (f"xdp {iface['xdp_mode']} (prog {iface['xdp_prog_id']}), "
               if iface.get("xdp_mode") else "")
        lines.append(
            f"  {iface['name']:<12} {xdp}{tc}"
            f"{'' if iface['ok'] else '  NOT ATTACHED AS RECORDED'}"
            f"{'  [offloads off: ' + changed + ']' if changed else ''}"
        )
    elapsed = (doc["time"] - previous["time"]) if previous else 0
    sections = [(d, doc["counters"][d]) for d in ("ingress", "egress")]
    sections += [(m, c) for m, c in doc["extra_counters"].items()]
    for title, counts in sections:
        old = None
        if previous and elapsed > 0:
            old = previous["counters"].get(title) or previous["extra_counters"].get(title)
        parts = []
        for outcome, value in counts.items():
            rate = f" ({(value - old[outcome]) / elapsed:,.0f}/s)" if old else ""
            if value or rate:
                parts.append(f"{outcome} {value:,}{rate}")
        total = sum(counts.values())
        lines.append(f"  {title:<8} {total:,} packets: {', '.join(parts) or '-'}")
    cache = doc["cache"]
    if cache is not None:
        layout = f"key {cache['key_size']} B + value {cache['value_size']} B"
        lines.append(
            f"  cache    {cache['entries']:,} / {cache['capacity']:,} entries "
            f"({cache['occupancy'] * 100:.1f}%), {layout}, "
            f"{cache['bytes_per_entry']} B/entry as charged, {_mib(cache['memlock_bytes'])}"
        )
        if cache.get("kind") == "assoc":
            lines.append(f"  cache    {assoc_text(cache)}")
    for name, hist in doc.get("histograms", {}).items():
        if hist["count"]:
            lines.append(f"  {name}: {hist['count']:,} samples; p50 {_range_ns(hist['p50'])}, "
                         f"p90 {_range_ns(hist['p90'])}, p99 {_range_ns(hist['p99'])} "
                         f"({hist['what']})")
        else:
            lines.append(f"  {name}: no samples yet ({hist['what']})")
    for name, lc in doc.get("labelled_counters", {}).items():
        shown = sorted(lc["counts"].items(), key=lambda kv: -kv[1]["packets"])
        parts = [f"{label} {c['packets']:,} pkts {c['bytes']:,} B" for label, c in shown
                 if c["packets"] or label != "other"]
        lines.append(f"  {name} per {lc['label']} ({len(lc['counts']) - 1} of at most "
                     f"{lc['max_labels']:,}): {'; '.join(parts[:8]) or '-'}"
                     f"{' ...' if len(parts) > 8 else ''}")
    if doc.get("static") is not None:
        header = doc["static"]["header"]
        lines.append(f"  static   header {header or 'none'} ({doc['static']['source']})")
    lines.append(f"  memory   {_mib(doc['map_memory_bytes'])} in {len(doc['maps'])} maps")
    for warning in doc["warnings"]:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)

