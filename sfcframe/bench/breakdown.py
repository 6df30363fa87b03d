"""Where the per-packet cost goes: variant builds measured by the same harness.

Every variant is the rendered MPLS/tcpip proxy (``pop=1``, ``max_labels=10``;
its default cache, the LRU hash map, or ``cache=assoc`` for the edits of that
table, ``mpls-tcpip-assoc``) with one textual edit of ``sfc_proxy.c``
(:class:`~sfcframe.bench.cost.Edit`; an edit that no longer matches the
templates fails loudly). The templates are never changed. Kinds:

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

from sfcframe.bench.cost import Edit, Row, mpls_build, mpls_stack

# ---- edits -------------------------------------------------------------------------

NO_INSERT = Edit(
    "ingress: no cache insert",
    r"switch \(sfc_cache_insert\(&key, val\)\) \{",
    "switch (SFC_CACHE_STORED) {",
)
NO_STRIP = Edit(
    "ingress: no strip (bpf_xdp_adjust_head + Ethernet rewrite)",
    r"rc = sfc_strip\(ctx, parse\.strip_len, parse\.inner_proto\);",
    "rc = SFC_NEXT;",
)
NO_DELETE = Edit(
    "egress: no cache delete",
    r"\t/\* 5\. ours to delete \*/\n\tif \(sfc_cache\.delete\(key\)\)\n\t\treturn -1;\n",
    "",
)
#: cache=lru: what a take adds to lookup + copy + delete so that it never returns a
#: copy of a node reused meanwhile (the second and third lookup, the barrier, the
#: stamp compares)
NO_REVALIDATE = Edit(
    "egress: no re-validation of the copy (cache=lru: one lookup, copy, delete)",
    r"\tstamp = \*\(volatile __u32 \*\)&cached->stamp;\n.*?\t/\* 5\. ours to delete \*/\n",
    "\t__builtin_memcpy(val, &cached->val, sizeof(*val));\n",
)
NO_MTU = Edit(
    "egress: no bpf_check_mtu",
    r"\tif \(bpf_check_mtu\(skb, 0, &mtu_len, \(__s32\)len, 0\)\)\n\t\treturn SFC_EG_TOO_BIG;\n",
    "",
)
NO_STORE = Edit(
    "egress: no header stores (room opened by change_head, MACs + ethertype written, header not)",
    r"#pragma unroll\n\tfor \(int i = 0; i < SFC_HDR_CAPACITY / 4; i\+\+\) \{.*?\n\t\}\n"
    r"\t/\* a length that is not a whole number of words.*?\n\t\}\n",
    "",
)
NO_RESTORE = Edit(
    "egress: no restore (lookup + copy + delete only)",
    r"return sfc_eg_finish\(sfc_restore\(skb, val\)\);",
    "return sfc_eg_finish(SFC_EG_RESTORED);",
)
NO_COMMON_LRU = Edit(
    "cache map flag BPF_F_NO_COMMON_LRU (per-CPU LRU lists)",
    r'BPF_TABLE\("lru_hash", struct sfc_key, struct sfc_lru_entry, sfc_cache, SFC_CACHE_SIZE\);',
    'BPF_F_TABLE("lru_hash", struct sfc_key, struct sfc_lru_entry, sfc_cache, SFC_CACHE_SIZE, '
    "BPF_F_NO_COMMON_LRU);",
)
PLAIN_HASH = Edit(
    "cache map as a preallocated hash map (no LRU eviction)",
    r'BPF_TABLE\("lru_hash", struct sfc_key, struct sfc_lru_entry, sfc_cache, SFC_CACHE_SIZE\);',
    'BPF_TABLE("hash", struct sfc_key, struct sfc_lru_entry, sfc_cache, SFC_CACHE_SIZE);',
)
#: reference: since the core restores with bpf_skb_change_head and direct
#: stores (non-GSO skbs), this variant writes ethertype + header with one
#: bpf_skb_store_bytes after change_head instead (the old "direct-store"
#: candidate, the other way round)
STORE_BYTES = Edit(
    "egress: bpf_skb_store_bytes instead of direct stores of ethertype + header (after change_head)",
    r"\tdst = data \+ offsetof\(struct ethhdr, h_proto\);\n.*?"
    r"\t/\* a length that is not a whole number of words.*?\n\t\}\n",
    "\tif (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &val->outer_proto,\n"
    "\t\t\t\tlen + sizeof(val->outer_proto), 0))\n"
    "\t\treturn SFC_EG_ERROR;\n",
)

#: cache=assoc: the check for another run inserting the same key at that moment
#: (the second look at both buckets after the slot is claimed and written)
NO_ALONE = Edit(
    "ingress: no concurrent-insert check (cache=assoc)",
    r"if \(!sfc_assoc_alone\(&at, key\)\) \{",
    "if (0) {",
)

#: reference: the old restore, bpf_skb_adjust_room (room after the MAC header,
#: which the kernel moves) + bpf_skb_store_bytes, for every skb. The core now
#: uses bpf_skb_change_head + direct stores for non-GSO skbs (this edit's former
#: "change-head" candidate, measured ~130 ns cheaper) and keeps this for GSO.
ADJUST_ROOM = Edit(
    "egress: the old restore, bpf_skb_adjust_room + bpf_skb_store_bytes for every skb",
    r"\tif \(skb->gso_size\) \{\n(.*?)\t\}\n\t/\* 2\. keep the MAC addresses.*?"
    r"\t/\* a length that is not a whole number of words.*?\n\t\}\n"
    r"\treturn SFC_EG_RESTORED;\n",
    lambda m: m.group(1).replace("\n\t\t", "\n\t").lstrip("\t").join(("\t", "")),
)
#: A/A control: a comment added, nothing else. Its difference to the unmodified
#: build is how much two identical builds differ (map and code placement).
CONTROL = Edit(
    "a/a control: identical code (a comment added)",
    r"(int sfc_ingress\(SFC_INGRESS_CTX \*ctx\)\n)",
    r"/* a/a control */\n\1",
)

#: (name, edits, directions, cache): a step removed, on the default build (the LRU
#: hash map) or, for the assoc table's own steps, on mpls-tcpip-assoc
COMPONENTS = (
    ("no-insert", (NO_INSERT,), ("ingress",), None),
    ("no-strip", (NO_STRIP,), ("ingress",), None),
    ("no-insert-no-strip", (NO_INSERT, NO_STRIP), ("ingress",), None),
    ("no-mtu", (NO_MTU,), ("ingress", "egress"), None),
    ("no-store", (NO_STORE,), ("ingress", "egress"), None),
    ("no-restore", (NO_RESTORE,), ("ingress", "egress"), None),
    ("no-delete", (NO_DELETE,), ("ingress", "egress"), None),
    ("no-revalidate", (NO_REVALIDATE,), ("ingress", "egress"), None),
    ("no-delete-no-restore", (NO_DELETE, NO_RESTORE), ("ingress", "egress"), None),
    ("no-insert", (NO_INSERT,), ("ingress",), "assoc"),
    ("no-alone", (NO_ALONE,), ("ingress",), "assoc"),
)
#: (name, edits, kind, cache)
CANDIDATES = (
    ("no-common-lru", (NO_COMMON_LRU,), "candidate", None),
    ("hash-map", (PLAIN_HASH,), "reference", None),
    ("store-bytes", (STORE_BYTES,), "reference", None),
    ("adjust-room", (ADJUST_ROOM,), "reference", None),
    ("aa-control", (CONTROL,), "control", None),
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
    for name, edits, directions, cache in COMPONENTS:
        build = mpls_build("tcpip", name=f"{_base(cache)}~{name}", edits=edits, cache=cache)
        rows.append(Row(f"{_base(cache)}-L10~{name}", "component", build, "10", mpls_stack(10),
                        "; ".join(e.name for e in edits), directions=directions,
                        check=name in ("no-mtu", "no-alone"), kind="component"))
    for name, edits, kind, cache in CANDIDATES:
        build = mpls_build("tcpip", name=f"{_base(cache)}~{name}", edits=edits, cache=cache)
        for depth in CANDIDATE_DEPTHS:
            if name in ("store-bytes", "adjust-room"):
                depth = {0: None, 1: 2}.get(depth, depth)  # 1 label restores nothing
                if depth is None:
                    continue
            rows.append(Row(f"{_base(cache)}-L{depth}~{name}", kind, build, str(depth),
                            mpls_stack(depth), "; ".join(e.name for e in edits), kind=kind))
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
