"""Cache memory as the kernel charges it, per encapsulation, key and capacity.

Each configuration is rendered, compiled and loaded (so it also passes the
verifier); the cache map's ``memlock`` is read from ``/proc/self/fdinfo``
(:func:`sfcframe.maps.map_memory`). A hash or LRU map is preallocated at
creation, so the figure does not depend on how full the cache is.

The ``model`` next to each measurement is the kernel's accounting written out.
cache=lru (kernel/bpf/hashtab.c, ``htab_map_mem_usage``): every entry costs a
``struct htab_elem`` header plus the key and the value, each rounded up to 8
bytes, and every bucket 16 bytes, with the bucket count rounded up to a power of
two. cache=ring (kernel/bpf/arraymap.c): one slot per entry (an 8-byte tag + the
value, rounded up to 8), no header, no buckets. cache=assoc: an mmapable array of
buckets, each 64 bytes of lanes (a 16-bit tag and a 16-bit generation per slot)
and 16 slots of key + value (no padding for 4-byte-aligned keys); the kernel
page-aligns the array's header and its data, and an entry is a slot, so bytes
per entry are memlock / (buckets x 16). The residual is the map's fixed part
(struct bpf_htab or bpf_array, and for assoc the page rounding).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from sfcframe.bench import results as R

DEFAULT_CACHE_SIZES = (10000, 16384)
#: cache sizes measured for the tcpip key's two caches at 10 labels only (pop=1 and pop=0)
LARGE_CACHE_SIZES = (100000,)
MPLS_MAX_LABELS = (1, 2, 5, 10, 16)
NSH_MAX_MD_BYTES = (16, 64)
#: (key, cache) pairs: tcpip on the LRU hash map (its default) and the assoc table,
#: metadata on its default ring and the LRU hash map
KEYS = (("tcpip", "assoc"), ("tcpip", "lru"), ("metadata", "ring"), ("metadata", "lru"))
RING_TAG_BYTES = 8
ASSOC_LANE_BYTES = 4  # a 16-bit tag lane and a 16-bit generation lane per slot
PAGE = 4096
HTAB_ELEM_HEADER = 48  # sizeof(struct htab_elem) on 64-bit kernels
BUCKET_BYTES = 16  # sizeof(struct bucket)

_MAP_DECL = re.compile(
    r"BPF_(?:F_)?TABLE(?:_PINNED)?\(\s*\"\w+\"\s*,[^,]+,[^,]+,\s*(\w+)"
    r"|BPF_(?:PERCPU_)?ARRAY\(\s*(\w+)"
    r"|BPF_(?:PERCPU_)?HASH\(\s*(\w+)"
)


def _r8(n: int) -> int:
    return (n + 7) // 8 * 8


def _pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


def _page(n: int) -> int:
    return (n + PAGE - 1) // PAGE * PAGE


def configurations(cache_sizes=DEFAULT_CACHE_SIZES,
                   large_sizes=LARGE_CACHE_SIZES) -> list[dict[str, Any]]:
    configs = []
    for cache_size in large_sizes:
        for cache in ("assoc", "lru"):
            for pop in (1, 0):
                configs.append({"encap": "mpls", "key": "tcpip", "cache_size": cache_size,
                                "params": {"max_labels": 10, "pop": pop, "cache": cache}})
            configs.append({"encap": "mpls", "key": "tcpip", "cache_size": cache_size,
                            "params": {"max_labels": 10, "family": "ipv6", "cache": cache}})
    for cache_size in cache_sizes:
        for key, cache in KEYS:
            for max_labels in MPLS_MAX_LABELS:
                configs.append({"encap": "mpls", "key": key, "cache_size": cache_size,
                                "params": {"max_labels": max_labels, "cache": cache}})
            for md in NSH_MAX_MD_BYTES:
                configs.append({"encap": "nsh", "key": key, "cache_size": cache_size,
                                "params": {"max_md_bytes": md, "cache": cache}})
    return configs


def map_names(c_text: str) -> list[str]:
    names = []
    for m in _MAP_DECL.finditer(c_text):
        name = next(g for g in m.groups() if g)
        if name not in names:
            names.append(name)
    return names


def measure(config: dict[str, Any]) -> dict[str, Any]:
    from sfcframe.cachemap import assoc_layout, table_key_size
    from sfcframe.composer import MAIN_FILE
    from sfcframe.loader import bcc_module
    from sfcframe.maps import map_memory
    from sfcframe.testkit.kernel import KernelProxy

    proxy = KernelProxy(config["encap"], config["key"],
                        {**config["params"], "cache_size": config["cache_size"]})
    spec, module = proxy.spec, proxy.module
    try:
        lib = bcc_module().libbcc.lib
        mem = map_memory(lib.bpf_table_fd(module.bpf.module, b"sfc_cache"))
        all_maps = {}
        for name in map_names(proxy.rendered.files[MAIN_FILE]):
            fd = lib.bpf_table_fd(module.bpf.module, name.encode())
            if fd >= 0:
                all_maps[name] = map_memory(fd).memlock
        instructions = dict(module.instructions)
        table_key = table_key_size(module.table("sfc_cache"))
    finally:
        proxy.close()
    kind = spec.cache_kind
    entries = mem.max_entries
    if kind == "ring":
        # the slot is the entry: tag (the id, the key) + the value; indexed, no buckets
        buckets = 0
        elem = _r8(mem.value_size)
        key_size, value_size = RING_TAG_BYTES, spec.value_size
        modelled = elem * mem.max_entries
    elif kind == "assoc":
        # a bucket of 16 slots is one array element; page-aligned header and data
        layout = assoc_layout(mem, table_key, spec.value_size)
        buckets = mem.max_entries
        entries = layout["capacity"]
        key_size, value_size = layout["key_size"], layout["value_size"]
        elem = ASSOC_LANE_BYTES + layout["slot_size"]
        modelled = _page(buckets * mem.value_size) + PAGE
    else:
        buckets = _pow2(mem.max_entries)
        elem = HTAB_ELEM_HEADER + _r8(mem.key_size) + _r8(mem.value_size)
        key_size, value_size = mem.key_size, mem.value_size
        modelled = elem * mem.max_entries + BUCKET_BYTES * buckets
    return {
        "encap": config["encap"],
        "key": config["key"],
        "cache": kind,
        "params": {**spec.encap_params, **spec.key_params},
        "cache_size": config["cache_size"],
        "header_capacity": spec.header_capacity,
        "key_size": key_size,
        "value_size": value_size,
        "key_value_bytes": key_size + value_size,
        "max_entries": mem.max_entries,
        "entries": entries,
        "memlock_bytes": mem.memlock,
        "bytes_per_entry": round(mem.memlock / entries, 2),
        "model": {
            "element_bytes": elem,
            "buckets": buckets,
            "bucket_bytes_per_entry": (0.0 if kind == "assoc" else
                                       round(BUCKET_BYTES * buckets / mem.max_entries, 2)),
            "modelled_bytes": modelled,
            "fixed_residual_bytes": mem.memlock - modelled,
        },
        "all_maps_memlock_bytes": sum(all_maps.values()),
        "maps": all_maps,
        "instructions": instructions,
    }


def _row_label(row: dict) -> str:
    p = row["params"]
    detail = (f"max_labels={p['max_labels']} pop={p['pop']}" if row["encap"] == "mpls"
              else f"max_md_bytes={p['max_md_bytes']}")
    family = f" family={p['family']}" if p.get("family", "ipv4") != "ipv4" else ""
    return f"{row['encap']} {detail} / {row['key']}{family} cache={row.get('cache', 'lru')} / " \
           f"{row['cache_size']}"


def targets(rows: list[dict]) -> list[dict]:
    """Issue 12: the assoc table at <= 80 B per entry (10,000 and 100,000 entries); the
    earlier limits (key + value <= 64 B, <= 128 B per entry) for every key and cache."""
    out = []
    ipv4 = [r for r in rows if r["key"] == "tcpip" and r.get("cache") == "assoc"
            and r["encap"] == "mpls" and r["params"]["max_labels"] == 10
            and r["params"].get("family", "ipv4") == "ipv4"]
    for size in (10000, 100000):
        here = [r for r in ipv4 if r["cache_size"] == size]
        if here:
            worst = max(here, key=lambda r: r["bytes_per_entry"])
            out.append(R.target(
                f"MPLS 10 labels, key tcpip (IPv4), cache=assoc, {size} entries: bytes per "
                "entry as the kernel charges it", "<= 80 B (memlock / entries)",
                {"worst_row": _row_label(worst), "bytes_per_entry": worst["bytes_per_entry"],
                 "rows": {_row_label(r): r["bytes_per_entry"] for r in here}},
                worst["bytes_per_entry"] <= 80,
                "slot = 24-byte key + the value (40 B with pop=1, 44 B with pop=0) + 4 B of "
                "lanes; the IPv6 key (60 B) cannot meet it"))
    for key, cache in KEYS:
        mpls = [r for r in rows if r["encap"] == "mpls" and r["params"]["max_labels"] <= 10
                and r["key"] == key and r.get("cache", "lru") == cache
                and r["params"].get("family", "ipv4") == "ipv4"
                and r["cache_size"] in DEFAULT_CACHE_SIZES and r["params"]["pop"] == 1]
        if not mpls:
            continue
        worst_kv = max(mpls, key=lambda r: r["key_value_bytes"])
        worst_entry = max(mpls, key=lambda r: r["bytes_per_entry"])
        by_size = {}
        for r in mpls:
            by_size.setdefault(r["cache_size"], []).append(r)
        per_size = {
            size: {"worst": _row_label(max(rs, key=lambda r: r["bytes_per_entry"])),
                   "bytes_per_entry_max": max(r["bytes_per_entry"] for r in rs),
                   "bytes_per_entry_min": min(r["bytes_per_entry"] for r in rs)}
            for size, rs in sorted(by_size.items())
        }
        why = {"lru": "buckets are rounded up to a power of two: at 10000 entries 16384 "
                      "buckets add 26.2 B/entry, at 16384 entries 16 B/entry",
               "ring": "an array slot per entry: no element header, no buckets",
               "assoc": "a slot per entry and 4 B of lanes: no element header, no bucket "
                        "array"}[cache]
        out += [
            R.target(f"MPLS (max_labels <= 10) key + value, key {key} (cache={cache})",
                     "<= 64 bytes",
                     {"worst_row": _row_label(worst_kv), "bytes": worst_kv["key_value_bytes"]},
                     worst_kv["key_value_bytes"] <= 64),
            R.target(f"MPLS (max_labels <= 10) bytes per entry as the kernel charges it, "
                     f"key {key} (cache={cache})",
                     "<= 128 bytes (memlock / entries)",
                     {"worst_row": _row_label(worst_entry),
                      "bytes_per_entry": worst_entry["bytes_per_entry"],
                      "by_cache_size": per_size},
                     worst_entry["bytes_per_entry"] <= 128, why),
        ]
    return out


def run_memory(cache_sizes=DEFAULT_CACHE_SIZES, large_sizes=LARGE_CACHE_SIZES,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    from sfcframe.bench import machine
    from sfcframe.loader import require_root

    require_root()
    say = progress or (lambda _msg: None)
    rows = []
    for config in configurations(cache_sizes, large_sizes):
        say(f"{config['encap']} {config['params']} key={config['key']} "
            f"cache_size={config['cache_size']}")
        rows.append(measure(config))
    method = {
        "summary": " ".join((__doc__ or "").split()),
        "source": "/proc/self/fdinfo/<map fd>: memlock, key_size, value_size, max_entries",
        "bytes_per_entry": "memlock of the cache map (sfc_cache) / the entries it holds "
                           "(max_entries; cache=assoc: buckets x 16 slots)",
        "defaults": "mpls pop=1 (the label addressing this SF is not cached); metadata "
                    "carrier=data_meta (the carrier does not change the cache map)",
        "large": f"cache_size {', '.join(map(str, large_sizes))}: the tcpip key's assoc and "
                 "lru caches only, MPLS 10 labels with pop=1 and pop=0, and family=ipv6",
    }
    parameters = {
        "cache_sizes": list(cache_sizes),
        "large_cache_sizes": list(large_sizes),
        "mpls_max_labels": list(MPLS_MAX_LABELS),
        "nsh_max_md_bytes": list(NSH_MAX_MD_BYTES),
        "keys": [f"{k} cache={c}" for k, c in KEYS],
    }
    return R.document("memory", parameters, method, {"rows": rows}, targets(rows),
                      machine.describe())
