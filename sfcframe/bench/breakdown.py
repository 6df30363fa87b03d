"""Where the per-packet cost goes: variant builds measured by the same harness.

Every variant is the MPLS/tcpip proxy (``pop=1``, ``max_labels=10``; its
default cache, the LRU hash map, or ``cache=assoc`` for that table's own steps,
``mpls-tcpip-assoc``) rendered with one or two variant switches of the
templates on (:data:`sfcframe.composer.VARIANT_SWITCHES`, documented in
bpf_templates/CONTRACT.md); with every switch off the templates render the
normal build. Kinds:

``component``
    a step removed (the program is no longer correct): its cost is the
    difference to the unmodified row in the same rounds. Bounds the target.
``candidate``
    a behaviour-preserving change proposed for the data path, checked like
    the real rows (counters, oracle frames, empty cache).
``reference``
    a change with different behaviour, measured for comparison only.
``control``
    identical code (an A/A build): how much two builds of the same program
    differ, i.e. the resolution of every other comparison.
"""

from __future__ import annotations

from sfcframe.bench.rows import Row, mpls_build, mpls_stack
from sfcframe.composer import VARIANT_SWITCHES

def _what(switches: tuple[str, ...]) -> str:
    """What the switches change, in words (the result files' ``edits``)."""
    return "; ".join(VARIANT_SWITCHES[name] for name in switches)


#: (name, switches, directions, cache): a step removed, on the default build (the LRU
#: hash map) or, for the assoc table's own steps, on mpls-tcpip-assoc
COMPONENTS = (
    ("no-insert", ("no_insert",), ("ingress",), None),
    ("no-strip", ("no_strip",), ("ingress",), None),
    ("no-insert-no-strip", ("no_insert", "no_strip"), ("ingress",), None),
    ("no-mtu", ("no_mtu",), ("ingress", "egress"), None),
    ("no-store", ("no_store",), ("ingress", "egress"), None),
    ("no-restore", ("no_restore",), ("ingress", "egress"), None),
    ("no-delete", ("no_delete",), ("ingress", "egress"), None),
    ("no-revalidate", ("no_revalidate",), ("ingress", "egress"), None),
    ("no-delete-no-restore", ("no_delete", "no_restore"), ("ingress", "egress"), None),
    ("no-insert", ("no_insert",), ("ingress",), "assoc"),
    ("no-alone", ("no_alone",), ("ingress",), "assoc"),
    # where the insert's time goes: up to finding the buckets, and up to their first read
    ("locate-only", ("assoc_locate_only",), ("ingress",), "assoc"),
    ("first-read", ("assoc_first_read",), ("ingress",), "assoc"),
)
#: (name, switches, kind, cache)
CANDIDATES = (
    ("no-common-lru", ("no_common_lru",), "candidate", None),
    ("hash-map", ("hash_map",), "reference", None),
    ("store-bytes", ("store_bytes",), "reference", None),
    ("adjust-room", ("adjust_room",), "reference", None),
    ("aa-control", ("aa_control",), "control", None),
)
#: depths the candidates are measured at (the baseline rows have the same ids)
CANDIDATE_DEPTHS = (0, 1, 10)
#: the unmodified rows every variant is compared with (measured in the same rounds)
BASELINE_ROWS = ("mpls-tcpip-L0", "mpls-tcpip-L1", "mpls-tcpip-L2", "mpls-tcpip-L10",
                 "mpls-tcpip-assoc-L0", "mpls-tcpip-assoc-L1", "mpls-tcpip-assoc-L10",
                 "mpls-metadata-L1", "mpls-metadata-L10")


def _base(cache: str | None) -> str:
    return "mpls-tcpip" + (f"-{cache}" if cache else "")


def metadata_rows() -> list[Row]:
    """The metadata key on the LRU hash map (cache=lru) against its default ring."""
    rows = []
    lru = mpls_build("metadata", name="mpls-metadata~lru-map", cache="lru")
    for depth in (1, 10):
        rows.append(Row(f"mpls-metadata-L{depth}~lru-map", "reference", lru, str(depth),
                        mpls_stack(depth), "metadata key with cache=lru (LRU hash map) "
                        "instead of its default ring", kind="reference"))
    return rows


def breakdown_rows() -> list[Row]:
    rows = []
    for name, switches, directions, cache in COMPONENTS:
        build = mpls_build("tcpip", name=f"{_base(cache)}~{name}", switches=switches, cache=cache)
        rows.append(Row(f"{_base(cache)}-L10~{name}", "component", build, "10", mpls_stack(10),
                        _what(switches), directions=directions,
                        check=name in ("no-mtu", "no-alone"), kind="component"))
    for name, switches, kind, cache in CANDIDATES:
        build = mpls_build("tcpip", name=f"{_base(cache)}~{name}", switches=switches, cache=cache)
        for depth in CANDIDATE_DEPTHS:
            if name in ("store-bytes", "adjust-room"):
                depth = {0: None, 1: 2}.get(depth, depth)  # 1 label restores nothing
                if depth is None:
                    continue
            rows.append(Row(f"{_base(cache)}-L{depth}~{name}", kind, build, str(depth),
                            mpls_stack(depth), _what(switches), kind=kind))
    return rows + metadata_rows()


def compare(doc: dict) -> list[dict]:
    """Each variant row against the unmodified row of the same id, same rounds:
    the difference of net medians per round (variant minus baseline)."""
    from sfcframe.bench import results as R

    base = {row["id"]: row for row in doc["results"]["rows"]}
    out = []
    for row in doc["results"]["breakdown"]:
        ref = base.get(row["id"].split("~", 1)[0])
        if ref is None:
            continue
        for d, data in row["directions"].items():
            mine = data["net"]["per_round_median"]["rounds"]
            theirs = ref["directions"][d]["net"]["per_round_median"]["rounds"]
            delta = [a - b for a, b in zip(mine, theirs)]
            out.append({
                "variant": row["id"],
                "kind": row["kind"],
                "direction": d,
                "edits": row["edits"],
                "description": row["description"],
                "baseline_net_ns": ref["directions"][d]["net"]["per_round_median"]["median"],
                "variant_net_ns": data["net"]["per_round_median"]["median"],
                "delta_ns": R.across_rounds(delta),
                "problems": row["problems"],
            })
    return out
