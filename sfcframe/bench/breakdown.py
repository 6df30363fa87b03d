"""Where the per-packet cost goes: variant builds measured by the same harness.

Every variant is the rendered MPLS/tcpip proxy (``pop=1``, ``max_labels=10``)
with one textual edit of ``sfc_proxy.c`` (:class:`~sfcframe.bench.cost.Edit`;
an edit that no longer matches the templates fails loudly). The templates are
never changed. Three kinds:

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
    r"(\t__builtin_memcpy\(val, cached, sizeof\(\*val\)\);\n)\tsfc_cache\.delete\(key\);\n",
    r"\1",
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
    r'BPF_TABLE\("lru_hash", struct sfc_key, struct sfc_value, sfc_cache, SFC_CACHE_SIZE\);',
    'BPF_F_TABLE("lru_hash", struct sfc_key, struct sfc_value, sfc_cache, SFC_CACHE_SIZE, '
    "BPF_F_NO_COMMON_LRU);",
)
PLAIN_HASH = Edit(
    "cache map as a preallocated hash map (no LRU eviction)",
    r'BPF_TABLE\("lru_hash", struct sfc_key, struct sfc_value, sfc_cache, SFC_CACHE_SIZE\);',
    'BPF_TABLE("hash", struct sfc_key, struct sfc_value, sfc_cache, SFC_CACHE_SIZE);',
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

# ---- candidate: the tcpip cache in a BPF array instead of a hash map -----------------
#
# The variants below replace the core's cache=lru section (the LRU hash map and
# its sfc_cache_insert/take/remove/mark_plain) by a BPF_ARRAY the program manages
# itself: no hashing in the kernel, no bucket lock, no LRU lists; array lookups
# are inlined by the verifier. The same contract as bpf_templates/_cache.j2. The
# metadata key's ring was such a candidate and is the core's cache=ring now.
# sfc_cache stays (1 entry, unused) so user space finds a cache map. Simplified:
# a second identical plain packet is a collision (the core's markers count them).

_CACHE_SECTION = (r'BPF_TABLE\("lru_hash", struct sfc_key, struct sfc_value, sfc_cache, '
                  r'SFC_CACHE_SIZE\);\n.*?(?=/\* ======== end core: cache)')
_UNUSED_CACHE = ('BPF_TABLE("lru_hash", struct sfc_key, struct sfc_value, sfc_cache, 1);'
                 '\t/* unused by this variant */\n')
_BARRIER = 'asm volatile("" ::: "memory");'

_COMMON = r"""
static __always_inline int sfc_cache_mark_plain(const struct sfc_key *key)
{
	struct sfc_value *val = sfc_scratch_value(SFC_SCRATCH_PLAIN);

	if (!val)
		return SFC_CACHE_FAILED;
	__builtin_memset(val, 0, sizeof(*val));
	val->flags = SFC_VALUE_PLAIN;
	val->len = 1;
	return sfc_cache_insert(key, val);
}

static __always_inline void sfc_cache_remove(const struct sfc_key *key)
{
	struct sfc_value tmp;

	sfc_cache_take(key, &tmp);
}
"""

_HASH_EQ = r"""
static __always_inline __u32 sfc_key_hash(const struct sfc_key *key)
{
	const __u32 *w = (const __u32 *)key;
	__u32 h = 0x9E3779B9U;

#pragma unroll
	for (int i = 0; i < sizeof(*key) / 4; i++) {
		h ^= w[i];
		h *= 0x85EBCA6BU;
		h ^= h >> 15;
	}
	return h;
}

static __always_inline int sfc_key_eq(const struct sfc_key *a, const struct sfc_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 diff = 0;

#pragma unroll
	for (int i = 0; i < sizeof(*a) / 4; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}
"""

#: 4-way set-associative table, set = hash(key) % sets; a full set evicts a
#: pseudo-random way. state: bit 0 live, bit 1 being written, bits 2.. a
#: generation that makes every claim visible to a concurrent reader.
SETASSOC_TABLE = _UNUSED_CACHE + r"""
#define SFC_WAYS	4
#define SFC_SETS	((SFC_CACHE_SIZE + SFC_WAYS - 1) / SFC_WAYS)
#define SFC_ST_VALID	0x1ULL
#define SFC_ST_BUSY	0x2ULL

struct sfc_slot {
	__u64 state;	/* 64 bits: BPF has 64-bit cmpxchg on every -mcpu */
	struct sfc_key key;
	struct sfc_value val;
};

BPF_ARRAY(sfc_table, struct sfc_slot, SFC_SETS * SFC_WAYS);
""" + _HASH_EQ + r"""
static __always_inline int sfc_cache_insert(const struct sfc_key *key, const struct sfc_value *val)
{
	__u32 h = sfc_key_hash(key);
	__u32 base = (h % SFC_SETS) * SFC_WAYS;
	struct sfc_slot *victim = 0;
	__u64 seen = 0;

#pragma unroll
	for (int w = 0; w < SFC_WAYS; w++) {
		__u32 idx = base + w;
		struct sfc_slot *s = sfc_table.lookup(&idx);
		__u64 st;

		if (!s)
			return SFC_CACHE_FAILED;
		st = s->state;
		if (st & SFC_ST_VALID) {
			if (sfc_key_eq(&s->key, key))
				return SFC_CACHE_EXISTS;
		} else if (!victim && !(st & SFC_ST_BUSY)) {
			victim = s;
			seen = st;
		}
	}
	if (!victim) {			/* set full: evict a pseudo-random way */
		__u32 idx = base + ((h >> 16) & (SFC_WAYS - 1));

		victim = sfc_table.lookup(&idx);
		if (!victim)
			return SFC_CACHE_FAILED;
		seen = victim->state;
		if (seen & SFC_ST_BUSY)
			return SFC_CACHE_FAILED;
	}
	/* claim the slot; a concurrent writer or reader makes this fail */
	if (__sync_val_compare_and_swap(&victim->state, seen,
					(seen | SFC_ST_BUSY) & ~SFC_ST_VALID) != seen)
		return SFC_CACHE_FAILED;
	__builtin_memcpy(&victim->key, key, sizeof(*key));
	__builtin_memcpy(&victim->val, val, sizeof(*val));
	__BARRIER__
	victim->state = ((seen & ~3ULL) + 4) | SFC_ST_VALID;
	return SFC_CACHE_STORED;
}

static __always_inline int sfc_cache_take(const struct sfc_key *key, struct sfc_value *val)
{
	__u32 base = (sfc_key_hash(key) % SFC_SETS) * SFC_WAYS;

#pragma unroll
	for (int w = 0; w < SFC_WAYS; w++) {
		__u32 idx = base + w;
		struct sfc_slot *s = sfc_table.lookup(&idx);
		__u64 st;

		if (!s)
			return -1;
		st = s->state;
		if (!(st & SFC_ST_VALID) || !sfc_key_eq(&s->key, key))
			continue;
		__BARRIER__
		__builtin_memcpy(val, &s->val, sizeof(*val));
		/* consume: fails if a writer claimed the slot meanwhile */
		if (__sync_val_compare_and_swap(&s->state, st, st & ~SFC_ST_VALID) != st)
			return -1;
		return 0;
	}
	return -1;
}
""" + _COMMON

#: cache-line conscious: the set's states and 32-bit key fingerprints share one
#: 48-byte line (sfc_sets), key + value fill one 64-byte slot (sfc_slots).
#: Insert touches the set line and the slot it writes; take the set line and the
#: one slot whose fingerprint matches. Same state protocol as above.
SETASSOC_FP_TABLE = _UNUSED_CACHE + r"""
#define SFC_WAYS	4
#define SFC_SETS	((SFC_CACHE_SIZE + SFC_WAYS - 1) / SFC_WAYS)
#define SFC_ST_VALID	0x1ULL
#define SFC_ST_BUSY	0x2ULL

struct sfc_set {
	__u64 state[SFC_WAYS];	/* bit 0 live, bit 1 being written, bits 2.. generation */
	__u32 fp[SFC_WAYS];	/* hash of the live key */
};

struct sfc_slot {
	struct sfc_key key;
	struct sfc_value val;
};

BPF_ARRAY(sfc_sets, struct sfc_set, SFC_SETS);
BPF_ARRAY(sfc_slots, struct sfc_slot, SFC_SETS * SFC_WAYS);
""" + _HASH_EQ + r"""
static __always_inline int sfc_cache_insert(const struct sfc_key *key, const struct sfc_value *val)
{
	__u32 h = sfc_key_hash(key);
	__u32 set_idx = h % SFC_SETS;
	struct sfc_set *set = sfc_sets.lookup(&set_idx);
	struct sfc_slot *slot;
	__u64 seen = 0;
	__u32 idx;
	int way = -1;

	if (!set)
		return SFC_CACHE_FAILED;
#pragma unroll
	for (int w = 0; w < SFC_WAYS; w++) {
		__u64 st = set->state[w];

		if (st & SFC_ST_VALID) {
			if (set->fp[w] == h) {
				__u32 i = set_idx * SFC_WAYS + w;
				struct sfc_slot *s = sfc_slots.lookup(&i);

				if (s && sfc_key_eq(&s->key, key))
					return SFC_CACHE_EXISTS;
			}
		} else if (way < 0 && !(st & SFC_ST_BUSY)) {
			way = w;
			seen = st;
		}
	}
	if (way < 0) {			/* set full: evict a pseudo-random way */
		way = (h >> 16) & (SFC_WAYS - 1);
		seen = set->state[way & (SFC_WAYS - 1)];
		if (seen & SFC_ST_BUSY)
			return SFC_CACHE_FAILED;
	}
	way &= SFC_WAYS - 1;
	if (__sync_val_compare_and_swap(&set->state[way], seen,
					(seen | SFC_ST_BUSY) & ~SFC_ST_VALID) != seen)
		return SFC_CACHE_FAILED;
	idx = set_idx * SFC_WAYS + way;
	slot = sfc_slots.lookup(&idx);
	if (!slot) {
		set->state[way] = (seen & ~3ULL) + 4;
		return SFC_CACHE_FAILED;
	}
	__builtin_memcpy(&slot->key, key, sizeof(*key));
	__builtin_memcpy(&slot->val, val, sizeof(*val));
	set->fp[way] = h;
	__BARRIER__
	set->state[way] = ((seen & ~3ULL) + 4) | SFC_ST_VALID;
	return SFC_CACHE_STORED;
}

static __always_inline int sfc_cache_take(const struct sfc_key *key, struct sfc_value *val)
{
	__u32 h = sfc_key_hash(key);
	__u32 set_idx = h % SFC_SETS;
	struct sfc_set *set = sfc_sets.lookup(&set_idx);

	if (!set)
		return -1;
#pragma unroll
	for (int w = 0; w < SFC_WAYS; w++) {
		__u64 st = set->state[w];
		struct sfc_slot *s;
		__u32 idx;

		if (!(st & SFC_ST_VALID) || set->fp[w] != h)
			continue;
		idx = set_idx * SFC_WAYS + w;
		s = sfc_slots.lookup(&idx);
		if (!s || !sfc_key_eq(&s->key, key))
			continue;
		__BARRIER__
		__builtin_memcpy(val, &s->val, sizeof(*val));
		/* consume: fails if a writer claimed the slot meanwhile */
		if (__sync_val_compare_and_swap(&set->state[w], st, st & ~SFC_ST_VALID) != st)
			return -1;
		return 0;
	}
	return -1;
}
""" + _COMMON


def _array_edits(table_c: str) -> tuple[Edit, ...]:
    body = table_c.replace("__BARRIER__", _BARRIER).replace("\\", "\\\\")
    return (Edit("cache in a BPF array: table and the cache functions", _CACHE_SECTION, body),)


def setassoc_edits() -> tuple[Edit, ...]:
    return _array_edits(SETASSOC_TABLE)


def setassoc_fp_edits() -> tuple[Edit, ...]:
    return _array_edits(SETASSOC_FP_TABLE)


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

COMPONENTS = (
    ("no-insert", (NO_INSERT,), ("ingress",)),
    ("no-strip", (NO_STRIP,), ("ingress",)),
    ("no-insert-no-strip", (NO_INSERT, NO_STRIP), ("ingress",)),
    ("no-mtu", (NO_MTU,), ("ingress", "egress")),
    ("no-store", (NO_STORE,), ("ingress", "egress")),
    ("no-restore", (NO_RESTORE,), ("ingress", "egress")),
    ("no-delete", (NO_DELETE,), ("ingress", "egress")),
    ("no-delete-no-restore", (NO_DELETE, NO_RESTORE), ("ingress", "egress")),
)
CANDIDATES = (
    ("no-common-lru", (NO_COMMON_LRU,), "candidate"),
    ("store-bytes", (STORE_BYTES,), "reference"),
    ("adjust-room", (ADJUST_ROOM,), "reference"),
    ("aa-control", (CONTROL,), "control"),
    ("hash-map", (PLAIN_HASH,), "reference"),
)
#: depths the candidates are measured at (the baseline rows have the same ids)
CANDIDATE_DEPTHS = (0, 1, 10)
#: the unmodified rows every variant is compared with (measured in the same rounds)
BASELINE_ROWS = ("mpls-tcpip-L0", "mpls-tcpip-L1", "mpls-tcpip-L2", "mpls-tcpip-L10",
                 "mpls-metadata-L1", "mpls-metadata-L10")


def array_rows() -> list[Row]:
    """The tcpip array-cache candidates (4-way set-associative), and the metadata key on
    the LRU hash map (cache=lru) against its default ring."""
    rows = []
    lru = mpls_build("metadata", name="mpls-metadata~lru-map")
    lru = lru.__class__(lru.name, lru.encap, lru.key, lru.params + (("cache", "lru"),))
    for depth in (1, 10):
        rows.append(Row(f"mpls-metadata-L{depth}~lru-map", "reference", lru, str(depth),
                        mpls_stack(depth), "metadata key with cache=lru (LRU hash map) "
                        "instead of its default ring", kind="reference"))
    sa = mpls_build("tcpip", name="mpls-tcpip~set-assoc", edits=setassoc_edits())
    for depth in CANDIDATE_DEPTHS:
        rows.append(Row(f"mpls-tcpip-L{depth}~set-assoc", "candidate", sa, str(depth),
                        mpls_stack(depth), "cache as a 4-way set-associative BPF array (tcpip)",
                        kind="candidate"))
    fp = mpls_build("tcpip", name="mpls-tcpip~set-assoc-fp", edits=setassoc_fp_edits())
    for depth in CANDIDATE_DEPTHS:
        rows.append(Row(f"mpls-tcpip-L{depth}~set-assoc-fp", "candidate", fp, str(depth),
                        mpls_stack(depth), "4-way set-associative BPF array, states + "
                        "fingerprints in one line per set, key + value in one 64 B slot (tcpip)",
                        kind="candidate"))
    return rows


def breakdown_rows() -> list[Row]:
    rows = []
    for name, edits, directions in COMPONENTS:
        build = mpls_build("tcpip", name=f"mpls-tcpip~{name}", edits=edits)
        rows.append(Row(f"mpls-tcpip-L10~{name}", "component", build, "10", mpls_stack(10),
                        "; ".join(e.name for e in edits), directions=directions,
                        check=name == "no-mtu", kind="component"))
    for name, edits, kind in CANDIDATES:
        build = mpls_build("tcpip", name=f"mpls-tcpip~{name}", edits=edits)
        for depth in CANDIDATE_DEPTHS:
            if name in ("store-bytes", "adjust-room"):
                depth = {0: None, 1: 2}.get(depth, depth)  # 1 label restores nothing
                if depth is None:
                    continue
            rows.append(Row(f"mpls-tcpip-L{depth}~{name}", kind, build, str(depth),
                            mpls_stack(depth), "; ".join(e.name for e in edits), kind=kind))
    return rows + array_rows()


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
